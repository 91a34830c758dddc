// Command server runs Gatehouse's reference server: a Monite-compatible API
// (tokens, entities, roles, entity users and a small payables resource) built
// from the library's public packages; see package
// github.com/gatehouse-authz/gatehouse/examples/server/api for the routes.
//
// Usage:
//
//	go run ./examples/server [-addr 127.0.0.1:8080] [-db gatehouse.db] [-token-ttl 30m] [-watch] [-poll 1s]
//
// -db takes a DSN as store.Open does: a SQLite file path (the default is
// gatehouse.db), "postgres://..." or "mysql://...".
//
// Several servers may run on one database: -watch starts a store.Watcher
// that applies the policy changes the others commit (polling the change
// feed every -poll, and woken at once by NOTIFY on PostgreSQL). It is on by
// default for PostgreSQL and MySQL DSNs and off for SQLite; -watch=false or
// -watch=true decides.
//
// The bootstrap partner's API client comes from the environment:
// GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET (at least 16 characters),
// for partner GATEHOUSE_PARTNER_ID (default "partner-1"). When they are unset,
// a new client is created and its credentials are printed once. The server
// logs with log/slog (JSON to stderr) and shuts down gracefully on SIGINT or
// SIGTERM.
package main

import (
	"context"
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

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/examples/server/api"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/store"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dsn := flag.String("db", "gatehouse.db", "database DSN, as store.Open takes it (SQLite file, postgres://..., mysql://...)")
	ttl := flag.Duration("token-ttl", 30*time.Minute, "lifetime of access tokens")
	watch := flag.Bool("watch", false, "follow the policy changes other servers commit to the same database (default: on for postgres:// and mysql:// DSNs)")
	poll := flag.Duration("poll", store.DefaultPollInterval, "how often -watch reads the change feed when nothing woke it")
	flag.Parse()
	watchSet := false
	flag.Visit(func(f *flag.Flag) { watchSet = watchSet || f.Name == "watch" })
	if !watchSet {
		*watch = sharedDatabase(*dsn)
	}

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := api.Config{DSN: *dsn, TokenTTL: *ttl, Logger: log, Watch: *watch, PollInterval: *poll}
	if err := serve(ctx, log, *addr, cfg); err != nil {
		log.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

// serve runs the server until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, log *slog.Logger, addr string, cfg api.Config) error {
	srv, err := api.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	partner := model.PartnerID(envOr("GATEHOUSE_PARTNER_ID", "partner-1"))
	id, secret := os.Getenv("GATEHOUSE_CLIENT_ID"), os.Getenv("GATEHOUSE_CLIENT_SECRET")
	switch {
	case id != "" && secret != "":
		if err := srv.EnsureClient(ctx, partner, auth.ClientCredentials{ID: id, Secret: secret}); err != nil {
			return fmt.Errorf("bootstrap client: %w", err)
		}
		log.Info("bootstrap client from the environment", "partner", partner, "client_id", id)
	case id != "" || secret != "":
		return errors.New("set both GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET, or neither")
	default:
		creds, err := srv.CreateClient(ctx, partner)
		if err != nil {
			return fmt.Errorf("bootstrap client: %w", err)
		}
		// Printed once, to stdout and not to the log: the secret is not stored.
		fmt.Printf("bootstrap client for partner %s (shown once):\n  GATEHOUSE_CLIENT_ID=%s\n  GATEHOUSE_CLIENT_SECRET=%s\n", partner, creds.ID, creds.Secret)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "db", redact(cfg.DSN), "token_ttl", cfg.TokenTTL.String(), "watch", cfg.Watch)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return hs.Shutdown(shutdown)
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// sharedDatabase reports whether dsn names a database server that other
// processes may share (PostgreSQL, MySQL) rather than a SQLite file.
func sharedDatabase(dsn string) bool {
	for _, scheme := range []string{"postgres://", "postgresql://", "mysql://"} {
		if len(dsn) >= len(scheme) && strings.EqualFold(dsn[:len(scheme)], scheme) {
			return true
		}
	}
	return false
}

// redact returns what the log may show of a DSN: where the database is,
// not who connects nor how. The user-info and the query, where passwords
// also go (pgx's ?password= and ?sslpassword=, SQLite's _auth_pass), are
// left out; so is a whole key=value DSN that names a password.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		if strings.Contains(strings.ToLower(dsn), "password") {
			return "(a DSN with credentials)"
		}
		path, _, _ := strings.Cut(dsn, "?")
		return path
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 { // the last: a password may hold an unescaped "@"
		rest = rest[i+1:]
	}
	rest, _, _ = strings.Cut(rest, "?")
	return scheme + "://" + rest
}
