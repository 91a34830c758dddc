package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestBehindWhenStuck: a watcher whose catch-up hangs reports no error
// and learns of no change; once it has not read the database's revision
// for longer than WithStaleAfter, Behind says the replica is behind (it
// cannot tell what is committed), and stops once the watcher reads again.
func TestBehindWhenStuck(t *testing.T) {
	b := sqliteBackend(t)
	st := newStore(t, b, b.open(t), newPrefix())
	eng := newEngine(t, st)
	hang := make(chan struct{})
	var stuck atomic.Bool
	w := newWatcher(t, st, eng, WithPollInterval(20*time.Millisecond), WithStaleAfter(200*time.Millisecond),
		withSyncHook(func(ctx context.Context) error {
			if stuck.Load() {
				select { // a read that never answers
				case <-hang:
				case <-ctx.Done():
				}
			}
			return nil
		}))
	if err := w.Behind(); err != nil {
		t.Fatalf("fresh watcher: %v", err)
	}
	stuck.Store(true) // the next catch-up hangs
	start := time.Now()
	waitFor(t, 5*time.Second, "a stuck watcher is not behind", func() bool { return errors.Is(w.Behind(), ErrBehind) })
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("behind after %v, before the bound", took)
	}
	t.Logf("Behind: %v", w.Behind())
	if l := w.Lag(); l.Err != nil || l.Known != l.Applied {
		t.Fatalf("Lag = %+v: the bound alone should report it", l)
	}
	stuck.Store(false)
	close(hang)
	waitFor(t, 5*time.Second, "still behind once the watcher reads again", func() bool { return w.Behind() == nil })
}

func TestWatcherReadTimeoutPostgres(t *testing.T) { testWatcherReadTimeout(t, postgresBackend(t)) }
func TestWatcherReadTimeoutMySQL(t *testing.T)    { testWatcherReadTimeout(t, mysqlBackend(t)) }

// testWatcherReadTimeout: replica A's connections to the database stop
// answering, silently (no error, nothing closed), and B revokes a change.
// A's reads time out, so that A says it is behind (with the cause) rather
// than serve the revoked state as current, and on PostgreSQL it stops
// counting on LISTEN. Once the network answers again, A catches up.
func testWatcherReadTimeout(t *testing.T, b backend) {
	ctx := context.Background()
	proxy, stA, stB, engA, engB := proxiedReplicas(t, b)
	wA := newWatcher(t, stA, engA, WithPollInterval(100*time.Millisecond),
		WithReadTimeout(300*time.Millisecond), WithStaleAfter(time.Minute))
	wB := syncWatcher(t, stB, engB)
	if _, err := engB.CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wA.Wait(wctx, 1); err != nil {
		t.Fatal(err)
	}
	if b.name == dialectPostgres {
		waitFor(t, 5*time.Second, "not listening", func() bool { return wA.Lag().Listening })
	}

	proxy.stall.Store(true)
	if err := engB.RemoveEntity(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a replica that cannot read the database is not behind", func() bool {
		return errors.Is(wA.Behind(), ErrBehind)
	})
	t.Logf("Behind: %v", wA.Behind())
	if l := wA.Lag(); l.Err == nil {
		t.Fatalf("Lag.Err = nil with every read timing out: %+v", l)
	}
	if b.name == dialectPostgres {
		waitFor(t, 5*time.Second, "Listening with the connection silent", func() bool { return !wA.Lag().Listening })
	}

	proxy.stall.Store(false)
	waitFor(t, 15*time.Second, "A did not catch up once the network answered", func() bool {
		_, err := engA.GetEntity(ctx, "e1")
		return wA.Behind() == nil && errors.Is(err, policy.ErrNotFound)
	})
	if err := wB.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	assertSameRules(t, "A and B", sortedRules(engB.Rules()), sortedRules(engA.Rules()))
}

// hangingStore is a Store whose loads hang, while hang is set, until their
// context ends: a reload whose reads never answer.
type hangingStore struct {
	*Store
	hang *atomic.Bool
}

func (h hangingStore) LoadSnapshot(ctx context.Context, fn func(model.Rule) error) (int64, error) {
	if h.hang.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return h.Store.LoadSnapshot(ctx, fn)
}

// TestWatcherReloadTimeout: a whole reload whose reads hang fails after
// WithReloadTimeout (it used to wait forever, holding the engine's mutex),
// leaves the engine as it was, makes Behind report the error, and the next
// catch-up reloads.
func TestWatcherReloadTimeout(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	st := newStore(t, b, b.open(t), newPrefix())
	var hang atomic.Bool
	eng, err := policy.New(ctx, policy.WithStore(hangingStore{st, &hang}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	const bound = 300 * time.Millisecond
	w := newWatcher(t, st, eng, WithPollInterval(time.Hour), WithListen(false), WithReloadTimeout(bound))
	hang.Store(true)
	w.cursor.Store(w.cursor.Load() + 100) // the database's revision is now behind: a reload
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- w.Sync(ctx) }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a hanging reload was not bounded")
	}
	if took := time.Since(start); !errors.Is(err, ErrBehind) || !errors.Is(err, context.DeadlineExceeded) || took < bound {
		t.Fatalf("Sync = %v after %v; want ErrBehind and a deadline, after %v", err, took, bound)
	}
	if _, err := eng.GetEntity(ctx, "e1"); err != nil {
		t.Fatalf("the failed reload changed the engine: %v", err)
	}
	if err := w.Behind(); !errors.Is(err, ErrBehind) {
		t.Fatalf("Behind = %v after a failed reload", err)
	}
	if w.reloadBound != bound {
		t.Fatalf("bound %v after a reload that read nothing, want %v still", w.reloadBound, bound)
	}
	hang.Store(false)
	if err := w.Sync(ctx); err != nil {
		t.Fatalf("Sync once the store answers: %v", err)
	}
	if err := w.Behind(); err != nil {
		t.Fatalf("Behind = %v after the reload", err)
	}
	if w.reloadBound != bound {
		t.Fatalf("bound %v after a reload that finished, want %v again", w.reloadBound, bound)
	}
}

// slowStore is a Store whose loads take delay per rule.
type slowStore struct {
	*Store
	delay time.Duration
}

func (s slowStore) LoadSnapshot(ctx context.Context, fn func(model.Rule) error) (int64, error) {
	return s.Store.LoadSnapshot(ctx, func(r model.Rule) error {
		time.Sleep(s.delay)
		return fn(r)
	})
}

// TestWatcherSlowReloadFinishes: a reload that times out while it is still
// reading rules is slow, not stuck: the next one gets twice the bound, and
// finishes.
func TestWatcherSlowReloadFinishes(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	st := newStore(t, b, b.open(t), newPrefix())
	eng, err := policy.New(ctx, policy.WithStore(slowStore{st, 40 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 { // 8 rules: 320 ms to load
		if _, err := eng.CreateEntity(ctx, "p1", model.EntityID(fmt.Sprintf("e%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	const bound = 250 * time.Millisecond
	w := newWatcher(t, st, eng, WithPollInterval(time.Hour), WithListen(false), WithReloadTimeout(bound))
	w.cursor.Store(w.cursor.Load() + 100) // a reload
	if err := w.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first reload: %v, want a deadline", err)
	}
	if w.reloadBound != 2*bound {
		t.Fatalf("bound %v after a slow reload timed out, want %v", w.reloadBound, 2*bound)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatalf("second reload, with twice the time: %v", err)
	}
	if w.reloadBound != bound {
		t.Fatalf("bound %v after the reload finished, want %v again", w.reloadBound, bound)
	}
}

// plainStore hides st's LoadSnapshot, as a wrapper that embeds only
// policy.Store does: its engine cannot tell which revision it loaded.
type plainStore struct{ policy.Store }

// TestWatcherNeedsSnapshotEngine: NewWatcher refuses an engine that does
// not load through st's LoadSnapshot. Its cursor would start at 0: it
// replayed every change over the loaded state, or, with a pruned feed,
// reloaded the whole policy on every catch-up.
func TestWatcherNeedsSnapshotEngine(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	st := newStore(t, b, b.open(t), newPrefix())
	eng, err := policy.New(ctx, policy.WithStore(plainStore{st}))
	if err != nil {
		t.Fatal(err)
	}
	if w, err := NewWatcher(ctx, st, eng); !errors.Is(err, ErrInvalid) {
		if w != nil {
			w.Close()
		}
		t.Fatalf("NewWatcher on an engine over a plain wrapper: %v, want ErrInvalid", err)
	}
}
