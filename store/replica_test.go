package store

import (
	"context"
	"errors"
	"math/rand/v2"
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
func runReplicas(t *testing.T, b backend) {
	const (
		opsPerReplica = 120
		bound         = 10 * time.Second // generous: a loaded CI machine
	)
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
		w, err := NewWatcher(ctx, st, eng, WithPollInterval(20*time.Millisecond))
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
		worst   time.Duration
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
						// The replica was behind: the store refused, as it must.
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
					t.Errorf("replica %d's change %d (%s) not seen by the other within %v (it is at %d)", i, rev, op, bound, other.w.Revision())
					return
				}
				mu.Lock()
				commits[i]++
				worst = max(worst, time.Since(start))
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
	}
	t.Logf("commits %v, refused as stale (then retried) %v, store revision %d, slowest propagation %v, %d rules",
		commits, stale, latest, worst, len(rs[0].eng.Rules()))
	if commits[0] == 0 || commits[1] == 0 {
		t.Fatalf("a replica committed nothing: %v", commits)
	}
	stored := storedRules(t, rs[0].st)
	assertSameRules(t, "replica 0 vs stored", stored, sortedRules(rs[0].eng.Rules()))
	assertSameRules(t, "replica 1 vs stored", stored, sortedRules(rs[1].eng.Rules()))
	assertSameDecisions(t, rs[0].eng, rs[1].eng, randomRequests(rand.New(rand.NewPCG(9, 9)), rs[0].eng.Catalog(), 3000))
}
