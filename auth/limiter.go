package auth

import (
	"sync"
	"time"
)

// limiter slows down guessing of client secrets. After max failed attempts
// with a client id within window, the id is refused for cooldown, even with
// the right secret; after the cool-down it starts afresh, so a client is never
// locked out for good. Attempts in flight are not counted, so a burst of
// parallel guesses may exceed max by its concurrency: the limiter is defence
// in depth, the secrets themselves have 256 bits. It tracks at most cap ids:
// when full it forgets ids whose window has passed, then ids that are not
// blocked, then arbitrary ones.
type limiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	cooldown time.Duration
	cap      int
	m        map[string]*attempts
}

type attempts struct {
	start        time.Time // start of the current window
	n            int       // failures in the window
	blockedUntil time.Time
}

func newLimiter(o *options) *limiter {
	return &limiter{max: o.maxFailures, window: o.failWindow, cooldown: o.cooldown, cap: o.limiterEntries, m: map[string]*attempts{}}
}

// allow reports whether an attempt with id may be made now, and if not, how
// long until it may.
func (l *limiter) allow(id string, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.m[id]; a != nil && now.Before(a.blockedUntil) {
		return a.blockedUntil.Sub(now), false
	}
	return 0, true
}

// failed counts a failed attempt with id.
func (l *limiter) failed(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.m[id]
	if a == nil {
		l.makeRoom(now)
		a = &attempts{start: now}
		l.m[id] = a
	}
	if !a.blockedUntil.IsZero() && !now.Before(a.blockedUntil) || now.Sub(a.start) >= l.window {
		*a = attempts{start: now}
	}
	a.n++
	if a.n >= l.max {
		a.blockedUntil = now.Add(l.cooldown)
	}
}

// succeeded forgets the failures of id.
func (l *limiter) succeeded(id string) {
	l.mu.Lock()
	delete(l.m, id)
	l.mu.Unlock()
}

func (l *limiter) makeRoom(now time.Time) {
	if len(l.m) < l.cap {
		return
	}
	for id, a := range l.m {
		if now.Sub(a.start) >= l.window && !now.Before(a.blockedUntil) {
			delete(l.m, id)
		}
	}
	for _, pass := range []bool{false, true} {
		for id, a := range l.m {
			if len(l.m) < l.cap {
				return
			}
			if pass || !now.Before(a.blockedUntil) {
				delete(l.m, id)
			}
		}
	}
}

func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
