// Package store is Gatehouse's transactional policy store over SQL
// databases, through GORM: SQLite, PostgreSQL, MySQL and MariaDB.
//
// # Pieces
//
// [Open] turns a DSN into a *gorm.DB (or bring your own and share its
// pool). [New] wraps it in a [Store], a policy.Store for
// policy.WithStore. [Store.Migrate] creates the tables, explicitly and
// idempotently: nothing else changes the schema.
//
//	db, _ := store.Open(ctx, "postgres://app@db/app")
//	st, _ := store.New(ctx, db)
//	_ = st.Migrate(ctx)
//	eng, _ := policy.New(ctx, policy.WithStore(st))
//	w, _ := store.NewWatcher(ctx, st, eng) // with other replicas
//	defer w.Close()
//
// # Tables
//
// The rules live in <prefix>rules in gorm-adapter's layout, so Casbin's
// tools read them through [Store.Adapter]. <prefix>changes is both the
// change feed that replicas follow and the audit trail ([Store.Audit]);
// <prefix>revision holds the number of the last change. The prefix is
// "gatehouse_" unless [WithTablePrefix] says otherwise.
//
// # Atomicity
//
// Each [Store.Commit] is one database transaction: the revision number,
// the rules removed and added, and the feed and audit row, all or nothing.
// The engine publishes a change to its index only after Commit succeeded,
// so a failed write leaves the database and the decisions as before.
// [Store.InTransaction] runs policy changes inside an application's own
// transaction and publishes them only if it commits. A change whose
// removed rules are not all stored or whose added rules are is refused
// with [ErrConflict], and nothing is written.
//
// # Replicas
//
// Engines in several processes share one database; each has its own Store
// and a [Watcher] that applies the other replicas' changes incrementally,
// in commit order, from the change feed (revisions are assigned under a
// lock on the revision row, so they follow commit order without gaps).
// On PostgreSQL commits notify the watchers with NOTIFY (the payload names
// the feed, by its table's oid, and the revision: deployments with the same
// table prefix in other schemas of the database share the channel, and a
// watcher takes only its own feed's); everywhere the watchers also poll, and a catch-up that
// failed is retried within milliseconds rather than at the next poll.
//
// Writers on different replicas take turns rather than refusing each
// other: Store is a policy.LockingStore. Every management call starts
// with [Store.Lock], which opens the change's transaction, takes the
// revision-row lock (SQLite: the write lock) and, through the replica's
// Watcher, applies every change committed before, reading the feed in
// that transaction; only then does the engine take its own mutex,
// validate against its now current index and commit in the same
// transaction. A writer holding the lock is never behind, however busy
// the other replicas are. (Lock order: the database lock, then the
// engine's mutex; a watcher takes only the mutex.)
//
// # Freshness
//
// A replica never serves from a state it knows is behind without saying
// so. [Watcher.Revision] is the revision its engine applied,
// [Watcher.Known] the highest one it knows is committed (from
// notifications, polls and its own commits), and [Watcher.Behind] returns
// an error wrapping [ErrBehind] while the first is below the second,
// while the watcher cannot follow the feed, or when it has not read the
// database's revision for longer than [WithStaleAfter] (a watcher whose
// reads hang; each read is also bounded by [WithReadTimeout])
// ([Watcher.Lag] has the details). It reads no database, so a server can check it on every
// request. [Watcher.Sync] catches up with every change committed before
// the call (one read when there is none), and [Watcher.Wait] waits
// for a revision. A management call does not need either: the change
// lock catches its replica up first. Only a replica that cannot catch up
// (no Watcher for its engine, or a feed it cannot read) has its change
// refused, with an error wrapping both [ErrConflict] and [ErrBehind];
// [Watcher.Retry] catches up and tries again.
//
// A database whose tables were dropped and made again (a restore) is
// reloaded whole when its revision is below the replica's. On PostgreSQL,
// a listening watcher also reloads when it learns that the change table is
// new (its oid changed): from the first notification of the new table, or
// when its connection is made again. A restore to a revision at or above
// the replica's is otherwise taken for the feed's continuation (on MySQL
// and SQLite, and on PostgreSQL until a commit notifies): restart the
// replicas after a restore.
//
// # Concurrency
//
// Store and Watcher are safe for concurrent use. A Store serves one
// engine. Close watchers with [Watcher.Close]; the store itself owns no
// goroutine, and the *gorm.DB stays the caller's to close.
package store
