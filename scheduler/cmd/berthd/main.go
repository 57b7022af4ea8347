package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/gcpace"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/metrics"
	"github.com/berthsh/terraform-provider-berth/scheduler/server"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// shutdownGrace bounds how long a SIGTERM waits for running operations;
// what is still running then stays recorded, and its repeat resumes it.
const shutdownGrace = 2 * time.Minute

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: berthd serve --listen ADDR (--data-dir DIR | --store etcd --etcd-endpoints URL,...) --engines engines.json [--tokens tokens.json] [--registry-auth registries.json] [--tls-cert F --tls-key F [--client-ca F]]")
		os.Exit(2)
	}
	cfg, err := parseFlags(os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(2)
	}
	gcpace.UnlessSet()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("berthd stopped", "err", err)
		os.Exit(1)
	}
}

type config struct {
	listen, dataDir, engines, tokens string
	tlsCert, tlsKey, clientCA, url   string
	registryAuth                     string
	peerCA                           string
	logLevel                         slog.Level
	etcd                             etcdFlags
}

// parseFlags reads the flags, each also from BERTHD_<NAME>.
func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("berthd serve", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8700", "address to listen on (port 0 picks one; the log says which)")
	fs.StringVar(&cfg.dataDir, "data-dir", "", "directory of the durable store (required)")
	fs.StringVar(&cfg.engines, "engines", "", "engines.json: the engines and their credentials (required)")
	fs.StringVar(&cfg.tokens, "tokens", "", "tokens.json: token digests, roles and pools (default: BERTHD_ADMIN_TOKEN, one admin)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "the certificate's key (PEM)")
	fs.StringVar(&cfg.clientCA, "client-ca", "", "require client certificates signed by this CA (PEM)")
	fs.StringVar(&cfg.registryAuth, "registry-auth", "", "registries.json: credentials for pulling images (entries like the provider's registry_auth)")
	fs.StringVar(&cfg.peerCA, "peer-ca", "", "replicas on HTTPS: verify the leader a standby proxies to with this CA (PEM; default: the system's roots)")
	fs.StringVar(&cfg.url, "url", "", "the URL clients reach berthd at, written into its pools' records (default: from --listen)")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	cfg.etcd.register(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "BERTHD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if value, ok := os.LookupEnv(env); ok && !set[f.Name] {
			if err := f.Value.Set(value); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	switch {
	case cfg.etcd.store != "bolt":
		errs = append(errs, cfg.etcd.check())
	case cfg.dataDir == "":
		errs = append(errs, errors.New("--data-dir (or BERTHD_DATA_DIR) is required"))
	case cfg.engines == "":
		errs = append(errs, errors.New("--engines (or BERTHD_ENGINES) is required"))
	case (cfg.tlsCert == "") != (cfg.tlsKey == ""):
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	case cfg.clientCA != "" && cfg.tlsCert == "":
		errs = append(errs, errors.New("--client-ca needs --tls-cert and --tls-key"))
	}
	return cfg, errors.Join(errs...)
}

func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	tokens, err := loadTokens(cfg)
	if err != nil {
		return err
	}
	engineCfgs, err := server.LoadEngines(cfg.engines)
	if err != nil {
		return err
	}
	registries, err := loadRegistries(cfg.registryAuth)
	if err != nil {
		return err
	}
	engines, err := engine.NewSet(engineCfgs)
	if err != nil {
		return err
	}
	defer engines.Close()
	tlsConfig, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	url := cfg.url
	if url == "" {
		scheme := "http"
		if tlsConfig != nil {
			scheme = "https"
		}
		url = scheme + "://" + listener.Addr().String()
	}
	m := metrics.New()
	newServer := func(st store.Store) (*server.Server, error) {
		return server.New(server.Config{
			Backend:        backend.NewEmbedded(engines).ServeAs(url).WithRegistries(registries),
			Store:          m.Store(st, cfg.etcd.store),
			Tokens:         tokens,
			Logger:         log,
			OnLeaseExpired: m.LeaseExpired,
		})
	}
	srv, err := openServer(cfg, log, url, newServer, m)
	if err != nil {
		return err
	}
	defer srv.Close()
	httpServer := &http.Server{
		Handler:           withMetrics(m, tokens, srv.Handler()),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- httpServer.ServeTLS(listener, "", "")
		} else {
			served <- httpServer.Serve(listener)
		}
	}()
	log.Info("listening", "addr", listener.Addr().String(), "url", url, "engines", engines.Names(), "data_dir", cfg.dataDir)

	// /healthz answers 503 until the ledger is rebuilt from the engines.
	if err := srv.Start(ctx); err != nil {
		return err
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing running operations", "grace", shutdownGrace)
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	drained := srv.Drain(grace)
	if err := httpServer.Shutdown(grace); err != nil {
		log.Warn("connections still open at shutdown", "err", err)
	}
	if drained != nil {
		log.Warn("operations still running at shutdown stay recorded; repeating them resumes them", "err", drained)
	}
	log.Info("stopped")
	return nil
}

func loadTokens(cfg config) (*server.Tokens, error) {
	if cfg.tokens != "" {
		return server.LoadTokens(cfg.tokens)
	}
	admin, ok := os.LookupEnv("BERTHD_ADMIN_TOKEN")
	if !ok {
		return nil, errors.New("no tokens: give --tokens tokens.json, or BERTHD_ADMIN_TOKEN for one admin token")
	}
	return server.AdminToken(admin)
}

func serverTLS(cfg config) (*tls.Config, error) {
	if cfg.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	out := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.clientCA != "" {
		pool, err := certPool("--client-ca", cfg.clientCA)
		if err != nil {
			return nil, err
		}
		out.ClientCAs, out.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return out, nil
}

// certPool reads the PEM certificates of file, given by flag.
func certPool(flag, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", flag, file)
	}
	return pool, nil
}
