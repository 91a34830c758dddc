package store

import (
	"context"
	"fmt"
	"sync"
)

// ownCommits tracks the store's own changes whose publication to the
// engine is in doubt.
//
// A watcher skips the feed rows that its own store wrote: the engine
// published those changes itself, once their COMMIT succeeded. When a
// COMMIT fails (the connection dropped before the reply, say), the
// outcome is unknown: the server may have committed the change, which the
// engine, told that it failed, never published. Such a revision is
// unsettled: a watcher that meets its row applies it like another
// replica's. So are an InTransaction's changes until they are published
// after the commit. While a COMMIT is under way, a watcher that meets its
// row waits for the outcome.
type ownCommits struct {
	mu        sync.Mutex
	inflight  map[int64]chan struct{} // closed when the COMMIT's outcome is known
	unsettled map[int64]struct{}      // own revisions the engine did not publish
}

// committing records that the COMMIT of the store's change numbered rev
// is about to be sent. The returned function takes the COMMIT's error:
// nil when it succeeded, and the engine publishes the change itself (the
// store's revision advances to rev and the watchers wake). Otherwise the
// outcome is unknown: rev is unsettled, and the error is wrapped to say so
// (see commitUnknown).
func (s *Store) committing(rev int64) (settle func(err error) error) {
	done := make(chan struct{})
	o := &s.own
	o.mu.Lock()
	o.inflight[rev] = done
	o.mu.Unlock()
	return func(err error) error {
		o.mu.Lock()
		if err == nil {
			delete(o.unsettled, rev) // a number given back and reused, perhaps
		} else {
			o.unsettled[rev] = struct{}{}
		}
		delete(o.inflight, rev)
		close(done)
		o.mu.Unlock()
		if err != nil {
			return s.commitUnknown(err)
		}
		s.advance(rev) // the engine publishes it once Commit returns, under its mutex
		s.wake()
		return nil
	}
}

// commitUnknown wraps the error of a COMMIT whose changes are unsettled,
// and wakes the watchers up: if the server committed them after all, a
// watcher applies them.
func (s *Store) commitUnknown(err error) error {
	s.wake()
	return fmt.Errorf("store: committing (the outcome is unknown: if the change was committed, the watcher applies it): %w", err)
}

// unsettle records that the engine did not publish the store's own
// revisions first to last (yet).
func (s *Store) unsettle(first, last int64) {
	o := &s.own
	o.mu.Lock()
	defer o.mu.Unlock()
	for rev := first; rev <= last; rev++ {
		o.unsettled[rev] = struct{}{}
	}
}

// settle records that the engine published the store's own revisions
// first to last.
func (s *Store) settle(first, last int64) {
	o := &s.own
	o.mu.Lock()
	defer o.mu.Unlock()
	for rev := first; rev <= last; rev++ {
		delete(o.unsettled, rev)
	}
}

// ownPublished reports whether the engine published the store's own
// revision rev itself, so that a watcher skips its feed row. While rev's
// COMMIT is under way it waits for the outcome (or for ctx).
func (s *Store) ownPublished(ctx context.Context, rev int64) (bool, error) {
	o := &s.own
	for {
		o.mu.Lock()
		done, busy := o.inflight[rev]
		_, unsettled := o.unsettled[rev]
		o.mu.Unlock()
		if !busy {
			return !unsettled, nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// settledUpTo forgets the unsettled revisions up to rev: the engine holds
// every change up to it (a watcher applied them, or reloaded past them).
func (s *Store) settledUpTo(rev int64) {
	o := &s.own
	o.mu.Lock()
	defer o.mu.Unlock()
	for r := range o.unsettled {
		if r <= rev {
			delete(o.unsettled, r)
		}
	}
}
