package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Environment variables naming the test databases; the tests on a database
// skip when its variable is unset.
const (
	envPostgres = "GATEHOUSE_TEST_POSTGRES_DSN" // postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	envMySQL    = "GATEHOUSE_TEST_MYSQL_DSN"    // mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true
)

// sqlBackends are the databases a GormStore is tested on.
var sqlBackends = []string{"sqlite", "postgres", "mysql"}

// dbOpener returns a function opening a new connection pool to one database
// of the backend (each call a separate pool, as separate processes would
// have), or skips the test.
func dbOpener(t testing.TB, backend string) func() *gorm.DB {
	t.Helper()
	var dial func() gorm.Dialector
	switch backend {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "auth.db")
		dial = func() gorm.Dialector { return sqlite.Open(path + "?_busy_timeout=10000&_journal_mode=WAL") }
	case "postgres":
		dsn := os.Getenv(envPostgres)
		if dsn == "" {
			t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", envPostgres)
		}
		dial = func() gorm.Dialector { return postgres.Open(dsn) }
	case "mysql":
		dsn := os.Getenv(envMySQL)
		if dsn == "" {
			t.Skipf("MySQL tests skipped: set %s (e.g. mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true)", envMySQL)
		}
		dial = func() gorm.Dialector { return mysql.Open(strings.TrimPrefix(dsn, "mysql://")) }
	}
	return func() *gorm.DB {
		t.Helper()
		db, err := gorm.Open(dial(), &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
		if err != nil {
			t.Fatalf("open %s: %v", backend, err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
		})
		return db
	}
}

// testPrefix returns a table prefix of its own, so that parallel test
// processes on one database do not meet.
func testPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "gatehouse_t" + hex.EncodeToString(b) + "_"
}

// gormStore returns a migrated store on db with the prefix; the tables are
// dropped when the test ends.
func gormStore(t testing.TB, db *gorm.DB, prefix string) *GormStore {
	t.Helper()
	st, err := NewGormStore(db, WithTablePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.DropTables(context.Background()) })
	return st
}

func TestStores(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testStore(t, NewMemoryStore()) })
	for _, b := range sqlBackends {
		t.Run(b, func(t *testing.T) {
			open := dbOpener(t, b)
			testStore(t, gormStore(t, open(), testPrefix()))
		})
	}
}

func TestGormMigrateIdempotent(t *testing.T) {
	for _, b := range sqlBackends {
		t.Run(b, func(t *testing.T) {
			open := dbOpener(t, b)
			prefix := testPrefix()
			st := gormStore(t, open(), prefix)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					s2, _ := NewGormStore(open(), WithTablePrefix(prefix))
					errs[i] = s2.Migrate(context.Background())
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, tbl := range []string{prefix + "clients", prefix + "signing_keys", prefix + "revoked_tokens"} {
				if !st.db.Migrator().HasTable(tbl) {
					t.Fatalf("table %s missing", tbl)
				}
			}
		})
	}
}

func TestNewGormStoreChecks(t *testing.T) {
	db := dbOpener(t, "sqlite")()
	// Capitals too: on PostgreSQL, Migrate made the lower-case tables and
	// every later query, quoted, missed them.
	for _, p := range []string{"bad-prefix", "x; DROP TABLE y;", strings.Repeat("a", 40), "Gh_", "gH_"} {
		if _, err := NewGormStore(db, WithTablePrefix(p)); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	if _, err := NewGormStore(nil); !errors.Is(err, ErrInvalidRequest) {
		t.Error("nil db accepted")
	}
	// No schema change as a side effect of the constructor.
	prefix := testPrefix()
	if _, err := NewGormStore(db, WithTablePrefix(prefix)); err != nil {
		t.Fatal(err)
	}
	if db.Migrator().HasTable(prefix + "clients") {
		t.Fatal("NewGormStore created tables")
	}
}

// testStore checks a Store implementation.
func testStore(t *testing.T, st Store) {
	ctx := context.Background()
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)

	t.Run("clients", func(t *testing.T) {
		c := ClientRecord{ID: "c-1", PartnerID: "p-1", SecretHash: []byte{1, 2, 3}, APIs: []model.ObjectType{"payable", "role"}, CreatedAt: at}
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateClient(ctx, ClientRecord{ID: "c-1", PartnerID: "p-2", SecretHash: []byte{9}}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := st.CreateClient(ctx, ClientRecord{ID: "c-all", PartnerID: "p-1", SecretHash: []byte{4}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Client(ctx, "c-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.PartnerID != "p-1" || string(got.SecretHash) != "\x01\x02\x03" || len(got.PrevSecretHash) != 0 ||
			!slices.Equal(got.APIs, c.APIs) || !got.CreatedAt.Equal(at) || !got.PrevValidUntil.IsZero() {
			t.Fatalf("got %+v", got)
		}
		if all, _ := st.Client(ctx, "c-all"); all.APIs != nil {
			t.Fatalf("nil APIs came back as %#v", all.APIs)
		}
		if err := st.CreateClient(ctx, ClientRecord{ID: "c-none", PartnerID: "p-1", SecretHash: []byte{5}, APIs: []model.ObjectType{}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		if none, _ := st.Client(ctx, "c-none"); none.APIs == nil || len(none.APIs) != 0 {
			t.Fatalf("empty APIs came back as %#v", none.APIs)
		}
		if _, err := st.Client(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		if err := st.UpdateClientSecret(ctx, "c-1", []byte{7}, []byte{1, 2, 3}, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, _ = st.Client(ctx, "c-1")
		if string(got.SecretHash) != "\x07" || string(got.PrevSecretHash) != "\x01\x02\x03" || !got.PrevValidUntil.Equal(at.Add(time.Hour)) {
			t.Fatalf("after update %+v", got)
		}
		if err := st.UpdateClientSecret(ctx, "nobody", []byte{7}, nil, time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update unknown: %v", err)
		}
		if err := st.DeleteClient(ctx, "c-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Client(ctx, "c-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if err := st.DeleteClient(ctx, "c-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		k1 := KeyRecord{ID: "k1", Algorithm: HS256, Private: []byte("0123456789abcdef0123456789abcdef"), CreatedAt: at}
		k2 := KeyRecord{ID: "k2", Algorithm: EdDSA, Private: []byte("seed"), Public: []byte("pub"), Sealed: true, CreatedAt: at.Add(time.Second)}
		for _, k := range []KeyRecord{k1, k2} {
			if err := st.AddSigningKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AddSigningKey(ctx, k1); err == nil {
			t.Fatal("duplicate kid accepted")
		}
		if err := st.RetireSigningKeys(ctx, "k2", at.Add(time.Minute), at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		ks, err := st.SigningKeys(ctx)
		if err != nil || len(ks) != 2 {
			t.Fatalf("%d keys, %v", len(ks), err)
		}
		slices.SortFunc(ks, func(a, b KeyRecord) int { return strings.Compare(a.ID, b.ID) })
		if ks[0].ID != "k1" || !ks[0].RetiredAt.Equal(at.Add(time.Minute)) || !ks[0].VerifyUntil.Equal(at.Add(time.Hour)) ||
			string(ks[0].Private) != string(k1.Private) || ks[0].Sealed {
			t.Fatalf("k1 = %+v", ks[0])
		}
		if ks[1].ID != "k2" || !ks[1].RetiredAt.IsZero() || !ks[1].Sealed || string(ks[1].Public) != "pub" || ks[1].Algorithm != EdDSA || !ks[1].CreatedAt.Equal(k2.CreatedAt) {
			t.Fatalf("k2 = %+v", ks[1])
		}
		// Retiring again does not move an already retired key's times.
		if err := st.RetireSigningKeys(ctx, "k2", at.Add(2*time.Minute), at.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		ks, _ = st.SigningKeys(ctx)
		for _, k := range ks {
			if k.ID == "k1" && !k.VerifyUntil.Equal(at.Add(time.Hour)) {
				t.Fatalf("k1 re-retired: %+v", k)
			}
		}
		// Only keys older than keep are retired (by creation time, then by
		// id): of two rotations that both added their key before either
		// retired, the newer key survives whatever the order of the calls.
		for _, id := range []string{"k4", "k3"} {
			if err := st.AddSigningKey(ctx, KeyRecord{ID: id, Algorithm: HS256, Private: k1.Private, CreatedAt: at.Add(2 * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, keep := range []string{"k4", "k3"} {
			if err := st.RetireSigningKeys(ctx, keep, at.Add(3*time.Minute), at.Add(3*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		ks, _ = st.SigningKeys(ctx)
		var live []string
		for _, k := range ks {
			if k.RetiredAt.IsZero() {
				live = append(live, k.ID)
			}
		}
		if !slices.Equal(live, []string{"k4"}) {
			t.Fatalf("keys left unretired: %v, want [k4]", live)
		}
		if err := st.RetireSigningKeys(ctx, "nokey", at, at); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown keep: %v", err)
		}
	})

	t.Run("revocations", func(t *testing.T) {
		for i, id := range []string{"j1", "j2", "j3", "client:c9"} {
			r := Revocation{ID: id, PartnerID: "p-1", ExpiresAt: at.Add(time.Duration(i+1) * time.Minute), RevokedAt: at}
			if err := st.AddRevocation(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AddRevocation(ctx, Revocation{ID: "j1", ExpiresAt: at.Add(time.Hour)}); err != nil {
			t.Fatalf("duplicate revocation: %v", err)
		}
		all, err := st.Revocations(ctx, 0, at, 100)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(rs []Revocation) (out []string) {
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		if !slices.Equal(ids(all), []string{"j1", "j2", "j3", "client:c9"}) || !all[0].ExpiresAt.Equal(at.Add(time.Minute)) || all[0].PartnerID != "p-1" {
			t.Fatalf("revocations %v %+v", ids(all), all)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Seq <= all[i-1].Seq {
				t.Fatal("Seq not increasing")
			}
		}
		page, _ := st.Revocations(ctx, all[0].Seq, at, 2)
		if !slices.Equal(ids(page), []string{"j2", "j3"}) {
			t.Fatalf("page %v", ids(page))
		}
		live, _ := st.Revocations(ctx, 0, at.Add(2*time.Minute), 100)
		if !slices.Equal(ids(live), []string{"j3", "client:c9"}) {
			t.Fatalf("unexpired %v", ids(live))
		}
		n, err := st.PruneRevocations(ctx, at.Add(2*time.Minute+time.Second))
		if err != nil || n != 2 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		left, _ := st.Revocations(ctx, 0, time.Time{}, 100)
		if !slices.Equal(ids(left), []string{"j3", "client:c9"}) {
			t.Fatalf("after prune %v", ids(left))
		}
		// A pruned id can be revoked again, with a new Seq.
		if err := st.AddRevocation(ctx, Revocation{ID: "j1", ExpiresAt: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		again, _ := st.Revocations(ctx, left[len(left)-1].Seq, time.Time{}, 100)
		if !slices.Equal(ids(again), []string{"j1"}) {
			t.Fatalf("re-revoked %v", ids(again))
		}
	})
}
