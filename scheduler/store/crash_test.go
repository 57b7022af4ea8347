package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashWriterEnv makes the test binary a child that commits until killed.
const crashWriterEnv = "BERTH_STORE_CRASH_WRITER_DIR"

// TestMain lets the test binary run as the writer that kill -9 stops.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashWriterEnv); dir != "" {
		crashWriter(dir)
		return
	}
	code := m.Run()
	stopSharedEtcd()
	os.Exit(code)
}

// crashWriter commits from many goroutines and prints each key once its
// commit was acknowledged, until it is killed.
func crashWriter(dir string) {
	s, err := OpenBolt(dir, 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("p%d-w%02d-%08d", os.Getpid(), w, i)
				if _, err := s.Commit(context.Background(), Op{Bucket: "acked", Key: key, Value: []byte(key), Expect: Absent}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintln(out, key)
				_ = out.Flush() // the parent must see it before the kill
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestKill9LosesNothingAcknowledged kills a writing process at random
// moments, several times over the same file: every key whose commit was
// acknowledged before the kill is there after reopening.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		// Kill after a varying number of acknowledgements, mid-stream.
		want := 500 + round*700
		seen := 0
		for seen < want && lines.Scan() {
			acked[lines.Text()] = true
			seen++
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Lines already written before the kill were acknowledged too.
		for lines.Scan() {
			acked[lines.Text()] = true
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !killed(exit) {
			t.Fatalf("round %d: writer ended with %v, want killed by SIGKILL; stderr: %s", round, err, stderr.String())
		}
		if seen < want {
			t.Fatalf("round %d: writer acknowledged only %d commits; stderr: %s", round, seen, stderr.String())
		}
	}

	s, err := OpenBolt(dir, time.Second)
	if err != nil {
		t.Fatalf("reopening after kill -9: %v", err)
	}
	defer s.Close()
	items, err := s.List(context.Background(), "acked", "")
	if err != nil {
		t.Fatal(err)
	}
	stored := make(map[string]bool, len(items))
	for _, it := range items {
		stored[it.Key] = true
	}
	var lost []string
	for key := range acked {
		if !stored[key] {
			lost = append(lost, key)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged commits lost after kill -9, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
	t.Logf("%d acknowledged commits over 4 kills, all present (%d stored)", len(acked), len(items))
}

func killed(exit *exec.ExitError) bool {
	status, ok := exit.Sys().(syscall.WaitStatus)
	return ok && status.Signal() == syscall.SIGKILL
}
