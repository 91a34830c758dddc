package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// brokenEngine is a policy engine whose entity lookups or decisions fail.
type brokenEngine struct {
	*policy.Engine
	getErr    error // returned by OwnsEntity
	decideErr error // set as Decision.Err
}

func (b *brokenEngine) OwnsEntity(ctx context.Context, partner model.PartnerID, id model.EntityID) (bool, error) {
	if b.getErr != nil {
		return false, b.getErr
	}
	return b.Engine.OwnsEntity(ctx, partner, id)
}

func (b *brokenEngine) Decide(r *policy.Request) policy.Decision {
	if b.decideErr != nil {
		return policy.Decision{Allowed: true, Scope: model.ScopeAll, Err: b.decideErr}
	}
	return b.Engine.Decide(r)
}

// TestDecisionPathFailures: any error on the decision path denies (500), is
// logged, and reaches the client only as a fixed sentence.
func TestDecisionPathFailures(t *testing.T) {
	wd := newWorld(t)
	secret := "dial tcp 10.0.0.7:5432: password authentication failed for user gatehouse_admin"
	tests := []struct {
		name          string
		eng           *brokenEngine
		token, entity string
		status        int
		logged        string
	}{
		{"entity lookup fails for a partner", &brokenEngine{Engine: wd.eng, getErr: fmt.Errorf("%w: %s", policy.ErrStorage, secret)}, tokP1, "e1", 500, "looking up the entity failed"},
		{"entity lookup not needed for a user", &brokenEngine{Engine: wd.eng, getErr: errors.New(secret)}, tokU1, "", 200, ""},
		{"decision error, partner", &brokenEngine{Engine: wd.eng, decideErr: fmt.Errorf("%w: %s", policy.ErrInvalid, secret)}, tokP1, "e1", 500, "the engine refused the request"},
		{"decision error, user", &brokenEngine{Engine: wd.eng, decideErr: fmt.Errorf("%w: %s", policy.ErrInvalid, secret)}, tokU1, "", 500, "the engine refused the request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			var events []middleware.DecisionEvent
			mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: tc.eng, Logger: debugLogger(logs),
				OnDecision: func(_ context.Context, ev middleware.DecisionEvent) { events = append(events, ev) }})
			if err != nil {
				t.Fatal(err)
			}
			called := false
			h := mw.Require("payable", "read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			hd := map[string]string{}
			if tc.entity != "" {
				hd["X-Entity-Id"] = tc.entity
			}
			w := do(h, "GET", "/payables", "Bearer "+tc.token, hd)
			if w.Code != tc.status || called != (tc.status == 200) {
				t.Fatalf("status %d, handler called %v; want %d", w.Code, called, tc.status)
			}
			if tc.status == 200 {
				return
			}
			if body := w.Body.String(); strings.Contains(body, "10.0.0.7") || strings.Contains(body, "password") || strings.Contains(body, "storage") {
				t.Errorf("answer leaks the internal error: %s", body)
			}
			if out := logs.String(); !strings.Contains(out, tc.logged) || !strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, "10.0.0.7") {
				t.Errorf("the failure is not logged at Error with its cause:\n%s", out)
			}
			if len(events) != 1 || events[0].Allowed || events[0].Status != 500 {
				t.Errorf("events %+v", events)
			}
		})
	}
}

// quotingAuth fails as an authenticator might whose backend quotes what it
// was given.
type quotingAuth struct{}

func (quotingAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	return auth.Principal{}, fmt.Errorf("%w: introspection of %s timed out", auth.ErrUnavailable, token)
}

func TestTokenNeverLogged(t *testing.T) {
	wd := newWorld(t)
	logs := &syncBuffer{}
	mw, err := middleware.New(middleware.Config{Authenticator: quotingAuth{}, Engine: wd.eng, Logger: debugLogger(logs), OnDecision: middleware.SlogHook(debugLogger(logs))})
	if err != nil {
		t.Fatal(err)
	}
	const tok = "eyJzZWNyZXQiOiJ0b3Atc2VjcmV0In0.c2lnbmF0dXJl"
	w := do(mw.Require("payable", "read")(http.HandlerFunc(echo)), "GET", "/payables", "Bearer "+tok, map[string]string{"X-Entity-Id": "e1"})
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	out := logs.String()
	if strings.Contains(out, tok) || strings.Contains(w.Body.String(), tok) {
		t.Errorf("the token was logged or answered:\n%s\n%s", out, w.Body)
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("the failure was not logged:\n%s", out)
	}
}

// TestErrorWriter: every refusal goes through the configured writer, with
// the challenge and Retry-After already set.
func TestErrorWriter(t *testing.T) {
	wd := newWorld(t)
	var got []middleware.Problem
	writer := func(w http.ResponseWriter, _ *http.Request, p middleware.Problem) {
		if p.Status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s: no challenge set before the writer", p.Code)
		}
		got = append(got, p)
		w.WriteHeader(418)
	}
	mux, _ := wd.mux(t, middleware.Config{ErrorWriter: writer})
	for _, tc := range []struct {
		method, path, token, entity string
		code                        middleware.Code
		status                      int
	}{
		{"GET", "/payables", "", "", middleware.CodeMissingToken, 401},
		{"GET", "/payables", tokExpired, "", middleware.CodeExpiredToken, 401},
		{"GET", "/payables", tokP1, "", middleware.CodeMissingEntity, 400},
		{"GET", "/payables", tokP1, "e 1/..", middleware.CodeInvalidEntity, 400},
		{"GET", "/payables", tokP2, "e1", middleware.CodeForbidden, 403},
		{"GET", "/payables/nope", tokU2, "", middleware.CodeNotFound, 404},
		{"GET", "/payables/boom", tokU2, "", middleware.CodeInternal, 500},
		{"GET", "/payables", tokDown, "", middleware.CodeUnavailable, 503},
	} {
		got = nil
		authz := ""
		if tc.token != "" {
			authz = "Bearer " + tc.token
		}
		hd := map[string]string{}
		if tc.entity != "" {
			hd["X-Entity-Id"] = tc.entity
		}
		w := do(mux, tc.method, tc.path, authz, hd)
		if w.Code != 418 || len(got) != 1 || got[0].Code != tc.code || got[0].Status != tc.status || got[0].Detail == "" {
			t.Errorf("%s %s as %q: answered %d, writer got %+v; want %s %d", tc.method, tc.path, tc.token, w.Code, got, tc.code, tc.status)
		}
	}
}

// TestFilterScope checks the condition for every kind of decision and for
// configured column names.
func TestFilterScope(t *testing.T) {
	wd := newWorld(t)
	db, err := gorm.Open(sqlite.Open(":memory:"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng})
	if err != nil {
		t.Fatal(err)
	}
	sql := func(ctx context.Context, cols middleware.Columns) string {
		return db.ToSQL(func(tx *gorm.DB) *gorm.DB {
			return tx.Table("payables").Scopes(middleware.FilterScope(ctx, cols)).Find(&[]map[string]any{})
		})
	}
	// decided runs a request through Require and returns its context.
	decided := func(token, entity string) context.Context {
		var ctx context.Context
		h := mw.Require("payable", "read")(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
		hd := map[string]string{}
		if entity != "" {
			hd["X-Entity-Id"] = entity
		}
		if w := do(h, "GET", "/payables", "Bearer "+token, hd); w.Code != 200 {
			t.Fatalf("%s: %d", token, w.Code)
		}
		return ctx
	}
	custom := middleware.Columns{Entity: "payables.tenant", Owner: "author"}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		cols middleware.Columns
		want string
	}{
		{"no decision", context.Background(), middleware.Columns{}, "SELECT * FROM `payables` WHERE 1 = 0"},
		{"authenticated, no decision", middleware.NewContext(context.Background(), userP("p1", "e1", "u1")), middleware.Columns{}, "SELECT * FROM `payables` WHERE 1 = 0"},
		{"partner: all", decided(tokP1, "e2"), middleware.Columns{}, "SELECT * FROM `payables` WHERE `entity_id` = \"e2\""},
		{"user: all", decided(tokU1, ""), middleware.Columns{}, "SELECT * FROM `payables` WHERE `entity_id` = \"e1\""},
		{"user: own", decided(tokU2, ""), middleware.Columns{}, "SELECT * FROM `payables` WHERE `entity_id` = \"e1\" AND `created_by` = \"user:u2\""},
		{"user: own, custom columns", decided(tokU2, ""), custom, "SELECT * FROM `payables` WHERE `payables`.`tenant` = \"e1\" AND `author` = \"user:u2\""},
		{"partner: all, custom columns", decided(tokP1, "e1"), custom, "SELECT * FROM `payables` WHERE `payables`.`tenant` = \"e1\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sql(tc.ctx, tc.cols); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// wrappedEngine is a Decider that is not a *policy.Engine: the middleware
// reaches it only through the interface.
type wrappedEngine struct{ *policy.Engine }

// TestEngineCalledDirectly: with a *policy.Engine the decision's request
// stays on the stack; through another Decider its address escapes to the
// heap, an allocation more per decision (two for a guard that looks up the
// owner and decides again). Both decide alike.
func TestEngineCalledDirectly(t *testing.T) {
	wd := newWorld(t)
	owner := func(*http.Request) (model.Subject, error) { return model.User("u2"), nil }
	routes := []struct {
		name      string
		guard     func(*middleware.Middleware) func(http.Handler) http.Handler
		method    string
		tok, deny string // a token the guard allows, one it refuses
		decisions float64
	}{
		{"read", func(m *middleware.Middleware) func(http.Handler) http.Handler { return m.Require("payable", "read") },
			"GET", tokU1, tokU3, 1},
		{"approve own", func(m *middleware.Middleware) func(http.Handler) http.Handler {
			return m.RequireOwned("payable", "approve", owner)
		}, "POST", tokU2, tokU3, 2},
	}
	for _, rt := range routes {
		counts := map[string]float64{}
		for name, eng := range map[string]middleware.Decider{"direct": wd.eng, "interface": wrappedEngine{wd.eng}} {
			m, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: eng})
			if err != nil {
				t.Fatal(err)
			}
			h := rt.guard(m)(bare)
			for tok, want := range map[string]int{rt.tok: http.StatusOK, rt.deny: http.StatusForbidden} {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(rt.method, "/payables", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				if h.ServeHTTP(w, r); w.Code != want {
					t.Fatalf("%s, %s, %s: %d, want %d", rt.name, name, tok, w.Code, want)
				}
			}
			r := httptest.NewRequest(rt.method, "/payables", nil)
			r.Header.Set("Authorization", "Bearer "+rt.tok)
			w := &nopWriter{h: http.Header{}}
			// AllocsPerRun divides the count by the runs and truncates:
			// fewer than 500 allocations of other goroutines during the
			// runs do not change the result.
			counts[name] = testing.AllocsPerRun(500, func() { h.ServeHTTP(w, r) })
		}
		if counts["interface"]-counts["direct"] != rt.decisions {
			t.Errorf("%s: allocations per request: %v directly, %v through the interface; want %v fewer directly (one per decision)",
				rt.name, counts["direct"], counts["interface"], rt.decisions)
		}
	}
}
