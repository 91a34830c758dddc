package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// fakeAuth maps tokens to principals or errors.
type fakeAuth struct {
	principals map[string]auth.Principal
	errs       map[string]error
}

func (f *fakeAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	if err, ok := f.errs[token]; ok {
		return auth.Principal{}, err
	}
	if p, ok := f.principals[token]; ok {
		return p, nil
	}
	return auth.Principal{}, auth.ErrInvalidToken
}

func partnerP(id model.PartnerID) auth.Principal {
	return auth.Principal{Kind: auth.KindPartner, PartnerID: id, ClientID: "client-" + string(id), TokenID: "jti"}
}

func userP(p model.PartnerID, e model.EntityID, u model.UserID) auth.Principal {
	return auth.Principal{Kind: auth.KindEntityUser, PartnerID: p, EntityID: e, UserID: u, ClientID: "client-" + string(p), TokenID: "jti"}
}

// object is a stored payable.
type object struct {
	entity  model.EntityID
	creator model.Subject
}

// world is a small platform: partners p1 (entities e1, e2) and p2 (e3).
//
//	e1: role admin (payable: everything allowed), role own (payable: read,
//	    create, approve allowed_for_own), default role none (no permission);
//	    users u1 admin, u2 own, u3 default.
//	e2: user u5, default role admin2.
//	e3: user u4 with role admin3.
type world struct {
	eng     *policy.Engine
	auth    *fakeAuth
	objects map[string]object
}

const (
	tokP1      = "tok-p1"
	tokP2      = "tok-p2"
	tokU1      = "tok-u1"
	tokU2      = "tok-u2"
	tokU3      = "tok-u3"
	tokU4      = "tok-u4"
	tokU5      = "tok-u5"
	tokLimited = "tok-limited"
	tokExpired = "tok-expired"
	tokRevoked = "tok-revoked"
	tokBad     = "tok-bad"
	tokDown    = "tok-down"

	tokUserLimited = "tok-user-limited" // u1, from a client enabled for receivables only
	tokEntityAPI   = "tok-entity-api"   // p1, from a client enabled for entity management only
	tokUserRemoved = "tok-user-removed" // u7: removed from e1 after the token was issued
	tokUserGone    = "tok-user-gone"    // u8 of entity "gone", removed with its users
)

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	eng, err := policy.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	all := model.Permissions{}
	for _, a := range model.DefaultCatalog().Actions("payable") {
		all[model.Key{Object: "payable", Action: a}] = model.Allowed
	}
	own := model.Permissions{
		{Object: "payable", Action: "read"}:    model.AllowedForOwn,
		{Object: "payable", Action: "create"}:  model.AllowedForOwn,
		{Object: "payable", Action: "approve"}: model.AllowedForOwn,
	}
	must(eng.CreateEntity(ctx, "p1", "e1"))
	must(eng.CreateEntity(ctx, "p1", "e2"))
	must(eng.CreateEntity(ctx, "p2", "e3"))
	must(eng.CreateRole(ctx, "e1", policy.RoleSpec{ID: "admin", Name: "admin", Permissions: all}))
	must(eng.CreateRole(ctx, "e1", policy.RoleSpec{ID: "own", Name: "own", Permissions: own}))
	must(eng.CreateRole(ctx, "e1", policy.RoleSpec{ID: "none", Name: "none", Permissions: model.Permissions{}}))
	if err := eng.SetDefaultRole(ctx, "e1", "none"); err != nil {
		t.Fatal(err)
	}
	must(eng.CreateRole(ctx, "e2", policy.RoleSpec{ID: "admin2", Name: "admin", Permissions: all}))
	if err := eng.SetDefaultRole(ctx, "e2", "admin2"); err != nil {
		t.Fatal(err)
	}
	must(eng.CreateRole(ctx, "e3", policy.RoleSpec{ID: "admin3", Name: "admin", Permissions: all}))
	must(eng.AddUser(ctx, "e1", "u1", "admin"))
	must(eng.AddUser(ctx, "e1", "u2", "own"))
	must(eng.AddUser(ctx, "e1", "u3", ""))
	must(eng.AddUser(ctx, "e2", "u5", ""))
	must(eng.AddUser(ctx, "e3", "u4", "admin3"))
	limited := partnerP("p1")
	limited.APIs = []model.ObjectType{"receivable"}
	userLimited := userP("p1", "e1", "u1")
	userLimited.APIs = []model.ObjectType{"receivable"}
	entityAPI := partnerP("p1")
	entityAPI.APIs = []model.ObjectType{middleware.PartnerOnlyAPI}
	must(eng.AddUser(ctx, "e1", "u7", "admin"))
	if err := eng.RemoveUser(ctx, "e1", "u7"); err != nil {
		t.Fatal(err)
	}
	must(eng.CreateEntity(ctx, "p1", "gone"))
	must(eng.CreateRole(ctx, "gone", policy.RoleSpec{ID: "admin4", Name: "admin", Permissions: all}))
	must(eng.AddUser(ctx, "gone", "u8", "admin4"))
	if err := eng.RemoveEntity(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	return &world{
		eng: eng,
		auth: &fakeAuth{
			principals: map[string]auth.Principal{
				tokP1: partnerP("p1"), tokP2: partnerP("p2"), tokLimited: limited, tokEntityAPI: entityAPI,
				tokU1: userP("p1", "e1", "u1"), tokU2: userP("p1", "e1", "u2"), tokU3: userP("p1", "e1", "u3"),
				tokU4: userP("p2", "e3", "u4"), tokU5: userP("p1", "e2", "u5"),
				tokUserLimited: userLimited, tokUserRemoved: userP("p1", "e1", "u7"), tokUserGone: userP("p1", "gone", "u8"),
			},
			errs: map[string]error{
				tokExpired: fmt.Errorf("auth: %w", auth.ErrExpiredToken),
				tokRevoked: auth.ErrRevokedToken,
				tokBad:     fmt.Errorf("%w: signature", auth.ErrInvalidToken),
				tokDown:    fmt.Errorf("%w: revocation list is stale (dsn postgres://admin:hunter2@db)", auth.ErrUnavailable),
			},
		},
		objects: map[string]object{
			"o1": {"e1", model.User("u1")}, // u1's
			"o2": {"e1", model.User("u2")}, // u2's
			"o3": {"e1", model.Partner("p1")},
			"o4": {"e2", model.User("u5")},
			"o5": {"e3", model.User("u4")},
		},
	}
}

// errDB is what a failing owner lookup returns; it must never reach a client.
var errDB = errors.New("pq: connection to db-internal.example:5432 refused (password=hunter2)")

// lookup finds the creator of {id} inside the request's entity.
func (wd *world) lookup(r *http.Request) (model.Subject, error) {
	id := r.PathValue("id")
	if id == "boom" {
		return model.Subject{}, errDB
	}
	if id == "orphan" {
		return model.Subject{}, nil
	}
	e, _ := middleware.EntityFromContext(r.Context())
	o, ok := wd.objects[id]
	if !ok || o.entity != e {
		return model.Subject{}, middleware.ErrNotFound
	}
	return o.creator, nil
}

// echo answers 200 with what the middleware put in the context.
func echo(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	e, _ := middleware.EntityFromContext(r.Context())
	s, ok := middleware.ScopeFromContext(r.Context())
	scope := "-"
	if ok {
		scope = s.String()
	}
	fmt.Fprintf(w, "ok subject=%s entity=%s scope=%s", p.Subject(), e, scope)
}

// mux builds the test API on an http.ServeMux, one guard per route.
func (wd *world) mux(t testing.TB, cfg middleware.Config) (*http.ServeMux, *middleware.Middleware) {
	t.Helper()
	if cfg.Authenticator == nil {
		cfg.Authenticator = wd.auth
	}
	cfg.Engine = wd.eng
	mw, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h := http.HandlerFunc(echo)
	mux.Handle("GET /payables", mw.Require("payable", "read")(h))
	mux.Handle("POST /payables", mw.Require("payable", "")(h))
	mux.Handle("GET /payables/{id}", mw.RequireOwned("payable", "read", wd.lookup)(h))
	mux.Handle("POST /payables/{id}/approve", mw.RequireOwned("payable", "approve", wd.lookup)(h))
	mux.Handle("POST /entities", mw.PartnerOnly()(h))
	mux.Handle("GET /me", mw.Authenticate()(h))
	mux.Handle("GET /entity", mw.Entity()(h))
	return mux, mw
}

// do sends one request.
func do(h http.Handler, method, path, authz string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

type responseRecorder = httptest.ResponseRecorder

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
