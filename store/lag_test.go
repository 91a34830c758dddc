package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// testBehind: a replica that knows it is behind says so (Watcher.Behind,
// Lag, a refused Commit), and catches up on its own once it can.
func testBehind(t *testing.T, b backend) {
	ctx := context.Background()
	_, stB, engA, engB := twoReplicas(t, b)
	var failing atomic.Bool
	errFeed := errors.New("feed unreachable (injected)")
	// B polls once an hour: it learns of A's changes from notifications
	// (PostgreSQL), from Sync and from its own store's commits.
	wB := newWatcher(t, stB, engB, WithPollInterval(time.Hour), withSyncHook(func(context.Context) error {
		if failing.Load() {
			return errFeed
		}
		return nil
	}))
	if err := wB.Behind(); err != nil {
		t.Fatalf("fresh replica: %v", err)
	}
	if l := wB.Lag(); l.Applied != 0 || l.Known != 0 || !l.Since.IsZero() || l.Err != nil || l.Checked.IsZero() || l.Behind() != 0 {
		t.Fatalf("fresh replica: %+v", l)
	}

	failing.Store(true)
	setupEntity(t, ctx, engA, "e1")
	rev := engA.Revision()
	if b.name == dialectPostgres {
		// The notification alone tells B what is committed.
		deadline := time.Now().Add(10 * time.Second)
		for wB.Known() != rev {
			if time.Now().After(deadline) {
				t.Fatalf("no notification of revision %d: %+v", rev, wB.Lag())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !wB.Lag().Listening {
			t.Fatal("Lag.Listening is false with notifications arriving")
		}
	} else {
		// Nothing told B yet: it does not know, and says nothing.
		if err := wB.Behind(); err != nil {
			t.Fatalf("Behind before anything told B: %v", err)
		}
		err := wB.Sync(ctx)
		if !errors.Is(err, ErrBehind) || !errors.Is(err, errFeed) {
			t.Fatalf("Sync with the feed failing = %v, want ErrBehind and the cause", err)
		}
	}
	err := wB.Behind()
	if !errors.Is(err, ErrBehind) {
		t.Fatalf("Behind = %v, want ErrBehind", err)
	}
	t.Logf("Behind: %v", err)
	l := wB.Lag()
	if l.Applied != 0 || l.Known != rev || l.Behind() != rev || l.Since.IsZero() {
		t.Fatalf("Lag = %+v, want applied 0, known %d, a Since", l, rev)
	}

	// A change made on B's stale index is refused, saying why.
	_, err = engB.CreateEntity(ctx, "p1", "e2")
	if !errors.Is(err, ErrBehind) || !errors.Is(err, ErrConflict) || !errors.Is(err, policy.ErrStorage) {
		t.Fatalf("change on a stale replica = %v, want ErrConflict and ErrBehind", err)
	}
	if _, err := engB.GetEntity(ctx, "e2"); !errors.Is(err, policy.ErrNotFound) {
		t.Fatalf("refused change published: %v", err)
	}

	// The refused commit woke B's watcher, which keeps retrying (not once
	// per poll interval): once the feed answers, B catches up by itself.
	failing.Store(false)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wB.Wait(wctx, wB.Known()); err != nil {
		t.Fatalf("B did not catch up by itself: %v (%+v)", err, wB.Lag())
	}
	deadline := time.Now().Add(10 * time.Second)
	for wB.Behind() != nil { // the successful Sync clears Err right after it applied
		if time.Now().After(deadline) {
			t.Fatalf("still behind after catching up: %v", wB.Behind())
		}
		time.Sleep(time.Millisecond)
	}
	if l := wB.Lag(); l.Applied != rev || l.Known != rev || !l.Since.IsZero() || l.Err != nil {
		t.Fatalf("Lag after catching up = %+v", l)
	}
	assertSameRules(t, "after catching up", sortedRules(engA.Rules()), sortedRules(engB.Rules()))

	// Caught up, B's change goes through; Sync is the one-round-trip way to
	// be sure before validating a change.
	if err := wB.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := engB.CreateEntity(ctx, "p1", "e2"); err != nil {
		t.Fatal(err)
	}
	if err := wB.Behind(); err != nil {
		t.Fatalf("after its own commit: %v", err)
	}

	wB.Close()
	if err := wB.Behind(); !errors.Is(err, ErrBehind) || !errors.Is(err, ErrClosed) {
		t.Fatalf("closed watcher: Behind = %v", err)
	}
}

// testDatabaseReset: when the database goes back (restored from an older
// backup, or emptied), a watcher reloads once and follows the feed from
// there, and its replica (watcher and engine) does not stay "behind" a
// revision that is gone.
func testDatabaseReset(t *testing.T, b backend) {
	ctx := context.Background()
	stA, stB, engA, engB := twoReplicas(t, b)
	w := syncWatcher(t, stB, engB)
	setupEntity(t, ctx, engA, "e1")
	if err := w.Sync(ctx); err != nil || w.Revision() != 5 {
		t.Fatalf("Sync: %v, at %d", err, w.Revision())
	}
	// Empty the database and start again: revision 1 is another change.
	if err := stA.dropTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stA.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	engA2 := newEngine(t, stA)
	if _, err := engA2.CreateEntity(ctx, "p2", "e2"); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Behind(); err != nil || w.Revision() != 1 {
		t.Fatalf("after the reset: at %d, %v", w.Revision(), err)
	}
	// The engine's revision goes back with the database's, so that waiting
	// for it on the watcher returns.
	if got := engB.Revision(); got != 1 {
		t.Fatalf("engine revision %d after the reset, want 1", got)
	}
	assertSameRules(t, "after the reset", storedRules(t, stA), sortedRules(engB.Rules()))
	if _, err := engA2.CreateEntity(ctx, "p2", "e3"); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(sctx); err != nil || w.Revision() != 2 {
		t.Fatalf("following the new feed: at %d, %v", w.Revision(), err)
	}
	assertSameRules(t, "following the new feed", storedRules(t, stA), sortedRules(engB.Rules()))
}

// TestNotificationsOfAnotherSchema: two deployments in two schemas of one
// PostgreSQL database, with the same table prefix, share the NOTIFY
// channel. A replica takes only its own feed's notifications: the other
// deployment's revisions made it "behind" for good (Known 5, Applied 0),
// and Behind, the middleware's Fresh check, refused every request.
func TestNotificationsOfAnotherSchema(t *testing.T) {
	b := postgresBackend(t)
	ctx := context.Background()
	dsn := dsnOf(t, b)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	admin := openDSN(t, dsn)
	prefix := newPrefix()
	var stores [3]*Store // A and A2 in one schema, B in another
	for i, schema := range []string{prefix + "a", prefix + "a", prefix + "b"} {
		if err := admin.Exec("CREATE SCHEMA IF NOT EXISTS " + schema).Error; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE") })
		st, err := New(ctx, openDSN(t, dsn+sep+"search_path="+schema), WithTablePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		stores[i] = st
	}
	engA, engA2, engB := newEngine(t, stores[0]), newEngine(t, stores[1]), newEngine(t, stores[2])
	wA := newWatcher(t, stores[0], engA, WithPollInterval(time.Hour))
	newWatcher(t, stores[1], engA2, WithPollInterval(time.Hour))
	waitFor(t, 5*time.Second, "A listening", func() bool { return wA.Lag().Listening })
	for i := range 5 {
		if _, err := engB.CreateEntity(ctx, "p1", model.EntityID(fmt.Sprint("b", i))); err != nil {
			t.Fatal(err)
		}
	}
	// A change of A's own deployment, committed after B's: its
	// notification comes after theirs.
	if _, err := engA2.CreateEntity(ctx, "p1", "a0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "A applying its deployment's change", func() bool { return wA.Revision() == 1 })
	if l := wA.Lag(); l.Known != 1 || l.Behind() != 0 {
		t.Fatalf("A's lag = %+v: want known 1, not behind (B's 5 changes are another deployment's)", l)
	}
	if err := wA.Behind(); err != nil {
		t.Fatalf("Behind: %v", err)
	}
	if _, err := engA.GetEntity(ctx, "b0"); err == nil {
		t.Fatal("A holds B's entity")
	}
}

// TestWatcherReadsOnlyCommittedMySQL: on a MySQL server set to READ
// UNCOMMITTED, a watcher does not apply a change that another replica's
// open transaction has written: it applied it, and the replica decided
// on a change that was then rolled back.
func TestWatcherReadsOnlyCommittedMySQL(t *testing.T) {
	b := mysqlBackend(t)
	dsn := dsnOf(t, b)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	dsn += sep + "tx_isolation=%27READ-UNCOMMITTED%27" // MariaDB's name of the variable
	var level string
	if err := openDSN(t, dsn).Raw("SELECT @@session.tx_isolation").Scan(&level).Error; err != nil || level != "READ-UNCOMMITTED" {
		t.Fatalf("tx_isolation = %q, %v; want READ-UNCOMMITTED", level, err)
	}
	ctx := context.Background()
	stA, stB, engA, engB := twoReplicas(t, backend{b.name, func(t testing.TB) *gorm.DB { return openDSN(t, dsn) }})
	wB := syncWatcher(t, stB, engB)
	errRollback := errors.New("rolled back (on purpose)")
	end := openTransaction(t, stA, func(ctx context.Context) error {
		_, err := engA.CreateEntity(ctx, "p1", "ghost")
		return err
	})
	syncErr := wB.Sync(ctx)
	_, getErr := engB.GetEntity(ctx, "ghost")
	rev := wB.Revision()
	audit, auditErr := stB.Audit(ctx, AuditFilter{})
	if err := end(errRollback); !errors.Is(err, errRollback) {
		t.Fatalf("InTransaction = %v, want the rollback", err)
	}
	if syncErr != nil {
		t.Fatalf("Sync: %v", syncErr)
	}
	if !errors.Is(getErr, policy.ErrNotFound) || rev != 0 {
		t.Fatalf("B applied an uncommitted change: GetEntity = %v, revision %d", getErr, rev)
	}
	if auditErr != nil || len(audit) != 0 {
		t.Fatalf("the audit trail showed an uncommitted change: %+v, %v", audit, auditErr)
	}
}

// TestNotificationsAfterTablesRemade: a listening watcher still hears its
// feed after the tables were dropped and made again (a restore: a new
// oid), and reloads rather than taking the new feed's revisions for the
// old one's continuation. It took the new feed's notifications for another
// deployment's and ignored them, listening but deaf until its next poll;
// and the poll applied only the revisions above its old cursor, keeping
// entities the new tables do not have.
func TestNotificationsAfterTablesRemade(t *testing.T) {
	stA, engB, wB := remadeTables(t)
	if err := wB.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertSameRules(t, "B and the new tables", storedRules(t, stA), sortedRules(engB.Rules()))
	if err := wB.Behind(); err != nil {
		t.Fatalf("Behind: %v", err)
	}
}

// remadeTables: replica B, listening, applies revision 1 (entity e1) of
// replica A; then A's tables are dropped and made again, and a new engine
// on them makes revisions 1 to 3 (n0, n1, n2). It returns once B has heard
// of revision 3.
func remadeTables(t *testing.T, opts ...WatcherOption) (stA *Store, engB *policy.Engine, wB *Watcher) {
	t.Helper()
	ctx := context.Background()
	stA, stB, engA, engB := twoReplicas(t, postgresBackend(t))
	wB = newWatcher(t, stB, engB, append([]WatcherOption{WithPollInterval(time.Hour)}, opts...)...)
	waitFor(t, 5*time.Second, "B listening", func() bool { return wB.Lag().Listening })
	if _, err := engA.CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B applying revision 1", func() bool { return wB.Revision() == 1 })
	if err := stA.dropTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stA.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	engA2 := newEngine(t, stA)
	for i := range 3 {
		if _, err := engA2.CreateEntity(ctx, "p1", model.EntityID(fmt.Sprint("n", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "B hearing of revision 3 of the new tables", func() bool { return wB.Known() == 3 })
	return stA, engB, wB
}

// TestRemadeSurvivesFailedReload: when the reload that a remade feed asks
// for fails, the next sync tries it again, rather than taking the new
// feed's revisions for the old one's continuation (the flag was cleared
// before the reload, and lost with it).
func TestRemadeSurvivesFailedReload(t *testing.T) {
	_, engB, wB := remadeTables(t, WithReloadTimeout(time.Nanosecond)) // every reload fails
	for i := range 2 {
		if err := wB.Sync(context.Background()); err == nil {
			t.Fatalf("sync %d after the tables were remade succeeded with every reload failing", i+1)
		}
	}
	if _, err := engB.GetEntity(context.Background(), "n0"); err == nil {
		t.Fatal("B applied the new feed's changes as the old one's")
	}
	if err := wB.Behind(); err == nil {
		t.Fatal("Behind: nil with the reload failing")
	}
}

// TestWriteAfterTablesRemade: a change made on a replica that knows its
// feed's tables were made again reloads first (and is refused while the
// reload fails), rather than catching up by applying the new feed as the
// old one's continuation under the change lock and committing on that
// mixed state.
func TestWriteAfterTablesRemade(t *testing.T) {
	ctx := context.Background()
	t.Run("reload fails", func(t *testing.T) {
		_, engB, _ := remadeTables(t, WithReloadTimeout(time.Nanosecond))
		if _, err := engB.CreateEntity(ctx, "p1", "x"); !errors.Is(err, ErrBehind) {
			t.Fatalf("change = %v, want ErrBehind", err)
		}
		if _, err := engB.GetEntity(ctx, "n1"); err == nil {
			t.Fatal("B applied the new feed's changes as the old one's")
		}
	})
	t.Run("reload works", func(t *testing.T) {
		stA, engB, _ := remadeTables(t)
		if _, err := engB.CreateEntity(ctx, "p1", "x"); err != nil {
			t.Fatal(err)
		}
		assertSameRules(t, "B and the new tables", storedRules(t, stA), sortedRules(engB.Rules()))
	})
}
