package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/gatehouse-authz/gatehouse/store"
)

// EntityHeader is the header that names the entity a request acts in.
const EntityHeader = "x-monite-entity-id"

// DefaultMaxBodyBytes bounds request bodies (64 KiB).
const DefaultMaxBodyBytes = 64 << 10

// Config configures a Server.
type Config struct {
	// DB is the database to use. When nil, DSN is opened with store.Open
	// and closed by Server.Close.
	DB *gorm.DB
	// DSN names the database when DB is nil (see store.Open): a SQLite file
	// path, "postgres://..." or "mysql://...".
	DSN string
	// TablePrefix prefixes every table name: the policy store's, the token
	// service's and the server's own (default "gatehouse_"). Tests use it to
	// get tables of their own in a shared database.
	TablePrefix string
	// TokenTTL is the lifetime of access tokens (default 30 minutes).
	TokenTTL time.Duration
	// Now is the clock of the token service (default time.Now). The
	// quickstart moves it forward to show an expired token.
	Now func() time.Time
	// Logger receives the request log and failures (default: discard).
	Logger *slog.Logger
	// MaxBodyBytes bounds JSON request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Watch starts a store.Watcher that applies the policy changes other
	// processes commit to the same database: turn it on when several
	// servers share one database (PostgreSQL, MySQL), or the others' changes
	// reach this one only when it restarts. With it, each request that may
	// change something first catches up with every committed change
	// (store.Watcher.Sync), so that it is authorized and validated against
	// the latest policy.
	Watch bool
	// PollInterval is how often the watcher reads the change feed when
	// nothing woke it (default store.DefaultPollInterval; on PostgreSQL
	// LISTEN/NOTIFY wakes it at once).
	PollInterval time.Duration
}

// Server is the reference server: the policy engine, the token service and
// the HTTP handlers over one database.
type Server struct {
	// Engine is the policy engine (entities, roles, users, decisions).
	Engine *policy.Engine
	// Tokens is the token service (API clients, tokens, revocation).
	Tokens *auth.Service
	// DB is the database.
	DB *gorm.DB
	// Watcher follows the other replicas' policy changes; nil unless
	// Config.Watch.
	Watcher *store.Watcher

	store     *store.Store
	clients   *auth.GormStore
	mw        *middleware.Middleware
	handler   http.Handler
	t         tables
	log       *slog.Logger
	maxBody   int64
	ownDB     bool
	closeFunc []func() error

	// beforeGuardedWrite, when set (by tests), runs in guardedWrite after
	// a handler's early escalation check and before its transaction.
	beforeGuardedWrite atomic.Pointer[func()]
}

// tables are the names of the server's own tables.
type tables struct {
	entities, users, roles, payables string
}

// New opens (or uses) the database, migrates every table, and returns a
// ready Server. Close it with Server.Close.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	s := &Server{log: cfg.Logger, maxBody: cfg.MaxBodyBytes, DB: cfg.DB}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	prefix := cfg.TablePrefix
	if prefix == "" {
		prefix = store.DefaultTablePrefix
	}
	s.t = tables{entities: prefix + "entities", users: prefix + "entity_users", roles: prefix + "role_creators", payables: prefix + "payables"}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.DB == nil {
		if cfg.DSN == "" {
			return nil, errors.New("api: Config needs a DB or a DSN")
		}
		if s.DB, err = store.Open(ctx, cfg.DSN); err != nil {
			return nil, fmt.Errorf("api: open database: %w", err)
		}
		s.ownDB = true
	}

	if s.store, err = store.New(ctx, s.DB, store.WithTablePrefix(prefix), store.WithLogger(s.log)); err != nil {
		return nil, err
	}
	if err = s.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("api: migrate policy store: %w", err)
	}
	if s.Engine, err = policy.New(ctx, policy.WithStore(s.store), policy.WithLogger(s.log)); err != nil {
		return nil, err
	}
	if cfg.Watch {
		var wopts []store.WatcherOption
		if cfg.PollInterval > 0 {
			wopts = append(wopts, store.WithPollInterval(cfg.PollInterval))
		}
		if s.Watcher, err = store.NewWatcher(ctx, s.store, s.Engine, wopts...); err != nil {
			return nil, fmt.Errorf("api: start the policy watcher: %w", err)
		}
		w := s.Watcher
		s.closeFunc = append(s.closeFunc, func() error { w.Close(); return nil })
	}
	if s.clients, err = auth.NewGormStore(s.DB, auth.WithTablePrefix(prefix)); err != nil {
		return nil, err
	}
	if err = s.clients.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("api: migrate token store: %w", err)
	}
	if err = s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("api: migrate server tables: %w", err)
	}

	opts := []auth.Option{auth.WithLogger(s.log), auth.WithErrorWriter(writeOAuthError)}
	if cfg.TokenTTL > 0 {
		opts = append(opts, auth.WithTokenTTL(cfg.TokenTTL))
	}
	if cfg.Now != nil {
		opts = append(opts, auth.WithNow(cfg.Now))
	}
	if s.Tokens, err = auth.New(ctx, s.clients, s.Engine, opts...); err != nil {
		return nil, err
	}
	s.closeFunc = append(s.closeFunc, s.Tokens.Close)

	if s.mw, err = middleware.New(middleware.Config{
		Authenticator: s.Tokens,
		Engine:        s.Engine,
		EntityHeader:  EntityHeader,
		ErrorWriter:   middleware.WriteMonite,
		OnDecision:    middleware.SlogHook(s.log),
		Logger:        s.log,
		Fresh:         s.fresh,
	}); err != nil {
		return nil, err
	}
	s.handler = s.logRequests(s.syncWrites(s.routes()))
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the token service and, when New opened the database, closes it.
func (s *Server) Close() error {
	var errs []error
	for _, f := range s.closeFunc {
		errs = append(errs, f())
	}
	s.closeFunc = nil
	if s.ownDB && s.DB != nil {
		if sqlDB, err := s.DB.DB(); err == nil {
			errs = append(errs, sqlDB.Close())
		}
		s.ownDB = false
	}
	return errors.Join(errs...)
}

// CreateClient creates an API client for partner and returns its
// credentials (the secret is shown only here).
func (s *Server) CreateClient(ctx context.Context, partner model.PartnerID) (auth.ClientCredentials, error) {
	return s.Tokens.CreateClient(ctx, partner)
}

// EnsureClient makes sure an API client with exactly these credentials
// exists for partner (the bootstrap client of the command, from the
// environment): it creates it, or replaces its secret when it differs. An
// id or secret that the token endpoint would refuse (an id that is not a
// valid identifier, a secret of fewer than 16 or more than
// [auth.MaxSecretLen] bytes) is an error.
//
// The token service has no call to import a client with a given secret,
// so EnsureClient writes the client record itself, with the secret's
// SHA-256 as package auth stores it (without a pepper).
func (s *Server) EnsureClient(ctx context.Context, partner model.PartnerID, creds auth.ClientCredentials) error {
	if err := partner.Validate(); err != nil {
		return err
	}
	if err := model.ValidateID("client id", creds.ID); err != nil {
		return fmt.Errorf("api: bootstrap client: %w", err) // the token endpoint would refuse it
	}
	if len(creds.Secret) < 16 || len(creds.Secret) > auth.MaxSecretLen {
		return fmt.Errorf("api: bootstrap client: the secret must be 16 to %d bytes long", auth.MaxSecretLen)
	}
	sum := sha256.Sum256([]byte(creds.Secret))
	rec, err := s.clients.Client(ctx, creds.ID)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return s.clients.CreateClient(ctx, auth.ClientRecord{ID: creds.ID, PartnerID: partner, SecretHash: sum[:], CreatedAt: time.Now()})
	case err != nil:
		return err
	case rec.PartnerID != partner:
		return fmt.Errorf("api: client %s belongs to partner %s", creds.ID, rec.PartnerID)
	case bytes.Equal(rec.SecretHash, sum[:]):
		return nil
	default:
		return s.clients.UpdateClientSecret(ctx, creds.ID, sum[:], nil, time.Time{})
	}
}

// routes declares every route with its guard.
func (s *Server) routes() http.Handler {
	// probe has the same routes, unguarded: it is asked only about the
	// requests that match none (see unrouted).
	mux, probe := http.NewServeMux(), http.NewServeMux()
	mw := s.mw
	handle := func(pattern string, guard func(http.Handler) http.Handler, h http.HandlerFunc) {
		mux.Handle(pattern, guard(h))
		probe.Handle(pattern, h)
	}
	none := func(h http.Handler) http.Handler { return h }

	handle("POST /auth/token", none, s.Tokens.TokenHandler().ServeHTTP)
	handle("POST /auth/revoke", none, s.Tokens.RevokeHandler().ServeHTTP)

	partner := mw.PartnerOnly()
	handle("POST /entities", partner, s.createEntity)
	handle("GET /entities", partner, s.listEntities)
	handle("GET /entities/{entity_id}", partner, s.getEntity)
	handle("PATCH /entities/{entity_id}", partner, s.updateEntity)
	handle("PATCH /entities/{entity_id}/settings", partner, s.updateEntitySettings)
	handle("DELETE /entities/{entity_id}", partner, s.deleteEntity)

	roleOwner := s.ownerLookup(s.t.roles, "role_id")
	handle("POST /roles", mw.Require("role", "create"), s.createRole)
	handle("GET /roles", mw.Require("role", "read"), s.listRoles)
	handle("GET /roles/{role_id}", mw.RequireOwned("role", "read", roleOwner), s.getRole)
	handle("PATCH /roles/{role_id}", mw.RequireOwned("role", "update", roleOwner), s.updateRole)
	handle("DELETE /roles/{role_id}", mw.RequireOwned("role", "delete", roleOwner), s.deleteRole)

	userOwner := s.ownerLookup(s.t.users, "entity_user_id")
	handle("POST /entity_users", mw.Require("entity_user", "create"), s.createUser)
	handle("GET /entity_users", mw.Require("entity_user", "read"), s.listUsers)
	handle("GET /entity_users/me", mw.Entity(), s.me)
	handle("GET /entity_users/my_role", mw.Entity(), s.myRole)
	handle("GET /entity_users/{entity_user_id}", mw.RequireOwned("entity_user", "read", userOwner), s.getUser)
	handle("PATCH /entity_users/{entity_user_id}", mw.RequireOwned("entity_user", "update", userOwner), s.updateUser)
	handle("DELETE /entity_users/{entity_user_id}", mw.RequireOwned("entity_user", "delete", userOwner), s.deleteUser)

	payOwner := s.ownerLookup(s.t.payables, "payable_id")
	handle("POST /payables", mw.Require("payable", "create"), s.createPayable)
	handle("GET /payables", mw.Require("payable", "read"), s.listPayables)
	handle("GET /payables/{payable_id}", mw.RequireOwned("payable", "read", payOwner), s.getPayable)
	handle("PATCH /payables/{payable_id}", mw.RequireOwned("payable", "update", payOwner), s.updatePayable)
	handle("DELETE /payables/{payable_id}", mw.RequireOwned("payable", "delete", payOwner), s.deletePayable)
	handle("POST /payables/{payable_id}/approve_payment_operation", mw.RequireOwned("payable", "approve", payOwner), s.approvePayable)

	mux.Handle("/", unrouted(probe)) // only what no other route matches
	return mux
}

// unrouted answers the requests that match no route of probe (a mux with
// the server's routes) in Monite's error format: 405 with an Allow header
// when the path has routes for other methods (as probe itself decides),
// else 404.
func unrouted(probe *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _ := probe.Handler(r)
		rec := &headerRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		writeError(w, http.StatusNotFound, "not found")
	})
}

// headerRecorder keeps the status and headers of an answer and drops its
// body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// ownerLookup returns the creator of the row named by the path value param
// in the request's entity, from one of the server's tables.
func (s *Server) ownerLookup(table, param string) middleware.OwnerLookup {
	return func(r *http.Request) (model.Subject, error) {
		entity, _ := middleware.EntityFromContext(r.Context())
		var createdBy string
		err := s.DB.WithContext(r.Context()).Table(table).Select("created_by").
			Where("id = ? AND entity_id = ?", r.PathValue(param), string(entity)).Take(&createdBy).Error
		if err != nil {
			return model.Subject{}, err // gorm.ErrRecordNotFound answers 404
		}
		return model.ParseSubject(createdBy)
	}
}

// syncWrites makes a replica catch up with every committed policy change
// before a request that may change something (any method but GET, HEAD and
// OPTIONS), when the server has a watcher: the request is then authorized
// and validated against the latest policy, and a client that changed
// something through another replica sees its change here. Reads are decided
// from the replica's index once it has applied every change it knows of
// (see fresh; it learns of changes at once on PostgreSQL, within the poll
// interval elsewhere). A replica that cannot catch up answers 503.
func (s *Server) syncWrites(next http.Handler) http.Handler {
	if s.Watcher == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if err := s.Watcher.Sync(r.Context()); err != nil {
				s.log.ErrorContext(r.Context(), "policy catch-up failed", "method", r.Method, "path", r.URL.Path, "err", err)
				w.Header().Set("Retry-After", "1")
				writeError(w, http.StatusServiceUnavailable, "the service is unavailable; retry later")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// fresh is the middleware's freshness check: with a watcher, a replica
// that knows of committed changes it has not applied catches up (for at
// most a few seconds) before it decides, and answers 503 if it cannot.
func (s *Server) fresh() error {
	if s.Watcher == nil {
		return nil
	}
	if s.Watcher.Behind() == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return s.Watcher.Sync(ctx)
}

// statusWriter remembers the status of an answer for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logRequests logs one line per request (never a header or a body).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Float64("ms", float64(time.Since(start).Microseconds())/1000))
	})
}

// write runs fn, the server's write to its own tables, in a transaction of
// the store ([store.Store.InTransaction]), which on PostgreSQL runs at READ
// COMMITTED whatever the server's default isolation: a row lock or an
// update then waits for a concurrent writer and goes on with what it
// committed, where under REPEATABLE READ PostgreSQL answers a
// serialization failure (a 500).
func (s *Server) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.store.InTransaction(ctx, func(_ context.Context, tx *gorm.DB) error { return fn(tx) })
}

// binaryCollation converts MySQL table name to utf8mb4 with the binary
// collation, if it is not already: ids compare as the engine compares them
// (under MySQL's default, case-insensitive collation, partner "ACME" read
// and deleted partner "acme"'s entities), and text outside latin1 is kept
// (a database created latin1 refused it, or turned it into "?").
func binaryCollation(db *gorm.DB, name string) error {
	if db.Dialector.Name() != "mysql" {
		return nil
	}
	var coll string
	if err := db.Raw("SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", name).Scan(&coll).Error; err != nil {
		return fmt.Errorf("reading the collation of %s: %w", name, err)
	}
	if coll == "utf8mb4_bin" {
		return nil
	}
	return db.Exec("ALTER TABLE " + name + " CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error
}

// migrate creates or completes the server's own tables and their indexes.
func (s *Server) migrate(ctx context.Context) error {
	db := s.DB.WithContext(ctx)
	for _, t := range []struct {
		name string
		row  any
	}{{s.t.entities, &entityRow{}}, {s.t.users, &userRow{}}, {s.t.roles, &roleRow{}}, {s.t.payables, &payableRow{}}} {
		if err := db.Table(t.name).AutoMigrate(t.row); err != nil {
			return err
		}
		if err := binaryCollation(db, t.name); err != nil {
			return err
		}
		if db.Dialector.Name() == "mysql" || t.name == s.t.entities {
			continue // MySQL has no CREATE INDEX IF NOT EXISTS; the example does without
		}
		q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s_by_owner ON %s (entity_id, created_by)", t.name, t.name)
		if err := db.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}
