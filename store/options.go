package store

import (
	"context"
	"log/slog"
	"time"

	"gorm.io/gorm"
)

type options struct {
	prefix    string
	logger    *slog.Logger
	now       func() time.Time
	batchSize int
	hook      func(ctx context.Context, tx *gorm.DB, step string) error // tests: fault injection
}

// Option configures a [Store].
type Option func(*options)

// DefaultTablePrefix is the prefix of the store's table names:
// gatehouse_rules, gatehouse_changes and gatehouse_revision.
const DefaultTablePrefix = "gatehouse_"

// WithTablePrefix sets the prefix of the store's table names (default
// [DefaultTablePrefix]): 1 to 40 ASCII lowercase letters, digits and "_",
// starting with a letter (uppercase is refused: PostgreSQL folds unquoted
// names to lowercase). [New] refuses any other with [ErrInvalid]. Tests
// use it to get tables of their own.
func WithTablePrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithLogger sets the logger of the store and its watchers. The default
// discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithNow sets the clock that stamps audit records. The default is
// time.Now.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLoadBatchSize sets how many rules [Store.Load] reads per query
// (default 5,000).
func WithLoadBatchSize(n int) Option { return func(o *options) { o.batchSize = n } }

// withHook calls h at named steps of a commit ("numbered", "removed",
// "added", "fed") and of Load ("load", before the snapshot is read); an
// error it returns fails the commit or Load there. For fault-injection
// tests.
func withHook(h func(ctx context.Context, tx *gorm.DB, step string) error) Option {
	return func(o *options) { o.hook = h }
}
