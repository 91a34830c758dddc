package store

import "errors"

// Sentinel errors. Errors returned by the store wrap one of them (or a
// driver error), so callers test with errors.Is. The engine wraps a failed
// Commit in policy.ErrStorage; errors.Is still finds these through it.
var (
	// ErrConflict: a change does not match the stored policy: a rule it
	// removes is not stored, or a rule it adds is stored already, or the
	// engine that made it had not applied every committed change yet and
	// could not catch up (the error then also wraps [ErrBehind]: no
	// Watcher, or the feed could not be read). Nothing was written.
	// [Watcher.Retry] catches up and tries again.
	ErrConflict = errors.New("store: change conflicts with the stored policy")
	// ErrNotMigrated: the store's tables are missing; call [Store.Migrate].
	ErrNotMigrated = errors.New("store: schema missing, call Migrate")
	// ErrUnsupported: the DSN or the database dialect is not supported.
	ErrUnsupported = errors.New("store: unsupported database")
	// ErrInvalid: [New] was given a nil *gorm.DB, one that was not opened
	// (such as a zero gorm.DB), or an invalid option (a bad table prefix).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrBehind: the replica knows that the database holds changes its
	// engine has not applied yet, or it cannot follow the change feed and
	// so cannot tell. [Watcher.Behind] and [Watcher.Sync] return it, and a
	// Commit refused because the engine was behind wraps it together with
	// [ErrConflict].
	ErrBehind = errors.New("store: replica behind the database")
	// ErrClosed: the watcher was closed.
	ErrClosed = errors.New("store: watcher closed")
)
