package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Replicas over TLS end to end: a three-member etcd serving its client
// URLs over TLS and requiring client certificates; two replicas serving
// HTTPS that reach it with --etcd-cacert, --etcd-cert and --etcd-key, the
// standby proxying to the leader verified by --peer-ca. A placement through
// the standby succeeds. A replica whose --peer-ca did not sign the
// leader's certificate answers 503 naming the certificate; a berthd whose
// --etcd-cacert did not sign etcd's certificate does not start, and says
// why. etcd takes ports 23810-23819; the pool's host ports 62100-62249.
func TestReplicasOverTLS(t *testing.T) {
	env := testenv.Require(t)
	const pool = "rep-tls"
	cleanPool(t, env, pool)
	etcdCA, berthdCA, otherCA := testenv.NewCA(t, "etcd-ca"), testenv.NewCA(t, "berthd-ca"), testenv.NewCA(t, "other-ca")
	etcdCert, etcdKey := etcdCA.Issue(t, "etcd", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := etcdCA.Issue(t, "berthd", x509.ExtKeyUsageClientAuth)
	serveCert, serveKey := berthdCA.Issue(t, "berthd", x509.ExtKeyUsageServerAuth)
	dir := writeFiles(t, map[string]string{
		"etcd-ca.pem": etcdCA.PEM, "etcd.pem": etcdCert, "etcd-key.pem": etcdKey,
		"client.pem": clientCert, "client-key.pem": clientKey,
		"berthd-ca.pem": berthdCA.PEM, "berthd.pem": serveCert, "berthd-key.pem": serveKey,
		"other-ca.pem": otherCA.PEM,
	})
	file := func(name string) string { return filepath.Join(dir, name) }
	probe, err := tls.X509KeyPair([]byte(clientCert), []byte(clientKey))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := etcdtest.Start(ctx, etcdtest.Options{Dir: t.TempDir(), PortFirst: 23810, PortLast: 23819, TLS: &etcdtest.TLS{
		CertFile: file("etcd.pem"), KeyFile: file("etcd-key.pem"), ClientCAFile: file("etcd-ca.pem"),
		Probe: &tls.Config{RootCAs: etcdCA.Pool, Certificates: []tls.Certificate{probe}, MinVersion: tls.VersionTLS12},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if !strings.HasPrefix(c.Endpoints()[0], "https://") {
		t.Fatalf("etcd endpoints %v, want https", c.Endpoints())
	}

	etcdArgs := func(ca string) []string {
		return []string{"--store", "etcd", "--etcd-endpoints", strings.Join(c.Endpoints(), ","), "--etcd-prefix", "/" + t.Name() + "/",
			"--leader-ttl", "2s", "--engines", enginesFile(t, env),
			"--etcd-cacert", file(ca), "--etcd-cert", file("client.pem"), "--etcd-key", file("client-key.pem")}
	}
	serving := func(peerCA string) []string {
		return append(etcdArgs("etcd-ca.pem"), "--tls-cert", file("berthd.pem"), "--tls-key", file("berthd-key.pem"), "--peer-ca", file(peerCA))
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: berthdCA.Pool, MinVersion: tls.VersionTLS12}}}
	vars := []string{"BERTHD_ADMIN_TOKEN=" + adminToken}
	leader, standbys := leaderOf(t, start(t, client, vars, serving("berthd-ca.pem")...), start(t, client, vars, serving("berthd-ca.pem")...))
	standby := standbys[0]
	if !strings.HasPrefix(leader.url, "https://") {
		t.Fatalf("the leader serves %s, want https", leader.url)
	}
	decodeAs[backend.PoolStatus](t, standby.settle(t, "PUT", api.PoolPath(pool), "pool", testPool(env, pool, 2, 62100)), http.StatusOK)
	lease := decodeAs[api.Lease](t, standby.settle(t, "POST", api.PathLeases, "lease", api.LeaseRequest{Spec: webSpec(env, pool, "tls-0")}), http.StatusOK)
	created := decodeAs[backend.ContainerState](t, standby.settle(t, "POST", api.PathContainers, "create",
		api.CreateRequest{Spec: webSpec(env, pool, "tls-0"), LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
	if got := engineContainers(t, env, pool); len(got) != 1 || len(got["tls-0"]) != 1 || got["tls-0"][0] != created.Ref.Host {
		t.Errorf("containers on the engines: %v, want tls-0 alone on %s", got, created.Ref.Host)
	}

	// A standby that does not trust the leader's certificate.
	distrustful := start(t, client, vars, serving("other-ca.pem")...)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, h := distrustful.health(t); h.Leader == leader.url {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the third replica never named the leader: %s", distrustful.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	a := distrustful.do("GET", api.PathPools, adminToken, "", nil)
	t.Logf("through the standby that does not trust the leader: %d %s", a.status, a.body)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "certificate") {
		t.Errorf("through a standby whose --peer-ca did not sign the leader's certificate: %d %s, want 503 naming the certificate", a.status, a.body)
	}

	// A berthd that does not trust etcd's certificate.
	startCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	wrong := exec.CommandContext(startCtx, binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, etcdArgs("other-ca.pem")...)...)
	wrong.Env = vars
	out, err := wrong.CombinedOutput()
	t.Logf("berthd with the wrong --etcd-cacert: %v: %s", err, out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("berthd with the wrong --etcd-cacert: %v, want exit status 1", err)
	}
	for _, want := range []string{"TLS handshake with etcd at " + c.Endpoints()[0], "certificate signed by unknown authority"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("berthd with the wrong --etcd-cacert says %s; want it to say %q", out, want)
		}
	}
}
