// Package dbwrite runs the writes of Gatehouse's GORM stores (package
// store's policies and change feed, package auth's clients, keys and
// revocations) at the isolation level their locking is built for,
// whatever default the database server, database or role is configured
// with.
//
// On PostgreSQL that is READ COMMITTED, PostgreSQL's own default: a write
// that meets a row another replica is changing (or inserting) waits for it
// and goes on with what that replica committed. Under REPEATABLE READ or
// SERIALIZABLE, PostgreSQL refuses instead to change a row changed since
// the transaction's snapshot, or to skip an insert over a row committed
// since (SQLSTATE 40001): the store's change lock, an UPDATE of its
// revision row, failed whenever another replica had just committed, and
// two replicas rotating a key at once failed half way. MySQL's locking
// reads see the latest rows at every level, and SQLite has one level.
package dbwrite

import (
	"database/sql"

	"gorm.io/gorm"
)

// Options returns the options of a transaction that writes through db:
// READ COMMITTED on PostgreSQL, none elsewhere.
func Options(db *gorm.DB) []*sql.TxOptions {
	if db.Dialector.Name() == "postgres" {
		return []*sql.TxOptions{{Isolation: sql.LevelReadCommitted}}
	}
	return nil
}

// Exec runs stmt, one UPDATE, DELETE or INSERT through db, and returns the
// rows it affected: on PostgreSQL in a transaction with [Options], as it
// is elsewhere.
func Exec(db *gorm.DB, stmt func(db *gorm.DB) *gorm.DB) (int64, error) {
	opts := Options(db)
	if opts == nil {
		res := stmt(db)
		return res.RowsAffected, res.Error
	}
	var n int64
	err := db.Transaction(func(tx *gorm.DB) error {
		res := stmt(tx)
		n = res.RowsAffected
		return res.Error
	}, opts...)
	return n, err
}
