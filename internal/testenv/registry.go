package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a local image registry with htpasswd authentication
// (Debian's docker-registry, which tools.sh installs), on 127.0.0.1, which
// dockerd trusts over plain HTTP as it does every loopback registry.
type Registry struct {
	Addr     string // host:port, as image references name it
	Username string
	Password string
	dir      string
}

// StartRegistry starts a registry on the first free port of
// [firstPort, lastPort] and stops it when the test ends. Without
// docker-registry the test fails, saying how to install it.
func StartRegistry(t testing.TB, firstPort, lastPort int) *Registry {
	t.Helper()
	binary, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("testenv: docker-registry not found (%v): run bash internal/testenv/tools.sh, which installs Debian's docker-registry", err)
	}
	r := &Registry{Username: "berth", Password: "registry-secret-" + strconv.Itoa(os.Getpid()), dir: t.TempDir()}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(r.dir, "htpasswd")
	writeFile(t, htpasswd, r.Username+":"+string(hash)+"\n")
	for port := firstPort; port <= lastPort; port++ {
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		if r.serve(t, binary, htpasswd) {
			return r
		}
	}
	t.Fatalf("testenv: no registry could listen on a port in %d-%d", firstPort, lastPort)
	return nil
}

// serve starts the registry on r.Addr; false when it exits before it
// answers (the port is taken).
func (r *Registry) serve(t testing.TB, binary, htpasswd string) bool {
	t.Helper()
	config := filepath.Join(r.dir, "config.yml")
	writeFile(t, config, fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: berth-test
    path: %s
`, filepath.Join(r.dir, "data"), r.Addr, htpasswd))
	var output syncBuffer
	cmd := exec.Command(binary, "serve", config)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start docker-registry: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			t.Logf("testenv: registry on %s exited: %s", r.Addr, output.String())
			return false
		default:
		}
		resp, err := client.Get("http://" + r.Addr + "/v2/")
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("testenv: registry at %s answered /v2/ with %d, want 401 (htpasswd auth)", r.Addr, resp.StatusCode)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return true
	}
	_ = cmd.Process.Kill()
	<-exited
	t.Fatalf("testenv: registry at %s did not start: %s", r.Addr, output.String())
	return false
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var pushedDigest = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

// Push makes a new image from source on engine (source with the label
// berth.test.version=version, so every version has its own digest), pushes
// it to the registry as repo:tag with the registry's credentials, and
// returns its repo digest, "ADDR/repo@sha256:…". The engine keeps the image.
func (r *Registry) Push(ctx context.Context, t testing.TB, engine Engine, source, repoTag, version string) string {
	t.Helper()
	ref := r.Addr + "/" + repoTag
	config := t.TempDir() // the credentials go to this docker CLI config only
	docker := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "docker", append([]string{"--config", config, "--host", engine.Socket}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("testenv: docker %s: %v: %s", args[0], err, out)
		}
		return string(out)
	}
	name := fmt.Sprintf("berth-registry-push-%d", time.Now().UnixNano())
	docker("", "create", "--name", name, source)
	docker("", "commit", "--change", "LABEL berth.test.version="+version, name, ref)
	docker("", "rm", name)
	docker(r.Password, "login", "--username", r.Username, "--password-stdin", r.Addr)
	match := pushedDigest.FindStringSubmatch(docker("", "push", ref))
	if match == nil {
		t.Fatalf("testenv: docker push %s printed no digest", ref)
	}
	name, _, _ = strings.Cut(ref[len(r.Addr)+1:], ":")
	return r.Addr + "/" + name + "@" + match[1]
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
