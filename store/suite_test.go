package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

func TestSQLite(t *testing.T)   { runSuite(t, sqliteBackend(t)) }
func TestPostgres(t *testing.T) { runSuite(t, postgresBackend(t)) }
func TestMySQL(t *testing.T)    { runSuite(t, mysqlBackend(t)) }

// runSuite is the store test suite, run against every database.
func runSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"MigrateIdempotent", testMigrateIdempotent},
		{"Restart", testRestart},
		{"Faults", testFaults},
		{"AppTransaction", testAppTransaction},
		{"Audit", testAudit},
		{"ActorLimits", testActorLimits},
		{"WatcherCatchUpAndPrune", testWatcherCatchUp},
		{"WatcherNoLeak", testWatcherNoLeak},
		{"Behind", testBehind},
		{"DatabaseReset", testDatabaseReset},
		{"LockReloads", testLockReloads},
		{"LoadDuringWrite", testLoadDuringWrite},
		{"InTransactionSeesItsChanges", testInTransactionSeesItsChanges},
		{"HoldChangeLock", testHoldChangeLock},
		{"HoldChangeLockAfterRead", testHoldChangeLockAfterRead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func setupEntity(t *testing.T, ctx context.Context, eng *policy.Engine, e model.EntityID) policy.Role {
	t.Helper()
	if _, err := eng.CreateEntity(ctx, "p1", e); err != nil {
		t.Fatal(err)
	}
	keys := eng.Catalog().Keys()
	r, err := eng.CreateRole(ctx, e, policy.RoleSpec{Name: "Admin", Permissions: model.Permissions{keys[0]: model.Allowed, keys[1]: model.AllowedForOwn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddUser(ctx, e, model.UserID("alice-"+string(e)), r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddUser(ctx, e, model.UserID("bob-"+string(e)), ""); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetDefaultRole(ctx, e, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

func testRoundTrip(t *testing.T, b backend) {
	ctx := context.Background()
	prefix := newPrefix()
	st := newStore(t, b, b.open(t), prefix)
	eng := newEngine(t, st)
	if got := eng.Rules(); len(got) != 0 {
		t.Fatalf("empty store loaded %d rules", len(got))
	}
	setupEntity(t, ctx, eng, "e1")
	setupEntity(t, ctx, eng, "e2")

	rev, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev != 10 || eng.Revision() != rev {
		t.Fatalf("store revision %d, engine revision %d, want 10 (one per change)", rev, eng.Revision())
	}
	want := sortedRules(eng.Rules())
	assertSameRules(t, "stored vs engine", want, storedRules(t, st))

	// The rows are in the prefixed table, in gorm-adapter's layout.
	var n int64
	if err := st.DB().Table(prefix + "rules").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) {
		t.Fatalf("%srules holds %d rows, want %d", prefix, n, len(want))
	}

	// gorm-adapter's own LoadPolicy sees the same rules.
	m, err := model.NewCasbinModel()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Adapter().LoadPolicy(m); err != nil {
		t.Fatal(err)
	}
	var viaAdapter []model.Rule
	for _, sec := range []string{"p", "g"} {
		for ptype, ast := range m[sec] {
			for _, v := range ast.Policy {
				viaAdapter = append(viaAdapter, model.Rule{PType: ptype, Values: v})
			}
		}
	}
	assertSameRules(t, "adapter LoadPolicy", want, sortedRules(viaAdapter))

	// A second store over a new pool loads the same.
	st2 := newStore(t, b, b.open(t), prefix)
	eng2 := newEngine(t, st2)
	assertSameRules(t, "reopened", want, sortedRules(eng2.Rules()))
	if st2.LoadedRevision() != rev {
		t.Fatalf("LoadedRevision %d, want %d", st2.LoadedRevision(), rev)
	}
}

func testMigrateIdempotent(t *testing.T, b backend) {
	ctx := context.Background()
	prefix := newPrefix()
	db := b.open(t)
	st, err := New(ctx, db, WithTablePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	// No schema change before Migrate.
	if db.Migrator().HasTable(prefix + "rules") {
		t.Fatal("New created the rules table")
	}
	if _, err := st.Revision(ctx); err == nil {
		t.Fatal("Revision before Migrate: no error")
	}
	st = newStore(t, b, db, prefix)
	eng := newEngine(t, st)
	setupEntity(t, ctx, eng, "e1")
	for range 2 {
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	assertSameRules(t, "after Migrate", sortedRules(eng.Rules()), storedRules(t, st))
	for _, tb := range []string{prefix + "rules", prefix + "changes", prefix + "revision"} {
		if !db.Migrator().HasTable(tb) {
			t.Fatalf("table %s missing", tb)
		}
	}
	for _, prefix := range []string{"", "1abc", "a-b", "a;drop"} {
		if _, err := New(ctx, db, WithTablePrefix(prefix)); err == nil {
			t.Errorf("prefix %q accepted", prefix)
		}
	}
}

func testRestart(t *testing.T, b backend) {
	ctx := context.Background()
	prefix := newPrefix()
	st := newStore(t, b, b.open(t), prefix)
	eng := newEngine(t, st)
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	ok := 0
	for range 300 {
		op, err := randomOp(ctx, rng, eng)
		if errors.Is(err, policy.ErrStorage) {
			t.Fatalf("%s: %v", op, err)
		}
		if err == nil {
			ok++
		}
	}
	t.Logf("%d of 300 random changes succeeded, %d rules", ok, len(eng.Rules()))
	want := sortedRules(eng.Rules())
	assertSameRules(t, "stored", want, storedRules(t, st))

	// Small batches: the load pages through the table.
	st2 := newStore(t, b, b.open(t), prefix, WithLoadBatchSize(7))
	eng2 := newEngine(t, st2)
	assertSameRules(t, "restarted engine", want, sortedRules(eng2.Rules()))
	assertSameDecisions(t, eng, eng2, randomRequests(rng, eng.Catalog(), 3000))
}

// killConn breaks the transaction's connection the way a crash or a
// network failure would.
func killConn(tx *gorm.DB, dialect string) error {
	switch dialect {
	case dialectPostgres:
		return tx.Exec("SELECT pg_terminate_backend(pg_backend_pid())").Error
	case dialectMySQL:
		var id int64
		if err := tx.Raw("SELECT CONNECTION_ID()").Scan(&id).Error; err != nil {
			return err
		}
		return tx.Exec(fmt.Sprintf("KILL %d", id)).Error
	default:
		sqlDB, err := tx.DB()
		if err != nil {
			return err
		}
		_ = sqlDB.Close()
		return errors.New("database closed")
	}
}

func testFaults(t *testing.T, b backend) {
	errInjected := errors.New("injected fault")
	keys := func(eng *policy.Engine) []model.Key { return eng.Catalog().Keys() }
	// Each case makes a multi-rule change (a role update: its declaration
	// and several permissions) fail part way through.
	tests := []struct {
		name  string
		step  string                                           // where the hook strikes ("" = no hook)
		fault func(t *testing.T, st *Store, tx *gorm.DB) error // run at step
		prep  func(t *testing.T, st *Store, eng *policy.Engine, role policy.Role)
		want  error
	}{
		{name: "injected error after removal", step: "removed",
			fault: func(*testing.T, *Store, *gorm.DB) error { return errInjected }, want: errInjected},
		{name: "injected error after feed row", step: "fed",
			fault: func(*testing.T, *Store, *gorm.DB) error { return errInjected }, want: errInjected},
		{name: "connection lost mid-change", step: "added",
			fault: func(t *testing.T, st *Store, tx *gorm.DB) error { return killConn(tx, st.dialect) }},
		{name: "unique constraint violated", want: ErrConflict,
			prep: func(t *testing.T, st *Store, eng *policy.Engine, role policy.Role) {
				// Store, behind the engine's back, one rule the update adds.
				row := gormadapter.CasbinRule{Ptype: "p", V0: "role:" + string(role.ID), V1: "entity:e1",
					V2: string(keys(eng)[5].Object), V3: string(keys(eng)[5].Action), V4: "allowed"}
				if err := st.DB().Table(st.RulesTable()).Create(&row).Error; err != nil {
					t.Fatal(err)
				}
			}},
		{name: "removed rule missing", want: ErrConflict,
			prep: func(t *testing.T, st *Store, eng *policy.Engine, role policy.Role) {
				err := st.DB().Exec("DELETE FROM "+st.RulesTable()+" WHERE ptype = ? AND v0 = ?", "p2", "role:"+string(role.ID)).Error
				if err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			prefix := newPrefix()
			var (
				armed bool
				st    *Store
			)
			st = newStore(t, b, b.open(t), prefix, withHook(func(ctx context.Context, tx *gorm.DB, step string) error {
				if !armed || step != tc.step {
					return nil
				}
				armed = false
				return tc.fault(t, st, tx)
			}))
			eng := newEngine(t, st)
			role := setupEntity(t, ctx, eng, "e1")
			if tc.prep != nil {
				tc.prep(t, st, eng, role)
			}
			before := sortedRules(eng.Rules())
			stored := storedRules(t, st)
			rev := eng.Revision()
			probe := newEngine(t, st) // the stored state, as a reference for decisions
			reqs := randomRequests(rand.New(rand.NewPCG(2, 3)), eng.Catalog(), 500)
			for i := range reqs {
				reqs[i].Entity = "e1"
				if i%2 == 0 {
					reqs[i].Subject = model.User("alice-e1")
				}
			}

			ps := model.Permissions{}
			for _, k := range keys(eng)[2:8] {
				ps[k] = model.Allowed
			}
			name := "Renamed"
			armed = tc.step != ""
			_, err := eng.UpdateRole(ctx, "e1", role.ID, policy.RoleUpdate{Name: &name, Permissions: ps})
			if err == nil {
				t.Fatal("UpdateRole succeeded despite the fault")
			}
			if !errors.Is(err, policy.ErrStorage) {
				t.Errorf("error %v does not wrap policy.ErrStorage", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v does not wrap %v", err, tc.want)
			}
			t.Logf("error: %v", err)

			// Nothing half-written: read through a fresh pool.
			st2 := newStore(t, b, b.open(t), prefix)
			assertSameRules(t, "stored after the fault", stored, storedRules(t, st2))
			if r, err := st2.Revision(ctx); err != nil || r != rev {
				t.Fatalf("store revision %d (%v), want %d", r, err, rev)
			}
			// The engine's index is unchanged.
			assertSameRules(t, "engine after the fault", before, sortedRules(eng.Rules()))
			assertSameDecisions(t, eng, probe, reqs)
			if eng.Revision() != rev {
				t.Fatalf("engine revision moved to %d", eng.Revision())
			}
		})
	}
}

func testAppTransaction(t *testing.T, b backend) {
	ctx := context.Background()
	prefix := newPrefix()
	db := b.open(t)
	st := newStore(t, b, db, prefix)
	if err := db.Exec("CREATE TABLE " + prefix + "app (id INTEGER PRIMARY KEY, note VARCHAR(50) NOT NULL UNIQUE)").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + prefix + "app") })
	eng := newEngine(t, st)
	setupEntity(t, ctx, eng, "e1")
	appRows := func() int64 {
		var n int64
		if err := db.Table(prefix + "app").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	alice := policy.Request{Subject: model.User("carol"), Entity: "e1", Object: eng.Catalog().Keys()[0].Object, Action: eng.Catalog().Keys()[0].Action}

	tests := []struct {
		name       string
		appErr     bool // the application's own write fails
		failChange bool // the policy change fails and the application ignores it
		fnErr      error
		wantKept   bool
	}{
		{name: "committed", wantKept: true},
		{name: "rolled back by the application", fnErr: errors.New("app says no")},
		{name: "rolled back by a failed application write", appErr: true},
		{name: "policy change fails, application commits anyway", failChange: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := sortedRules(eng.Rules())
			rowsBefore := appRows()
			revBefore := eng.Revision()
			stray := "g,user:carol,default:e1,entity:e1"
			err := st.InTransaction(ctx, func(ctx context.Context, tx *gorm.DB) error {
				if tc.failChange {
					// A row the engine does not know makes its change fail
					// half way (after the counter update); the application
					// ignores the error and commits its own write.
					row := gormadapter.CasbinRule{Ptype: "g", V0: "user:carol", V1: "default:e1", V2: "entity:e1"}
					if err := tx.Table(st.RulesTable()).Create(&row).Error; err != nil {
						return err
					}
					if _, err := eng.AddUser(ctx, "e1", "carol", ""); !errors.Is(err, ErrConflict) {
						return fmt.Errorf("AddUser over a stray row: %v", err)
					}
					return tx.Exec("INSERT INTO "+prefix+"app (id, note) VALUES (?, ?)", i, "kept").Error
				}
				if _, err := eng.AddUser(ctx, "e1", "carol", ""); err != nil {
					return err
				}
				if _, err := eng.CreateRole(ctx, "e1", policy.RoleSpec{Name: fmt.Sprintf("tx role %d", i)}); err != nil {
					return err
				}
				// Not yet visible to decisions.
				if eng.Decide(&alice).Reason != policy.ReasonNotMember {
					t.Errorf("change visible before the commit: %v", eng.Decide(&alice))
				}
				note := fmt.Sprintf("note %d", i)
				if tc.appErr {
					note = "dup"
					if err := tx.Exec("INSERT INTO "+prefix+"app (id, note) VALUES (?, ?)", 1000+i, note).Error; err != nil {
						return err
					}
				}
				if err := tx.Exec("INSERT INTO "+prefix+"app (id, note) VALUES (?, ?)", i, note).Error; err != nil {
					return err
				}
				return tc.fnErr
			})
			if !tc.failChange && tc.wantKept != (err == nil) {
				t.Fatalf("InTransaction: %v", err)
			}
			after := sortedRules(eng.Rules())
			if tc.failChange {
				if err != nil {
					t.Fatalf("InTransaction: %v", err)
				}
				if appRows() != rowsBefore+1 {
					t.Fatal("application row missing")
				}
				if r, _ := st.Revision(ctx); r != revBefore || eng.Revision() != revBefore {
					t.Fatalf("revision moved: store %d, engine %d, want %d", r, eng.Revision(), revBefore)
				}
				audit, _ := st.Audit(ctx, AuditFilter{AfterRevision: revBefore})
				if len(audit) != 0 {
					t.Fatalf("feed rows of a failed change: %+v", audit)
				}
				assertSameRules(t, "engine", before, after)
				want := append(slices.Clone(before), stray)
				slices.Sort(want)
				assertSameRules(t, "stored (the engine's rules and the stray row)", want, storedRules(t, st))
				if err := db.Exec("DELETE FROM "+st.RulesTable()+" WHERE v0 = ?", "user:carol").Error; err != nil {
					t.Fatal(err)
				}
			} else if tc.wantKept {
				if slices.Equal(before, after) || !eng.Decide(&alice).Allowed {
					t.Fatalf("committed change not published: %v", eng.Decide(&alice))
				}
				if appRows() != rowsBefore+1 {
					t.Fatal("application row missing")
				}
				if eng.Revision() != revBefore+2 {
					t.Fatalf("engine revision %d, want %d", eng.Revision(), revBefore+2)
				}
				// Clean up for the next case.
				if err := eng.RemoveUser(ctx, "e1", "carol"); err != nil {
					t.Fatal(err)
				}
			} else {
				assertSameRules(t, "engine after rollback", before, after)
				if appRows() != rowsBefore {
					t.Fatal("application row kept after rollback")
				}
				if eng.Revision() != revBefore {
					t.Fatalf("engine revision moved to %d", eng.Revision())
				}
			}
			assertSameRules(t, "stored", sortedRules(eng.Rules()), storedRules(t, st))
			// The store still works (no lock left behind).
			if _, err := eng.AddUser(ctx, "e1", "dave", ""); err != nil {
				t.Fatal(err)
			}
			if err := eng.RemoveUser(ctx, "e1", "dave"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// testActorLimits: the longest actor policy.WithActor allows, in
// multi-byte characters, fits every database's audit column and reads back
// whole; a longer one, or one with a control character, is refused with
// ErrInvalid before anything is written (found in review: a 305-byte actor
// made every change fail on PostgreSQL and MySQL with the driver's error,
// and passed on SQLite).
func testActorLimits(t *testing.T, b backend) {
	st := newStore(t, b, b.open(t), newPrefix())
	eng := newEngine(t, st)
	longest := strings.Repeat("é", policy.MaxActorLen/2) + "x" // 255 bytes, 128 characters
	if len(longest) != policy.MaxActorLen {
		t.Fatalf("test actor of %d bytes", len(longest))
	}
	if _, err := eng.CreateEntity(policy.WithActor(context.Background(), longest), "p1", "e1"); err != nil {
		t.Fatalf("actor of %d bytes: %v", len(longest), err)
	}
	for name, actor := range map[string]string{
		"too long":          longest + "x",
		"control character": "user:a\x00b",
		"invalid UTF-8":     "user:\xff",
	} {
		if _, err := eng.CreateEntity(policy.WithActor(context.Background(), actor), "p1", "e2"); !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	recs, err := st.Audit(context.Background(), AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Actor != longest {
		t.Fatalf("audit: %d records, first actor %q; want one, by the longest actor", len(recs), recs[0].Actor)
	}
}

func testAudit(t *testing.T, b backend) {
	prefix := newPrefix()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Minute); return clock }
	st := newStore(t, b, b.open(t), prefix, WithNow(now))
	eng := newEngine(t, st)
	ctx := policy.WithActor(context.Background(), "partner:p1")
	setupEntity(t, ctx, eng, "e1")
	setupEntity(t, context.Background(), eng, "e2")
	if err := eng.RemoveUser(policy.WithActor(ctx, "user:alice-e1"), "e1", "bob-e1"); err != nil {
		t.Fatal(err)
	}

	all, err := st.Audit(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 11 {
		t.Fatalf("%d audit records, want 11", len(all))
	}
	for i, r := range all {
		if r.Revision != int64(i+1) {
			t.Fatalf("record %d has revision %d", i, r.Revision)
		}
	}
	last := all[len(all)-1]
	if last.Op != "user.remove" {
		t.Errorf("op %q", last.Op)
	}
	if last.Actor != "user:alice-e1" || last.Entity != "e1" || len(last.Removed) != 1 || len(last.Added) != 0 ||
		last.Removed[0].String() != "g,user:bob-e1,default:e1,entity:e1" {
		t.Errorf("last record %+v", last)
	}
	if all[0].Actor != "partner:p1" || all[5].Actor != "" || all[0].Added[0].String() != "g2,partner:p1,entity:e1" {
		t.Errorf("records %+v / %+v", all[0], all[5])
	}
	if !all[0].At.Equal(time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC)) {
		t.Errorf("first record at %v", all[0].At)
	}

	tests := []struct {
		name string
		f    AuditFilter
		want []int64
	}{
		{"entity", AuditFilter{Entity: "e2"}, []int64{6, 7, 8, 9, 10}},
		{"entity, newest, limit", AuditFilter{Entity: "e1", Newest: true, Limit: 2}, []int64{11, 5}},
		{"time window", AuditFilter{Since: all[2].At, Until: all[4].At}, []int64{3, 4}},
		{"after revision", AuditFilter{AfterRevision: 9}, []int64{10, 11}},
		{"unknown entity", AuditFilter{Entity: "nope"}, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.Audit(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			revs := []int64{}
			for _, r := range got {
				revs = append(revs, r.Revision)
			}
			if !slices.Equal(revs, tc.want) {
				t.Fatalf("revisions %v, want %v", revs, tc.want)
			}
		})
	}
}

func testWatcherCatchUp(t *testing.T, b backend) {
	ctx := context.Background()
	stA, stB, engA, engB := twoReplicas(t, b)
	// A slow poll and no LISTEN: B only learns through Sync.
	w := syncWatcher(t, stB, engB)
	var calls []string
	_ = w.SetUpdateCallback(func(rev string) { calls = append(calls, rev) })

	setupEntity(t, ctx, engA, "e1")
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	assertSameRules(t, "after catch-up", sortedRules(engA.Rules()), sortedRules(engB.Rules()))
	if w.Revision() != engA.Revision() || !slices.Equal(calls, []string{"5"}) {
		t.Fatalf("watcher at %d, callbacks %v; want %d, [5]", w.Revision(), calls, engA.Revision())
	}

	// B misses changes that are then pruned from the feed: it reloads.
	setupEntity(t, ctx, engA, "e2")
	if err := engA.RemoveUser(ctx, "e1", "bob-e1"); err != nil {
		t.Fatal(err)
	}
	n, err := stA.Prune(ctx, engA.Revision())
	if err != nil || n != 10 {
		t.Fatalf("Prune: %d, %v; want 10 rows (the latest is kept)", n, err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	assertSameRules(t, "after reload", sortedRules(engA.Rules()), sortedRules(engB.Rules()))
	if w.Revision() != engA.Revision() {
		t.Fatalf("watcher at %d, want %d", w.Revision(), engA.Revision())
	}

	// Rules written through the Casbin adapter plus Update(): every replica reloads.
	if err := stA.Adapter().AddPolicy("g", "g2", []string{"partner:p2", "entity:e9"}); err != nil {
		t.Fatal(err)
	}
	wA := syncWatcher(t, stA, engA)
	if err := w.Update(); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Sync(ctx), wA.Sync(ctx)); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*policy.Engine{engA, engB} {
		if _, err := e.GetEntity(ctx, "e9"); err != nil {
			t.Fatalf("entity written through the adapter not loaded: %v", err)
		}
	}
}

func testWatcherNoLeak(t *testing.T, b backend) {
	ctx := context.Background()
	st := newStore(t, b, b.open(t), newPrefix())
	eng := newEngine(t, st)
	// Count only the watcher's own goroutines: the database driver may
	// open and close pool connections (each with goroutines of its own) at
	// any time.
	watcherGoroutines := func() (int, string) {
		buf := make([]byte, 1<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		n := 0
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "store.(*Watcher).") {
				n++
			}
		}
		return n, dump
	}
	for range 3 {
		w, err := NewWatcher(ctx, st, eng, WithPollInterval(5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		setupEntity(t, ctx, eng, model.EntityID(fmt.Sprintf("leak%d", w.Revision())))
		if err := w.Wait(ctx, eng.Revision()); err != nil {
			t.Fatal(err)
		}
		w.Close()
		w.Close() // idempotent
	}
	deadline := time.Now().Add(5 * time.Second)
	for n, dump := watcherGoroutines(); n > 0; n, dump = watcherGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d watcher goroutines left after Close\n%s", n, dump)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
