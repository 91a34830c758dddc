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
// its own engine made through the same [Store] are skipped, except those
// whose COMMIT failed (the connection dropped, say) and that the server
// committed all the same: their outcome was unknown, so the engine did not
// publish them, and the watcher applies them. Wake-ups come
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
	st          *Store
	eng         *policy.Engine
	poll        time.Duration
	readTimeout time.Duration // bounds each read of the database
	reloadTime  time.Duration // bounds a reload of the whole policy
	// reloadBound bounds the next reload: reloadTime, doubled after each
	// reload that timed out (up to maxReloadGrowth times). Guarded by
	// syncMu, which every reload holds.
	reloadBound time.Duration
	staleAfter  time.Duration // Behind fails once checked is older
	listen      bool

	cursor    atomic.Int64 // every feed row up to it is processed
	syncMu    sync.Mutex   // one catch-up at a time
	wakeCh    chan struct{}
	advMu     sync.Mutex
	advanced  chan struct{} // closed and replaced when cursor moves
	listening atomic.Bool   // the LISTEN connection is up
	feed      atomic.Value  // string: the change feed's oid, as the LISTEN connection last read it (PostgreSQL)
	remade    atomic.Bool   // the feed's oid changed: its tables were made again, and the next sync reloads
	hook      func(ctx context.Context) error

	stMu    sync.Mutex // guards the fields below
	lastErr error      // the last failure to follow the feed; nil after a success
	errAt   time.Time  // when following the feed started failing
	checked time.Time  // the last successful read of the database's revision

	cbMu sync.Mutex
	cb   func(string)

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type watcherOptions struct {
	poll        time.Duration
	readTimeout time.Duration
	reloadTime  time.Duration
	staleAfter  time.Duration
	listen      bool
	hook        func(ctx context.Context) error // tests: runs in Sync, after the revision is read
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

// DefaultReadTimeout bounds each read of the database by a watcher.
const DefaultReadTimeout = 5 * time.Second

// WithReadTimeout bounds each read of the database by the watcher
// (default [DefaultReadTimeout]): of the database's revision, of a batch
// of the change feed, the wait for the outcome of its own store's COMMIT,
// and on PostgreSQL the check that the LISTEN connection still answers,
// made after a poll interval without notifications. A read that takes
// longer fails (and [Watcher.Behind] says so): the watcher retries on
// another connection rather than wait for one that silently stopped
// answering. A whole reload has a bound of its own ([WithReloadTimeout]).
func WithReadTimeout(d time.Duration) WatcherOption {
	return func(o *watcherOptions) { o.readTimeout = d }
}

// DefaultReloadTimeout bounds a watcher's reload of the whole policy.
const DefaultReloadTimeout = 2 * time.Minute

// maxReloadGrowth is how many times WithReloadTimeout's bound a reload
// may get after reloads that timed out.
const maxReloadGrowth = 16

// WithReloadTimeout bounds each reload of the whole policy by the watcher
// ([policy.Engine.Reload]; default [DefaultReloadTimeout]), which it makes
// when the change feed cannot be followed change by change (pruned, a gap,
// the database reset). A reload that takes longer fails and leaves the
// engine as it was; [Watcher.Behind] reports the error, and the watcher
// tries again; after a reload that timed out while it was still reading
// rules, with twice the bound (up to 16 times d), so that a reload that is
// only slow does finish, while one that waits on a database that does not
// answer keeps the bound. The engine's management calls wait
// for a reload, so the bound also bounds their wait. Leave room for the
// size of the policy: a million rules load in seconds.
func WithReloadTimeout(d time.Duration) WatcherOption {
	return func(o *watcherOptions) { o.reloadTime = d }
}

// WithStaleAfter sets how long the watcher may go without reading the
// database's revision before [Watcher.Behind] reports its replica behind
// (default: three poll intervals plus the read timeout). A watcher whose
// reads hang learns of no change and reports no error: past this bound
// it cannot tell that nothing is missing.
func WithStaleAfter(d time.Duration) WatcherOption {
	return func(o *watcherOptions) { o.staleAfter = d }
}

// WithListen turns PostgreSQL LISTEN/NOTIFY on or off (default on; it is
// ignored on other databases). The listener holds one connection of the
// pool.
func WithListen(on bool) WatcherOption { return func(o *watcherOptions) { o.listen = on } }

// withSyncHook calls h in every Sync once the database's revision is read,
// before the feed is; an error it returns fails the Sync there. Tests use
// it to make a replica that knows it is behind and cannot catch up.
func withSyncHook(h func(ctx context.Context) error) WatcherOption {
	return func(o *watcherOptions) { o.hook = h }
}

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
	if o.readTimeout <= 0 {
		o.readTimeout = DefaultReadTimeout
	}
	if o.reloadTime <= 0 {
		o.reloadTime = DefaultReloadTimeout
	}
	if o.staleAfter <= 0 {
		o.staleAfter = 3*o.poll + o.readTimeout
	}
	w := &Watcher{
		st: st, eng: eng, poll: o.poll, readTimeout: o.readTimeout, staleAfter: o.staleAfter,
		reloadTime: o.reloadTime, reloadBound: o.reloadTime,
		listen:   o.listen && st.dialect == dialectPostgres,
		wakeCh:   make(chan struct{}, 1),
		advanced: make(chan struct{}),
		hook:     o.hook,
	}
	rev, ok := eng.LoadedRevision()
	if !ok {
		return nil, fmt.Errorf("%w: the watcher's engine must load through st (policy.WithStore(st), or a wrapper that keeps st's LoadSnapshot): it does not know which revision it holds", ErrInvalid)
	}
	w.cursor.Store(rev)
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

// Revision returns the revision up to which the replica's engine has
// applied every change: the other replicas' through the watcher, its own
// as it commits them. Compare it with [Store.Revision] to tell whether this
// replica is behind, or ask [Watcher.Behind].
func (w *Watcher) Revision() int64 { return max(w.cursor.Load(), w.st.applied.Load()) }

// Known returns the highest revision the watcher knows to be committed:
// from the database's revision it read last, the notifications it received
// (PostgreSQL) and the commits its store made or refused. The replica is
// behind while Known is above [Watcher.Revision]; Known may itself be
// below the database's revision when changes were committed since the
// watcher last heard of one.
func (w *Watcher) Known() int64 {
	_, known, _ := w.st.lag()
	return known
}

// Lag is what a watcher knows of how far its replica is behind the
// database; see [Watcher.Lag].
type Lag struct {
	// Applied is the revision up to which the engine applied every change
	// ([Watcher.Revision]).
	Applied int64
	// Known is the highest revision known to be committed ([Watcher.Known]).
	Known int64
	// Since is when the replica fell behind: Known > Applied since then.
	// It is zero while Known == Applied.
	Since time.Time
	// Checked is when the watcher last read the database's revision.
	// [Watcher.Behind] fails once it is older than the bound of
	// [WithStaleAfter].
	Checked time.Time
	// Err is why following the change feed fails; nil while it works.
	Err error
	// ErrSince is when following the feed started failing (zero with a
	// nil Err).
	ErrSince time.Time
	// Listening tells that PostgreSQL notifications reach the watcher.
	// Without them (other databases, WithListen(false), a lost
	// connection) it learns of changes by polling only.
	Listening bool
}

// Behind returns the number of changes known to be committed and not yet
// applied.
func (l Lag) Behind() int64 { return max(l.Known-l.Applied, 0) }

// Lag returns the watcher's view of its replica's lag. It reads no
// database and takes no lock that decisions take.
func (w *Watcher) Lag() Lag {
	applied, known, since := w.st.lag()
	applied = max(applied, w.cursor.Load())
	l := Lag{Applied: applied, Known: max(known, applied), Listening: w.listening.Load()}
	if l.Known > l.Applied {
		l.Since = since
	}
	w.stMu.Lock()
	l.Checked, l.Err, l.ErrSince = w.checked, w.lastErr, w.errAt
	w.stMu.Unlock()
	return l
}

// Behind returns nil when the replica has applied every change it knows
// of and its watcher follows the change feed: its last read of the
// database's revision succeeded, no longer ago than the bound of
// [WithStaleAfter]. Otherwise it returns an error that wraps [ErrBehind]
// (and, when following the feed fails, the reason; after
// [Watcher.Close], [ErrClosed]) and says by how much and for how long.
// A watcher whose reads hang (a connection that silently stopped
// answering) is reported by the bound, or by the failure of its reads
// after [WithReadTimeout]. It reads no database: call it before serving
// a decision that must not come from a state known to be stale, and
// [Watcher.Sync] (one read) before validating a change against
// every committed one.
//
// The watcher learns of a change when it is notified (PostgreSQL), when
// it polls, and when its store commits or refuses a change: a nil result
// means that nothing is known to be missing, not that nothing is.
func (w *Watcher) Behind() error {
	if w.ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrBehind, ErrClosed)
	}
	l := w.Lag()
	switch stale := time.Since(l.Checked); {
	case l.Err != nil:
		return fmt.Errorf("%w: following the change feed fails since %s (applied revision %d, known %d): %w",
			ErrBehind, l.ErrSince.Format(time.RFC3339Nano), l.Applied, l.Known, l.Err)
	case stale > w.staleAfter:
		return fmt.Errorf("%w: the watcher has not read the database's revision for %v (bound %v): it cannot tell what is committed (applied revision %d, known %d)",
			ErrBehind, stale.Round(time.Millisecond), w.staleAfter, l.Applied, l.Known)
	case l.Known > l.Applied:
		return fmt.Errorf("%w: applied revision %d, revision %d is committed (%d changes, behind for %v)",
			ErrBehind, l.Applied, l.Known, l.Behind(), time.Since(l.Since).Round(time.Microsecond))
	}
	return nil
}

// Wait blocks until the watcher has applied revision rev, or ctx ends.
// Wait(ctx, w.Known()) waits for every change the watcher knows of.
func (w *Watcher) Wait(ctx context.Context, rev int64) error {
	for {
		w.advMu.Lock()
		ch := w.advanced
		w.advMu.Unlock()
		if w.Revision() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setCursor records that every feed row up to rev is processed; the
// cursor never moves back.
func (w *Watcher) setCursor(rev int64) {
	if rev <= w.cursor.Load() {
		return
	}
	w.moveCursor(rev)
}

// moveCursor sets the cursor to rev (only the syncMu holder calls it),
// records it in the store and wakes the waiters of Wait.
func (w *Watcher) moveCursor(rev int64) {
	w.cursor.Store(rev)
	w.st.advance(rev)
	w.st.settledUpTo(rev)
	w.advMu.Lock()
	close(w.advanced)
	w.advanced = make(chan struct{})
	w.advMu.Unlock()
}

// Retry calls fn and, while it fails with [ErrConflict], catches up with
// [Watcher.Sync] and calls it again, at most attempts times in all. fn is
// typically one management call on the engine; it must be safe to repeat.
// A management call catches its replica up under the store's change lock
// by itself ([Store.Lock]), so Retry is only needed where that could not
// be done: when reading the change feed failed.
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

// minRetry is the first delay before the watcher retries a failed
// catch-up; it doubles up to the poll interval.
const minRetry = 10 * time.Millisecond

// run catches up on every wake-up: a notification, a local commit, the
// poll ticker, or a retry after a failure (soon, rather than a whole poll
// interval later).
func (w *Watcher) run() {
	defer w.wg.Done()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := minRetry
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.wakeCh:
		case <-retry.C:
		}
		err := w.Sync(w.ctx)
		if w.ctx.Err() != nil {
			return
		}
		if err == nil && w.Known() <= w.Revision() {
			backoff = minRetry
			retry.Stop()
			continue
		}
		if err != nil {
			w.st.log.WarnContext(w.ctx, "gatehouse: following the change feed failed", "err", err, "revision", w.Revision(), "retry", backoff)
		} // else a notification announced a revision that the read did not show yet
		retry.Reset(backoff)
		backoff = min(2*backoff, w.poll)
	}
}

const feedBatch = 500

// Sync applies, now, every change committed before the call: it reads the
// database's revision and applies the changes up to it (one read when
// there are none: a round trip, or on MySQL a read-only transaction, so
// that it sees only committed rows). Call it before validating a change
// against every committed one. An error wraps [ErrBehind]: the replica
// could not catch up.
func (w *Watcher) Sync(ctx context.Context) error {
	err := w.sync(ctx)
	w.stMu.Lock()
	defer w.stMu.Unlock()
	switch {
	case err == nil:
		w.lastErr, w.errAt = nil, time.Time{}
	case ctx.Err() != nil:
		// The caller gave up (or the watcher is closing): that says
		// nothing about the feed.
	default:
		if w.lastErr == nil {
			w.errAt = time.Now()
		}
		w.lastErr = err
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBehind, err)
	}
	return nil
}

// following takes syncMu for one catch-up and returns the function that
// ends it: it tells the update callback the new revision, if the cursor
// moved, and releases syncMu.
func (w *Watcher) following() (done func()) {
	w.syncMu.Lock()
	start := w.cursor.Load()
	return func() {
		defer w.syncMu.Unlock()
		if cur := w.cursor.Load(); cur != start {
			w.callback(cur)
		}
	}
}

func (w *Watcher) sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer w.following()()
	// One read of the database's revision, then the feed up to it: a
	// notified change costs two round trips.
	rctx, cancel := w.readCtx(ctx)
	latest, err := w.st.Revision(rctx)
	cancel()
	if err != nil {
		return err
	}
	w.st.noteKnown(latest)
	w.stMu.Lock()
	w.checked = time.Now()
	w.stMu.Unlock()
	if w.hook != nil {
		if err := w.hook(ctx); err != nil {
			return err
		}
	}
	if cur := w.cursor.Load(); latest < cur { // the database was reset under us
		return w.reload(ctx, "store revision went back")
	}
	if w.remade.Load() { // so was it, to a revision that may be higher
		return w.reload(ctx, "the change feed's tables were made again")
	}
	for {
		cur := w.cursor.Load()
		if cur >= latest {
			return nil
		}
		var rows []changeRow
		rctx, cancel := w.readCtx(ctx)
		err := w.st.committed(rctx, func(db *gorm.DB) error {
			return db.Table(w.st.changes).Where("revision > ?", cur).Order("revision").Limit(feedBatch).Find(&rows).Error
		})
		cancel()
		if err != nil {
			return fmt.Errorf("store: reading the change feed: %w", err)
		}
		if len(rows) == 0 || rows[0].Revision != cur+1 {
			// The reload reads a snapshot at least as new as latest.
			return w.reload(ctx, "change feed pruned")
		}
		for i := range rows {
			if err := w.apply(ctx, &rows[i]); err != nil {
				return err
			}
		}
	}
}

// readCtx returns the context of one read of the database: ctx, bounded
// by the read timeout.
func (w *Watcher) readCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.readTimeout)
}

func (w *Watcher) apply(ctx context.Context, r *changeRow) error {
	why, err := w.applyRow(ctx, r)
	if why != "" {
		return w.reload(ctx, why)
	}
	return err
}

// applyRow applies feed row r to the engine, or returns why the whole
// policy must be reloaded instead. The caller holds syncMu.
func (w *Watcher) applyRow(ctx context.Context, r *changeRow) (reload string, err error) {
	cur := w.cursor.Load()
	switch {
	case r.Revision <= cur:
		return "", nil // applied by a reload
	case r.Revision != cur+1:
		return "gap in the change feed", nil
	case r.Reload:
		return "reload requested", nil
	case r.Origin == w.st.origin:
		// The local engine published it when it committed, unless its
		// COMMIT failed (the server may have committed it all the same):
		// then it is applied here like another replica's change.
		rctx, cancel := w.readCtx(ctx)
		published, err := w.st.ownPublished(rctx, r.Revision)
		cancel()
		if err != nil {
			return "", err
		}
		if published {
			w.setCursor(r.Revision)
			return "", nil
		}
	}
	rm, err1 := decodeRules(r.Removed)
	add, err2 := decodeRules(r.Added)
	if err := errors.Join(err1, err2); err != nil {
		w.st.log.ErrorContext(ctx, "gatehouse: undecodable change in the feed", "revision", r.Revision, "err", err)
		return "undecodable change", nil
	}
	ch := policy.Change{Op: r.Op, Entity: model.EntityID(r.Entity), Actor: r.Actor, Remove: rm, Add: add, Revision: r.Revision}
	if err := w.eng.ApplyCommitted(ch); err != nil {
		w.st.log.ErrorContext(ctx, "gatehouse: applying a committed change failed", "revision", r.Revision, "err", err)
		return "change not applicable", nil
	}
	w.setCursor(r.Revision)
	return "", nil
}

// catchUpIn applies the changes up to revision latest, reading the feed
// in tx, a transaction that holds the store's change lock (Store.Lock).
// It never reloads (a reload reads through another connection, which may
// wait for tx): where one is needed it returns an error wrapping
// errNeedReload.
func (w *Watcher) catchUpIn(ctx context.Context, tx *gorm.DB, latest int64) error {
	defer w.following()()
	w.st.noteKnown(latest)
	if w.hook != nil {
		if err := w.hook(ctx); err != nil {
			return err
		}
	}
	q := "SELECT revision, at, op, entity, actor, origin, reload, removed, added FROM " + w.st.changes +
		" WHERE revision > ? AND revision <= ? ORDER BY revision LIMIT ?"
	if w.st.dialect == dialectMySQL {
		// A locking read sees every committed row, whatever snapshot an
		// application's repeatable-read transaction took before.
		q += " LOCK IN SHARE MODE"
	}
	for {
		cur := w.cursor.Load()
		if cur >= latest {
			return nil
		}
		var rows []changeRow
		if err := tx.Raw(q, cur, latest, feedBatch).Scan(&rows).Error; err != nil {
			return fmt.Errorf("store: reading the change feed: %w", err)
		}
		if len(rows) == 0 || rows[0].Revision != cur+1 {
			return fmt.Errorf("%w: change feed pruned", errNeedReload)
		}
		for i := range rows {
			why, err := w.applyRow(ctx, &rows[i])
			if why != "" {
				return fmt.Errorf("%w: %s", errNeedReload, why)
			}
			if err != nil {
				return err
			}
		}
	}
}

// reloadNow reloads the whole policy (Store.Lock asks for it when the feed
// cannot be followed incrementally).
func (w *Watcher) reloadNow(ctx context.Context, why string) error {
	defer w.following()()
	return w.reload(ctx, why)
}

func (w *Watcher) reload(ctx context.Context, why string) error {
	w.st.log.InfoContext(ctx, "gatehouse: reloading the whole policy", "why", why, "revision", w.cursor.Load())
	// A reload answers a remade feed known before it starts; one that
	// fails leaves it to answer, and one made during it sets it again.
	remade := w.remade.Swap(false)
	bound, read := w.reloadBound, w.st.rowsRead.Load()
	rctx, cancel := context.WithTimeout(ctx, bound)
	err := w.eng.Reload(rctx)
	cancel()
	if err != nil {
		if remade {
			w.remade.Store(true)
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// A load that read rules is slow, not stuck: give the next one
			// more time. One that read nothing waits on a database that
			// does not answer, and gets no longer.
			if w.st.rowsRead.Load() > read {
				w.reloadBound = min(2*bound, maxReloadGrowth*w.reloadTime)
			}
			w.st.log.ErrorContext(ctx, "gatehouse: reloading the whole policy took too long", "bound", bound, "next bound", w.reloadBound, "err", err)
		}
		return err
	}
	w.reloadBound = w.reloadTime
	// The index is the database's state at the loaded revision: the feed
	// continues from there (even below the cursor, if the database was
	// reset).
	rev, _ := w.eng.LoadedRevision()
	w.moveCursor(rev)
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
	}, w.st.txOpts...)
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
