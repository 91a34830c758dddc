package benchmarks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// BenchmarkDecide measures one Gatehouse decision (Engine.Decide) over N
// permission rules, allowed and denied requests mixed. It also reports the
// live heap the engine keeps per permission rule (heapB/rule), the time it
// took to load (load-ms) and the share of allowed requests.
func BenchmarkDecide(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := gate(b, n)
		allowed := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			if fx.eng.Decide(&fx.reqs[i&(numRequests-1)]).Allowed {
				allowed++
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
		b.ReportMetric(fx.heapPerRule, "heapB/rule")
		b.ReportMetric(float64(fx.build)/1e6, "load-ms")
	})
}

// BenchmarkTwoMap is the yardstick of the hot path: two nested Go map
// lookups (entity id, then user id) over every user of the same generated
// data, answering the same request stream as BenchmarkDecide. It is what
// "as fast as a map lookup" means on the machine of the run; Decide also
// finds the catalog slot and reads the role's permission and the owner.
func BenchmarkTwoMap(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := gate(b, n)
		m := make(map[model.EntityID]map[model.UserID]int32, len(fx.ds.Entities))
		for ei, e := range fx.ds.Entities {
			users := make(map[model.UserID]int32, e.Users)
			for u := range e.Users {
				users[fx.ds.UserID(ei, u)] = int32(u % e.Roles)
			}
			m[e.ID] = users
		}
		found := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			r := &fx.reqs[i&(numRequests-1)]
			if _, ok := m[r.Entity][model.UserID(r.Subject.ID)]; ok {
				found++
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(found)/float64(b.N), "found/op")
	})
}

// BenchmarkCasbinEnforce measures casbin.Enforce (a plain Enforcer) on the
// same model (model.NewCasbinModel), the same rules and the same requests as
// BenchmarkDecide, taken in the balanced order (gateFixture.balanced): at
// large sizes b.N is a handful, and the first requests of the stream would
// be mostly allowed, Casbin's cheap case; every prefix of the balanced order
// has the stream's allowed share, within one request. Every answer timed is
// checked against Decide's on the same request (the benchmark fails on a
// disagreement). It reports allowed/op, the share of the timed requests
// allowed, and stream-allowed, the whole stream's. Sizes where one call
// takes over casbinCallLimit (three seconds of CPU), or where loading the enforcer takes minutes, are
// skipped with a message.
func BenchmarkCasbinEnforce(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := casbinFx(b, n)
		e := fx.ce.Enforcer // the plain enforcer: no cache
		g := fx.g
		allowed := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			j := g.balanced[i&(numRequests-1)]
			if err := fx.agree(j, e.Enforce); err != nil {
				b.Fatal(err)
			}
			if g.allowed[j] {
				allowed++
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
		b.ReportMetric(share(g.allowed, g.balanced), "stream-allowed")
		b.ReportMetric(fx.heapPerRule, "heapB/rule")
		b.ReportMetric(float64(fx.build)/1e6, "load-ms")
	})
}

// BenchmarkCasbinCached measures Casbin's CachedEnforcer on warm keys: the
// requests of the balanced stream, already answered once before the timer,
// asked again in turn: the first requests of the balanced stream (so that
// their allowed share is the stream's), as many as casbinWarmBudget of
// uncached Enforce calls warms (at least minWarmKeys; at most the 16,384 of
// the stream). It reports the number of distinct keys (keys) and the allowed
// share of the warmed requests (sample-allowed). It is Casbin's best case,
// and a cache that policy changes do not invalidate.
//
// Compare it with BenchmarkDecideCachedKeys of the same size, which runs
// Decide over exactly the same requests in the same order, not with
// BenchmarkDecide: a few keys stay in the CPU's caches.
func BenchmarkCasbinCached(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := casbinFx(b, n)
		keys := fx.warmKeys(b)
		k := len(keys)
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			if _, err := fx.ce.Enforce(fx.args[keys[i%k]]...); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(fx.distinct), "keys")
		b.ReportMetric(share(fx.g.allowed, keys), "sample-allowed")
	})
}

// BenchmarkDecideCachedKeys is Gatehouse's side of BenchmarkCasbinCached:
// Decide over exactly the requests that CachedEnforcer has warmed, in the
// same order, in the same run (it is skipped when the Casbin benchmarks of
// the size are). The report divides CachedEnforcer's time by this one.
func BenchmarkDecideCachedKeys(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := casbinFx(b, n)
		keys := fx.warmKeys(b)
		k := len(keys)
		g := fx.g
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			g.eng.Decide(&g.reqs[keys[i%k]])
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(fx.distinct), "keys")
	})
}

// BenchmarkDecideParallel is BenchmarkDecide from GOMAXPROCS goroutines
// (b.RunParallel): decisions take no lock.
func BenchmarkDecideParallel(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := gate(b, n)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				fx.eng.Decide(&fx.reqs[i&(numRequests-1)])
				i++
			}
		})
	})
}

// BenchmarkScope measures the list-scope query (Engine.Scope: all, own or
// none) over the same requests.
func BenchmarkScope(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := gate(b, n)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := fx.reqs[i&(numRequests-1)]
			_, _ = fx.eng.Scope(r.Subject, r.Entity, r.Object, r.Action)
		}
	})
}

// BenchmarkPolicyChange measures a policy change until decisions see it:
// Engine.UpdateRole grants, then revokes, a permission of a role that a user
// holds, and the clock stops at the first Decide that reflects the change.
// The role is restored when the benchmark ends.
func BenchmarkPolicyChange(b *testing.B) {
	forSizes(b, func(b *testing.B, n int) {
		fx := gate(b, n)
		ctx := context.Background()
		ent := fx.ds.Entities[0].ID
		users, err := fx.eng.ListUsers(ctx, ent)
		if err != nil {
			b.Fatal(err)
		}
		var u policy.User
		for _, x := range users {
			if x.Role != "" {
				u = x
				break
			}
		}
		if u.Role == "" {
			b.Fatal("no user with an explicit role in the first entity")
		}
		role, err := fx.eng.GetRole(ctx, ent, u.Role)
		if err != nil {
			b.Fatal(err)
		}
		// A pair the role does not grant: toggle it between absent and
		// allowed.
		var k model.Key
		for _, key := range fx.eng.Catalog().Keys() {
			if _, ok := role.Permissions[key]; !ok {
				k = key
				break
			}
		}
		without := role.Permissions.Clone()
		with := role.Permissions.Clone()
		with[k] = model.Allowed
		orig := role.Permissions.Clone()
		b.Cleanup(func() {
			if _, err := fx.eng.UpdateRole(ctx, ent, role.ID, policy.RoleUpdate{Permissions: orig}); err != nil {
				b.Error(err)
			}
		})
		req := policy.Request{Subject: model.User(u.ID), Entity: ent, Object: k.Object, Action: k.Action}
		spins := 0
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			grant := i%2 == 0
			ps := without
			if grant {
				ps = with
			}
			if _, err := fx.eng.UpdateRole(ctx, ent, role.ID, policy.RoleUpdate{Permissions: ps}); err != nil {
				b.Fatal(err)
			}
			for j := 0; fx.eng.Decide(&req).Allowed != grant; j++ {
				if spins++; j > 1_000_000 {
					b.Fatal("the change was not seen after a million decisions")
				}
			}
		}
		b.ReportMetric(float64(spins)/float64(b.N), "stale-decisions/op")
	})
}

// mwFixture is the middleware path: a real auth.Service (memory store) whose
// directory is the engine, a cached entity-user token, and routes behind
// middleware.Require.
type mwFixture struct {
	svc     *auth.Service
	token   string
	allowed policy.Request // what the token's user may do
	denied  policy.Request // what it may not
	bare    http.Handler
	allow   http.Handler // Require(allowed.Object, allowed.Action)(bare)
	deny    http.Handler // Require(denied.Object, denied.Action)(bare)
}

// mwSize is the dataset size of the middleware and HTTP benchmarks (the
// engine's cost does not depend on it).
const mwSize = 10_000

var (
	mwOnce sync.Once
	mwFx   *mwFixture
	mwErr  error
)

// okHandler is the application's handler: a tiny JSON answer.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
})

func middlewareFixture(b *testing.B) *mwFixture {
	b.Helper()
	g := gate(b, mwSize)
	mwOnce.Do(func() { mwFx, mwErr = buildMiddleware(g) })
	if mwErr != nil {
		b.Fatal(mwErr)
	}
	return mwFx
}

func buildMiddleware(g *gateFixture) (*mwFixture, error) {
	ctx := context.Background()
	fx := &mwFixture{bare: okHandler}
	// An entity user allowed on every object of some (object, action) of
	// its own entity, and an (object, action) it may not do.
	found := false
	for _, r := range g.reqs {
		if r.Subject.Kind != model.KindUser || !r.Owner.IsZero() {
			continue
		}
		if d := g.eng.Decide(&r); !d.Allowed || d.Scope != model.ScopeAll {
			continue
		}
		for _, k := range g.eng.Catalog().Keys() {
			q := policy.Request{Subject: r.Subject, Entity: r.Entity, Object: k.Object, Action: k.Action}
			if !g.eng.Decide(&q).Allowed {
				fx.allowed, fx.denied, found = r, q, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return nil, errorString("no suitable entity user in the dataset")
	}
	_, partner, err := g.eng.LookupEntityUser(ctx, model.UserID(fx.allowed.Subject.ID))
	if err != nil {
		return nil, err
	}
	fx.svc, err = auth.New(ctx, auth.NewMemoryStore(), g.eng)
	if err != nil {
		return nil, err
	}
	creds, err := fx.svc.CreateClient(ctx, partner)
	if err != nil {
		return nil, err
	}
	tok, err := fx.svc.IssueEntityUserToken(ctx, creds, model.UserID(fx.allowed.Subject.ID))
	if err != nil {
		return nil, err
	}
	fx.token = tok.AccessToken
	mw, err := middleware.New(middleware.Config{Authenticator: fx.svc, Engine: g.eng})
	if err != nil {
		return nil, err
	}
	fx.allow = mw.Require(fx.allowed.Object, fx.allowed.Action)(fx.bare)
	fx.deny = mw.Require(fx.denied.Object, fx.denied.Action)(fx.bare)
	// The token is verified once here, so the benchmarks see it cached.
	for _, c := range []struct {
		h    http.Handler
		want int
	}{{fx.allow, http.StatusOK}, {fx.deny, http.StatusForbidden}} {
		w := httptest.NewRecorder()
		c.h.ServeHTTP(w, fx.request("/x"))
		if w.Code != c.want {
			return nil, errorString("middleware answered " + w.Result().Status + ": " + w.Body.String())
		}
	}
	return fx, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// request returns a GET of path with the fixture's bearer token.
func (fx *mwFixture) request(path string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+fx.token)
	return r
}

// BenchmarkMiddleware measures a request through the whole Gatehouse path
// (cached bearer token, entity, decision) against the same handler alone:
//
//	bare              the handler, no authorization
//	gatehouse         middleware.Require in front, request allowed
//	gatehouse-denied  middleware.Require in front, request denied (403 problem JSON)
//
// Each iteration serves one request into a fresh httptest.ResponseRecorder.
func BenchmarkMiddleware(b *testing.B) {
	fx := middlewareFixture(b)
	for _, c := range []struct {
		name string
		h    http.Handler
		want int
	}{{"bare", fx.bare, 200}, {"gatehouse", fx.allow, 200}, {"gatehouse-denied", fx.deny, 403}} {
		b.Run(c.name, func(b *testing.B) {
			r := fx.request("/x")
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != c.want {
					b.Fatalf("status %d, want %d", w.Code, c.want)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
