package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/policy"
)

func TestReplicasSQLite(t *testing.T)   { runReplicas(t, sqliteBackend(t)) }
func TestReplicasPostgres(t *testing.T) { runReplicas(t, postgresBackend(t)) }
func TestReplicasMySQL(t *testing.T)    { runReplicas(t, mysqlBackend(t)) }

// runReplicas runs two engines, each with its own pool, store and watcher,
// on one database. Both make random changes concurrently; every change
// one commits must reach the other within a bound, and at the end both
// hold the stored policy and decide alike.
//
// The bound is honest about the mechanism: on PostgreSQL the watchers poll
// once a minute, so a change seen within the bound was delivered by
// NOTIFY; elsewhere they poll every 50 ms. The bound itself is generous
// (a loaded CI machine); the delays are logged, and the benchmark
// BenchmarkPropagation holds the speed goal.
func runReplicas(t *testing.T, b backend) {
	const (
		opsPerReplica = 120
		bound         = 5 * time.Second
	)
	poll := 50 * time.Millisecond
	if b.name == dialectPostgres {
		poll = time.Minute // NOTIFY or nothing
	}
	ctx := context.Background()
	prefix := newPrefix()
	type replica struct {
		st  *Store
		eng *policy.Engine
		w   *Watcher
	}
	var rs [2]replica
	for i := range rs {
		st := newStore(t, b, b.open(t), prefix)
		eng := newEngine(t, st)
		w, err := NewWatcher(ctx, st, eng, WithPollInterval(poll))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		rs[i] = replica{st, eng, w}
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		commits [2]int
		stale   [2]int
		delays  []time.Duration
	)
	for i := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me, other := rs[i], rs[1-i]
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			for range opsPerReplica {
				before := me.eng.Revision()
				var op string
				err := me.w.Retry(ctx, 5, func(ctx context.Context) error {
					var err error
					op, err = randomOp(ctx, rng, me.eng)
					if errors.Is(err, ErrConflict) {
						// The replica was behind: the store refused, as it must,
						// and said so.
						if !errors.Is(err, ErrBehind) {
							t.Errorf("replica %d: %s refused without ErrBehind: %v", i, op, err)
						}
						mu.Lock()
						stale[i]++
						mu.Unlock()
					}
					return err
				})
				switch {
				case errors.Is(err, ErrConflict):
					continue // still behind after 5 attempts
				case errors.Is(err, policy.ErrStorage):
					t.Errorf("replica %d: %s: %v", i, op, err)
					return
				case err != nil || me.eng.Revision() == before:
					continue // refused by the engine: nothing committed
				}
				rev := me.eng.Revision()
				start := time.Now()
				wctx, cancel := context.WithTimeout(ctx, bound)
				err = other.w.Wait(wctx, rev)
				cancel()
				if err != nil {
					t.Errorf("replica %d's change %d (%s) not seen by the other within %v (it is at %d, %+v)", i, rev, op, bound, other.w.Revision(), other.w.Lag())
					return
				}
				mu.Lock()
				commits[i]++
				delays = append(delays, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	latest, err := rs[0].st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		wctx, cancel := context.WithTimeout(ctx, bound)
		if err := r.w.Wait(wctx, latest); err != nil {
			t.Fatalf("replica %d stuck at %d, store at %d", i, r.w.Revision(), latest)
		}
		cancel()
		if err := r.w.Behind(); err != nil {
			t.Errorf("replica %d caught up but says %v", i, err)
		}
	}
	slices.Sort(delays)
	if len(delays) > 0 {
		t.Logf("commits %v, refused as stale (then retried) %v, store revision %d, %d rules; propagation p50 %v, p99 %v, max %v (bound %v, poll %v)",
			commits, stale, latest, len(rs[0].eng.Rules()), delays[len(delays)/2], delays[len(delays)*99/100], delays[len(delays)-1], bound, poll)
	}
	if commits[0] == 0 || commits[1] == 0 {
		t.Fatalf("a replica committed nothing: %v", commits)
	}
	stored := storedRules(t, rs[0].st)
	assertSameRules(t, "replica 0 vs stored", stored, sortedRules(rs[0].eng.Rules()))
	assertSameRules(t, "replica 1 vs stored", stored, sortedRules(rs[1].eng.Rules()))
	assertSameDecisions(t, rs[0].eng, rs[1].eng, randomRequests(rand.New(rand.NewPCG(9, 9)), rs[0].eng.Catalog(), 3000))
}
