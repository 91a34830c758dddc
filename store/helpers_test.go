package store

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// backend names a database the suite runs on. open returns a new pool on
// the same database at every call (a "restart").
type backend struct {
	name string
	open func(t testing.TB) *gorm.DB
}

// openDSN opens dsn and closes the pool when the test ends.
func openDSN(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

func sqliteBackend(t testing.TB) backend {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	return backend{"sqlite", func(t testing.TB) *gorm.DB { return openDSN(t, path) }}
}

func envBackend(t testing.TB, name, env string) backend {
	dsn := os.Getenv(env)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the %s tests (e.g. %s)", env, name, map[string]string{
			"postgres": "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
			"mysql":    "mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true",
		}[name])
	}
	return backend{name, func(t testing.TB) *gorm.DB { return openDSN(t, dsn) }}
}

func postgresBackend(t testing.TB) backend {
	return envBackend(t, "postgres", "GATEHOUSE_TEST_POSTGRES_DSN")
}

func mysqlBackend(t testing.TB) backend { return envBackend(t, "mysql", "GATEHOUSE_TEST_MYSQL_DSN") }

// newPrefix returns a table prefix of its own for one test.
func newPrefix() string {
	var b [4]byte
	_, _ = crand.Read(b[:])
	return "gh_test_" + hex.EncodeToString(b[:]) + "_"
}

// newStore returns a migrated store with the given prefix; the tables are
// dropped when the test ends (through a pool of their own, since the
// test's may be closed by then).
func newStore(t testing.TB, b backend, db *gorm.DB, prefix string, opts ...Option) *Store {
	t.Helper()
	ctx := context.Background()
	st, err := New(ctx, db, append([]Option{WithTablePrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	dropOnCleanup(t, b, prefix)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// dropOnCleanup drops the tables of prefix at the end of the test.
func dropOnCleanup(t testing.TB, b backend, prefix string) {
	t.Cleanup(func() {
		db, err := Open(context.Background(), dsnOf(t, b))
		if err != nil {
			return
		}
		defer func() {
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
		}()
		st, err := New(context.Background(), db, WithTablePrefix(prefix))
		if err == nil {
			if err := st.dropTables(context.Background()); err != nil {
				t.Logf("dropping %s*: %v", prefix, err)
			}
		}
	})
}

func dsnOf(t testing.TB, b backend) string {
	switch b.name {
	case "postgres":
		return os.Getenv("GATEHOUSE_TEST_POSTGRES_DSN")
	case "mysql":
		return os.Getenv("GATEHOUSE_TEST_MYSQL_DSN")
	}
	return "" // SQLite lives in the test's temp dir
}

func newEngine(t testing.TB, st *Store) *policy.Engine {
	t.Helper()
	eng, err := policy.New(context.Background(), policy.WithStore(st))
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	return eng
}

// twoReplicas opens two stores on one database (a fresh table prefix, a
// pool each) and an engine on each: replicas A and B.
func twoReplicas(t testing.TB, b backend) (stA, stB *Store, engA, engB *policy.Engine) {
	t.Helper()
	prefix := newPrefix()
	stA = newStore(t, b, b.open(t), prefix)
	stB = newStore(t, b, b.open(t), prefix)
	return stA, stB, newEngine(t, stA), newEngine(t, stB)
}

// syncWatcher starts a watcher that learns of other replicas' changes only
// through Sync (an hourly poll, no LISTEN). It is closed when the test
// ends.
func syncWatcher(t testing.TB, st *Store, eng *policy.Engine) *Watcher {
	t.Helper()
	return newWatcher(t, st, eng, WithPollInterval(time.Hour), WithListen(false))
}

// newWatcher starts a watcher with opts, failing the test if it cannot. It
// is closed when the test ends.
func newWatcher(t testing.TB, st *Store, eng *policy.Engine, opts ...WatcherOption) *Watcher {
	t.Helper()
	w, err := NewWatcher(context.Background(), st, eng, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sortedRules returns rules as sorted CSV lines.
func sortedRules(rs []model.Rule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	slices.Sort(out)
	return out
}

// storedRules reads the rules table directly.
func storedRules(t testing.TB, st *Store) []string {
	t.Helper()
	var rs []model.Rule
	if err := st.Load(context.Background(), func(r model.Rule) error { rs = append(rs, r); return nil }); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return sortedRules(rs)
}

func assertSameRules(t testing.TB, what string, want, got []string) {
	t.Helper()
	if !slices.Equal(want, got) {
		t.Fatalf("%s: rules differ:\nwant %d rules %v\n got %d rules %v", what, len(want), head(want), len(got), head(got))
	}
}

func head(s []string) []string { return s[:min(len(s), 12)] }

// world is a small id space for random histories.
var (
	partners = []model.PartnerID{"p1", "p2"}
	entities = []model.EntityID{"e1", "e2", "e3", "e4"}
	users    = []model.UserID{"u1", "u2", "u3", "u4", "u5", "u6"}
)

func randomPerms(rng *rand.Rand, cat *model.Catalog) model.Permissions {
	keys := cat.Keys()
	ps := model.Permissions{}
	for range rng.IntN(6) {
		ps[keys[rng.IntN(len(keys))]] = model.Permission(1 + rng.IntN(2))
	}
	return ps
}

// randomOp makes one random management call on eng. Refusals of the
// engine (not found, conflict) are expected; the error is returned with
// the op's name.
func randomOp(ctx context.Context, rng *rand.Rand, eng *policy.Engine) (string, error) {
	e := entities[rng.IntN(len(entities))]
	u := users[rng.IntN(len(users))]
	roleOf := func() model.RoleID {
		rs, _ := eng.ListRoles(ctx, e)
		if len(rs) == 0 {
			return "r-none"
		}
		return rs[rng.IntN(len(rs))].ID
	}
	switch n := rng.IntN(100); {
	case n < 12:
		_, err := eng.CreateEntity(ctx, partners[rng.IntN(len(partners))], e)
		return "create entity", err
	case n < 30:
		_, err := eng.CreateRole(ctx, e, policy.RoleSpec{Name: fmt.Sprintf("role %d", rng.IntN(1000)), Permissions: randomPerms(rng, eng.Catalog())})
		return "create role", err
	case n < 40:
		name := fmt.Sprintf("renamed %d", rng.IntN(1000))
		_, err := eng.UpdateRole(ctx, e, roleOf(), policy.RoleUpdate{Name: &name, Permissions: randomPerms(rng, eng.Catalog())})
		return "update role", err
	case n < 46:
		return "delete role", eng.DeleteRole(ctx, e, roleOf())
	case n < 64:
		role := model.RoleID("")
		if rng.IntN(2) == 0 {
			role = roleOf()
		}
		_, err := eng.AddUser(ctx, e, u, role)
		return "add user", err
	case n < 74:
		_, err := eng.SetUserRole(ctx, e, u, roleOf())
		return "set user role", err
	case n < 82:
		return "remove user", eng.RemoveUser(ctx, e, u)
	case n < 97:
		role := roleOf()
		if rng.IntN(4) == 0 {
			role = ""
		}
		return "set default role", eng.SetDefaultRole(ctx, e, role)
	default:
		return "remove entity", eng.RemoveEntity(ctx, e)
	}
}

// randomRequests returns requests over the world's ids.
func randomRequests(rng *rand.Rand, cat *model.Catalog, n int) []policy.Request {
	keys := cat.Keys()
	out := make([]policy.Request, n)
	for i := range out {
		k := keys[rng.IntN(len(keys))]
		var sub model.Subject
		if rng.IntN(5) == 0 {
			sub = model.Partner(partners[rng.IntN(len(partners))])
		} else {
			sub = model.User(users[rng.IntN(len(users))])
		}
		var owner model.Subject
		switch rng.IntN(3) {
		case 0:
			owner = sub
		case 1:
			owner = model.User(users[rng.IntN(len(users))])
		}
		out[i] = policy.Request{Subject: sub, Entity: entities[rng.IntN(len(entities))], Object: k.Object, Action: k.Action, Owner: owner}
	}
	return out
}

func assertSameDecisions(t testing.TB, a, b *policy.Engine, reqs []policy.Request) {
	t.Helper()
	for _, r := range reqs {
		da, db := a.Decide(&r), b.Decide(&r)
		if da.Allowed != db.Allowed || da.Scope != db.Scope || da.Role != db.Role || da.Reason != db.Reason {
			t.Fatalf("decisions differ on %+v:\n%+v\n%+v", r, da, db)
		}
	}
}

// openTransaction runs change in an InTransaction of st, in the
// background, and returns once change returned nil: the transaction is
// open, with the change written. end ends it: fn's return is err (nil
// commits, an error rolls back), and end returns what InTransaction
// returned.
func openTransaction(t testing.TB, st *Store, change func(ctx context.Context) error) (end func(err error) error) {
	t.Helper()
	written, release, done := make(chan struct{}), make(chan error, 1), make(chan error, 1)
	go func() {
		done <- st.InTransaction(context.Background(), func(ctx context.Context, _ *gorm.DB) error {
			if err := change(ctx); err != nil {
				return err
			}
			close(written)
			return <-release
		})
	}()
	select {
	case <-written:
	case err := <-done:
		t.Fatalf("InTransaction: %v", err)
	}
	return func(err error) error {
		release <- err
		return <-done
	}
}

// waitRevision waits until st's database is at revision rev.
func waitRevision(t *testing.T, st *Store, rev int64) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("database revision below %d", rev), func() bool {
		got, err := st.Revision(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return got >= rev
	})
}
