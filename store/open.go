package store

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open opens the database named by dsn and checks that it answers:
//
//   - "postgres://..." or "postgresql://...": PostgreSQL (pgx).
//   - "mysql://" followed by a go-sql-driver DSN, e.g.
//     "mysql://root@tcp(127.0.0.1:3306)/test?parseTime=true": MySQL or MariaDB.
//   - anything else, a file path or a "file:" URI: SQLite (cgo), with WAL,
//     a 5 s busy timeout, foreign keys on and immediate write transactions
//     (parameters already in the DSN are kept).
//
// The returned *gorm.DB is an ordinary pool that the application may share;
// GORM's logger is silenced. Close it with its DB().Close().
func Open(ctx context.Context, dsn string) (*gorm.DB, error) {
	var d gorm.Dialector
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		d = postgres.Open(dsn)
	case strings.HasPrefix(dsn, "mysql://"):
		d = mysql.Open(strings.TrimPrefix(dsn, "mysql://"))
	case dsn == "":
		return nil, fmt.Errorf("%w: empty DSN", ErrUnsupported)
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("%w: DSN scheme in %q", ErrUnsupported, redact(dsn))
	default:
		d = sqlite.Open(sqliteDSN(dsn))
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, TranslateError: true})
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", redact(dsn), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: connecting to %s: %w", redact(dsn), err)
	}
	return db, nil
}

// sqliteDSN adds Gatehouse's connection parameters to a SQLite DSN unless
// it sets them itself.
func sqliteDSN(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return dsn // let the driver report it
	}
	set := func(keys []string, v string) {
		for _, k := range keys {
			if q.Has(k) {
				return
			}
		}
		q.Set(keys[0], v)
	}
	set([]string{"_journal_mode", "_journal"}, "WAL")
	set([]string{"_busy_timeout", "_timeout"}, "5000")
	set([]string{"_foreign_keys", "_fk"}, "on")
	set([]string{"_txlock"}, "immediate")
	return path + "?" + q.Encode()
}

// redact removes a password from a URL-shaped DSN for error messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	if i := strings.Index(dsn, "@"); i >= 0 && strings.HasPrefix(dsn, "mysql://") {
		return "mysql://...@" + dsn[i+1:]
	}
	return dsn
}
