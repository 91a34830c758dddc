package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/policy"
)

func TestSQLiteDSN(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string // parameters expected in the result
		path string
	}{
		{"/tmp/x.db", map[string]string{"_journal_mode": "WAL", "_busy_timeout": "5000", "_foreign_keys": "on", "_txlock": "immediate"}, "/tmp/x.db"},
		{"file:x.db?mode=rwc", map[string]string{"mode": "rwc", "_journal_mode": "WAL"}, "file:x.db"},
		{"x.db?_busy_timeout=100", map[string]string{"_busy_timeout": "100", "_txlock": "immediate"}, "x.db"},
		{"x.db?_timeout=100&_fk=0", map[string]string{"_timeout": "100", "_fk": "0", "_busy_timeout": "", "_foreign_keys": ""}, "x.db"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := sqliteDSN(tc.in)
			path, query, _ := strings.Cut(got, "?")
			if path != tc.path {
				t.Errorf("path %q, want %q", path, tc.path)
			}
			q, err := url.ParseQuery(query)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q (in %s)", k, q.Get(k), v, got)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, dsn string
		want      error
	}{
		{"empty", "", ErrUnsupported},
		{"unknown scheme", "sqlserver://sa:secret@host/db", ErrUnsupported},
		{"unreachable postgres", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1", nil},
		{"in-memory SQLite", ":memory:", ErrUnsupported},
		{"in-memory SQLite URI", "file::memory:", ErrUnsupported},
		{"in-memory SQLite by mode", "file:x.db?mode=memory", ErrUnsupported},
		{"in-memory SQLite, private cache", "file::memory:?cache=private", ErrUnsupported},
		// Found in review: the driver drops the parameters of a name that
		// is not a "file:" URI, so this one is not shared.
		{"in-memory SQLite, shared but not a URI", ":memory:?cache=shared", ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), tc.dsn)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

// TestOpenRedactsPasswords opens DSNs of every form that fail (nothing
// listens on port 1) and checks that no error holds their password.
func TestOpenRedactsPasswords(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing", "x.db")
	tests := []struct {
		name, dsn string
		leaks     []string // must not appear in the error
		want      error
	}{
		{"postgres user-info", "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=1", []string{"s3cret"}, nil},
		{"postgres query", "postgres://u@127.0.0.1:1/db?password=s3cret&connect_timeout=1", []string{"s3cret"}, nil},
		{"postgres query upper case", "postgres://u@127.0.0.1:1/db?connect_timeout=1&PassWord=s3cret", []string{"s3cret"}, nil},
		{"postgresql sslpassword", "postgresql://u@127.0.0.1:1/db?sslpassword=s3cret&connect_timeout=1", []string{"s3cret"}, nil},
		{"postgres query and user-info", "postgres://u:0ther@127.0.0.1:1/db?password=s3cret&connect_timeout=1", []string{"s3cret", "0ther"}, nil},
		// pgx's parse error quotes the URL with its query.
		{"postgres parse error", "postgres://u@127.0.0.1:1/db?password=s3cret&sslmode=bogus", []string{"s3cret"}, nil},
		{"postgres semicolon", "postgres://u@127.0.0.1:1/db?sslmode=disable;password=s3cret", []string{"s3cret"}, nil},
		{"postgres escaped", "postgres://u:s3%40cret@127.0.0.1:1/db?connect_timeout=1", []string{"s3@cret", "s3%40cret"}, nil},
		{"postgres hash", "postgres://u:pa#s3cret@127.0.0.1:1/db", []string{"s3cret"}, ErrUnsupported},
		{"postgres slash", "postgres://u:12/s3cret@127.0.0.1:1/db?connect_timeout=1", []string{"s3cret"}, ErrUnsupported},
		{"postgres at", "postgres://u:s3@cret@127.0.0.1:1/db?connect_timeout=1", []string{"s3@cret"}, nil},
		{"postgres hosts", "postgres://u:s3cret@127.0.0.1:1,127.0.0.1:2/db?connect_timeout=1", []string{"s3cret"}, nil},
		{"key=value", "host=127.0.0.1 port=1 user=u password=s3cret dbname=db", []string{"s3cret"}, ErrUnsupported},
		{"key=value quoted", "host=127.0.0.1 password='s3 cr\\'et' dbname=db", []string{"s3 cr", "cr\\'et", "cr'et"}, ErrUnsupported},
		{"key=value sslpassword", "dbname=db sslpassword = s3cret sslmode=require", []string{"s3cret"}, ErrUnsupported},
		{"mysql user-info", "mysql://root:s3cret@tcp(127.0.0.1:1)/test", []string{"s3cret"}, nil},
		{"mysql at", "mysql://root:s3@cret@tcp(127.0.0.1:1)/test", []string{"s3@cret", "cret"}, nil},
		{"mysql slash", "mysql://root:s3/cret@tcp(127.0.0.1:1)/test?parseTime=true", []string{"s3/cret"}, nil},
		{"mysql query", "mysql://root@tcp(127.0.0.1:1)/test?password=s3cret", []string{"s3cret"}, nil},
		{"sqlite _auth_pass", missing + "?_auth=1&_auth_user=u&_auth_pass=s3cret", []string{"s3cret"}, nil},
		{"other scheme", "sqlserver://sa:s3cret@host/db?password=0ther", []string{"s3cret", "0ther"}, ErrUnsupported},
		{"other scheme, query", "redis://host/0?Password=s3cret", []string{"s3cret"}, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			db, err := Open(ctx, tc.dsn)
			if err == nil {
				sqlDB, _ := db.DB()
				_ = sqlDB.Close()
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				for _, leak := range tc.leaks {
					if strings.Contains(msg, leak) {
						t.Errorf("error leaks %q: %s", leak, msg)
					}
				}
			}
			for e := err; e != nil; e = errors.Unwrap(e) {
				for _, leak := range tc.leaks {
					if strings.Contains(e.Error(), leak) {
						t.Errorf("wrapped error %T leaks %q: %v", e, leak, e)
					}
				}
			}
			if !strings.Contains(err.Error(), mask) {
				t.Errorf("error does not show the masked DSN: %v", err)
			}
		})
	}
}

func TestOpenKeyValueNotSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, err := Open(context.Background(), "host=127.0.0.1 user=u password=s3cret dbname=db")
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("error %v, want ErrUnsupported", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Open created %s", ents[0].Name())
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:s3cret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=s3cret&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u@h/db?sslmode=disable&SSLPassword=s3cret", "postgres://u@h/db?sslmode=disable&SSLPassword=xxxxx"},
		{"postgres://u:pa#s3cret@h/db?password=x", "postgres://u:xxxxx@h/db?password=xxxxx"},
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		{"mysql://root:s3cret@tcp(h:3306)/test?parseTime=true", "mysql://root:xxxxx@tcp(h:3306)/test?parseTime=true"},
		{"mysql://root@tcp(h:3306)/test?allowCleartextPasswords=true&password=s3cret", "mysql://root@tcp(h:3306)/test?allowCleartextPasswords=true&password=xxxxx"},
		{"mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true", "mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true"},
		{"host=h password=s3cret dbname=db", "host=h password=xxxxx dbname=db"},
		{"host=h PASSWORD = 's3 cret' dbname=db", "host=h PASSWORD = xxxxx dbname=db"},
		{"/data/x.db?_auth_user=u&_auth_pass=s3cret", "/data/x.db?_auth_user=u&_auth_pass=xxxxx"},
		{"/data/x.db?_journal_mode=WAL", "/data/x.db?_journal_mode=WAL"},
		{"file:x.db", "file:x.db"},
	}
	for _, tc := range tests {
		if got, _ := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	cause := fmt.Errorf("cannot parse password=s3cret: %w", context.DeadlineExceeded)
	err := scrub(cause, []string{"s3cret"})
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("scrub kept the secret: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("the scrubbed error unwraps to %v", errors.Unwrap(err))
	}
	if clean := errors.New("no secret"); scrub(clean, []string{"s3cret"}) != clean {
		t.Error("scrub replaced an error without secrets")
	}
}

// TestNewInvalid: New refuses a nil or unopened *gorm.DB and a bad table
// prefix with ErrInvalid, without panicking.
func TestNewInvalid(t *testing.T) {
	db := openDSN(t, filepath.Join(t.TempDir(), "x.db"))
	tests := []struct {
		name string
		db   *gorm.DB
		opts []Option
	}{
		{"nil", nil, nil},
		{"zero", &gorm.DB{}, nil},
		{"no dialector", &gorm.DB{Config: &gorm.Config{}}, nil},
		{"not opened", &gorm.DB{Config: &gorm.Config{Dialector: sqlite.Open(":memory:")}}, nil},
		{"bad prefix", db, []Option{WithTablePrefix("a;drop")}},
		{"empty prefix", db, []Option{WithTablePrefix("")}},
		{"uppercase prefix", db, []Option{WithTablePrefix("Gh_")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("New panicked: %v", p)
				}
			}()
			st, err := New(context.Background(), tc.db, tc.opts...)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("New = %v, %v; want an error wrapping ErrInvalid", st, err)
			}
		})
	}
	if _, err := New(context.Background(), db); err != nil {
		t.Errorf("New on an opened database: %v", err)
	}
}

func TestValidPrefix(t *testing.T) {
	for p, want := range map[string]bool{"gatehouse_": true, "a": true, "a1_": true, "A1_": false, "gH_": false, "Gatehouse_": false, "": false, "1a": false, "_a": false, "a-b": false, "a b": false, "a;": false, strings.Repeat("a", 41): false} {
		if got := validPrefix(p); got != want {
			t.Errorf("validPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestOpenSharedMemory: an in-memory SQLite database with a shared cache is
// one database for the pool, so a change made while another connection is
// busy finds the store's tables (found in review: with ":memory:", which
// Open now refuses, it failed with "no such table").
func TestOpenSharedMemory(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, fmt.Sprintf("file:gatehouse-open-test-%d?mode=memory&cache=shared", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	st, err := New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	eng := newEngine(t, st)
	err = db.Connection(func(*gorm.DB) error { // one connection held
		_, err := eng.CreateEntity(ctx, "p1", "e1")
		return err
	})
	if err != nil {
		t.Fatalf("a change while another connection is busy: %v", err)
	}
}

// TestOpenReadOnly: a SQLite database opened read-only loads, refuses
// changes (ErrStorage, nothing stored) and is left as it was; a missing
// one is an error, not a new file.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ro.db")
	b := sqliteBackend(t)
	rw, err := Open(ctx, path+"?_journal_mode=DELETE")
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t, b, rw, DefaultTablePrefix)
	if _, err := newEngine(t, st).CreateEntity(ctx, "p1", "e1"); err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := rw.DB(); err == nil {
		_ = sqlDB.Close()
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	rst, err := New(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	eng := newEngine(t, rst)
	if _, err := eng.GetEntity(ctx, "e1"); err != nil {
		t.Fatalf("reading: %v", err)
	}
	if _, err := eng.CreateEntity(ctx, "p1", "e2"); !errors.Is(err, policy.ErrStorage) {
		t.Fatalf("writing through a read-only database: %v, want ErrStorage", err)
	}
	if sqlDB, err := ro.DB(); err == nil {
		_ = sqlDB.Close()
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the database file changed")
	}

	missing := filepath.Join(dir, "none.db")
	if _, err := OpenReadOnly(ctx, missing); err == nil {
		t.Error("a missing database opened")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing database was created: %v", err)
	}
}

// TestMySQLDSN: mysqlDSN sets parseTime and autocommit whatever the DSN
// says, and keeps every other parameter as written (round-tripping the DSN
// through the driver's Config lost connectionAttributes).
func TestMySQLDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"root@tcp(127.0.0.1:3306)/test", "root@tcp(127.0.0.1:3306)/test?parseTime=true&autocommit=1"},
		{"root@tcp(127.0.0.1:3306)/test?parseTime=true", "root@tcp(127.0.0.1:3306)/test?parseTime=true&autocommit=1"},
		{"u:p@ss/w?rd@tcp(h:1)/db?connectionAttributes=program_name:x&loc=Local&parseTime=false",
			"u:p@ss/w?rd@tcp(h:1)/db?connectionAttributes=program_name:x&loc=Local&parseTime=true&autocommit=1"},
		{"root@unix(/tmp/my.sock)/db?autocommit=0&sql_mode=%27ANSI%27",
			"root@unix(/tmp/my.sock)/db?sql_mode=%27ANSI%27&parseTime=true&autocommit=1"},
		{"root@tcp(h)/db?&&", "root@tcp(h)/db?parseTime=true&autocommit=1"},
		{"root@tcp(h)/db?connectionAttributes=program_name:autocommit-auditor", // the driver's own: no SET
			"root@tcp(h)/db?connectionAttributes=program_name:autocommit-auditor&parseTime=true&autocommit=1"},
	} {
		got, err := mysqlDSN(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("mysqlDSN(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := mysqlDSN("root@tcp(127.0.0.1:3306"); err == nil {
		t.Error("a DSN without a database slash was taken")
	}
	// Other ways to set autocommit are refused: the driver sends every
	// parameter in one SET, in map order, so one left in won now and then.
	for _, q := range []string{"AUTOCOMMIT=0", "@@autocommit=0", "@@SESSION.autocommit=0", "%60autocommit%60=0", "SESSION%20autocommit=0",
		"sql_mode=%27ANSI%27%2Cautocommit%3D0"} {
		if got, err := mysqlDSN("root@tcp(h)/db?" + q); err == nil {
			t.Errorf("mysqlDSN(...?%s) = %q, want an error", q, got)
		}
	}
}

// TestOpenMySQLSession: whatever the DSN says, Open's MySQL connections
// parse times (the application's time.Time columns scanned with 500s
// without parseTime=true) and autocommit (with it off, every plain read
// joined one transaction that never ended: a watcher read the same
// snapshot for good, and went on deciding on stale policies).
func TestOpenMySQLSession(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_MYSQL_DSN")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_MYSQL_DSN is not set (e.g. mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true)")
	}
	base, _, _ := strings.Cut(dsn, "?")
	// The driver sends the parameters in map order: a spelling left in
	// would win now and then, so each DSN is opened several times.
	var dsns []string
	for range 8 {
		dsns = append(dsns, base, base+"?parseTime=false&autocommit=0")
	}
	for _, d := range dsns {
		db, err := Open(context.Background(), d)
		if err != nil {
			t.Fatalf("Open(%q): %v", d, err)
		}
		var now time.Time
		if err := db.Raw("SELECT NOW()").Scan(&now).Error; err != nil || now.IsZero() {
			t.Errorf("%q: a DATETIME scans as %v, %v", d, now, err)
		}
		var auto int
		if err := db.Raw("SELECT @@autocommit").Scan(&auto).Error; err != nil || auto != 1 {
			t.Errorf("%q: @@autocommit = %d, %v; want 1", d, auto, err)
		}
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
	for _, d := range []string{"mysql://root@tcp(127.0.0.1:3306/test", base + "?@@autocommit=0"} {
		if _, err := Open(context.Background(), d); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Open(%q) = %v, want ErrUnsupported", d, err)
		}
	}
}

// FuzzMySQLDSN: mysqlDSN never panics, and a DSN the driver reads comes
// out read by it too, with parseTime on and autocommit set once, to 1.
func FuzzMySQLDSN(f *testing.F) {
	for _, s := range []string{"root@tcp(127.0.0.1:3306)/test?parseTime=true", "u:p@ss/w?rd@tcp(h:1)/db?a=1&autocommit=0", "/db?@@autocommit=0&&x", "root@unix(/s)/d?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		out, err := mysqlDSN(dsn)
		if err != nil {
			return
		}
		cfg, err := mysqldriver.ParseDSN(out)
		if err != nil {
			t.Fatalf("mysqlDSN(%q) = %q, which does not parse: %v", dsn, out, err)
		}
		if !cfg.ParseTime {
			t.Fatalf("mysqlDSN(%q) = %q: parseTime off", dsn, out)
		}
		for k, v := range cfg.Params {
			if k != "autocommit" && strings.Contains(strings.ToLower(k+"="+v), "autocommit") {
				t.Fatalf("mysqlDSN(%q) = %q: %s=%s sets autocommit", dsn, out, k, v)
			}
		}
		if cfg.Params["autocommit"] != "1" {
			t.Fatalf("mysqlDSN(%q) = %q: no autocommit=1", dsn, out)
		}
	})
}
