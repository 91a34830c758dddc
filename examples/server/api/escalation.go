package api

import (
	"context"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// guardedWrite runs write in one store transaction, with subject as the
// grantor of the policy changes it makes (policy.WithGrantor on the ctx
// write receives); an error rolls everything back.
//
// Under WithGrantor the engine applies the escalation rule itself, to what
// a change grants and to what it takes away: CreateRole the new role's
// permissions, UpdateRole the role's permissions before and after,
// DeleteRole the role's permissions (as policy.Engine.CheckGrant);
// AddUser the role that will apply to the user, SetUserRole the role that
// applies before and after, RemoveUser the role that applies (as
// policy.Engine.CheckAssign; for a user without a role of its own, the
// entity's default role). It checks under the change lock it writes under,
// after the store has brought the engine up to date, so neither the
// caller's role nor the target's can change between the check and the
// write, here or on another replica. A refused call returns an error
// wrapping policy.ErrEscalation, which writeEngineError answers with the
// same 403 as the early check. A partner owning the entity may grant
// anything, as CheckGrant says.
//
// The handlers also check before they call guardedWrite: that early check
// answers refused requests without taking the lock and keeps the order of
// the errors (403 before 409); the engine's check is the one that counts.
// The route guard (role.create, entity_user.update, ...) is decided by the
// middleware before the handler runs, and is not repeated here.
func (s *Server) guardedWrite(ctx context.Context, subject model.Subject, write func(ctx context.Context, tx *gorm.DB) error) error {
	if f := s.beforeGuardedWrite.Load(); f != nil {
		(*f)()
	}
	return s.store.InTransaction(ctx, func(ctx context.Context, tx *gorm.DB) error {
		return write(policy.WithGrantor(ctx, subject), tx)
	})
}
