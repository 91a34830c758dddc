package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	gormadapter "github.com/casbin/gorm-adapter/v3"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// benchSizes are the policy sizes of the cold-start benchmarks; set
// GATEHOUSE_BENCH_LARGE=1 to add 1,000,000 rules (slow to generate).
func benchSizes() []int {
	if os.Getenv("GATEHOUSE_BENCH_LARGE") != "" {
		return []int{100_000, 1_000_000}
	}
	return []int{100_000}
}

// generate writes about n rules shaped like a real tenant base: per
// entity an owner, 5 roles of 15 permissions each and 20 users. It
// returns the number of rules and of p rules written.
func generate(b *testing.B, st *Store, n int) (rules, pRules int) {
	b.Helper()
	cat := model.DefaultCatalog()
	keys := cat.Keys()
	batch := make([]gormadapter.CasbinRule, 0, 1000)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := st.DB().Table(st.RulesTable()).CreateInBatches(batch, 1000).Error; err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	add := func(r model.Rule) {
		row, err := toRow(r)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, row)
		rules++
		if r.PType == model.PTypePermission {
			pRules++
		}
		if len(batch) == cap(batch) {
			flush()
		}
	}
	for e := 0; rules < n; e++ {
		ent := fmt.Sprintf("entity:e%d", e)
		add(model.Rule{PType: "g2", Values: []string{fmt.Sprintf("partner:p%d", e%50), ent}})
		for r := range 5 {
			role := fmt.Sprintf("role:e%d-r%d", e, r)
			add(model.Rule{PType: "p2", Values: []string{role, ent, fmt.Sprintf("Role %d", r), "1700000000000", "1700000000000"}})
			for k := range 15 {
				key := keys[(e*7+r*15+k)%len(keys)]
				perm := "allowed"
				if k%3 == 0 {
					perm = "allowed_for_own"
				}
				add(model.Rule{PType: "p", Values: []string{role, ent, string(key.Object), string(key.Action), perm}})
			}
		}
		for u := range 20 {
			add(model.Rule{PType: "g", Values: []string{fmt.Sprintf("user:e%d-u%d", e, u), fmt.Sprintf("role:e%d-r%d", e, u%5), ent}})
		}
	}
	flush()
	return rules, pRules
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkColdStart measures a new engine's start on a stored policy
// (streamed load plus index), next to gorm-adapter's LoadPolicy into a
// Casbin model over the same rows, and the heap each keeps per p rule.
func BenchmarkColdStart(b *testing.B) {
	for _, mk := range []func(testing.TB) backend{sqliteBackend, postgresBackend} {
		bk := mk(b)
		for _, n := range benchSizes() {
			b.Run(fmt.Sprintf("%s/rules=%d", bk.name, n), func(b *testing.B) {
				ctx := context.Background()
				st := newStore(b, bk, bk.open(b), newPrefix())
				total, pRules := generate(b, st, n)
				b.Logf("%d rules, %d p rules", total, pRules)

				b.Run("gatehouse", func(b *testing.B) {
					b.ReportAllocs()
					var eng *policy.Engine
					var perRule float64
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						eng = nil
						before := heapInUse()
						b.StartTimer()
						var err error
						eng, err = policy.New(ctx, policy.WithStore(st))
						if err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						perRule = float64(heapInUse()-before) / float64(pRules)
						b.StartTimer()
					}
					b.StopTimer()
					if got := len(eng.Rules()); got != total {
						b.Fatalf("engine holds %d rules, want %d", got, total)
					}
					b.ReportMetric(perRule, "heap-B/p-rule")
				})
				b.Run("casbin-gorm-adapter", func(b *testing.B) {
					b.ReportAllocs()
					var perRule float64
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						before := heapInUse()
						b.StartTimer()
						m, err := model.NewCasbinModel()
						if err != nil {
							b.Fatal(err)
						}
						if err := st.Adapter().LoadPolicyCtx(ctx, m); err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						perRule = float64(heapInUse()-before) / float64(pRules)
						runtime.KeepAlive(m)
						b.StartTimer()
					}
					b.ReportMetric(perRule, "heap-B/p-rule")
				})
			})
		}
	}
}

// BenchmarkPropagation measures how long a change committed on one
// replica takes to be applied by another one's watcher, from the moment
// the commit returned: median, p99 and max. PostgreSQL wakes watchers with
// NOTIFY (the poll interval, the fallback, is 1 s); MySQL polls every 50
// ms. In the "contended" runs the other replica commits changes of its own
// every 2 ms meanwhile: its management calls wait for the change lock
// without holding its engine's mutex, so its watcher applies A's changes
// between them.
func BenchmarkPropagation(b *testing.B) {
	for _, mk := range []func(testing.TB) backend{postgresBackend, mysqlBackend} {
		bk := mk(b)
		for _, contended := range []bool{false, true} {
			name := bk.name
			if contended {
				name += "/contended"
			}
			b.Run(name, func(b *testing.B) { benchPropagation(b, bk, contended) })
		}
	}
}

func benchPropagation(b *testing.B, bk backend, contended bool) {
	ctx := context.Background()
	prefix := newPrefix()
	poll := time.Second
	if bk.name != dialectPostgres {
		poll = 50 * time.Millisecond
	}
	stA := newStore(b, bk, bk.open(b), prefix)
	stB := newStore(b, bk, bk.open(b), prefix)
	engA, engB := newEngine(b, stA), newEngine(b, stB)
	wA, err := NewWatcher(ctx, stA, engA, WithPollInterval(poll))
	if err != nil {
		b.Fatal(err)
	}
	defer wA.Close()
	wB, err := NewWatcher(ctx, stB, engB, WithPollInterval(poll))
	if err != nil {
		b.Fatal(err)
	}
	defer wB.Close()
	if _, err := engA.CreateEntity(ctx, "p1", "e1"); err != nil {
		b.Fatal(err)
	}
	if err := wB.Wait(ctx, engA.Revision()); err != nil {
		b.Fatal(err)
	}
	var (
		stop  = make(chan struct{})
		done  = make(chan struct{})
		other int
	)
	if contended {
		if err := wB.Retry(ctx, 100, func(ctx context.Context) error {
			_, err := engB.CreateEntity(ctx, "p1", "e2")
			return err
		}); err != nil {
			b.Fatal(err)
		}
		go func() {
			defer close(done)
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				// Refusals as stale are expected; the next tick tries again.
				if i%2 == 0 {
					if _, err := engB.AddUser(ctx, "e2", "v1", ""); err == nil {
						other++
					}
				} else if err := engB.RemoveUser(ctx, "e2", "v1"); err == nil {
					other++
				}
			}
		}()
	} else {
		close(done)
	}
	delays := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A's own change may be refused while B commits: retry until it
		// lands (not measured: propagation starts when a commit returns).
		err := wA.Retry(ctx, 1000, func(ctx context.Context) error {
			if i%2 == 0 {
				_, err := engA.AddUser(ctx, "e1", "u1", "")
				return err
			}
			return engA.RemoveUser(ctx, "e1", "u1")
		})
		if err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := wB.Wait(wctx, engA.Revision()); err != nil {
			b.Fatal(err)
		}
		cancel()
		delays = append(delays, time.Since(committed))
	}
	b.StopTimer()
	close(stop)
	<-done
	slices.Sort(delays)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(delays[len(delays)/2]), "p50-ms")
	b.ReportMetric(ms(delays[(len(delays)*99)/100]), "p99-ms")
	b.ReportMetric(ms(delays[len(delays)-1]), "max-ms")
	if contended {
		b.ReportMetric(float64(other)/float64(b.N), "B-commits/op")
	}
}

// BenchmarkBehind measures the freshness check a server may make on every
// request (no database read).
func BenchmarkBehind(b *testing.B) {
	bk := sqliteBackend(b)
	st := newStore(b, bk, bk.open(b), newPrefix())
	eng := newEngine(b, st)
	w, err := NewWatcher(context.Background(), st, eng, WithPollInterval(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Behind(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
