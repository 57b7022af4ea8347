package engine

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// A container whose sh.berth.* labels do not parse (edited by hand, or
// written by something else) cannot be counted, but it must not make the
// whole engine unlistable either: lists skip it, and the engine remembers
// it so that callers can warn about it.

// MalformedError is a container whose Berth labels do not parse.
type MalformedError struct {
	Engine, ID, Name string
	Err              error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("engine %s: container %s (%s) has a malformed Berth label: %v; Berth skips it and does not count what it uses: fix its labels or remove it",
		e.Engine, e.Name, shortID(e.ID), e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// IsMalformed reports whether err is a container with malformed labels.
func IsMalformed(err error) bool {
	var malformed *MalformedError
	return errors.As(err, &malformed)
}

// malformedSeen is what this engine skipped, by container id.
type malformedSeen struct {
	mu   sync.Mutex
	byID map[string]*MalformedError
}

func (e *Engine) malformed(id, name string, err error) *MalformedError {
	m := &MalformedError{Engine: e.name, ID: id, Name: name, Err: err}
	e.skipped.mu.Lock()
	defer e.skipped.mu.Unlock()
	if e.skipped.byID == nil {
		e.skipped.byID = map[string]*MalformedError{}
	}
	e.skipped.byID[id] = m
	return m
}

// Skipped describes the containers with malformed labels this engine's
// lists and inspects have skipped so far, for warnings.
func (e *Engine) Skipped() []string {
	e.skipped.mu.Lock()
	defer e.skipped.mu.Unlock()
	out := make([]string, 0, len(e.skipped.byID))
	for _, m := range e.skipped.byID {
		out = append(out, m.Error())
	}
	sort.Strings(out)
	return out
}
