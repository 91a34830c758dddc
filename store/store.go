package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/internal/dbwrite"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

var _ policy.Store = (*Store)(nil)

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
	dialectMySQL    = "mysql"
)

// Store is a transactional [policy.Store] over a GORM database (SQLite,
// PostgreSQL, MySQL or MariaDB). Create it with [New], create its tables
// with [Store.Migrate], and give it to one engine with policy.WithStore.
// A Store serves one engine: every replica (process) has its own Store and
// [Watcher] over the shared database. The engine takes the store's change
// lock ([Store.Lock]) at the start of every management call, which brings
// it up to date through its Watcher; an engine that shares its database
// with others therefore needs a Watcher to keep committing (without one,
// a change made while other replicas committed is refused with
// [ErrConflict] and [ErrBehind]).
//
// A Store is safe for concurrent use.
type Store struct {
	db                       *gorm.DB
	dialect                  string
	txOpts                   []*sql.TxOptions // of the transactions that change (dbwrite.Options)
	rules, changes, revision string           // table names
	channel                  string           // PostgreSQL NOTIFY channel
	origin                   string           // marks the feed rows this store wrote
	log                      *slog.Logger
	now                      func() time.Time
	batchSize                int
	hook                     func(ctx context.Context, tx *gorm.DB, step string) error
	adapter                  *gormadapter.Adapter
	loaded                   atomic.Int64 // revision of the last LoadSnapshot's snapshot
	rowsRead                 atomic.Int64 // rules read by loads so far: a slow load's progress
	applied                  atomic.Int64 // the engine's index holds every change up to it
	mu                       sync.Mutex
	wakers                   map[*Watcher]struct{}
	pubMu                    sync.Mutex   // held from an InTransaction's commit until its changes are published
	spSeq                    atomic.Int64 // names savepoints
	own                      ownCommits   // own changes whose publication is in doubt

	lagMu  sync.Mutex // orders the updates of applied, known and behind
	known  int64      // the highest revision known to be committed
	behind time.Time  // since when known > applied (zero when it is not)
}

// New returns a store over db, an open GORM database that the application
// may share (see [Open]). New does not touch the schema: call
// [Store.Migrate] once before use. A nil or unopened db, or an invalid
// table prefix, fails with [ErrInvalid]; a database other than SQLite,
// PostgreSQL and MySQL (or MariaDB) with [ErrUnsupported].
func New(ctx context.Context, db *gorm.DB, opts ...Option) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("%w: nil *gorm.DB", ErrInvalid)
	}
	// A gorm.DB that gorm.Open did not make (a zero one, say) has no
	// dialect or connection pool, and using it panics.
	if db.Config == nil || db.Dialector == nil || db.ConnPool == nil || db.Statement == nil {
		return nil, fmt.Errorf("%w: *gorm.DB not opened: get it from store.Open or gorm.Open", ErrInvalid)
	}
	o := options{prefix: DefaultTablePrefix, now: time.Now, batchSize: 5000}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.batchSize <= 0 {
		o.batchSize = 5000
	}
	if !validPrefix(o.prefix) {
		// Lowercase letters, digits and "_" only: the prefix is spliced
		// into SQL unquoted (and PostgreSQL folds unquoted names to
		// lowercase, while GORM quotes them).
		return nil, fmt.Errorf("%w: table prefix %q: want 1 to 40 lowercase letters, digits and \"_\", starting with a letter", ErrInvalid, o.prefix)
	}
	var dialect string
	switch name := db.Dialector.Name(); name {
	case "sqlite", "sqlite3":
		dialect = dialectSQLite
	case "postgres":
		dialect = dialectPostgres
	case "mysql":
		dialect = dialectMySQL
	default:
		return nil, fmt.Errorf("%w: dialect %q", ErrUnsupported, name)
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	s := &Store{
		db:        db,
		dialect:   dialect,
		txOpts:    dbwrite.Options(db),
		rules:     o.prefix + "rules",
		changes:   o.prefix + "changes",
		revision:  o.prefix + "revision",
		channel:   o.prefix + "changes",
		origin:    hex.EncodeToString(b[:]),
		log:       o.logger,
		now:       o.now,
		batchSize: o.batchSize,
		hook:      o.hook,
		wakers:    map[*Watcher]struct{}{},
		own:       ownCommits{inflight: map[int64]chan struct{}{}, unsettled: map[int64]struct{}{}},
	}
	// The adapter never migrates: the schema is Migrate's business.
	adb := db.WithContext(context.Background())
	gormadapter.TurnOffAutoMigrate(adb)
	a, err := gormadapter.NewAdapterByDBUseTableName(adb, "", s.rules)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.adapter = a
	return s, nil
}

// validPrefix reports whether p is a valid table prefix: 1 to 40 ASCII
// lowercase letters, digits and "_", starting with a letter. Uppercase is
// refused: raw SQL names the tables unquoted, which PostgreSQL folds to
// lowercase, while GORM quotes them (the same prefix would name two
// different tables).
func validPrefix(p string) bool {
	if p == "" || len(p) > 40 {
		return false
	}
	for i, c := range []byte(p) {
		switch {
		case 'a' <= c && c <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// DB returns the store's database.
func (s *Store) DB() *gorm.DB { return s.db }

// RulesTable returns the name of the table that holds the Casbin rules.
func (s *Store) RulesTable() string { return s.rules }

// Adapter returns a gorm-adapter Casbin adapter over the rules table (with
// auto-migration off), for Casbin tools and enforcers that read the same
// policy. Changes written through it bypass the change feed: call
// [Watcher.Update] afterwards so that replicas reload.
func (s *Store) Adapter() *gormadapter.Adapter { return s.adapter }

// Revision returns the revision of the last change committed to the
// database (0 before the first). A replica whose [Watcher.Revision] is
// lower is behind.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev int64
	err := s.committed(ctx, func(db *gorm.DB) (err error) {
		rev, err = s.readRevision(db)
		return err
	})
	return rev, err
}

// committed runs fn, reads outside the change lock (a watcher's, the
// audit trail's), so that they see only committed rows: on MySQL in a
// read-only transaction at READ COMMITTED, since on a server set to READ
// UNCOMMITTED a watcher read, and applied, a change another replica's
// transaction had written and then rolled back. (A session's level cannot
// be asked once for all: the pool opens new connections, which take the
// server's default of the moment.) Elsewhere fn reads as it is:
// PostgreSQL's lowest level is READ COMMITTED, and SQLite's readers see
// only commits.
func (s *Store) committed(ctx context.Context, fn func(db *gorm.DB) error) error {
	db := s.db.WithContext(ctx)
	if s.dialect != dialectMySQL {
		return fn(db)
	}
	return db.Transaction(fn, &sql.TxOptions{Isolation: sql.LevelReadCommitted, ReadOnly: true})
}

func (s *Store) readRevision(db *gorm.DB) (int64, error) {
	var rows []revisionRow
	if err := db.Table(s.revision).Where("id = ?", 1).Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("store: reading the revision: %w", err)
	}
	if len(rows) != 1 {
		return 0, ErrNotMigrated
	}
	return rows[0].Revision, nil
}

// readSnapshot runs fn in a read-only snapshot transaction. On SQLite it
// is a deferred transaction (an explicit BEGIN DEFERRED on a connection of
// its own), whatever the DSN's _txlock says: Open makes transactions
// BEGIN IMMEDIATE, which takes the write lock and would make a read wait
// for every writer (and fail with "database is locked" after the busy
// timeout); a deferred one reads a WAL snapshot without waiting.
func (s *Store) readSnapshot(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.dialect != dialectSQLite {
		return s.db.WithContext(ctx).Transaction(fn, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	}
	return s.db.WithContext(ctx).Connection(func(c *gorm.DB) (err error) {
		conn := c.Session(&gorm.Session{NewDB: true}) // a fresh statement per query, on c's connection
		if err := conn.Exec("BEGIN DEFERRED").Error; err != nil {
			return fmt.Errorf("store: beginning a read transaction: %w", err)
		}
		defer func() {
			end := "COMMIT"
			if err != nil {
				end = "ROLLBACK"
			}
			// Even when ctx ended: the connection goes back to the pool.
			if eerr := conn.WithContext(context.WithoutCancel(ctx)).Exec(end).Error; eerr != nil {
				// Never hand a connection still in a transaction back.
				if sqlConn, ok := conn.Statement.ConnPool.(*sql.Conn); ok {
					_ = sqlConn.Raw(func(any) error { return driver.ErrBadConn })
				}
				err = errors.Join(err, fmt.Errorf("store: ending a read transaction: %w", eerr))
			}
		}()
		return fn(conn)
	})
}

// Load calls fn for every stored rule, from one snapshot (as
// [Store.LoadSnapshot], but for any reader: it records nothing).
func (s *Store) Load(ctx context.Context, fn func(model.Rule) error) error {
	_, err := s.readRules(ctx, fn)
	return err
}

// LoadSnapshot is the load of the Store's engine (policy.New and
// Engine.Reload call it): it calls fn for every stored rule and returns
// the revision they reflect, and records that the engine's index now holds
// that revision (its [Watcher] continues from it, and the change lock's
// catch-up counts on it). It reads the rules in batches of
// [WithLoadBatchSize] rows inside one snapshot transaction. It only reads:
// on SQLite it does not wait for a writer (see readSnapshot). Other
// readers use [Store.Load].
func (s *Store) LoadSnapshot(ctx context.Context, fn func(model.Rule) error) (int64, error) {
	rev, err := s.readRules(ctx, fn)
	if err != nil {
		return 0, err
	}
	// Only now: the snapshot's transaction can still fail as it ends (a
	// deadline, a lost connection), and then nothing was loaded.
	s.loaded.Store(rev)
	s.setApplied(rev)
	return rev, nil
}

// readRules calls fn for every stored rule of one snapshot, and returns
// its revision.
func (s *Store) readRules(ctx context.Context, fn func(model.Rule) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev int64
	err := s.readSnapshot(ctx, func(tx *gorm.DB) error {
		if err := s.step(ctx, tx, "load"); err != nil {
			return err
		}
		var err error
		if rev, err = s.readRevision(tx); err != nil {
			return err
		}
		// Keyset pagination over the primary key: each batch is one query,
		// scanned row by row into the rules handed to fn (no batch slice).
		q := "SELECT id, ptype, v0, v1, v2, v3, v4, v5 FROM " + s.rules + " WHERE id > ? ORDER BY id LIMIT ?"
		var last uint64
		for {
			n, err := s.loadBatch(ctx, tx, q, &last, fn)
			if err != nil {
				return err
			}
			if n < s.batchSize {
				break
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// loadBatch reads up to batchSize rules after *last and moves *last on.
func (s *Store) loadBatch(ctx context.Context, tx *gorm.DB, q string, last *uint64, fn func(model.Rule) error) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rows, err := tx.Raw(q, *last, s.batchSize).Rows()
	if err != nil {
		return 0, fmt.Errorf("store: reading %s: %w", s.rules, err)
	}
	defer rows.Close()
	var (
		r gormadapter.CasbinRule
		n int
	)
	defer func() { s.rowsRead.Add(int64(n)) }() // once a batch, not once a row
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id, &r.Ptype, &r.V0, &r.V1, &r.V2, &r.V3, &r.V4, &r.V5); err != nil {
			return n, fmt.Errorf("store: reading %s: %w", s.rules, err)
		}
		*last = id
		n++
		if err := fn(fromRow(&r)); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("store: reading %s: %w", s.rules, err)
	}
	return n, nil
}

// LoadedRevision returns the revision of the policy read by the last
// successful [Store.LoadSnapshot] (the engine's start or reload).
func (s *Store) LoadedRevision() int64 { return s.loaded.Load() }

func fromRow(r *gormadapter.CasbinRule) model.Rule {
	all := [6]string{r.V0, r.V1, r.V2, r.V3, r.V4, r.V5}
	n := len(all)
	for n > 0 && all[n-1] == "" {
		n--
	}
	return model.Rule{PType: r.Ptype, Values: append(make([]string, 0, n), all[:n]...)}
}

func toRow(r model.Rule) (gormadapter.CasbinRule, error) {
	if r.PType == "" || len(r.Values) > 6 {
		return gormadapter.CasbinRule{}, fmt.Errorf("store: rule %s does not fit the rules table", r)
	}
	var v [6]string
	copy(v[:], r.Values)
	return gormadapter.CasbinRule{Ptype: r.PType, V0: v[0], V1: v[1], V2: v[2], V3: v[3], V4: v[4], V5: v[5]}, nil
}

// changeRow is a row of the change feed (and audit trail).
type changeRow struct {
	Revision int64 `gorm:"primaryKey;autoIncrement:false"`
	At       int64 // Unix microseconds
	Op       string
	Entity   string
	Actor    string
	Origin   string
	Reload   bool
	Removed  string // JSON: [["p","v0",...],...]
	Added    string
}

func encodeRules(rs []model.Rule) (string, error) {
	out := make([][]string, len(rs))
	for i, r := range rs {
		out[i] = append([]string{r.PType}, r.Values...)
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeRules(s string) ([]model.Rule, error) {
	var in [][]string
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]model.Rule, 0, len(in))
	for _, r := range in {
		if len(r) == 0 {
			return nil, errors.New("empty rule")
		}
		out = append(out, model.Rule{PType: r[0], Values: r[1:]})
	}
	return out, nil
}

type txKey struct{}

// txBinding ties a context to an InTransaction's transaction.
type txBinding struct {
	s  *Store
	tx *gorm.DB
	*txState
}

// txState is what an InTransaction knows of the changes written in its
// transaction.
type txState struct {
	mu          sync.Mutex     // one change at a time in tx; guards the fields below
	first, last int64          // revisions of the first and last change written in tx
	eng         *policy.Engine // the engine that made them (through Lock)

	applyMu sync.Mutex
	applies []deferredApply // the engine's publications, in revision order
}

// deferredApply publishes to the engine the change numbered rev.
type deferredApply struct {
	rev   int64
	apply func()
}

// wrote records that the change numbered rev is written in the
// transaction (the caller holds mu). A transaction's changes have
// consecutive revisions: it holds the change lock.
func (st *txState) wrote(rev int64) {
	if st.first == 0 {
		st.first = rev
	}
	st.last = rev
}

// advance records that the engine's index holds every change up to rev.
func (s *Store) advance(rev int64) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if rev > s.applied.Load() {
		s.applied.Store(rev)
	}
	s.noteLocked(rev)
}

// setApplied records that the engine's index was rebuilt from the
// database's state at revision rev.
func (s *Store) setApplied(rev int64) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	if rev < s.applied.Load() {
		s.known = rev // the database went back (it was reset)
	}
	s.applied.Store(rev)
	s.noteLocked(rev)
}

// noteKnown records that revision rev is committed.
func (s *Store) noteKnown(rev int64) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	s.noteLocked(rev)
}

func (s *Store) noteLocked(rev int64) {
	s.known = max(s.known, rev)
	switch applied := s.applied.Load(); {
	case s.known <= applied:
		s.behind = time.Time{}
	case s.behind.IsZero():
		s.behind = time.Now()
	}
}

// lag returns the revision the engine applied, the highest one known to be
// committed, and since when the first is below the second.
func (s *Store) lag() (applied, known int64, since time.Time) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	return s.applied.Load(), s.known, s.behind
}

// Commit stores ch in one transaction: it numbers the change (ch.Revision
// becomes the store's revision plus one, in commit order), deletes the
// removed rules, inserts the added ones and appends the change to the feed
// and audit trail; on PostgreSQL it also notifies the watchers. It fails
// with [ErrConflict], writing nothing, when a removed rule is not stored or
// an added one is, or when the engine had not applied every committed
// change (then wrapping [ErrBehind] too). Inside [Store.InTransaction] it
// writes in the application's transaction. The engine does not call it:
// it commits through [Store.Lock], which catches it up first.
//
// When the COMMIT itself fails (the connection dropped before its answer,
// say), the outcome is unknown: the error says so, and if the server did
// commit the change, the store's [Watcher] applies it to the engine rather
// than skip it as published (the same holds for [Store.Lock]'s and
// [Store.InTransaction]'s commits).
func (s *Store) Commit(ctx context.Context, ch *policy.Change) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b, ok := ctx.Value(txKey{}).(txBinding); ok && b.s == s {
		// A savepoint: if the change fails, the application's transaction
		// holds none of it, even if the application commits anyway.
		b.mu.Lock()
		defer b.mu.Unlock()
		var rev int64
		err := b.tx.WithContext(ctx).Transaction(func(sp *gorm.DB) error {
			var err error
			rev, err = s.commitIn(ctx, sp, ch, false, b.last)
			return err
		})
		if err != nil {
			return err
		}
		ch.Revision = rev
		b.wrote(rev)
		return nil
	}
	var (
		rev    int64
		settle func(error) error
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if rev, err = s.commitIn(ctx, tx, ch, false, 0); err == nil {
			settle = s.committing(rev)
		}
		return err
	}, s.txOpts...)
	if settle != nil {
		err = settle(err) // the COMMIT's
	}
	if err != nil {
		return err
	}
	ch.Revision = rev
	return nil
}

func (s *Store) step(ctx context.Context, tx *gorm.DB, name string) error {
	if s.hook == nil {
		return nil
	}
	return s.hook(ctx, tx, name)
}

// commitIn numbers ch and writes it in tx, and returns its revision. With
// reload set, the feed row tells every watcher to reload everything (see
// Watcher.Update). Otherwise the change must have been made from an
// up-to-date index: the store's revision is the last one the engine
// applied, or inTx, the last one written earlier in the same transaction.
func (s *Store) commitIn(ctx context.Context, tx *gorm.DB, ch *policy.Change, reload bool, inTx int64) (int64, error) {
	rev, err := s.number(tx)
	if err != nil {
		return 0, err
	}
	if prev, seen := rev-1, s.applied.Load(); !reload && prev > seen && (inTx == 0 || prev != inTx) {
		s.noteKnown(prev)
		s.wake() // catch up now, so that a retry can succeed
		return 0, fmt.Errorf("%w: %w: the engine applied revision %d, the database is at %d: retry once its watcher caught up", ErrConflict, ErrBehind, seen, prev)
	}
	if err := s.writeIn(ctx, tx, ch, rev, reload); err != nil {
		return 0, err
	}
	return rev, nil
}

// number takes the store's change lock in tx and returns the revision of
// the change about to be written: the store's revision plus one. Updating
// the counter row first serialises changes (the row lock, or SQLite's
// write lock, is held until the transaction ends), so that revisions
// follow commit order without gaps; rolling back gives the number back.
func (s *Store) number(tx *gorm.DB) (int64, error) {
	res := tx.Exec("UPDATE " + s.revision + " SET revision = revision + 1 WHERE id = 1")
	if res.Error != nil {
		return 0, fmt.Errorf("store: numbering the change: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return 0, ErrNotMigrated
	}
	return s.readRevision(tx)
}

// writeIn writes ch, numbered rev, in tx: the rules it removes and adds,
// its feed and audit row, and on PostgreSQL the notification.
func (s *Store) writeIn(ctx context.Context, tx *gorm.DB, ch *policy.Change, rev int64, reload bool) error {
	removed, err := encodeRules(ch.Remove)
	if err != nil {
		return err
	}
	added, err := encodeRules(ch.Add)
	if err != nil {
		return err
	}
	if err := s.step(ctx, tx, "numbered"); err != nil {
		return err
	}
	if err := s.deleteRules(ctx, tx, ch.Remove); err != nil {
		return err
	}
	if err := s.step(ctx, tx, "removed"); err != nil {
		return err
	}
	if err := s.insertRules(ctx, tx, ch.Add); err != nil {
		return err
	}
	if err := s.step(ctx, tx, "added"); err != nil {
		return err
	}
	row := changeRow{
		Revision: rev, At: s.now().UnixMicro(), Op: ch.Op, Entity: string(ch.Entity),
		Actor: ch.Actor, Origin: s.origin, Reload: reload, Removed: removed, Added: added,
	}
	if err := tx.Table(s.changes).Create(&row).Error; err != nil {
		return fmt.Errorf("store: appending to the change feed: %w", err)
	}
	if s.dialect == dialectPostgres {
		// Delivered when (and only if) the transaction commits. The
		// payload names the feed ("oid:revision", the oid of the changes
		// table): the channel is the database's, and deployments in other
		// schemas with the same prefix share it (see listenOnce).
		if err := tx.Exec("SELECT pg_notify(?, "+feedOID+" || ':' || ?)", s.channel, s.changes, strconv.FormatInt(rev, 10)).Error; err != nil {
			return fmt.Errorf("store: notifying: %w", err)
		}
	}
	return s.step(ctx, tx, "fed")
}

const deleteChunk = 50

func (s *Store) deleteRules(ctx context.Context, tx *gorm.DB, rs []model.Rule) error {
	const cond = "(ptype = ? AND v0 = ? AND v1 = ? AND v2 = ? AND v3 = ? AND v4 = ? AND v5 = ?)"
	for len(rs) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(rs), deleteChunk)
		chunk := rs[:n]
		rs = rs[n:]
		var q strings.Builder
		q.WriteString("DELETE FROM " + s.rules + " WHERE ")
		args := make([]any, 0, 7*len(chunk))
		for i, r := range chunk {
			row, err := toRow(r)
			if err != nil {
				return err
			}
			if i > 0 {
				q.WriteString(" OR ")
			}
			q.WriteString(cond)
			args = append(args, row.Ptype, row.V0, row.V1, row.V2, row.V3, row.V4, row.V5)
		}
		res := tx.Exec(q.String(), args...)
		if res.Error != nil {
			return fmt.Errorf("store: deleting rules: %w", res.Error)
		}
		if res.RowsAffected != int64(len(chunk)) {
			return fmt.Errorf("%w: %d of %d rules to remove are not stored", ErrConflict, int64(len(chunk))-res.RowsAffected, len(chunk))
		}
	}
	return nil
}

const insertChunk = 200

func (s *Store) insertRules(ctx context.Context, tx *gorm.DB, rs []model.Rule) error {
	if len(rs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rows := make([]gormadapter.CasbinRule, len(rs))
	for i, r := range rs {
		row, err := toRow(r)
		if err != nil {
			return err
		}
		rows[i] = row
	}
	if err := tx.Table(s.rules).CreateInBatches(rows, insertChunk).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) || isDuplicate(err) {
			return fmt.Errorf("%w: a rule to add is stored already: %w", ErrConflict, err)
		}
		return fmt.Errorf("store: inserting rules: %w", err)
	}
	return nil
}

// isDuplicate recognises unique violations when the application's
// *gorm.DB was opened without TranslateError.
func isDuplicate(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // SQLite
		strings.Contains(msg, "SQLSTATE 23505") || // PostgreSQL
		strings.Contains(msg, "Error 1062") // MySQL, MariaDB
}

// wake tells this store's watchers that a local commit happened.
func (s *Store) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.wakers {
		w.kick()
	}
}

// InTransaction runs fn in a new transaction of the store's database and
// commits it when fn returns nil. Policy changes that fn makes through the
// engine with the ctx it receives are written inside that transaction
// (together with the application's own writes through tx) and published
// to the engine only after the commit; on a rollback the database and the
// engine are left as before. Until the commit, the engine's decisions and
// calls made with other contexts do not see those changes, and other
// commits wait for the transaction (it holds the store's change lock from
// its first change: see [Store.Lock]); the engine calls made with fn's ctx
// read and check the entities as fn's earlier changes leave them (see
// [policy.WithDeferredApply]). Engine calls inside fn take turns; a nested call
// joins the outer transaction. When the COMMIT fails, its outcome is
// unknown (see [Store.Commit]): the changes are not published, and the
// store's [Watcher] applies them if the server committed them.
//
// The changes are published in turn with the engine's [Watcher]: one that
// its watcher already holds (read from the change feed, or included in a
// reload that ran between the commit and the publication, perhaps with
// later changes of other replicas) is not replayed.
//
// On PostgreSQL the transaction runs at READ COMMITTED, whatever the
// server's default isolation: the change lock needs it (see package
// internal/dbwrite). An application that needs a stricter level for its own
// reads takes row locks (SELECT ... FOR UPDATE) in tx.
func (s *Store) InTransaction(ctx context.Context, fn func(ctx context.Context, tx *gorm.DB) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b, ok := ctx.Value(txKey{}).(txBinding); ok && b.s == s {
		return fn(ctx, b.tx)
	}
	st := &txState{}
	pub := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c := policy.WithDeferredApply(ctx, func(apply func()) {
			// The engine calls it right after the change's Commit, under
			// the change lock of lockIn: st.mu is held, st.last is its
			// revision.
			st.applyMu.Lock()
			defer st.applyMu.Unlock()
			st.applies = append(st.applies, deferredApply{rev: st.last, apply: apply})
		})
		c = context.WithValue(c, txKey{}, txBinding{s: s, tx: tx, txState: st})
		if err := fn(c, tx); err != nil {
			return err
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.last > 0 {
			// Until the changes are published, the next change lock waits
			// (Lock): the engine must hold them before it validates again.
			s.pubMu.Lock()
			pub = true
			// Unsettled until published: a watcher that reads them first
			// applies them itself (and publish then skips them).
			s.unsettle(st.first, st.last)
		}
		return nil
	}, s.txOpts...)
	if pub {
		defer s.pubMu.Unlock()
		if err != nil {
			return s.commitUnknown(err)
		}
		s.publish(st)
	}
	return err
}

// publish publishes to the engine the changes of an InTransaction that
// committed, in revision order. It holds the engine's watcher's catch-up
// lock meanwhile, so that a watcher's reload cannot come between a check
// and an apply: a change that the watcher already holds (it applied the
// change from the feed, or reloaded a snapshot that includes it, perhaps
// with later changes of other replicas) is skipped, rather than replayed
// over the later state.
func (s *Store) publish(st *txState) {
	var w *Watcher
	if st.eng != nil {
		w = s.watcherOf(st.eng)
	}
	if w != nil {
		w.syncMu.Lock()
		defer w.syncMu.Unlock()
	}
	for _, a := range st.applies {
		if w == nil || a.rev > w.cursor.Load() {
			a.apply()
		}
	}
	s.advance(st.last)
	s.settle(st.first, st.last)
	s.wake()
}

// Prune deletes the change-feed and audit records of revisions up to and
// including upTo (the latest record is always kept) and returns how many
// it deleted. A watcher that had not read them yet reloads the whole
// policy instead.
func (s *Store) Prune(ctx context.Context, upTo int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	latest, err := s.Revision(ctx)
	if err != nil {
		return 0, err
	}
	upTo = min(upTo, latest-1)
	return dbwrite.Exec(s.db.WithContext(ctx), func(db *gorm.DB) *gorm.DB { // two replicas pruning at once
		return db.Exec("DELETE FROM "+s.changes+" WHERE revision <= ?", upTo)
	})
}
