package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestFailedReloadMovesNoRevision: a watcher reload whose load fails after
// the rules were read (here the read transaction's COMMIT fails; on
// PostgreSQL and MySQL a reload deadline that expires just before it does
// the same) leaves the engine's old index, and must leave the store's
// revisions too: Load used to set them first, so that Lock's catch-up took
// the engine for current and let a change checked against the stale index
// commit.
func TestFailedReloadMovesNoRevision(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	prefix := newPrefix()
	dbA := b.open(t)
	var fail atomic.Bool
	if err := dbA.Callback().Raw().Before("gorm:raw").Register("test:failcommit", func(db *gorm.DB) {
		if fail.Load() && db.Statement.SQL.String() == "COMMIT" {
			_ = db.AddError(errors.New("injected: COMMIT of the read transaction failed"))
		}
	}); err != nil {
		t.Fatal(err)
	}
	stA := newStore(t, b, dbA, prefix)
	stB := newStore(t, b, b.open(t), prefix)
	engA, engB := newEngine(t, stA), newEngine(t, stB)
	wA := syncWatcher(t, stA, engA)
	syncWatcher(t, stB, engB)
	if _, err := engB.CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	if _, err := engB.CreateEntity(ctx, "p1", "e2"); err != nil {
		t.Fatal(err)
	}
	if _, err := stB.Prune(ctx, 2); err != nil { // keeps only row 2: A must reload
		t.Fatal(err)
	}
	fail.Store(true)
	err := wA.Sync(ctx)
	fail.Store(false)
	if err == nil {
		t.Fatal("Sync succeeded despite the injected failure")
	}
	t.Logf("Sync: %v", err)
	if _, err := engA.GetEntity(ctx, "e1"); err == nil {
		t.Fatal("engine swapped its index after a failed load")
	}
	t.Logf("after the failed reload: cursor %d, st.loaded %d, st.applied %d, wA.Revision %d",
		wA.cursor.Load(), stA.LoadedRevision(), stA.applied.Load(), wA.Revision())
	if wA.Revision() != 0 || stA.LoadedRevision() != 0 {
		t.Errorf("a failed Load moved the store's revisions: Revision %d, LoadedRevision %d (engine holds revision 0)",
			wA.Revision(), stA.LoadedRevision())
	}
	// A management call now: Lock's catch-up compares the database's
	// revision (2) with wA.Revision() (2) and does not catch up.
	if _, err := engA.CreateEntity(ctx, "p2", "e1"); err == nil {
		t.Errorf("CreateEntity(e1) on A succeeded although B created e1 at revision 1: validated against a stale index")
	} else {
		t.Logf("CreateEntity: %v", err)
	}
	t.Logf("stored: %v", storedRules(t, stB))
}

// TestPublishAfterAppReload: A commits a change in InTransaction
// (revision 2). Before the change is published to A's engine, B undoes it
// (revision 3) and the application reloads A's engine (snapshot at 3).
// The publication must not replay revision 2 over the reload (the
// watcher, which skips revision 3 as included in the reload, would never
// undo it).
func TestPublishAfterAppReload(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	stA, stB, engA, engB := twoReplicas(t, b)
	wA := syncWatcher(t, stA, engA)
	wB := syncWatcher(t, stB, engB)
	if _, err := engB.CreateEntity(ctx, "p1", "e1"); err != nil { // revision 1
		t.Fatal(err)
	}
	if err := wA.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- stA.InTransaction(ctx, func(c context.Context, tx *gorm.DB) error {
			if _, err := engA.CreateEntity(c, "p1", "e3"); err != nil { // revision 2
				return err
			}
			wA.syncMu.Lock() // publish will wait for it
			close(held)
			return nil
		})
	}()
	<-held
	waitRevision(t, stB, 2)
	if err := wB.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := engB.RemoveEntity(ctx, "e3"); err != nil { // revision 3
		t.Fatal(err)
	}
	if err := engA.Reload(ctx); err != nil { // the application reloads A: revision 3, no e3
		t.Fatal(err)
	}
	wA.syncMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := wA.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := engA.GetEntity(ctx, "e3"); err == nil {
		t.Errorf("A still has e3, which revision 3 removed; the database has %v", storedRules(t, stA))
	}
	assertSameRules(t, "A and the database", storedRules(t, stA), sortedRules(engA.Rules()))
}

// interleaved is a Store whose loads let another Load of the same *Store
// (another engine, an export through st.Load) finish before they return:
// what concurrency can do, made deterministic.
type interleaved struct {
	*Store
	other func()
}

func (s interleaved) LoadSnapshot(ctx context.Context, fn func(r model.Rule) error) (int64, error) {
	rev, err := s.Store.LoadSnapshot(ctx, fn)
	s.other()
	return rev, err
}

// TestLoadedRevisionPerLoad: another engine's load on the same *Store
// between a watcher reload's load and its reading of the revision must not
// give the watcher a later revision than its snapshot's (it read
// Store.LoadedRevision once, the store's last load's), or it would skip
// changes the engine never saw.
func TestLoadedRevisionPerLoad(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	prefix := newPrefix()
	stA := newStore(t, b, b.open(t), prefix)
	stB := newStore(t, b, b.open(t), prefix)
	engB := newEngine(t, stB)
	syncWatcher(t, stB, engB)
	var armed atomic.Bool
	wrap := interleaved{Store: stA, other: func() {
		if armed.CompareAndSwap(true, false) {
			if _, err := engB.CreateEntity(ctx, "p1", "e2"); err != nil { // revision 2
				t.Error(err)
			}
			if _, err := stA.LoadSnapshot(ctx, func(model.Rule) error { return nil }); err != nil { // another engine's load on stA: revision 2
				t.Error(err)
			}
		}
	}}
	engA, err := policy.New(ctx, policy.WithStore(wrap))
	if err != nil {
		t.Fatal(err)
	}
	wA := syncWatcher(t, stA, engA)
	if _, err := engB.CreateEntity(ctx, "p1", "e1"); err != nil { // revision 1
		t.Fatal(err)
	}
	armed.Store(true)
	if err := wA.reloadNow(ctx, "test"); err != nil { // snapshot at revision 1
		t.Fatal(err)
	}
	if err := wA.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := engA.GetEntity(ctx, "e2"); err != nil {
		t.Errorf("A misses e2 (revision 2) for good: %v; stored %v", err, storedRules(t, stB))
	}
}

// TestForeignLoadMovesNothing: another Load on the engine's Store (an
// export, a check) must not count as the engine's: it used to mark the
// revision it read as applied, so that the change lock's catch-up skipped
// changes the engine had not seen and a change checked without them
// committed.
func TestForeignLoadMovesNothing(t *testing.T) {
	ctx := context.Background()
	b := sqliteBackend(t)
	stA, _, engA, engB := twoReplicas(t, b)
	wA := syncWatcher(t, stA, engA)
	if _, err := engB.CreateEntity(ctx, "p1", "e2"); err != nil { // revision 1
		t.Fatal(err)
	}
	storedRules(t, stA) // another Load on stA
	if got := wA.Revision(); got != 0 {
		t.Fatalf("A's revision %d after another reader's Load; its engine holds 0", got)
	}
	if _, err := engA.CreateEntity(ctx, "p2", "e2"); err == nil {
		t.Fatalf("A created e2, which B created at revision 1: stored %v", storedRules(t, stA))
	}
}
