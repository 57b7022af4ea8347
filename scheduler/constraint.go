package scheduler

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Op is a constraint's comparison.
type Op int

// The constraint operators. A missing label never equals anything, so
// `zone != c` and `zone not in [...]` hold on hosts without a zone label.
const (
	OpEqual     Op = iota + 1 // label == value
	OpNotEqual                // label != value
	OpIn                      // label in [a, b]
	OpNotIn                   // label not in [a, b]
	OpExists                  // label        (the host has the label)
	OpNotExists               // !label       (the host lacks the label)
)

// NodeNameLabel is a pseudo-label that every host has: its name.
const NodeNameLabel = "node.name"

// Constraint is one parsed rule on host labels. Values containing glob
// metacharacters (* ? [ \) match with path.Match semantics.
type Constraint struct {
	Soft   bool // leading '~': preferred (a ranking bonus), not required
	Label  string
	Op     Op
	Values []string // one for == and !=, one or more for in / not in
	globs  []bool   // globs[i]: Values[i] is a pattern
	memoID int      // 1-based slot in each host's memo, when cached (0: none)
}

// ParseError is a constraint syntax error at a 1-based byte position.
type ParseError struct {
	Input    string
	Pos      int
	Expected string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("constraint %q: at %d: %s", e.Input, e.Pos, e.Expected)
}

// ParseConstraint parses one rule. The syntax:
//
//	[~] label == value          equal (value may be a glob: rack-*)
//	[~] label != value          not equal
//	[~] label in [a, b, ...]    one of
//	[~] label not in [a, ...]   none of
//	[~] label                   the host has the label
//	[~] !label                  the host lacks the label
//
// Labels are letters, digits and . _ - /; the pseudo-label node.name is the
// host's name. Values are bare words or double-quoted Go strings.
func ParseConstraint(s string) (Constraint, error) {
	p := parser{in: s}
	c, err := p.constraint()
	if err != nil {
		return Constraint{}, err
	}
	return c, nil
}

type parser struct {
	in  string
	pos int
}

func (p *parser) fail(expected string) error {
	return &ParseError{Input: p.in, Pos: p.pos + 1, Expected: expected}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
}

func (p *parser) atEnd() bool { return p.pos >= len(p.in) }

func (p *parser) peek(prefix string) bool { return strings.HasPrefix(p.in[p.pos:], prefix) }

// peekWord reports whether the keyword w comes next as a whole word.
func (p *parser) peekWord(w string) bool {
	if !p.peek(w) {
		return false
	}
	end := p.pos + len(w)
	return end == len(p.in) || !isLabelByte(p.in[end])
}

func (p *parser) constraint() (Constraint, error) {
	var c Constraint
	p.skipSpace()
	if p.peek("~") {
		c.Soft = true
		p.pos++
		p.skipSpace()
	}
	negated := p.peek("!")
	if negated {
		p.pos++
		p.skipSpace()
	}
	label := p.label()
	if label == "" {
		return c, p.fail("expected a label")
	}
	c.Label = label
	p.skipSpace()
	if negated || p.atEnd() {
		c.Op = OpExists
		if negated {
			c.Op = OpNotExists
		}
		return c, p.end()
	}
	switch {
	case p.peek("=="):
		c.Op = OpEqual
		p.pos += 2
	case p.peek("!="):
		c.Op = OpNotEqual
		p.pos += 2
	case p.peekWord("in"):
		c.Op = OpIn
		p.pos += 2
	case p.peekWord("not"):
		p.pos += 3
		p.skipSpace()
		if !p.peekWord("in") {
			return c, p.fail("expected 'in' after 'not'")
		}
		c.Op = OpNotIn
		p.pos += 2
	default:
		return c, p.fail("expected an operator (==, !=, in, not in) or the end")
	}
	p.skipSpace()
	var err error
	if c.Op == OpIn || c.Op == OpNotIn {
		err = p.list(&c)
	} else {
		err = p.value(&c)
	}
	if err != nil {
		return c, err
	}
	p.skipSpace()
	return c, p.end()
}

func (p *parser) end() error {
	if !p.atEnd() {
		return p.fail(fmt.Sprintf("unexpected %q, expected the end", p.in[p.pos:]))
	}
	return nil
}

func (p *parser) label() string {
	start := p.pos
	for p.pos < len(p.in) && isLabelByte(p.in[p.pos]) {
		p.pos++
	}
	return p.in[start:p.pos]
}

func (p *parser) list(c *Constraint) error {
	if !p.peek("[") {
		return p.fail("expected '['")
	}
	p.pos++
	for {
		p.skipSpace()
		if err := p.value(c); err != nil {
			return err
		}
		p.skipSpace()
		switch {
		case p.peek(","):
			p.pos++
		case p.peek("]"):
			p.pos++
			return nil
		default:
			return p.fail("expected ',' or ']'")
		}
	}
}

// value reads a bare word or a quoted string and appends it to c.
func (p *parser) value(c *Constraint) error {
	start := p.pos
	var v string
	if p.peek(`"`) {
		quoted, err := strconv.QuotedPrefix(p.in[p.pos:])
		if err != nil {
			return p.fail("expected a closing '\"'")
		}
		v, _ = strconv.Unquote(quoted) // QuotedPrefix guarantees it unquotes
		p.pos += len(quoted)
	} else {
		for p.pos < len(p.in) && isValueByte(p.in[p.pos]) {
			p.pos++
		}
		v = p.in[start:p.pos]
		if v == "" {
			return p.fail("expected a value")
		}
	}
	glob := strings.ContainsAny(v, `*?[\`)
	if glob {
		if _, err := path.Match(v, ""); err != nil {
			p.pos = start
			return p.fail(fmt.Sprintf("bad glob pattern %q", v))
		}
	}
	c.Values = append(c.Values, v)
	c.globs = append(c.globs, glob)
	return nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func isLabelByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
		b == '.' || b == '_' || b == '-' || b == '/'
}

func isValueByte(b byte) bool {
	return b > ' ' && b != ',' && b != '[' && b != ']' && b != '"' && b < 0x7f || b >= 0x80
}

// Matches reports whether a host with this name and labels satisfies the
// rule (softness aside).
func (c *Constraint) Matches(name string, labels map[string]string) bool {
	var v string
	var ok bool
	if c.Label == NodeNameLabel {
		v, ok = name, true
	} else {
		v, ok = labels[c.Label]
	}
	switch c.Op {
	case OpExists:
		return ok
	case OpNotExists:
		return !ok
	case OpEqual, OpIn:
		return ok && c.anyValue(v)
	case OpNotEqual, OpNotIn:
		return !ok || !c.anyValue(v)
	}
	return false
}

func (c *Constraint) anyValue(v string) bool {
	for i, want := range c.Values {
		if c.globs[i] {
			if ok, _ := path.Match(want, v); ok { // patterns were checked at parse time
				return true
			}
		} else if v == want {
			return true
		}
	}
	return false
}

// String renders the rule canonically; ParseConstraint(c.String()) gives c back.
func (c *Constraint) String() string {
	var b strings.Builder
	if c.Soft {
		b.WriteByte('~')
	}
	if c.Op == OpNotExists {
		b.WriteByte('!')
	}
	b.WriteString(c.Label)
	switch c.Op {
	case OpEqual:
		b.WriteString(" == ")
	case OpNotEqual:
		b.WriteString(" != ")
	case OpIn:
		b.WriteString(" in [")
	case OpNotIn:
		b.WriteString(" not in [")
	}
	for i, v := range c.Values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteValue(v))
	}
	if c.Op == OpIn || c.Op == OpNotIn {
		b.WriteByte(']')
	}
	return b.String()
}

// quoteValue leaves bare words bare and quotes anything else.
func quoteValue(v string) string {
	if v == "" || strings.ContainsAny(v, `[`) {
		return strconv.Quote(v)
	}
	for i := 0; i < len(v); i++ {
		if !isValueByte(v[i]) {
			return strconv.Quote(v)
		}
	}
	return v
}

// constraintCache parses each distinct constraint text once. It stops
// growing at a bound so that a stream of distinct texts cannot eat memory;
// texts beyond it are parsed on every use.
type constraintCache struct {
	parsed sync.Map // string -> *cachedConstraint
	size   atomic.Int64
}

const constraintCacheLimit = 4096

type cachedConstraint struct {
	c   Constraint
	err error
}

func (cc *constraintCache) get(text string) (*Constraint, error) {
	if v, ok := cc.parsed.Load(text); ok {
		e, _ := v.(*cachedConstraint) // only *cachedConstraint is stored
		return &e.c, e.err
	}
	c, err := ParseConstraint(text)
	e := &cachedConstraint{c: c, err: err}
	if cc.size.Load() < constraintCacheLimit {
		// An id is taken before publishing; a lost race wastes one.
		e.c.memoID = int(cc.size.Add(1))
		if v, loaded := cc.parsed.LoadOrStore(text, e); loaded {
			e, _ = v.(*cachedConstraint)
		}
	}
	return &e.c, e.err
}
