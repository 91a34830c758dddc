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

// A SnapshotStore is a [Store] that numbers its changes (Change.Revision)
// and can load one consistent snapshot: LoadSnapshot is Load, and also
// returns the revision of the last change the snapshot includes. The engine
// loads through it, so that it knows which changes handed to
// [Engine.ApplyCommitted] or published after a commit its index already
// holds. Package store's Store is one.
type SnapshotStore interface {
	Store
	LoadSnapshot(ctx context.Context, fn func(model.Rule) error) (rev int64, err error)
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
// LoadPolicy. A Commit removes and adds rules one by one: inside one
// transaction when the adapter is a [persist.TransactionalAdapter] (as
// gorm-adapter's is), so that a change is stored whole or not at all;
// otherwise, if a step fails, it undoes the steps already made before it
// returns the error, and that undo is best effort (the error says when it
// failed).
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
	ta, ok := s.a.(persist.TransactionalAdapter)
	if !ok {
		return applySteps(ctx, s.a, ch, true)
	}
	tx, err := ta.BeginTransaction(ctx)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	if err := applySteps(ctx, tx.GetAdapter(), ch, false); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("rolling back: %w", rerr))
		}
		return err
	}
	return tx.Commit()
}

// applySteps removes then adds the rules of ch through a, one by one. With
// undo set, a failed step first reverts the steps made before it.
func applySteps(ctx context.Context, a persist.Adapter, ch *Change, undo bool) error {
	type step struct {
		add  bool
		rule model.Rule
	}
	var done []step
	fail := func(cause error) error {
		if !undo {
			return cause
		}
		for i := len(done) - 1; i >= 0; i-- {
			st := done[i]
			var err error
			if st.add {
				err = a.RemovePolicy(st.rule.Section(), st.rule.PType, st.rule.Values)
			} else {
				err = a.AddPolicy(st.rule.Section(), st.rule.PType, st.rule.Values)
			}
			if err != nil {
				return errors.Join(cause, fmt.Errorf("undo failed, the store may hold part of the change: %w", err))
			}
		}
		return cause
	}
	for _, r := range ch.Remove {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := a.RemovePolicy(r.Section(), r.PType, r.Values); err != nil {
			return fail(err)
		}
		done = append(done, step{false, r})
	}
	for _, r := range ch.Add {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := a.AddPolicy(r.Section(), r.PType, r.Values); err != nil {
			return fail(err)
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
// it; stores record it in their audit trail. An actor must be valid UTF-8
// of at most [MaxActorLen] bytes without control characters (what every
// store's audit column holds): a change made with any other fails with
// [ErrInvalid] and changes nothing.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// MaxActorLen is the longest actor ([WithActor]), in bytes.
const MaxActorLen = 255

// validateActor checks an actor set by WithActor.
func validateActor(a string) error {
	if why := badText(a, MaxActorLen); why != "" {
		return fmt.Errorf("%w: actor %s", ErrInvalid, why)
	}
	return nil
}

// ActorFromContext returns the actor set by [WithActor].
func ActorFromContext(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(actorKey{}).(string)
	return a, ok
}
