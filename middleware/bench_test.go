package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
)

// nopWriter is a ResponseWriter that allocates nothing per request.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// bare is the handler the benchmarks protect: it does nothing (it reads the
// scope so that the compiler cannot drop the call).
var bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, ok := middleware.ScopeFromContext(r.Context()); !ok && r.Pattern == "x" {
		w.WriteHeader(500)
	}
})

// benchCase is one request through Gatehouse (h) and the same request
// through the same handler without Gatehouse (base).
type benchCase struct {
	name                        string
	h, base                     http.Handler
	token, entity, path, method string
}

func benchCases(b *testing.B) []benchCase {
	wd := newWorld(b)
	ctx := context.Background()
	svc, _ := realAuth(b, wd)
	creds, err := svc.CreateClient(ctx, "p1")
	if err != nil {
		b.Fatal(err)
	}
	pt, err := svc.IssuePartnerToken(ctx, creds)
	if err != nil {
		b.Fatal(err)
	}
	ut, err := svc.IssueEntityUserToken(ctx, creds, "u2")
	if err != nil {
		b.Fatal(err)
	}
	fake, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng})
	if err != nil {
		b.Fatal(err)
	}
	real, err := middleware.New(middleware.Config{Authenticator: svc, Engine: wd.eng})
	if err != nil {
		b.Fatal(err)
	}
	owner := func(*http.Request) (model.Subject, error) { return model.User("u2"), nil }
	routes, err := real.Routes(middleware.Routes{{Pattern: "GET /payables", Object: "payable"}})
	if err != nil {
		b.Fatal(err)
	}
	bareMux := http.NewServeMux()
	bareMux.Handle("GET /payables", bare)
	perHandler := http.NewServeMux()
	perHandler.Handle("GET /payables", routes(bare))
	return []benchCase{
		{name: "fake-auth/partner", h: fake.Require("payable", "read")(bare), base: bare, token: tokP1, entity: "e1"},
		{name: "fake-auth/user", h: fake.Require("payable", "read")(bare), base: bare, token: tokU1},
		{name: "fake-auth/user-owned", h: fake.RequireOwned("payable", "approve", owner)(bare), base: bare, token: tokU2, method: "POST"},
		// The whole path with a cached token verification (*auth.Service).
		{name: "auth-service/partner", h: real.Require("payable", "read")(bare), base: bare, token: pt.AccessToken, entity: "e1"},
		{name: "auth-service/user", h: real.Require("payable", "read")(bare), base: bare, token: ut.AccessToken},
		{name: "auth-service/user-owned", h: real.RequireOwned("payable", "approve", owner)(bare), base: bare, token: ut.AccessToken, method: "POST"},
		{name: "auth-service/routes-per-handler", h: perHandler, base: bareMux, token: pt.AccessToken, entity: "e1"},
		// Around the mux the route is matched twice: once to find the
		// declaration, once by the mux to serve the request.
		{name: "auth-service/routes-around-mux", h: routes(bareMux), base: bareMux, token: pt.AccessToken, entity: "e1"},
		// The floor of any middleware that hands a value to the handler
		// through the request context: one context value and the request
		// copy of WithContext (what NewContext and r.WithContext cost).
		{name: "floor/with-context", base: bare, h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bare.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), floorPrincipal)))
		})},
	}
}

var floorPrincipal = partnerP("p1")

func (c benchCase) request() *http.Request {
	method, path := c.method, c.path
	if method == "" {
		method = "GET"
	}
	if path == "" {
		path = "/payables"
	}
	r := httptest.NewRequest(method, path, nil)
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.entity != "" {
		r.Header.Set("X-Entity-Id", c.entity)
	}
	return r
}

// block is how many requests go through each handler in turn.
const block = 16

// BenchmarkMiddleware measures what Gatehouse adds to a request: the whole
// path (token verification, entity, decision) in front of a handler that
// does nothing, against the same handler without it. The two are timed in
// turns of [block] requests within the same benchmark, so that both see the
// same machine load; each sub-benchmark reports, per request:
//
//	ns/op            wall time with Gatehouse in front
//	bare-ns/op       wall time of the same request without it
//	added-ns/op      the difference: what Gatehouse costs
//	allocs/op, B/op  allocations with Gatehouse in front
//	added-allocs/op  allocations Gatehouse adds
//
// The target is at most 2 µs and 10 allocations added per request with a
// cached token verification (the auth-service cases).
func BenchmarkMiddleware(b *testing.B) {
	for _, c := range benchCases(b) {
		if c.token != "" || c.name == "floor/with-context" { // the request must be allowed
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, c.request())
			if w.Code != 200 {
				b.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			r, w := c.request(), &nopWriter{h: http.Header{}}
			ga, gb := allocsPerRequest(c.h, w, r)
			ba, _ := allocsPerRequest(c.base, w, r)
			b.ReportAllocs()
			var tBase, tGate time.Duration
			for b.Loop() {
				t0 := time.Now()
				for range block {
					c.base.ServeHTTP(w, r)
				}
				t1 := time.Now()
				for range block {
					c.h.ServeHTTP(w, r)
				}
				tGate += time.Since(t1)
				tBase += t1.Sub(t0)
			}
			n := float64(b.N * block)
			b.ReportMetric(float64(tGate)/n, "ns/op")
			b.ReportMetric(float64(tBase)/n, "bare-ns/op")
			b.ReportMetric(float64(tGate-tBase)/n, "added-ns/op")
			b.ReportMetric(ga, "allocs/op")
			b.ReportMetric(gb, "B/op")
			b.ReportMetric(ga-ba, "added-allocs/op")
		})
	}
}

// BenchmarkMiddlewareParallel sends the auth-service partner request from
// every P at once (no lock on the path), with the bare handler for
// comparison.
func BenchmarkMiddlewareParallel(b *testing.B) {
	var c benchCase
	for _, bc := range benchCases(b) {
		if bc.name == "auth-service/partner" {
			c = bc
		}
	}
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"bare", c.base}, {"gatehouse", c.h}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r, w := c.request(), &nopWriter{h: http.Header{}}
				for pb.Next() {
					h.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// allocsPerRequest returns the mean number of allocations and bytes
// allocated by one request through h.
func allocsPerRequest(h http.Handler, w http.ResponseWriter, r *http.Request) (allocs, bytes float64) {
	const runs = 2000
	h.ServeHTTP(w, r)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		h.ServeHTTP(w, r)
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
}
