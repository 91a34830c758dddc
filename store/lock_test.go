package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestLockReloadWatcherClosed: a change that finds its engine behind a
// pruned change feed needs its watcher to reload; when the watcher is
// closed meanwhile (a shutdown), the change is refused with ErrBehind, not
// a nil-pointer panic (found in review).
func TestLockReloadWatcherClosed(t *testing.T) {
	ctx := context.Background()
	stA, stB, engA, engB := twoReplicas(t, sqliteBackend(t))
	var armed atomic.Bool
	var wA *Watcher
	wA = newWatcher(t, stA, engA, WithPollInterval(time.Hour), WithListen(false), withSyncHook(func(context.Context) error {
		if armed.CompareAndSwap(true, false) {
			go wA.Close() // the replica shuts down meanwhile
			for stA.watcherOf(engA) != nil {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	}))
	for _, e := range []model.EntityID{"e1", "e2"} { // revisions 1 and 2, on B
		if _, err := engB.CreateEntity(ctx, "p1", e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stB.Prune(ctx, 1); err != nil { // A never read revision 1
		t.Fatal(err)
	}
	armed.Store(true)
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("the change panicked: %v", r)
			}
		}()
		_, err = engA.CreateEntity(ctx, "p1", "e3")
	}()
	if !errors.Is(err, policy.ErrStorage) || !errors.Is(err, ErrBehind) {
		t.Fatalf("CreateEntity with the watcher closed: %v; want ErrStorage and ErrBehind", err)
	}
	if armed.Load() {
		t.Fatal("the change did not go through the reload path")
	}
}
