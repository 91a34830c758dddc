package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gatehouse-authz/gatehouse/policy"
)

var (
	_ policy.LockingStore  = (*Store)(nil)
	_ policy.SnapshotStore = (*Store)(nil)
)

// errNeedReload: catching up under the change lock met a change feed that
// only a whole reload can follow (pruned, a gap, a reload row, a change the
// engine cannot apply, a database that went back).
var errNeedReload = errors.New("store: the replica must reload the whole policy")

// lockAttempts bounds how often Lock gives the change lock up so that the
// watcher can reload the whole policy, before it refuses.
const lockAttempts = 3

// Lock takes the store's change lock for one management call of e and
// implements [policy.LockingStore]; the engine calls it, applications do
// not. It begins a transaction and numbers the coming change in it, which
// locks the revision row (SQLite: the database) until the transaction
// ends, so changes of every replica take turns. Then it applies to e,
// through e's [Watcher], every change committed before, reading the feed
// in the same transaction: once Lock returns, e is not behind, and no
// other replica can commit until release. The returned Committer writes
// the change in that transaction and commits it; release rolls back what
// was not committed (nothing is written when the call changes nothing).
//
// When the feed cannot be followed incrementally (it was pruned, or asks
// for a reload), Lock gives the lock up, lets the watcher reload, and
// starts again. When e is behind and has no Watcher on this store, or
// catching up fails, Lock fails with an error wrapping [ErrConflict] and
// [ErrBehind], having written nothing.
//
// Inside [Store.InTransaction], the lock is taken in the application's
// transaction (under a savepoint, so that a failed change leaves none of
// it) and held until that transaction ends.
func (s *Store) Lock(ctx context.Context, e *policy.Engine) (policy.Committer, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if b, ok := ctx.Value(txKey{}).(txBinding); ok && b.s == s {
		return s.lockIn(ctx, b, e)
	}
	for attempt := 1; ; attempt++ {
		tx := s.db.WithContext(ctx).Begin(s.txOpts...)
		if tx.Error != nil {
			return nil, nil, fmt.Errorf("store: beginning a transaction: %w", tx.Error)
		}
		rev, err := s.number(tx)
		if err == nil {
			err = s.catchUp(ctx, tx, e, rev-1, 0)
		}
		if err == nil {
			l := &locked{s: s, tx: tx, rev: rev}
			return l, l.release, nil
		}
		tx.Rollback()
		if !errors.Is(err, errNeedReload) {
			return nil, nil, err
		}
		if attempt == lockAttempts {
			return nil, nil, fmt.Errorf("%w: %w: %w", ErrConflict, ErrBehind, err)
		}
		// Outside the lock: a reload reads through a connection of its own.
		// The watcher may have been closed meanwhile (a shutdown): then
		// there is nothing to reload with, and the change is refused.
		w := s.watcherOf(e)
		if w == nil {
			return nil, nil, fmt.Errorf("%w: %w: %w (and the engine's watcher is closed)", ErrConflict, ErrBehind, err)
		}
		if rerr := w.reloadNow(ctx, err.Error()); rerr != nil {
			return nil, nil, fmt.Errorf("%w: %w: %w", ErrConflict, ErrBehind, rerr)
		}
	}
}

// lockIn is Lock inside the application's transaction of b.
func (s *Store) lockIn(ctx context.Context, b txBinding, e *policy.Engine) (policy.Committer, func(), error) {
	b.mu.Lock()
	sp := fmt.Sprintf("gatehouse_change_%d", s.spSeq.Add(1))
	tx := b.tx.WithContext(ctx)
	if err := tx.SavePoint(sp).Error; err != nil {
		b.mu.Unlock()
		return nil, nil, fmt.Errorf("store: savepoint: %w", err)
	}
	rev, err := s.number(tx)
	if err == nil {
		err = s.catchUpInTx(ctx, tx, e, rev-1, b)
	}
	if err != nil {
		tx.RollbackTo(sp)
		b.mu.Unlock()
		return nil, nil, err
	}
	if b.eng == nil {
		b.eng = e
	}
	l := &lockedIn{s: s, b: b, tx: tx, sp: sp, rev: rev}
	return l, l.release, nil
}

// watcherOf returns the watcher that applies other replicas' changes to
// e, or nil.
func (s *Store) watcherOf(e *policy.Engine) *Watcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.wakers {
		if w.eng == e {
			return w
		}
	}
	return nil
}

// catchUp brings e up to revision prev, the last one committed, while tx
// holds the change lock. inTx is the last revision written earlier in the
// same (application's) transaction, or 0.
func (s *Store) catchUp(ctx context.Context, tx *gorm.DB, e *policy.Engine, prev, inTx int64) error {
	// Changes that an InTransaction committed are published before we go
	// on (the engine would validate without them otherwise).
	// A barrier: wait for the holder, if any; hold nothing.
	s.pubMu.Lock()
	s.pubMu.Unlock() //nolint:staticcheck // empty critical section on purpose
	w := s.watcherOf(e)
	have := s.applied.Load()
	if w != nil {
		have = w.Revision()
		if w.remade.Load() {
			// The feed's revisions do not continue what the engine holds.
			return fmt.Errorf("%w: the change feed's tables were made again", errNeedReload)
		}
	}
	switch {
	case prev == have, inTx > 0 && prev == inTx:
		return nil
	case prev < have:
		if w != nil {
			return fmt.Errorf("%w: the database is at revision %d, the engine at %d", errNeedReload, prev, have)
		}
		return nil // as a plain Commit: nothing to catch up with
	case w == nil:
		s.noteKnown(prev)
		return fmt.Errorf("%w: %w: the engine applied revision %d, the database is at %d, and no watcher follows the change feed for it", ErrConflict, ErrBehind, have, prev)
	}
	if err := w.catchUpIn(ctx, tx, prev); err != nil {
		if errors.Is(err, errNeedReload) {
			return err
		}
		s.wake() // the watcher keeps trying
		return fmt.Errorf("%w: %w: catching up from revision %d to %d: %w", ErrConflict, ErrBehind, w.Revision(), prev, err)
	}
	return nil
}

// locked is the Committer of a change lock in a transaction of its own.
type locked struct {
	s    *Store
	tx   *gorm.DB
	rev  int64
	mu   sync.Mutex
	done bool // committed or rolled back
}

// Commit writes ch under the lock and commits the transaction.
func (l *locked) Commit(ctx context.Context, ch *policy.Change) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return errors.New("store: one change per lock")
	}
	l.done = true
	if err := ctx.Err(); err != nil {
		l.tx.Rollback()
		return err
	}
	if err := l.s.writeIn(ctx, l.tx.WithContext(ctx), ch, l.rev, false); err != nil {
		l.tx.Rollback()
		return err
	}
	settle := l.s.committing(l.rev)
	if err := settle(l.tx.Commit().Error); err != nil {
		return err
	}
	ch.Revision = l.rev
	return nil
}

func (l *locked) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		l.tx.Rollback()
	}
}

// lockedIn is the Committer of a change lock in an application's
// transaction, under savepoint sp.
type lockedIn struct {
	s    *Store
	b    txBinding
	tx   *gorm.DB
	sp   string
	rev  int64
	used bool // Commit was called
	kept bool // and succeeded
	rel  bool // released
}

// Commit writes ch under the lock, in the application's transaction.
func (l *lockedIn) Commit(ctx context.Context, ch *policy.Change) error {
	if l.used || l.rel {
		return errors.New("store: one change per lock")
	}
	l.used = true
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.s.writeIn(ctx, l.tx.WithContext(ctx), ch, l.rev, false); err != nil {
		return err // release rolls back to the savepoint
	}
	l.kept = true
	ch.Revision = l.rev
	l.b.wrote(l.rev)
	return nil
}

func (l *lockedIn) release() {
	if l.rel {
		return
	}
	l.rel = true
	if !l.kept {
		l.tx.RollbackTo(l.sp)
	}
	l.b.mu.Unlock()
}

// ErrNotInTransaction is returned by [Store.HoldChangeLock] called with a
// context that is not an [Store.InTransaction]'s.
var ErrNotInTransaction = errors.New("store: not inside InTransaction")

// HoldChangeLock takes the store's change lock inside the application's
// transaction (ctx must be the one [Store.InTransaction] gives fn) and holds
// it until that transaction ends, with e caught up with every change
// committed before: until then no replica commits a policy change, so
// what the application reads of e (a user's role, say) stays true while it
// writes rows of its own that depend on it. It changes no policy and
// numbers no change. A management call is not needed for that: it takes
// the lock itself (see [Store.Lock]), and releases it at once if it
// changes nothing.
func (s *Store) HoldChangeLock(ctx context.Context, e *policy.Engine) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, ok := ctx.Value(txKey{}).(txBinding)
	if !ok || b.s != s {
		return ErrNotInTransaction
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	tx := b.tx.WithContext(ctx)
	var rev int64
	var err error
	if s.dialect == dialectSQLite {
		// An update that changes nothing takes the database's write lock
		// until the transaction ends (Open's transactions hold it already).
		if err := tx.Exec("UPDATE " + s.revision + " SET revision = revision WHERE id = 1").Error; err != nil {
			return fmt.Errorf("store: taking the change lock: %w", err)
		}
		rev, err = s.readRevision(tx)
	} else {
		// A locking read locks the revision row until the transaction
		// ends, as numbering a change does, and reads the latest revision
		// whatever the transaction's snapshot: a plain read, in a
		// transaction that already read something, sees MySQL's snapshot
		// of then (REPEATABLE READ).
		rev, err = s.readRevision(tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}))
	}
	if err != nil {
		return err
	}
	return s.catchUpInTx(ctx, tx, e, rev, b)
}

// catchUpInTx is catchUp inside the application's transaction of b, which
// holds the change lock: a change written earlier in it is not published
// before the commit (the engine is as current as it can be), and a whole
// reload cannot run now, so a feed that asks for one is a refusal.
func (s *Store) catchUpInTx(ctx context.Context, tx *gorm.DB, e *policy.Engine, prev int64, b txBinding) error {
	err := s.catchUp(ctx, tx, e, prev, b.last)
	if errors.Is(err, errNeedReload) {
		err = fmt.Errorf("%w: %w: %w", ErrConflict, ErrBehind, err)
	}
	return err
}
