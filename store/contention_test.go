package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

func TestReplicaContendedSQLite(t *testing.T)   { runContended(t, sqliteBackend(t)) }
func TestReplicaContendedPostgres(t *testing.T) { runContended(t, postgresBackend(t)) }
func TestReplicaContendedMySQL(t *testing.T)    { runContended(t, mysqlBackend(t)) }

// TestReplicaContendedPostgresIsolation is runContended on a PostgreSQL
// whose default isolation is REPEATABLE READ or SERIALIZABLE (set for the
// connection in the DSN, as ALTER DATABASE or ALTER ROLE would set it for
// every one). The store's transactions run at READ COMMITTED all the same:
// under the stricter levels, the change lock's UPDATE of a row another
// replica had just committed failed with a serialization error (40001).
func TestReplicaContendedPostgresIsolation(t *testing.T) {
	for _, level := range strictLevels {
		t.Run(level, func(t *testing.T) { runContended(t, postgresAt(t, level)) })
	}
}

// strictLevels are PostgreSQL's isolation levels above its default.
var strictLevels = []string{"repeatable read", "serializable"}

// postgresAt is the PostgreSQL backend with default_transaction_isolation
// set to level for its connections (in the DSN, as ALTER DATABASE or ALTER
// ROLE would set it for every one).
func postgresAt(t *testing.T, level string) backend {
	b := postgresBackend(t)
	dsn := dsnOf(t, b)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	dsn += sep + "default_transaction_isolation=" + strings.ReplaceAll(level, " ", "%20")
	// The server takes the setting: else the tests prove nothing.
	var got string
	if err := openDSN(t, dsn).Raw("SHOW default_transaction_isolation").Scan(&got).Error; err != nil || got != level {
		t.Fatalf("default_transaction_isolation = %q, %v; want %q", got, err, level)
	}
	return backend{b.name, func(t testing.TB) *gorm.DB { return openDSN(t, dsn) }}
}

// TestConcurrentPrunePostgresIsolation: two replicas pruning the change
// feed at once, on a PostgreSQL whose default isolation is above READ
// COMMITTED, both succeed (a DELETE of rows the other had just deleted
// failed with 40001).
func TestConcurrentPrunePostgresIsolation(t *testing.T) {
	for _, level := range strictLevels {
		t.Run(level, func(t *testing.T) {
			ctx := context.Background()
			stA, stB, engA, _ := twoReplicas(t, postgresAt(t, level))
			for round := range 10 {
				for i := range 5 {
					if _, err := engA.CreateEntity(ctx, "p1", model.EntityID(fmt.Sprintf("e%d-%d", round, i))); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				errs := make(chan error, 2)
				for _, st := range []*Store{stA, stB} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := st.Prune(ctx, engA.Revision()); err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Errorf("round %d: %v", round, err)
				}
			}
		})
	}
}

// runContended: replica B commits continuously while replica A makes n
// changes, each called once, with no retry, and each after B committed
// again (so A is behind the database when it starts nearly every one). Every one of A's changes must
// succeed (the store catches A up under the change lock before A
// validates, so a writer that got the lock is never behind), B's too, and
// at the end both replicas hold the stored policy and decide alike. Then
// A runs application transactions (Store.InTransaction) with a plain
// writer beside them on the same engine: all go through.
func runContended(t *testing.T, b backend) {
	const (
		n = 40 // plain changes
		m = 10 // transactions (two changes each), and plain changes beside them
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
		// A's watcher neither polls nor listens: A is behind at nearly
		// every call, and only the change lock catches it up.
		opts := []WatcherOption{WithPollInterval(time.Hour), WithListen(false)}
		if i == 1 {
			opts = []WatcherOption{WithPollInterval(50 * time.Millisecond)}
		}
		w, err := NewWatcher(ctx, st, eng, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		rs[i] = replica{st, eng, w}
	}
	a, bb := rs[0], rs[1]
	if err := a.st.DB().Exec("CREATE TABLE " + prefix + "app (id INTEGER PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.st.DB().Exec("DROP TABLE IF EXISTS " + prefix + "app") })
	if _, err := a.eng.CreateEntity(ctx, "p1", "ea"); err != nil {
		t.Fatal(err)
	}
	if err := bb.w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bb.eng.CreateEntity(ctx, "p2", "eb"); err != nil {
		t.Fatal(err)
	}

	// B: toggles a user of its entity, as fast as it can with a 1 ms pause.
	var (
		stop     atomic.Bool
		bCommits atomic.Int64
		bErrs    []error
		bMu      sync.Mutex
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			var err error
			if i%2 == 0 {
				_, err = bb.eng.AddUser(ctx, "eb", "v1", "")
			} else {
				err = bb.eng.RemoveUser(ctx, "eb", "v1")
			}
			if err != nil {
				bMu.Lock()
				bErrs = append(bErrs, err)
				bMu.Unlock()
			} else {
				bCommits.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// Let B get going.
	for deadline := time.Now().Add(10 * time.Second); bCommits.Load() < 5; {
		if time.Now().After(deadline) {
			stop.Store(true)
			<-done
			t.Fatalf("B committed %d changes in 10 s: %v", bCommits.Load(), bErrs)
		}
		time.Sleep(time.Millisecond)
	}

	var (
		failed   []string
		roles    []model.RoleID
		behind   int
		start    = time.Now()
		bAtStart = bCommits.Load()
	)
	for i := range n {
		// B commits between any two of A's changes (SQLite's write lock is
		// not fair: A alone could keep it).
		for last, deadline := bCommits.Load(), time.Now().Add(10*time.Second); bCommits.Load() == last; {
			if time.Now().After(deadline) {
				stop.Store(true)
				<-done
				t.Fatalf("B committed nothing for 10 s: %v", bErrs)
			}
			time.Sleep(100 * time.Microsecond)
		}
		if rev, err := a.st.Revision(ctx); err == nil && rev > a.w.Revision() {
			behind++
		}
		var err error
		switch {
		case i%4 == 0 || len(roles) == 0:
			var r policy.Role
			r, err = a.eng.CreateRole(ctx, "ea", policy.RoleSpec{Name: fmt.Sprintf("role %d", i),
				Permissions: model.Permissions{a.eng.Catalog().Keys()[i%5]: model.Allowed}})
			if err == nil {
				roles = append(roles, r.ID)
			}
		case i%4 == 3:
			err = a.eng.SetDefaultRole(ctx, "ea", roles[i%len(roles)])
		default:
			_, err = a.eng.AddUser(ctx, "ea", model.UserID(fmt.Sprintf("a%d", i)), roles[i%len(roles)])
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("change %d: %v", i, err))
		}
	}

	// Then application transactions on A, each with two changes and a
	// write of its own, while another goroutine makes plain changes on A
	// (it waits for the lock without holding A's mutex, which the
	// transaction's second change needs) and B goes on.
	var (
		plainErrs []error
		plainDone = make(chan struct{})
	)
	go func() {
		defer close(plainDone)
		for i := range m {
			if _, err := a.eng.AddUser(ctx, "ea", model.UserID(fmt.Sprintf("p%d", i)), ""); err != nil {
				plainErrs = append(plainErrs, err)
			}
		}
	}()
	for i := range m {
		err := a.st.InTransaction(ctx, func(ctx context.Context, tx *gorm.DB) error {
			if _, err := a.eng.CreateRole(ctx, "ea", policy.RoleSpec{Name: fmt.Sprintf("tx role %d", i)}); err != nil {
				return err
			}
			// (Changes made earlier in the transaction are not visible to
			// later ones before the commit: an existing role.)
			if _, err := a.eng.AddUser(ctx, "ea", model.UserID(fmt.Sprintf("t%d", i)), roles[i%len(roles)]); err != nil {
				return err
			}
			return tx.Exec("INSERT INTO "+prefix+"app (id) VALUES (?)", i).Error
		})
		if err != nil {
			failed = append(failed, fmt.Sprintf("transaction %d: %v", i, err))
		}
	}
	<-plainDone
	for _, err := range plainErrs {
		failed = append(failed, fmt.Sprintf("plain change during the transactions: %v", err))
	}
	elapsed := time.Since(start)
	bDuring := bCommits.Load() - bAtStart
	stop.Store(true)
	<-done

	t.Logf("A: %d of %d plain changes and %d transactions with %d plain changes beside them succeeded first time in %v (%d failures), behind the database before %d of the first %d; B committed %d changes meanwhile (%d refused)",
		n-min(len(failed), n), n, m, m, elapsed.Round(time.Millisecond), len(failed), behind, n, bDuring, len(bErrs))
	for _, f := range failed {
		t.Errorf("A's %s", f)
	}
	for _, err := range bErrs[:min(len(bErrs), 5)] {
		t.Errorf("B's change refused: %v", err)
	}
	if behind < n/2 {
		t.Errorf("A was behind before only %d of its %d changes: too little contention to tell", behind, n)
	}
	if t.Failed() {
		return
	}

	latest, err := a.st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		// A's watcher does not poll: Sync is its way to hear of B's last
		// changes.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.w.Sync(sctx)
		cancel()
		if err != nil || r.w.Revision() != latest {
			t.Fatalf("replica %d at %d, store at %d: %v", i, r.w.Revision(), latest, err)
		}
	}
	var appRows int64
	if err := a.st.DB().Table(prefix + "app").Count(&appRows).Error; err != nil || appRows != m {
		t.Errorf("%d application rows (%v), want %d", appRows, err, m)
	}
	if want := int64(2 + n + 3*m + bCommits.Load()); latest != want {
		t.Errorf("store revision %d, want %d (one per successful change)", latest, want)
	}
	stored := storedRules(t, a.st)
	assertSameRules(t, "replica A vs stored", stored, sortedRules(a.eng.Rules()))
	assertSameRules(t, "replica B vs stored", stored, sortedRules(bb.eng.Rules()))
	reqs := randomRequests(rand.New(rand.NewPCG(5, 5)), a.eng.Catalog(), 2000)
	for i := range reqs {
		if i%2 == 0 {
			reqs[i].Entity = "ea"
			reqs[i].Subject = model.User(model.UserID(fmt.Sprintf("a%d", i%n)))
		}
	}
	assertSameDecisions(t, a.eng, bb.eng, reqs)
	if _, err := a.eng.GetEntity(ctx, "eb"); err != nil {
		t.Errorf("A does not see B's entity: %v", err)
	}
	if errors.Is(a.w.Behind(), ErrBehind) || errors.Is(bb.w.Behind(), ErrBehind) {
		t.Errorf("caught up, yet behind: %v / %v", a.w.Behind(), bb.w.Behind())
	}
}

// testLockReloads: when the change lock finds a feed that cannot be
// followed change by change (pruned past the replica, or asking for a
// reload), the replica reloads outside the lock and its change goes
// through.
func testLockReloads(t *testing.T, b backend) {
	ctx := context.Background()
	stA, stB, engA, engB := twoReplicas(t, b)
	wA := syncWatcher(t, stA, engA)
	wB := syncWatcher(t, stB, engB)

	setupEntity(t, ctx, engB, "e1")
	if _, err := stB.Prune(ctx, engB.Revision()); err != nil {
		t.Fatal(err)
	}
	if _, err := engA.CreateEntity(ctx, "p1", "e2"); err != nil {
		t.Fatalf("change after the feed was pruned: %v", err)
	}
	if _, err := engA.GetEntity(ctx, "e1"); err != nil {
		t.Fatalf("A did not reload: %v", err)
	}

	// Rules written through the adapter, and a reload row.
	if err := stB.Adapter().AddPolicy("g", "g2", []string{"partner:p2", "entity:e9"}); err != nil {
		t.Fatal(err)
	}
	if err := wB.Update(); err != nil {
		t.Fatal(err)
	}
	if _, err := engA.CreateEntity(ctx, "p1", "e3"); err != nil {
		t.Fatalf("change after a reload row: %v", err)
	}
	if _, err := engA.GetEntity(ctx, "e9"); err != nil {
		t.Fatalf("A did not reload: %v", err)
	}
	if err := wB.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	stored := storedRules(t, stA)
	assertSameRules(t, "A", stored, sortedRules(engA.Rules()))
	assertSameRules(t, "B", stored, sortedRules(engB.Rules()))
	if err := wA.Behind(); err != nil {
		t.Fatalf("A behind: %v", err)
	}
}
