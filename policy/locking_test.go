package policy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// lockingStore is a policy.LockingStore over a slice of committed changes
// that another "replica" may append to: Lock catches the engine up with
// them through ApplyCommitted, as a database store does under its lock.
type lockingStore struct {
	t        *testing.T
	mu       sync.Mutex // the store-wide change lock
	log      []policy.Change
	applied  int // changes of log the engine holds
	locks    int
	releases int
	lockErr  error
	failNext error
}

func (s *lockingStore) Load(context.Context, func(model.Rule) error) error { return nil }

func (s *lockingStore) Commit(ctx context.Context, ch *policy.Change) error {
	s.t.Error("Commit called outside Lock")
	return errors.New("unlocked commit")
}

// foreign records a change committed by another replica.
func (s *lockingStore) foreign(ch policy.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch.Revision = int64(len(s.log) + 1)
	s.log = append(s.log, ch)
}

func (s *lockingStore) Lock(ctx context.Context, e *policy.Engine) (policy.Committer, func(), error) {
	if s.lockErr != nil {
		return nil, nil, s.lockErr
	}
	s.mu.Lock()
	s.locks++
	for ; s.applied < len(s.log); s.applied++ {
		if err := e.ApplyCommitted(s.log[s.applied]); err != nil {
			s.mu.Unlock()
			return nil, nil, err
		}
	}
	c := &lockedCommitter{s: s}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			// The engine's mutex is free by now: applying a change (which
			// takes it) must not block.
			ok := make(chan struct{})
			go func() {
				defer close(ok)
				_ = e.ApplyCommitted(policy.Change{Revision: e.Revision()})
			}()
			select {
			case <-ok:
			case <-time.After(5 * time.Second):
				s.t.Error("release called with the engine's mutex held")
			}
			s.releases++
			s.mu.Unlock()
		})
	}, nil
}

type lockedCommitter struct {
	s    *lockingStore
	used bool
}

func (c *lockedCommitter) Commit(_ context.Context, ch *policy.Change) error {
	if c.used {
		return errors.New("second commit under one lock")
	}
	c.used = true
	if err := c.s.failNext; err != nil {
		c.s.failNext = nil
		return err
	}
	ch.Revision = int64(len(c.s.log) + 1)
	c.s.log = append(c.s.log, *ch)
	c.s.applied = len(c.s.log)
	return nil
}

// TestLockingStore: with a LockingStore, every management call takes the
// store's lock first, validates against the state the lock brought in, and
// releases the lock once, after the engine's mutex, whatever the outcome.
func TestLockingStore(t *testing.T) {
	ctx := context.Background()
	st := &lockingStore{t: t}
	eng := newEngine(t, policy.WithStore(st))

	// Another replica creates e1 and a role: the next call on this engine
	// sees them without any catch-up of its own.
	st.foreign(policy.Change{Op: "entity.create", Entity: "e1", Add: []model.Rule{{PType: "g2", Values: []string{"partner:p1", "entity:e1"}}}})
	st.foreign(policy.Change{Op: "role.create", Entity: "e1", Add: []model.Rule{
		{PType: "p2", Values: []string{"role:r1", "entity:e1", "R1", "1", "1"}},
		{PType: "p", Values: []string{"role:r1", "entity:e1", "payable", "read", "allowed"}}}})
	must[policy.User](t)(eng.AddUser(ctx, "e1", "u1", "r1"))
	if d := eng.Decide(&policy.Request{Subject: model.User("u1"), Entity: "e1", Object: "payable", Action: "read"}); !d.Allowed {
		t.Fatalf("decision after the call: %+v", d)
	}
	if eng.Revision() != 3 || st.locks != 1 || st.releases != 1 {
		t.Fatalf("revision %d, %d locks, %d releases; want 3, 1, 1", eng.Revision(), st.locks, st.releases)
	}

	// Refused by validation, by a failed commit, or a no-op: released all
	// the same, and nothing changes.
	before := dump(eng.Rules())
	if _, err := eng.AddUser(ctx, "e1", "u1", ""); !errors.Is(err, policy.ErrConflict) {
		t.Fatalf("duplicate user: %v", err)
	}
	if err := eng.SetDefaultRole(ctx, "e1", ""); err != nil {
		t.Fatalf("no-op: %v", err)
	}
	st.failNext = errInjected
	if err := eng.RemoveUser(ctx, "e1", "u1"); !errors.Is(err, policy.ErrStorage) || !errors.Is(err, errInjected) {
		t.Fatalf("failed commit: %v", err)
	}
	if dump(eng.Rules()) != before || eng.Revision() != 3 {
		t.Fatalf("refused calls changed the engine")
	}
	if st.locks != 4 || st.releases != 4 {
		t.Fatalf("%d locks, %d releases; want 4, 4", st.locks, st.releases)
	}

	// A lock that cannot be taken fails the call, closed.
	st.lockErr = errInjected
	if err := eng.RemoveUser(ctx, "e1", "u1"); !errors.Is(err, policy.ErrStorage) || !errors.Is(err, errInjected) {
		t.Fatalf("failed lock: %v", err)
	}
	if dump(eng.Rules()) != before {
		t.Fatal("a call without the lock changed the engine")
	}
	st.lockErr = nil

	// Calls from several goroutines take turns.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := model.UserID([]string{"a", "b", "c", "d", "e", "f", "g", "h"}[i])
			if _, err := eng.AddUser(ctx, "e1", u, "r1"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if users, _ := eng.ListUsers(ctx, "e1"); len(users) != 9 || eng.Revision() != int64(len(st.log)) {
		t.Fatalf("%d users at revision %d, log %d", len(users), eng.Revision(), len(st.log))
	}
}
