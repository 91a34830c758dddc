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
