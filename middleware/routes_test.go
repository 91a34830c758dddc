package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

func (wd *world) table() middleware.Routes {
	return middleware.Routes{
		{Pattern: "GET /payables", Object: "payable"},
		{Pattern: "POST /payables", Object: "payable"},
		{Pattern: "GET /payables/{id}", Object: "payable", Owner: wd.lookup},
		{Pattern: "POST /payables/{id}/approve", Object: "payable", Action: "approve", Owner: wd.lookup},
		{Pattern: "/receivables", Object: "receivable"}, // any method: its default action
		{Pattern: "POST /entities", PartnerOnly: true},
	}
}

// routeCases are shared by the ServeMux and chi tests.
var routeCases = []struct {
	method, path, token, entity string
	status                      int
}{
	{"GET", "/payables", tokP1, "e1", 200},
	{"HEAD", "/payables", tokP1, "e1", 200},
	{"GET", "/payables", tokP1, "e3", 403},
	{"GET", "/payables", tokU3, "", 403},
	{"GET", "/payables", "", "", 401},
	{"POST", "/payables", tokU2, "", 200},
	{"GET", "/payables/o2", tokU2, "", 200},
	{"GET", "/payables/o1", tokU2, "", 403},
	{"GET", "/payables/boom", tokU2, "", 500},
	{"POST", "/payables/o2/approve", tokU2, "", 200},
	{"POST", "/payables/o1/approve", tokU2, "", 403},
	{"GET", "/receivables", tokU1, "", 403}, // admin has no receivable permission
	{"DELETE", "/receivables", tokP1, "e2", 200},
	{"PUT", "/receivables", tokP1, "e2", 200},
	{"PATCH", "/receivables", tokLimited, "e1", 200},
	{"PATCH", "/receivables", tokU2, "", 403},
	{"GET", "/receivables", tokLimited, "e1", 200},
	{"GET", "/payables", tokLimited, "e1", 403},
	{"POST", "/entities", tokP2, "", 200},
	{"POST", "/entities", tokU4, "", 403},
	{"GET", "/undeclared", tokP1, "e1", 500}, // registered with the router, not in the table
	{"GET", "/undeclared", "", "", 401},
}

// runRouteCases sends routeCases to h. With noPathValues (a table middleware
// before the router has matched, as in chi's Use) owner lookups see no id:
// own-scope requests for one object then fail closed with 404.
func runRouteCases(t *testing.T, h http.Handler, noPathValues bool) {
	t.Helper()
	runRouteCasesAt(t, h, noPathValues, "")
}

// runRouteCasesAt is runRouteCases with prefix before every path.
func runRouteCasesAt(t *testing.T, h http.Handler, noPathValues bool, prefix string) {
	t.Helper()
	for _, tc := range routeCases {
		tc.path = prefix + tc.path
		if noPathValues && tc.token == tokU2 && strings.HasPrefix(tc.path, "/payables/") {
			tc.status = 404
		}
		hd := map[string]string{}
		if tc.entity != "" {
			hd["X-Entity-Id"] = tc.entity
		}
		authz := ""
		if tc.token != "" {
			authz = "Bearer " + tc.token
		}
		w := do(h, tc.method, tc.path, authz, hd)
		if w.Code != tc.status {
			t.Errorf("%s %s as %s in %q: status %d, want %d (%s)", tc.method, tc.path, tc.token, tc.entity, w.Code, tc.status, w.Body)
		}
	}
}

func TestRoutesServeMux(t *testing.T) {
	wd := newWorld(t)
	logs := &syncBuffer{}
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng, Logger: debugLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := mw.Routes(wd.table())
	if err != nil {
		t.Fatal(err)
	}
	register := func(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
		for _, p := range []string{"GET /payables", "POST /payables", "GET /payables/{id}", "POST /payables/{id}/approve", "/receivables", "POST /entities", "GET /undeclared"} {
			mux.Handle(p, wrap(http.HandlerFunc(echo)))
		}
	}
	t.Run("around the mux", func(t *testing.T) {
		mux := http.NewServeMux()
		register(mux, func(h http.Handler) http.Handler { return h })
		h := guard(mux)
		runRouteCases(t, h, false)
		// Requests the mux answers itself (404, 405) pass once authenticated.
		if w := do(h, "GET", "/nowhere", "Bearer "+tokU1, nil); w.Code != 404 {
			t.Errorf("unknown path: %d", w.Code)
		}
		if w := do(h, "GET", "/nowhere", "", nil); w.Code != 401 {
			t.Errorf("unknown path without token: %d", w.Code)
		}
		if w := do(h, "DELETE", "/entities", "Bearer "+tokP1, nil); w.Code != 405 {
			t.Errorf("wrong method: %d", w.Code)
		}
	})
	t.Run("per handler", func(t *testing.T) {
		mux := http.NewServeMux()
		register(mux, guard)
		runRouteCases(t, mux, false)
	})
	// Mounted in an outer mux, the request arrives with the outer mux's
	// pattern ("/", "/api/"): the guard must go by the inner mux's.
	t.Run("around a mux mounted in another", func(t *testing.T) {
		inner := http.NewServeMux()
		register(inner, func(h http.Handler) http.Handler { return h })
		root := http.NewServeMux()
		root.Handle("/", guard(inner))
		runRouteCases(t, root, false)
	})
	t.Run("around a mux mounted under a prefix", func(t *testing.T) {
		inner := http.NewServeMux()
		register(inner, func(h http.Handler) http.Handler { return h })
		root := http.NewServeMux()
		root.Handle("/api/", http.StripPrefix("/api", guard(inner)))
		runRouteCasesAt(t, root, false, "/api")
	})
	if !strings.Contains(logs.String(), "no route declaration") {
		t.Error("undeclared route not logged")
	}
}

// TestRoutesServeMuxRefusedPattern: around an http.ServeMux, an owned
// route whose pattern ServeMux refuses (a chi-style one that repeats a
// wildcard name) is left out and logged; the other owned routes still
// work. One such route made every owned route answer 500.
func TestRoutesServeMuxRefusedPattern(t *testing.T) {
	wd := newWorld(t)
	logs := &syncBuffer{}
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng, Logger: debugLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	table := append(wd.table(), middleware.Route{Pattern: "/receivables/{id}/lines/{id}", Object: "receivable", Owner: wd.lookup})
	guard, err := mw.Routes(table)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, p := range []string{"GET /payables", "GET /payables/{id}", "POST /payables/{id}/approve"} {
		mux.Handle(p, http.HandlerFunc(echo))
	}
	h := guard(mux)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/payables/o2", tokU2, 200},
		{"GET", "/payables/o1", tokU2, 403},
		{"POST", "/payables/o2/approve", tokU2, 200},
		{"GET", "/payables", tokU1, 200},
	} {
		if w := do(h, tc.method, tc.path, "Bearer "+tc.token, nil); w.Code != tc.want {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, w.Code, tc.want, w.Body)
		}
	}
	if !strings.Contains(logs.String(), "/receivables/{id}/lines/{id}") {
		t.Error("the refused pattern was not logged")
	}

	// Two owned routes ServeMux takes for the same one: the second is left
	// out of the owned mux, and a request the application's mux gives to
	// it is refused, not authorized with the first's guard (read, where
	// the route asks delete: u2 holds read on its own payables only).
	conflict := middleware.Routes{
		{Pattern: "GET /payables/{key}", Object: "payable", Owner: func(r *http.Request) (model.Subject, error) {
			r.SetPathValue("id", r.PathValue("key"))
			return wd.lookup(r)
		}},
		{Pattern: "GET /payables/{id}", Object: "payable", Action: "delete", Owner: wd.lookup},
	}
	guard, err = mw.Routes(conflict)
	if err != nil {
		t.Fatal(err)
	}
	app := http.NewServeMux()
	app.Handle("GET /payables/{id}", http.HandlerFunc(echo))
	if w := do(guard(app), "GET", "/payables/o2", "Bearer "+tokU2, nil); w.Code != 500 {
		t.Errorf("a route the owned mux left out: %d, want 500: %s", w.Code, w.Body)
	}
}

func TestRoutesTableErrors(t *testing.T) {
	wd := newWorld(t)
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []middleware.Routes{
		{{Pattern: "", Object: "payable"}},
		{{Pattern: "get /x", Object: "payable"}},
		{{Pattern: "GET /x", Object: ""}},
		{{Pattern: "GET /x", Object: "spaceship"}},
		{{Pattern: "GET /x", Object: "payable", Action: "fly"}},
		{{Pattern: "OPTIONS /x", Object: "payable"}},
		{{Pattern: "GET /x", Object: "payable"}, {Pattern: "GET  /x", Object: "payable"}},
		{{Pattern: "POST /entities", PartnerOnly: true, Object: "entity"}},
		{{Pattern: "GET /payables/{id", Object: "payable"}},
		{{Pattern: "GET /payables/{}", Object: "payable"}},
		{{Pattern: "GET /receivables/{id}/{id}", Object: "receivable"}},
		{{Pattern: "GET /receivables/{id}/{id...}", Object: "receivable"}},
	} {
		if _, err := mw.Routes(table); !errors.Is(err, middleware.ErrConfig) {
			t.Errorf("Routes(%+v) = %v, want ErrConfig", table, err)
		}
	}
	// Wildcards as ServeMux and chi write them.
	for _, p := range []string{"GET /payables/{id}", "GET /files/{path...}", "GET /{$}", "/payables/{id:[0-9]{3}}", "GET /e/{a}/u/{b}",
		"/entities/{id}/users/{id}"} { // chi: a route mounted under /entities/{id}
		if _, err := mw.Routes(middleware.Routes{{Pattern: p, Object: "payable"}}); err != nil {
			t.Errorf("Routes(%q): %v", p, err)
		}
	}
}

func TestChi(t *testing.T) {
	wd := newWorld(t)
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("guards with With", func(t *testing.T) {
		r := chi.NewRouter()
		h := http.HandlerFunc(echo)
		owner := func(r *http.Request) (model.Subject, error) {
			r.SetPathValue("id", chi.URLParam(r, "id"))
			return wd.lookup(r)
		}
		r.With(mw.Require("payable", "read")).Get("/payables", h)
		r.With(mw.RequireOwned("payable", "read", owner)).Get("/payables/{id}", h)
		r.With(mw.PartnerOnly()).Post("/entities", h)
		for _, tc := range []struct {
			method, path, token, entity string
			status                      int
		}{
			{"GET", "/payables", tokP1, "e2", 200},
			{"GET", "/payables", tokP2, "e2", 403},
			{"GET", "/payables", tokP1, "", 400},
			{"GET", "/payables/o2", tokU2, "", 200},
			{"GET", "/payables/o1", tokU2, "", 403},
			{"GET", "/payables/o5", tokU2, "", 404},
			{"POST", "/entities", tokU1, "", 403},
			{"POST", "/entities", tokP1, "", 200},
		} {
			hd := map[string]string{}
			if tc.entity != "" {
				hd["X-Entity-Id"] = tc.entity
			}
			if w := do(r, tc.method, tc.path, "Bearer "+tc.token, hd); w.Code != tc.status {
				t.Errorf("%s %s as %s: %d, want %d", tc.method, tc.path, tc.token, w.Code, tc.status)
			}
		}
	})
	t.Run("table", func(t *testing.T) {
		// chi sets r.Pattern ("/payables/{id}", without a method) once it
		// has routed, so the table middleware goes in With, or in Use with
		// Config.Pattern asking the router.
		table := middleware.Routes{}
		for _, rt := range wd.table() {
			rt.Owner = nil
			if strings.Contains(rt.Pattern, "{id}") {
				rt.Owner = func(r *http.Request) (model.Subject, error) {
					r.SetPathValue("id", chi.URLParam(r, "id"))
					return wd.lookup(r)
				}
			}
			table = append(table, rt)
		}
		register := func(r chi.Router) {
			h := http.HandlerFunc(echo)
			r.Get("/payables", h)
			r.Head("/payables", h)
			r.Post("/payables", h)
			r.Get("/payables/{id}", h)
			r.Post("/payables/{id}/approve", h)
			r.Handle("/receivables", h)
			r.Post("/entities", h)
			r.Get("/undeclared", h)
		}
		t.Run("With", func(t *testing.T) {
			guard, err := mw.Routes(table)
			if err != nil {
				t.Fatal(err)
			}
			r := chi.NewRouter()
			register(r.With(guard))
			runRouteCases(t, r, false)
		})
		t.Run("Use", func(t *testing.T) {
			var router *chi.Mux
			mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng,
				Pattern: func(r *http.Request) string { return router.Find(chi.NewRouteContext(), r.Method, r.URL.Path) }})
			if err != nil {
				t.Fatal(err)
			}
			guard, err := mw.Routes(table)
			if err != nil {
				t.Fatal(err)
			}
			router = chi.NewRouter()
			router.Use(guard)
			register(router)
			runRouteCases(t, router, true)
		})
	})
}

// TestRoutesActions checks which declaration and action each request gets:
// the method defaults, and a method-specific declaration before a
// method-less one of the same path, on routers that report patterns with a
// method (ServeMux) and without (chi).
func TestRoutesActions(t *testing.T) {
	wd := newWorld(t)
	var got model.Action
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng,
		OnDecision: func(_ context.Context, ev middleware.DecisionEvent) { got = ev.Action }})
	if err != nil {
		t.Fatal(err)
	}
	table := middleware.Routes{
		{Pattern: "/payables", Object: "payable", Action: "read"},
		{Pattern: "POST /payables", Object: "payable", Action: "approve"},
		{Pattern: "/receivables", Object: "receivable"},
	}
	guard, err := mw.Routes(table)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/payables", http.HandlerFunc(echo))
	mux.Handle("POST /payables", http.HandlerFunc(echo))
	mux.Handle("/receivables", http.HandlerFunc(echo))
	r := chi.NewRouter()
	r.With(guard).Handle("/payables", http.HandlerFunc(echo))
	r.With(guard).Handle("/receivables", http.HandlerFunc(echo))
	for _, router := range []struct {
		name string
		h    http.Handler
	}{{"ServeMux", guard(mux)}, {"chi", r}} {
		t.Run(router.name, func(t *testing.T) {
			for _, tc := range []struct {
				method, path string
				want         model.Action
			}{
				{"GET", "/payables", "read"},
				{"DELETE", "/payables", "read"},
				{"POST", "/payables", "approve"},
				{"GET", "/receivables", "read"},
				{"HEAD", "/receivables", "read"},
				{"POST", "/receivables", "create"},
				{"PUT", "/receivables", "update"},
				{"PATCH", "/receivables", "update"},
				{"DELETE", "/receivables", "delete"},
			} {
				got = ""
				w := do(router.h, tc.method, tc.path, "Bearer "+tokP1, map[string]string{"X-Entity-Id": "e1"})
				if w.Code != 200 || got != tc.want {
					t.Errorf("%s %s: %d, action %q; want 200, %q", tc.method, tc.path, w.Code, got, tc.want)
				}
			}
		})
	}
}

// TestRoutesOuterPatternNoBypass: a table that declares "/" as well as the
// inner routes, around a mux mounted at "/" of another: the outer pattern
// "/" must not pick the "/" guard (read) for a request the inner mux serves
// as an approval.
func TestRoutesOuterPatternNoBypass(t *testing.T) {
	wd := newWorld(t)
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := mw.Routes(middleware.Routes{
		{Pattern: "POST /payables/{id}/approve", Object: "payable", Action: "approve", Owner: wd.lookup},
		{Pattern: "/", Object: "payable", Action: "read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	inner := http.NewServeMux()
	inner.HandleFunc("POST /payables/{id}/approve", echo)
	inner.HandleFunc("/", echo)
	root := http.NewServeMux()
	root.Handle("/", guard(inner))
	// u2 may approve only its own payables; o1 is u1's.
	if w := do(root, "POST", "/payables/o1/approve", "Bearer "+tokU2, nil); w.Code != http.StatusForbidden {
		t.Fatalf("approving another's payable through the outer mux: %d %s", w.Code, w.Body)
	}
	if w := do(root, "POST", "/payables/o2/approve", "Bearer "+tokU2, nil); w.Code != http.StatusOK {
		t.Fatalf("approving its own payable: %d %s", w.Code, w.Body)
	}
}

// TestSharedPrincipalContext: one context from NewContext serving many
// requests (a server's base context): each request resolves its own entity
// and scope, concurrently too, and a malformed principal there is refused.
func TestSharedPrincipalContext(t *testing.T) {
	wd := newWorld(t)
	mux, _ := wd.mux(t, middleware.Config{})
	base := middleware.NewContext(context.Background(), partnerP("p1"))
	send := func(entity string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/payables", nil).WithContext(base)
		r.Header.Set("X-Entity-Id", entity)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		entity string
		status int
		body   string
	}{
		{"e1", 200, "entity=e1"},
		{"e2", 200, "entity=e2"},
		{"e3", 403, ""}, // p2's
		{"e1", 200, "entity=e1"},
	}
	for _, tc := range tests {
		if w := send(tc.entity); w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("entity %s: %d %s; want %d %q", tc.entity, w.Code, w.Body, tc.status, tc.body)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := []string{"e1", "e2"}[i%2]
			if w := send(e); w.Code != 200 || !strings.Contains(w.Body.String(), "entity="+e) {
				t.Errorf("concurrent request in %s: %d %s", e, w.Code, w.Body)
			}
		}()
	}
	wg.Wait()

	bad := middleware.NewContext(context.Background(), auth.Principal{Kind: auth.KindEntityUser, UserID: "u1"}) // no entity
	r := httptest.NewRequest("GET", "/payables", nil).WithContext(bad)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("malformed principal in the context: %d %s", w.Code, w.Body)
	}
}

// TestGuardsPassCatalogStrings: whether declared with Require or in a route
// table, with an explicit action or the method's, a guard asks the engine
// with the catalog's own strings (the same bytes, which the engine finds by
// address), even when the declaration's strings are copies; with the
// default catalog (Go literals) and with one parsed from JSON.
func TestGuardsPassCatalogStrings(t *testing.T) {
	parsed, err := model.ParseCatalogJSON([]byte(`{"payable": ["read", "create", "update", "delete", "approve"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, cat := range map[string]*model.Catalog{"default": model.DefaultCatalog(), "parsed": parsed} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			eng, err := policy.New(ctx, policy.WithCatalog(cat))
			if err != nil {
				t.Fatal(err)
			}
			all := model.Permissions{}
			for _, a := range cat.Actions("payable") {
				all[model.Key{Object: "payable", Action: a}] = model.Allowed
			}
			if _, err := eng.CreateEntity(ctx, "p1", "e1"); err != nil {
				t.Fatal(err)
			}
			if _, err := eng.CreateRole(ctx, "e1", policy.RoleSpec{ID: "admin", Name: "admin", Permissions: all}); err != nil {
				t.Fatal(err)
			}
			if _, err := eng.AddUser(ctx, "e1", "u1", "admin"); err != nil {
				t.Fatal(err)
			}
			var got []middleware.DecisionEvent
			mw, err := middleware.New(middleware.Config{
				Authenticator: &fakeAuth{principals: map[string]auth.Principal{tokU1: userP("p1", "e1", "u1")}}, Engine: eng,
				OnDecision: func(_ context.Context, ev middleware.DecisionEvent) { got = append(got, ev) }})
			if err != nil {
				t.Fatal(err)
			}
			obj := model.ObjectType(strings.Clone("payable"))
			owner := func(*http.Request) (model.Subject, error) { return model.User("u1"), nil }
			routes, err := mw.Routes(middleware.Routes{
				{Pattern: "GET /t/payables", Object: obj},
				{Pattern: "POST /t/payables/{id}/approve", Object: obj, Action: model.Action(strings.Clone("approve")), Owner: owner},
			})
			if err != nil {
				t.Fatal(err)
			}
			h := http.HandlerFunc(echo)
			mux := http.NewServeMux()
			mux.Handle("GET /r/payables", mw.Require(obj, model.Action(strings.Clone("read")))(h))
			mux.Handle("/m/payables", mw.Require(obj, "")(h)) // the method's action
			mux.Handle("GET /t/payables", routes(h))
			mux.Handle("POST /t/payables/{id}/approve", routes(h))
			for _, c := range []struct{ method, path string }{
				{"GET", "/r/payables"}, {"GET", "/m/payables"}, {"POST", "/m/payables"}, {"DELETE", "/m/payables"},
				{"GET", "/t/payables"}, {"POST", "/t/payables/o1/approve"},
			} {
				got = got[:0]
				if rec := do(mux, c.method, c.path, "Bearer "+tokU1, map[string]string{middleware.DefaultEntityHeader: "e1"}); rec.Code != http.StatusOK {
					t.Fatalf("%s %s: %d %s", c.method, c.path, rec.Code, rec.Body)
				}
				if len(got) != 1 {
					t.Fatalf("%s %s: %d decision events", c.method, c.path, len(got))
				}
				ev := got[0]
				s, ok := cat.SlotOf(ev.Object, ev.Action)
				if !ok {
					t.Fatalf("%s %s: (%s, %s) not in the catalog", c.method, c.path, ev.Object, ev.Action)
				}
				k := cat.Key(s)
				if unsafe.StringData(string(ev.Object)) != unsafe.StringData(string(k.Object)) || unsafe.StringData(string(ev.Action)) != unsafe.StringData(string(k.Action)) {
					t.Errorf("%s %s: the guard asked with its own copies of %s, not the catalog's strings", c.method, c.path, k)
				}
			}
		})
	}
}

// FuzzRoutesPattern: Routes never panics on a pattern, refuses with
// ErrConfig, and accepts every pattern http.ServeMux accepts whose method
// (if any) is of upper-case letters and whose path has no blanks.
func FuzzRoutesPattern(f *testing.F) {
	for _, p := range []string{"GET /payables/{id}", "/x/{a}/{b...}", "GET /{$}", "/p/{id:[0-9]{3}}", "GET /p/{id", "/r/{id}/{id}", "POST example.com/x/{y}", "{}", "}{"} {
		f.Add(p)
	}
	wd := newWorld(f)
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		_, err := mw.Routes(middleware.Routes{{Pattern: p, Object: "payable", Action: "read"}})
		if err != nil && !errors.Is(err, middleware.ErrConfig) {
			t.Fatalf("Routes(%q) = %v, not ErrConfig", p, err)
		}
		muxOK := func() (ok bool) {
			defer func() {
				if recover() != nil {
					ok = false
				}
			}()
			http.NewServeMux().Handle(p, http.NotFoundHandler())
			return true
		}()
		method, path, spaced := strings.Cut(p, " ")
		if !spaced {
			path = p
		}
		upper := !spaced || method != "" && strings.Trim(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
		if muxOK && err != nil && upper && !strings.ContainsAny(path, " \t") {
			t.Fatalf("Routes(%q) = %v, but http.ServeMux accepts it", p, err)
		}
	})
}
