package policy

import (
	"fmt"
	"strings"

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
	if err := perms.Validate(e.cat); err != nil {
		return invalid(err)
	}
	var over []string
	for _, g := range perms.Grants() {
		k := model.Key{Object: g.Object, Action: g.Action}
		d := e.Decide(Request{Subject: subject, Entity: entity, Object: k.Object, Action: k.Action})
		if d.Err != nil {
			return d.Err
		}
		if d.Reason == ReasonPartnerOwner {
			return nil
		}
		if model.ScopeOf(g.Permission) > d.Scope {
			over = append(over, fmt.Sprintf("%s (%s, holds %s)", k, g.Permission, permOfScope(d)))
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
	en, err := e.entity(entity)
	if err != nil {
		return err
	}
	r, err := declaredRole(en, role)
	if err != nil {
		return err
	}
	return e.CheckGrant(subject, entity, e.toRole(en, r).Permissions)
}
