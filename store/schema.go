package store

import (
	"context"
	"errors"
	"fmt"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// revisionRow is the single row of the revision table: the number of the
// last committed change. Commits lock it, which orders them.
type revisionRow struct {
	ID       int   `gorm:"primaryKey;autoIncrement:false"`
	Revision int64 `gorm:"not null"`
}

// Migrate creates or completes the store's tables; it is idempotent and
// safe to run at every start (the quickstart does), but it is never run
// implicitly. Two processes creating the tables at the same moment may
// fail on one of them (the table creation races), which a retry resolves:
// run it from one process, as a deployment step, or retry it. The tables, named after the prefix (see [WithTablePrefix]):
//
//   - <prefix>rules: the Casbin rules, in gorm-adapter's layout (id, ptype,
//     v0..v5, unique over all columns), created by gorm-adapter; any
//     Casbin tool can read it through [Store.Adapter].
//   - <prefix>revision: one row, the revision of the last change.
//   - <prefix>changes: the change feed and audit trail, one row per
//     change: revision, time, op, entity, actor, removed and added rules
//     (JSON).
//
// On MySQL and MariaDB the tables use a binary collation, so that rules
// compare byte for byte (identifiers are case sensitive).
func (s *Store) Migrate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db := s.db.WithContext(ctx)
	// gorm-adapter creates its table (and unique index) when auto-migrate
	// is left on: this is the one place where we want that.
	if _, err := gormadapter.NewAdapterByDBUseTableName(db.Session(&gorm.Session{}), "", s.rules); err != nil {
		return fmt.Errorf("store: creating %s: %w", s.rules, err)
	}
	var stmts []string
	switch s.dialect {
	case dialectMySQL:
		var coll string
		if err := db.Raw("SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", s.rules).Scan(&coll).Error; err != nil {
			return fmt.Errorf("store: reading the collation of %s: %w", s.rules, err)
		}
		if coll != "utf8mb4_bin" {
			stmts = append(stmts, "ALTER TABLE "+s.rules+" CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
		}
		stmts = append(stmts,
			"CREATE TABLE IF NOT EXISTS "+s.revision+" (id INT NOT NULL PRIMARY KEY, revision BIGINT NOT NULL) ENGINE=InnoDB",
			"CREATE TABLE IF NOT EXISTS "+s.changes+` (
	revision BIGINT NOT NULL PRIMARY KEY,
	at BIGINT NOT NULL,
	op VARCHAR(64) NOT NULL,
	entity VARCHAR(100) NOT NULL,
	actor VARCHAR(255) NOT NULL,
	origin VARCHAR(40) NOT NULL,
	reload BOOLEAN NOT NULL DEFAULT FALSE,
	removed LONGTEXT NOT NULL,
	added LONGTEXT NOT NULL,
	INDEX `+s.changes+`_entity (entity, revision),
	INDEX `+s.changes+`_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`)
	default: // PostgreSQL and SQLite
		stmts = append(stmts,
			"CREATE TABLE IF NOT EXISTS "+s.revision+" (id INTEGER NOT NULL PRIMARY KEY, revision BIGINT NOT NULL)",
			"CREATE TABLE IF NOT EXISTS "+s.changes+` (
	revision BIGINT NOT NULL PRIMARY KEY,
	at BIGINT NOT NULL,
	op VARCHAR(64) NOT NULL,
	entity VARCHAR(100) NOT NULL,
	actor VARCHAR(255) NOT NULL,
	origin VARCHAR(40) NOT NULL,
	reload BOOLEAN NOT NULL DEFAULT FALSE,
	removed TEXT NOT NULL,
	added TEXT NOT NULL
)`,
			"CREATE INDEX IF NOT EXISTS "+s.changes+"_entity ON "+s.changes+" (entity, revision)",
			"CREATE INDEX IF NOT EXISTS "+s.changes+"_at ON "+s.changes+" (at)")
	}
	for _, q := range stmts {
		if err := db.Exec(q).Error; err != nil {
			return fmt.Errorf("store: migrating: %w", err)
		}
	}
	err := db.Table(s.revision).Clauses(clause.OnConflict{DoNothing: true}).Create(&revisionRow{ID: 1}).Error
	if err != nil {
		return fmt.Errorf("store: migrating: %w", err)
	}
	return nil
}

// dropTables removes the store's tables (tests clean up with it).
func (s *Store) dropTables(ctx context.Context) error {
	var errs []error
	for _, t := range []string{s.rules, s.changes, s.revision} {
		errs = append(errs, s.db.WithContext(ctx).Exec("DROP TABLE IF EXISTS "+t).Error)
	}
	return errors.Join(errs...)
}
