package etcdtest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Default loopback ports: members take free ones from this range, a client
// and a peer port each.
const (
	DefaultPortFirst = 23790
	DefaultPortLast  = 23799
)

// Bounds on the waits, so that a wedged etcd fails a test instead of
// hanging it.
const (
	healthyTimeout = 30 * time.Second
	termTimeout    = 10 * time.Second
	killTimeout    = 5 * time.Second
)

// Options shape a cluster; zero values pick the defaults.
type Options struct {
	Dir       string // required: data directories, logs, pid files, cluster.json
	Members   int    // default 3
	PortFirst int    // default DefaultPortFirst
	PortLast  int    // default DefaultPortLast
	TLS       *TLS   // nil: plain HTTP client URLs
}

// TLS makes the members serve their client URLs over HTTPS and accept
// only clients with a certificate signed by ClientCAFile. Peers talk plain
// HTTP to each other on loopback.
type TLS struct {
	CertFile     string `json:"cert_file"` // the members' certificate, for 127.0.0.1 (PEM)
	KeyFile      string `json:"key_file"`
	ClientCAFile string `json:"client_ca_file"` // the CA of the client certificates (PEM)
	// Probe is how Start connects to check the members' health: trusting
	// their CA, with a client certificate.
	Probe *tls.Config `json:"-"`
}

// Cluster is a running (or stopped) set of etcd members.
type Cluster struct {
	Dir     string    `json:"dir"`
	Binary  string    `json:"binary"`
	Token   string    `json:"token"`
	TLS     *TLS      `json:"tls,omitempty"`
	Members []*Member `json:"members"`
}

// Member is one etcd process.
type Member struct {
	Name       string `json:"name"`
	Scheme     string `json:"scheme"` // of the client URL: http or https
	ClientPort int    `json:"client_port"`
	PeerPort   int    `json:"peer_port"`
	PID        int    `json:"pid"`

	// done closes when this process (our child) has been reaped; nil for
	// a member started by another process.
	done chan struct{}
}

// ClientURL is the member's client endpoint.
func (m *Member) ClientURL() string {
	scheme := m.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, m.ClientPort)
}

func (m *Member) peerURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.PeerPort) }

// Binary returns the etcd binary: $BERTH_ETCD when set, else the one
// internal/testenv/etcd.sh builds (once) and caches.
func Binary(ctx context.Context) (string, error) {
	if path := os.Getenv("BERTH_ETCD"); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("BERTH_ETCD=%s: %w", path, err)
		}
		return path, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("etcdtest: cannot locate internal/testenv/etcd.sh; set BERTH_ETCD")
	}
	script := filepath.Join(filepath.Dir(file), "..", "testenv", "etcd.sh")
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("etcdtest: %s: %w", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Start launches a new cluster in opts.Dir and waits until every member
// is healthy.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("etcdtest: Options.Dir is required")
	}
	n := opts.Members
	if n <= 0 {
		n = 3
	}
	first, last := opts.PortFirst, opts.PortLast
	if first == 0 {
		first, last = DefaultPortFirst, DefaultPortLast
	}
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(first, last, 2*n)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: opts.Dir, Binary: bin, Token: fmt.Sprintf("berth-%d-%d", os.Getpid(), time.Now().UnixNano()), TLS: opts.TLS}
	scheme := "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	for i := range n {
		c.Members = append(c.Members, &Member{Name: fmt.Sprintf("m%d", i), Scheme: scheme, ClientPort: ports[2*i], PeerPort: ports[2*i+1]})
	}
	for _, m := range c.Members {
		if err := c.launch(m, "new"); err != nil {
			_ = c.Stop(context.Background())
			return nil, err
		}
	}
	if err := c.save(); err != nil {
		_ = c.Stop(context.Background())
		return nil, err
	}
	for _, m := range c.Members {
		if err := c.waitHealthy(ctx, m); err != nil {
			_ = c.Stop(context.Background())
			return nil, err
		}
	}
	return c, nil
}

// Attach reads the cluster that Start left in dir (cluster.json), for a
// process other than the one that started it.
func Attach(dir string) (*Cluster, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return nil, fmt.Errorf("etcdtest: no cluster in %s: %w", dir, err)
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("etcdtest: %s/cluster.json: %w", dir, err)
	}
	return &c, nil
}

// Endpoints are the members' client URLs, in member order.
func (c *Cluster) Endpoints() []string {
	urls := make([]string, len(c.Members))
	for i, m := range c.Members {
		urls[i] = m.ClientURL()
	}
	return urls
}

// StopMember ends member i with SIGTERM (SIGKILL if it does not exit in
// time) and waits for it to be gone.
func (c *Cluster) StopMember(ctx context.Context, i int) error {
	err := c.Members[i].stop(ctx, syscall.SIGTERM)
	return errors.Join(err, c.save())
}

// KillMember ends member i with SIGKILL.
func (c *Cluster) KillMember(ctx context.Context, i int) error {
	err := c.Members[i].stop(ctx, syscall.SIGKILL)
	return errors.Join(err, c.save())
}

// StartMember restarts a stopped member on its data directory. When wait
// is set it returns once the member is healthy (which needs a quorum).
func (c *Cluster) StartMember(ctx context.Context, i int, wait bool) error {
	m := c.Members[i]
	if m.running() {
		return fmt.Errorf("etcdtest: member %s is running", m.Name)
	}
	if err := c.launch(m, "existing"); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	return c.waitHealthy(ctx, m)
}

// Stop ends every member that runs; the data stays in Dir.
func (c *Cluster) Stop(ctx context.Context) error {
	var errs []error
	for _, m := range c.Members {
		if m.PID != 0 {
			errs = append(errs, m.stop(ctx, syscall.SIGTERM))
		}
	}
	return errors.Join(append(errs, c.save())...)
}

func (c *Cluster) launch(m *Member, state string) error {
	peers := make([]string, len(c.Members))
	for i, p := range c.Members {
		peers[i] = p.Name + "=" + p.peerURL()
	}
	logFile, err := os.OpenFile(filepath.Join(c.Dir, m.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := []string{
		"--name", m.Name,
		"--data-dir", filepath.Join(c.Dir, m.Name),
		"--listen-client-urls", m.ClientURL(), "--advertise-client-urls", m.ClientURL(),
		"--listen-peer-urls", m.peerURL(), "--initial-advertise-peer-urls", m.peerURL(),
		"--initial-cluster", strings.Join(peers, ","),
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.Token,
		"--log-level", "warn",
	}
	if c.TLS != nil {
		args = append(args, "--cert-file", c.TLS.CertFile, "--key-file", c.TLS.KeyFile,
			"--client-cert-auth", "--trusted-ca-file", c.TLS.ClientCAFile)
	}
	cmd := exec.Command(c.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C of the demo's terminal or the end of
	// `go run` does not reach it; Stop does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcdtest: starting %s: %w", m.Name, err)
	}
	m.PID = cmd.Process.Pid
	m.done = make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(m.done)
	return nil
}

func (m *Member) running() bool {
	if m.PID == 0 {
		return false
	}
	if m.done != nil {
		select {
		case <-m.done:
			return false
		default:
			return true
		}
	}
	return syscall.Kill(m.PID, 0) == nil
}

// stop signals the member and waits, within bounds, until it is gone.
func (m *Member) stop(ctx context.Context, sig syscall.Signal) error {
	if !m.running() {
		m.PID = 0
		return nil
	}
	_ = syscall.Kill(m.PID, sig)
	if !m.waitGone(ctx, termTimeout) {
		_ = syscall.Kill(m.PID, syscall.SIGKILL)
		if !m.waitGone(ctx, killTimeout) {
			return fmt.Errorf("etcdtest: member %s (pid %d) did not exit", m.Name, m.PID)
		}
	}
	m.PID = 0
	return nil
}

func (m *Member) waitGone(ctx context.Context, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for m.running() {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// waitHealthy polls the member's /health until it reports a leader.
func (c *Cluster) waitHealthy(ctx context.Context, m *Member) error {
	ctx, cancel := context.WithTimeout(ctx, healthyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	if c.TLS != nil {
		client.Transport = &http.Transport{TLSClientConfig: c.TLS.Probe}
	}
	var last string
	for {
		if !m.running() {
			return fmt.Errorf("etcdtest: member %s exited; its log: %s", m.Name, c.logTail(m))
		}
		last = health(ctx, client, m.ClientURL())
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: member %s not healthy after %s (%s); its log: %s", m.Name, healthyTimeout, last, c.logTail(m))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// health returns "" when the member's /health says it is healthy, or why not.
func health(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body); err != nil {
		return err.Error()
	}
	if body.Health != "true" {
		return "health " + body.Health + " " + body.Reason
	}
	return ""
}

func (c *Cluster) logTail(m *Member) string {
	data, _ := os.ReadFile(filepath.Join(c.Dir, m.Name+".log"))
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "cluster.json"), data, 0o644)
}

// freePorts picks n loopback ports of [first, last] that nothing listens on.
func freePorts(first, last, n int) ([]int, error) {
	var ports []int
	for p := first; p <= last && len(ports) < n; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = l.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("etcdtest: need %d free loopback ports in %d-%d, found %d (is another cluster running?)", n, first, last, len(ports))
	}
	return ports, nil
}
