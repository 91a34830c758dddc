package store

import "errors"

// Sentinel errors. Errors returned by the store wrap one of them (or a
// driver error), so callers test with errors.Is. The engine wraps a failed
// Commit in policy.ErrStorage; errors.Is still finds these through it.
var (
	// ErrConflict: a change does not match the stored policy: a rule it
	// removes is not stored, or a rule it adds is stored already. The engine
	// that made the change was behind the database (another replica changed
	// the same rules first); nothing was written.
	ErrConflict = errors.New("store: change conflicts with the stored policy")
	// ErrNotMigrated: the store's tables are missing; call [Store.Migrate].
	ErrNotMigrated = errors.New("store: schema missing, call Migrate")
	// ErrUnsupported: the DSN or the database dialect is not supported.
	ErrUnsupported = errors.New("store: unsupported database")
	// ErrClosed: the watcher was closed.
	ErrClosed = errors.New("store: watcher closed")
)
