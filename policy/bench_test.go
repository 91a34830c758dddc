package policy_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/gatehouse-authz/gatehouse/internal/gen"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

var benchSizes = []int{1_000, 10_000, 100_000, 1_000_000}

func benchEngine(b *testing.B, n int) (*policy.Engine, []policy.Request) {
	b.Helper()
	return benchEngineOf(b, gen.New(1, n, model.DefaultCatalog()))
}

func benchEngineOf(b *testing.B, ds *gen.Dataset) (*policy.Engine, []policy.Request) {
	b.Helper()
	eng, err := policy.New(context.Background(), policy.WithStore(ds))
	if err != nil {
		b.Fatal(err)
	}
	return eng, ds.Requests(2, 1<<14)
}

// BenchmarkDecide measures one decision on generated data of N permission
// rules, allowed and denied requests mixed (a stream of 16,384 requests
// over all entities). The project's target is at most 80 ns/op and 0
// allocs/op at every size; the README reports what it measures.
func BenchmarkDecide(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			eng, reqs := benchEngine(b, n)
			benchDecide(b, eng, reqs)
		})
	}
}

// BenchmarkDecideUUID is BenchmarkDecide with UUIDs (36 bytes) for every
// id, as Monite's API has, instead of short generated ones (10 to 15
// bytes): longer keys to hash and compare.
func BenchmarkDecideUUID(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			eng, reqs := benchEngineOf(b, gen.NewUUID(1, n, model.DefaultCatalog()))
			benchDecide(b, eng, reqs)
		})
	}
}

// activeEntities is the number of entities BenchmarkDecideActive's
// requests are drawn from.
const activeEntities = 256

// BenchmarkDecideActive is BenchmarkDecide with requests drawn from 256
// active entities of the N-rule data (all of them at 1,000 and 10,000
// rules) rather than from every entity: the cost of a decision when the
// tenants of the moment are a small share of all those the index holds.
// BenchmarkAnchorTwoMapActive is its yardstick.
func BenchmarkDecideActive(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			ds := gen.New(1, n, model.DefaultCatalog())
			eng, _ := benchEngineOf(b, ds)
			benchDecide(b, eng, ds.ActiveRequests(2, 1<<14, activeEntities))
		})
	}
}

// BenchmarkDecideStream is BenchmarkDecide at 1,000,000 rules with request
// streams of several lengths, all drawn from every entity: what a decision
// costs follows how much of the index a stream touches (and so how much of
// it the caches hold), not the number of rules.
func BenchmarkDecideStream(b *testing.B) {
	ds := gen.New(1, 1_000_000, model.DefaultCatalog())
	eng, _ := benchEngineOf(b, ds)
	for _, n := range []int{1 << 10, 1 << 12, 1 << 14, 1 << 16} {
		b.Run(fmt.Sprintf("requests=%d", n), func(b *testing.B) {
			benchDecide(b, eng, ds.Requests(2, n))
		})
	}
}

func benchDecide(b *testing.B, eng *policy.Engine, reqs []policy.Request) {
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if eng.Decide(&reqs[i&(len(reqs)-1)]).Allowed {
			allowed++
		}
	}
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
}

// BenchmarkDecideParallel is BenchmarkDecide on every core.
func BenchmarkDecideParallel(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			eng, reqs := benchEngine(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					eng.Decide(&reqs[i&(len(reqs)-1)])
					i++
				}
			})
		})
	}
}

// BenchmarkScope measures the list-scope query.
func BenchmarkScope(b *testing.B) {
	eng, reqs := benchEngine(b, 100_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reqs[i&(len(reqs)-1)]
		_, _ = eng.Scope(r.Subject, r.Entity, r.Object, r.Action)
	}
}

// BenchmarkUpdateRole measures a role change (UpdateRole). A decision made
// after the call returns sees the change: the call publishes the entity's
// new snapshot before it returns (TestRoleLifecycle checks it).
func BenchmarkUpdateRole(b *testing.B) {
	eng, _ := benchEngine(b, 100_000)
	ctx := context.Background()
	ents, _ := eng.ListEntities(ctx, "partner-00001")
	roles, _ := eng.ListRoles(ctx, ents[0].ID)
	r := roles[1]
	k := model.Key{Object: "payable", Action: "approve"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ps := r.Permissions.Clone()
		ps[k] = model.Permission(1 + i%2)
		if _, err := eng.UpdateRole(ctx, r.Entity, r.ID, policy.RoleUpdate{Permissions: ps}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad measures building the engine (and its index) from N rules,
// and reports the heap it keeps per permission rule.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			ds := gen.New(1, n, model.DefaultCatalog())
			var eng *policy.Engine
			var before, after runtime.MemStats
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer() // the forced collection is not part of a load
				eng = nil
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				var err error
				if eng, err = policy.New(context.Background(), policy.WithStore(ds)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(ds.PRules), "heapB/rule")
			runtime.KeepAlive(eng)
		})
	}
}

// BenchmarkAnchorTwoMap is the yardstick for BenchmarkDecide: two nested Go
// map lookups (entity, then user) over every user of the same generated
// data, with the same request stream. Decide does more than this (the
// catalog slot, the role's permission, the owner) and is read as a ratio to
// it, measured in the same run.
func BenchmarkAnchorTwoMap(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			benchTwoMap(b, gen.New(1, n, model.DefaultCatalog()))
		})
	}
}

// BenchmarkAnchorTwoMapUUID is the yardstick for BenchmarkDecideUUID.
func BenchmarkAnchorTwoMapUUID(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			benchTwoMap(b, gen.NewUUID(1, n, model.DefaultCatalog()))
		})
	}
}

// BenchmarkAnchorTwoMapActive is the yardstick for BenchmarkDecideActive.
func BenchmarkAnchorTwoMapActive(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			ds := gen.New(1, n, model.DefaultCatalog())
			benchTwoMapReqs(b, ds, ds.ActiveRequests(2, 1<<14, activeEntities))
		})
	}
}

func benchTwoMap(b *testing.B, ds *gen.Dataset) {
	benchTwoMapReqs(b, ds, ds.Requests(2, 1<<14))
}

func benchTwoMapReqs(b *testing.B, ds *gen.Dataset, reqs []policy.Request) {
	m := map[model.EntityID]map[model.UserID]int32{}
	for ei, e := range ds.Entities {
		mm := map[model.UserID]int32{}
		for u := 0; u < e.Users; u++ {
			mm[ds.UserID(ei, u)] = int32(u)
		}
		m[e.ID] = mm
	}
	s := int32(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reqs[i&(len(reqs)-1)]
		s += m[r.Entity][model.UserID(r.Subject.ID)]
	}
	_ = s
}

// BenchmarkTransaction measures one transaction (WithDeferredApply, as
// store.InTransaction makes) of N entities, each created and given a user,
// and of N users added to one entity: each call reads the entities it
// checks as the transaction leaves them, which must not make a large
// transaction cost more than in proportion (per change: ns/op ÷ N).
func BenchmarkTransaction(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{100, 1_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				eng, err := policy.New(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tx := policy.WithDeferredApply(ctx, func(func()) {})
				for i := range n {
					e := model.EntityID(fmt.Sprintf("e%d", i))
					if _, err := eng.CreateEntity(tx, "p1", e); err != nil {
						b.Fatal(err)
					}
					if _, err := eng.AddUser(tx, e, model.UserID(fmt.Sprintf("u%d", i)), ""); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				eng, err := policy.New(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eng.CreateEntity(ctx, "p1", "e"); err != nil {
					b.Fatal(err)
				}
				tx := policy.WithDeferredApply(ctx, func(func()) {})
				for i := range n {
					if _, err := eng.AddUser(tx, "e", model.UserID(fmt.Sprintf("u%d", i)), ""); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
