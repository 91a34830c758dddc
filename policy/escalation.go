package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-authz/gatehouse/internal/index"
	"github.com/gatehouse-authz/gatehouse/model"
)

// CheckGrant reports whether subject may create or change a role of entity
// so that it grants perms. A partner may in its own entities. An entity user
// may only grant what it holds itself, with at least the same scope: for
// every pair, its own permission must be at least the granted one (allowed
// covers allowed_for_own). Otherwise the error wraps [ErrEscalation] and
// names the pairs that exceed. This guard is in addition to the permission
// to manage roles (role.create, role.update), which the caller checks with
// [Engine.Decide].
func (e *Engine) CheckGrant(subject model.Subject, entity model.EntityID, perms model.Permissions) error {
	return e.checkGrantIn(subject, e.ix.Load().Entity(entity), perms)
}

// checkGrantIn is CheckGrant on the snapshot en of the entity (nil when
// there is none): what subject holds is read from en as [Engine.Decide]
// reads it from the index (a partner owning en holds everything; a member,
// its role's permission or the best of its roles'), so that a guard under
// [WithDeferredApply] sees the entity as the transaction leaves it.
func (e *Engine) checkGrantIn(subject model.Subject, en *index.Entity, perms model.Permissions) error {
	if err := perms.Validate(e.cat); err != nil {
		return invalid(err)
	}
	switch subject.Kind {
	case model.KindPartner:
		if en != nil && en.OwnedBy(model.PartnerID(subject.ID)) {
			return nil
		}
	case model.KindUser:
	default:
		return errNoSubject
	}
	var over []string
	for _, g := range perms.Grants() {
		k := model.Key{Object: g.Object, Action: g.Action}
		slot, ok := e.cat.Slot(k)
		if !ok {
			return invalid(e.cat.Check(k.Object, k.Action)) // Validate above makes this unreachable
		}
		held := model.NotAllowed
		if en != nil && subject.Kind == model.KindUser {
			u := model.UserID(subject.ID)
			switch i, _, member := en.Member(u); {
			case !member || i == index.NoRole:
			case i == index.Multi:
				held, _, _ = en.UnionPerm(u, slot)
			default:
				held, _ = en.RolePerm(i, slot)
			}
		}
		if model.ScopeOf(g.Permission) > model.ScopeOf(held) {
			over = append(over, fmt.Sprintf("%s (%s, holds %s)", k, g.Permission, held))
		}
	}
	if len(over) > 0 {
		return fmt.Errorf("%w: %s may not grant %s", ErrEscalation, subject, strings.Join(over, ", "))
	}
	return nil
}

// CheckAssign reports whether subject may assign role (of entity) to a
// user: the same rule as [Engine.CheckGrant] on the role's permissions.
func (e *Engine) CheckAssign(subject model.Subject, entity model.EntityID, role model.RoleID) error {
	en, err := e.entity(context.Background(), entity)
	if err != nil {
		return err
	}
	return e.checkAssign(subject, en, role)
}

// checkAssign is CheckAssign on the snapshot en.
func (e *Engine) checkAssign(subject model.Subject, en *index.Entity, role model.RoleID) error {
	r, err := declaredRole(en, role)
	if err != nil {
		return err
	}
	return e.checkGrantIn(subject, en, e.toRole(en, r).Permissions)
}

type grantorKey struct{}

// WithGrantor returns a context under which the management calls apply the
// escalation guard for subject themselves, under the change lock they write
// under (after a [LockingStore] has brought the engine up to date), so that
// the check and the write see the same policy and no change can come
// between them. The grantor must hold (as [Engine.CheckGrant] and
// [Engine.CheckAssign] ask) what the change grants and what it takes away:
//
//   - [Engine.CreateRole]: the new role's permissions;
//   - [Engine.UpdateRole]: the role's permissions before and after (a
//     grantor changes only roles it could have made);
//   - [Engine.DeleteRole]: the role's permissions;
//   - [Engine.AddUser]: the role that will apply to the user (its own, or
//     the entity's default when it gets none);
//   - [Engine.SetDefaultRole]: the old default role and the new one (it
//     moves every member without a role of its own);
//   - [Engine.SetUserRole]: the role that applies to the user before and
//     after (a grantor moves only users whose role it holds);
//   - [Engine.RemoveUser]: the role that applies to the user.
//
// Entities are a partner's to manage: under a grantor,
// [Engine.CreateEntity] goes through only when the grantor is the partner
// the entity is created for, and [Engine.RemoveEntity] only when it is a
// partner that owns the entity.
//
// A refused call returns an error wrapping [ErrEscalation] and changes
// nothing. Calling CheckGrant first remains useful to refuse early, outside
// the lock.
func WithGrantor(ctx context.Context, subject model.Subject) context.Context {
	return context.WithValue(ctx, grantorKey{}, subject)
}

// GrantorFromContext returns the subject set by [WithGrantor].
func GrantorFromContext(ctx context.Context) (model.Subject, bool) {
	s, ok := ctx.Value(grantorKey{}).(model.Subject)
	return s, ok
}

// guardGrant applies the guard of [WithGrantor], if ctx has a grantor, to a
// change that grants perms in entity. The caller holds the change lock.
func (e *Engine) guardGrant(ctx context.Context, entity model.EntityID, perms model.Permissions) error {
	if s, ok := GrantorFromContext(ctx); ok {
		return e.checkGrantIn(s, e.snapshot(ctx, entity), perms)
	}
	return nil
}

// guardEntity applies the guard of [WithGrantor] to a change of a whole
// entity, which only a partner makes: the grantor, if ctx has one, must be
// one of owners.
func guardEntity(ctx context.Context, entity model.EntityID, owners ...model.PartnerID) error {
	s, ok := GrantorFromContext(ctx)
	if !ok || s.Kind == model.KindPartner && slices.Contains(owners, model.PartnerID(s.ID)) {
		return nil
	}
	return fmt.Errorf("%w: %s may not create or remove entity %q: only its partner may", ErrEscalation, s, entity)
}

// guardRole applies the guard of [WithGrantor] to a change that takes
// role r of en away (its permissions are read only when there is a
// grantor).
func (e *Engine) guardRole(ctx context.Context, en *index.Entity, r *index.Role) error {
	if s, ok := GrantorFromContext(ctx); ok {
		return e.checkGrantIn(s, en, e.toRole(en, r).Permissions)
	}
	return nil
}

// guardTakeAway applies the guard of [WithGrantor] to a change after which
// role (or, when role is empty, en's default roles) no longer applies to a
// user: a grantor moves only users whose role it holds. A role without a
// declaration (a link made elsewhere to a role of no rule of the entity)
// grants what its rules grant, perhaps nothing.
func (e *Engine) guardTakeAway(ctx context.Context, en *index.Entity, role model.RoleID) error {
	if role != "" {
		if r := en.Role(role); r != nil {
			return e.guardRole(ctx, en, r)
		}
		return nil
	}
	for _, i := range en.Defaults {
		if err := e.guardRole(ctx, en, en.Roles[i]); err != nil {
			return err
		}
	}
	return nil
}

// guardAssign applies the guard of [WithGrantor] to a change after which
// role (or, when role is empty, en's default roles) applies to a user.
func (e *Engine) guardAssign(ctx context.Context, en *index.Entity, role model.RoleID) error {
	s, ok := GrantorFromContext(ctx)
	if !ok {
		return nil
	}
	if role != "" {
		return e.checkAssign(s, en, role)
	}
	for _, i := range en.Defaults { // none: no role applies, nothing is granted
		if err := e.checkAssign(s, en, en.Roles[i].ID); err != nil {
			return err
		}
	}
	return nil
}
