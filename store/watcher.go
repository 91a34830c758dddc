package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2/persist"
	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

var _ persist.Watcher = (*Watcher)(nil)

// Watcher keeps an engine in step with changes that other replicas commit
// to the shared database. It follows the store's change feed: on every
// wake-up it reads the changes after the last one it applied and hands
// them, in revision order, to [policy.Engine.ApplyCommitted]; the changes
// its own engine made through the same [Store] are skipped. Wake-ups come
// from PostgreSQL LISTEN/NOTIFY (on PostgreSQL) and from polling (on every
// database; the only way on MySQL, MariaDB and SQLite). A replica that
// missed wake-ups (a lost connection, a pause) catches up from the feed;
// if the feed was pruned past its revision ([Store.Prune]) it reloads the
// whole policy with [policy.Engine.Reload].
//
// Watcher also implements Casbin's persist.Watcher, for tools that write
// the rules table through the adapter: [Watcher.Update] makes every
// replica reload, and the callback of [Watcher.SetUpdateCallback] runs
// after each catch-up. It does not implement persist.WatcherEx: every
// Gatehouse change already travels incrementally through the feed.
//
// A Watcher is safe for concurrent use. Stop it with [Watcher.Close].
type Watcher struct {
	st     *Store
	eng    *policy.Engine
	poll   time.Duration
	listen bool

	cursor   atomic.Int64 // every change up to it is applied
	syncMu   sync.Mutex   // one catch-up at a time
	wakeCh   chan struct{}
	advMu    sync.Mutex
	advanced chan struct{} // closed and replaced when cursor moves

	cbMu sync.Mutex
	cb   func(string)

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type watcherOptions struct {
	poll   time.Duration
	listen bool
}

// WatcherOption configures a [Watcher].
type WatcherOption func(*watcherOptions)

// DefaultPollInterval is how often a watcher reads the feed when nothing
// woke it up.
const DefaultPollInterval = time.Second

// WithPollInterval sets how often the watcher polls the change feed
// (default [DefaultPollInterval]). With LISTEN/NOTIFY on PostgreSQL,
// polling is only the fallback and may be slow.
func WithPollInterval(d time.Duration) WatcherOption {
	return func(o *watcherOptions) { o.poll = d }
}

// WithListen turns PostgreSQL LISTEN/NOTIFY on or off (default on; it is
// ignored on other databases). The listener holds one connection of the
// pool.
func WithListen(on bool) WatcherOption { return func(o *watcherOptions) { o.listen = on } }

// NewWatcher starts a watcher that applies to eng the changes other
// replicas commit to st's database. eng must have been created with st
// (policy.WithStore(st)): the watcher continues from the revision eng
// loaded. NewWatcher catches up once before it returns.
func NewWatcher(ctx context.Context, st *Store, eng *policy.Engine, opts ...WatcherOption) (*Watcher, error) {
	o := watcherOptions{poll: DefaultPollInterval, listen: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.poll <= 0 {
		o.poll = DefaultPollInterval
	}
	w := &Watcher{
		st: st, eng: eng, poll: o.poll,
		listen:   o.listen && st.dialect == dialectPostgres,
		wakeCh:   make(chan struct{}, 1),
		advanced: make(chan struct{}),
	}
	w.cursor.Store(st.LoadedRevision())
	if err := w.Sync(ctx); err != nil {
		return nil, err
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	st.mu.Lock()
	st.wakers[w] = struct{}{}
	st.mu.Unlock()
	w.wg.Add(1)
	go w.run()
	if w.listen {
		w.wg.Add(1)
		go w.listenLoop()
	}
	return w, nil
}

// Revision returns the revision up to which the watcher has applied every
// change. Compare it with [Store.Revision] to tell whether this replica is
// behind.
func (w *Watcher) Revision() int64 { return w.cursor.Load() }

// Wait blocks until the watcher has applied revision rev, or ctx ends.
func (w *Watcher) Wait(ctx context.Context, rev int64) error {
	for {
		w.advMu.Lock()
		ch := w.advanced
		w.advMu.Unlock()
		if w.cursor.Load() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *Watcher) setCursor(rev int64) {
	w.cursor.Store(rev)
	w.st.advance(rev)
	w.advMu.Lock()
	close(w.advanced)
	w.advanced = make(chan struct{})
	w.advMu.Unlock()
}

// Retry calls fn and, while it fails with [ErrConflict] because this
// replica was behind the database, catches up with [Watcher.Sync] and
// calls it again, at most attempts times in all. fn is typically one
// management call on the engine; it must be safe to repeat.
func (w *Watcher) Retry(ctx context.Context, attempts int, fn func(ctx context.Context) error) error {
	var err error
	for i := 0; i < max(attempts, 1); i++ {
		if err = fn(ctx); !errors.Is(err, ErrConflict) {
			return err
		}
		if serr := w.Sync(ctx); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// kick asks the watcher to catch up soon.
func (w *Watcher) kick() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

func (w *Watcher) run() {
	defer w.wg.Done()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.wakeCh:
		}
		if err := w.Sync(w.ctx); err != nil && w.ctx.Err() == nil {
			w.st.log.WarnContext(w.ctx, "gatehouse: following the change feed failed", "err", err, "revision", w.Revision())
		}
	}
}

const feedBatch = 500

// Sync applies, now, every change committed after the watcher's revision.
func (w *Watcher) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	start := w.cursor.Load()
	defer func() {
		if cur := w.cursor.Load(); cur != start {
			w.callback(cur)
		}
	}()
	for {
		cur := w.cursor.Load()
		latest, err := w.st.Revision(ctx)
		if err != nil {
			return err
		}
		if latest == cur {
			return nil
		}
		if latest < cur { // the database was reset under us
			if err := w.reload(ctx, "store revision went back"); err != nil {
				return err
			}
			continue
		}
		var rows []changeRow
		err = w.st.db.WithContext(ctx).Table(w.st.changes).
			Where("revision > ?", cur).Order("revision").Limit(feedBatch).Find(&rows).Error
		if err != nil {
			return fmt.Errorf("store: reading the change feed: %w", err)
		}
		if len(rows) == 0 || rows[0].Revision != cur+1 {
			if err := w.reload(ctx, "change feed pruned"); err != nil {
				return err
			}
			continue
		}
		for i := range rows {
			if err := w.apply(ctx, &rows[i]); err != nil {
				return err
			}
		}
	}
}

func (w *Watcher) apply(ctx context.Context, r *changeRow) error {
	cur := w.cursor.Load()
	switch {
	case r.Revision <= cur:
		return nil // applied by a reload
	case r.Revision != cur+1:
		return w.reload(ctx, "gap in the change feed")
	case r.Reload:
		return w.reload(ctx, "reload requested")
	case r.Origin == w.st.origin:
		// The local engine published it when it committed.
		w.setCursor(r.Revision)
		return nil
	}
	rm, err1 := decodeRules(r.Removed)
	add, err2 := decodeRules(r.Added)
	if err := errors.Join(err1, err2); err != nil {
		w.st.log.ErrorContext(ctx, "gatehouse: undecodable change in the feed", "revision", r.Revision, "err", err)
		return w.reload(ctx, "undecodable change")
	}
	ch := policy.Change{Op: r.Op, Entity: model.EntityID(r.Entity), Actor: r.Actor, Remove: rm, Add: add, Revision: r.Revision}
	if err := w.eng.ApplyCommitted(ch); err != nil {
		w.st.log.ErrorContext(ctx, "gatehouse: applying a committed change failed", "revision", r.Revision, "err", err)
		return w.reload(ctx, "change not applicable")
	}
	w.setCursor(r.Revision)
	return nil
}

func (w *Watcher) reload(ctx context.Context, why string) error {
	w.st.log.InfoContext(ctx, "gatehouse: reloading the whole policy", "why", why, "revision", w.cursor.Load())
	if err := w.eng.Reload(ctx); err != nil {
		return err
	}
	w.setCursor(max(w.st.LoadedRevision(), w.cursor.Load()))
	return nil
}

func (w *Watcher) callback(rev int64) {
	w.cbMu.Lock()
	cb := w.cb
	w.cbMu.Unlock()
	if cb != nil {
		cb(strconv.FormatInt(rev, 10))
	}
}

// SetUpdateCallback sets a function called after the watcher applied new
// changes, with the revision it reached (in decimal). It is Casbin's
// persist.Watcher hook: a Casbin enforcer over [Store.Adapter] may reload
// there.
func (w *Watcher) SetUpdateCallback(fn func(string)) error {
	w.cbMu.Lock()
	defer w.cbMu.Unlock()
	w.cb = fn
	return nil
}

// Update records in the change feed that the rules table was changed
// outside Gatehouse (through [Store.Adapter] by a Casbin tool): every
// replica, this one included, reloads the whole policy. It implements
// Casbin's persist.Watcher.
func (w *Watcher) Update() error {
	if w.ctx.Err() != nil {
		return ErrClosed
	}
	ctx := w.ctx
	err := w.st.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		_, err := w.st.commitIn(ctx, tx, &policy.Change{Op: "casbin.update"}, true, 0)
		return err
	})
	if err != nil {
		return err
	}
	w.st.wake()
	return nil
}

// Close stops the watcher's goroutines and releases its connection. It
// implements Casbin's persist.Watcher; it is safe to call more than once.
func (w *Watcher) Close() {
	w.closeOnce.Do(func() {
		w.st.mu.Lock()
		delete(w.st.wakers, w)
		w.st.mu.Unlock()
		w.cancel()
		w.wg.Wait()
	})
}
