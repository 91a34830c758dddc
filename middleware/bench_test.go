package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"syscall"
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

var bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, ok := middleware.ScopeFromContext(r.Context()); !ok && r.Pattern == "x" {
		w.WriteHeader(500)
	}
})

type benchCase struct {
	name    string
	h       http.Handler
	token   string
	entity  string
	path    string
	method  string
	noCheck bool
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
	mux := http.NewServeMux()
	mux.Handle("GET /payables", bare)
	return []benchCase{
		{name: "bare", h: bare, method: "GET", path: "/payables", noCheck: true},
		{name: "fake-auth/partner", h: fake.Require("payable", "read")(bare), token: tokP1, entity: "e1"},
		{name: "fake-auth/user", h: fake.Require("payable", "read")(bare), token: tokU1},
		{name: "fake-auth/user-owned", h: fake.RequireOwned("payable", "approve", owner)(bare), token: tokU2, method: "POST"},
		{name: "auth-service/partner", h: real.Require("payable", "read")(bare), token: pt.AccessToken, entity: "e1"},
		{name: "auth-service/user-owned", h: real.RequireOwned("payable", "approve", owner)(bare), token: ut.AccessToken, method: "POST"},
		{name: "auth-service/routes-around-mux", h: routes(mux), token: pt.AccessToken, entity: "e1"},
		{name: "bare-mux", h: mux, noCheck: true},
		// The floor of any middleware that hands a value to the handler
		// through the request context: one context value and the request
		// copy of WithContext (what NewContext and r.WithContext cost).
		{name: "floor/with-context", noCheck: true, h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bare.ServeHTTP(w, r.WithContext(middleware.NewContext(r.Context(), floorPrincipal)))
		})},
	}
}

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

// BenchmarkMiddleware measures the whole path (token, entity, decision) in
// front of a handler that does nothing, against that handler alone ("bare").
func BenchmarkMiddleware(b *testing.B) {
	for _, c := range benchCases(b) {
		if !c.noCheck { // the request must be allowed
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, c.request())
			if w.Code != 200 {
				b.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			r, w := c.request(), &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				c.h.ServeHTTP(w, r)
			}
			reportCPU(b, cpu)
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				r, w := c.request(), &nopWriter{h: http.Header{}}
				for pb.Next() {
					c.h.ServeHTTP(w, r)
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// cpuTime returns the CPU time the process has used. On a shared, loaded
// machine wall-clock ns/op says more about the neighbours than about us, so
// the benchmarks also report cpu-ns/op: process CPU time (user and system,
// GC included, all goroutines) per operation.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	if n := b.N; n > 0 && start > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}

var floorPrincipal = partnerP("p1")
