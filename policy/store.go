package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/casbin/casbin/v2/persist"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Change is one atomic change of the stored policy: the Casbin rules it
// removes and adds. The engine makes one Change per management call.
type Change struct {
	Op       string         // what was done, e.g. "role.create"
	Entity   model.EntityID // the entity the change is about
	Actor    string         // who did it (see WithActor); "" when unknown
	Remove   []model.Rule   // rules that exist before and not after
	Add      []model.Rule   // rules that exist after and not before
	Revision int64          // set by a Store that numbers its changes
}

// Store persists the policy as Casbin rules.
type Store interface {
	// Load calls fn for every stored rule, in any order.
	Load(ctx context.Context, fn func(model.Rule) error) error
	// Commit stores ch atomically: all of it, or nothing and an error. It
	// may set ch.Revision.
	Commit(ctx context.Context, ch *Change) error
}

// A Committer commits changes; every [Store] is one.
type Committer interface {
	// Commit stores ch atomically: all of it, or nothing and an error. It
	// may set ch.Revision.
	Commit(ctx context.Context, ch *Change) error
}

// A LockingStore is a [Store] shared by several engines (replicas, usually
// in separate processes) that serialises their changes with one
// store-wide change lock. The engine takes that lock at the start of every
// management call, before its own mutex and before it validates anything:
//
//  1. Lock takes the change lock (in a database, a transaction that holds
//     it until it ends), brings e up to date with every change committed
//     before (through [Engine.ApplyCommitted] or [Engine.Reload]), and
//     returns a Committer that commits under the lock, and release.
//  2. The engine takes its mutex, validates the call against its now
//     current index and, if there is a change to make, commits it through
//     the Committer (once at most), then publishes it to its index.
//  3. The engine releases its mutex, then calls release, which gives the
//     lock up (rolling back whatever was not committed).
//
// So a writer that got the lock is never behind the store, and writers on
// different replicas take turns rather than refusing each other's stale
// changes. Lock order is the change lock, then the engine's mutex: Lock
// must not be called with the mutex held, and whatever applies other
// replicas' changes must take only the mutex (ApplyCommitted does).
// release must be safe to call after a successful or failed Commit, and
// exactly once. An error from Lock means nothing was locked; it is
// returned, wrapped in [ErrStorage], by the management call.
type LockingStore interface {
	Store
	Lock(ctx context.Context, e *Engine) (c Committer, release func(), err error)
}

// AdapterStore returns a Store over a Casbin adapter. Loading goes through
// LoadPolicy; a Commit removes and adds rules one by one and, if a step
// fails, undoes the steps already made before it returns the error. That
// undo is best effort: for atomic changes use a Store that commits in one
// transaction, such as package store's.
func AdapterStore(a persist.Adapter) Store { return adapterStore{a} }

type adapterStore struct{ a persist.Adapter }

func (s adapterStore) Load(ctx context.Context, fn func(model.Rule) error) error {
	m, err := model.NewCasbinModel()
	if err != nil {
		return err
	}
	if err := s.a.LoadPolicy(m); err != nil {
		return err
	}
	for _, sec := range []string{"p", "g"} {
		for ptype, ast := range m[sec] {
			for _, v := range ast.Policy {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(model.Rule{PType: ptype, Values: v}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s adapterStore) Commit(ctx context.Context, ch *Change) error {
	type step struct {
		add  bool
		rule model.Rule
	}
	var done []step
	undo := func(cause error) error {
		for i := len(done) - 1; i >= 0; i-- {
			st := done[i]
			var err error
			if st.add {
				err = s.a.RemovePolicy(st.rule.Section(), st.rule.PType, st.rule.Values)
			} else {
				err = s.a.AddPolicy(st.rule.Section(), st.rule.PType, st.rule.Values)
			}
			if err != nil {
				return errors.Join(cause, fmt.Errorf("undo failed, the store may hold part of the change: %w", err))
			}
		}
		return cause
	}
	for _, r := range ch.Remove {
		if err := ctx.Err(); err != nil {
			return undo(err)
		}
		if err := s.a.RemovePolicy(r.Section(), r.PType, r.Values); err != nil {
			return undo(err)
		}
		done = append(done, step{false, r})
	}
	for _, r := range ch.Add {
		if err := ctx.Err(); err != nil {
			return undo(err)
		}
		if err := s.a.AddPolicy(r.Section(), r.PType, r.Values); err != nil {
			return undo(err)
		}
		done = append(done, step{true, r})
	}
	return nil
}

// memoryStore keeps nothing: the index is the only copy.
type memoryStore struct{}

func (memoryStore) Load(context.Context, func(model.Rule) error) error { return nil }
func (memoryStore) Commit(context.Context, *Change) error              { return nil }

type actorKey struct{}

// WithActor returns a context that names who makes the changes done with
// it; stores record it in their audit trail.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFromContext returns the actor set by [WithActor].
func ActorFromContext(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(actorKey{}).(string)
	return a, ok
}
