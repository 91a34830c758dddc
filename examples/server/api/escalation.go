package api

import (
	"context"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// guardedWrite runs write in one store transaction, with subject as the
// grantor of the policy changes it makes (policy.WithGrantor on the ctx
// write receives), and then, still inside the transaction, taken, if not
// nil; an error from either rolls everything back. It closes the window
// between checking the caller's authority and writing the change.
//
// What a change grants is checked by the engine: under WithGrantor,
// CreateRole and UpdateRole refuse permissions that subject may not grant
// (as policy.Engine.CheckGrant), and AddUser and SetUserRole a role that
// subject may not assign (as policy.Engine.CheckAssign; for a user left
// without a role, the entity's default role), with an error wrapping
// policy.ErrEscalation (403). They check under the change lock they write
// under, after it has brought the engine up to date, so no change can come
// between that check and the write. A partner owning the entity may grant
// anything, as CheckGrant says.
//
// What a change takes away is not checked by the engine: the permissions
// a role grants before it is changed or deleted, the role a user holds
// before it is replaced or the user removed. taken checks those. It runs
// after write, and relies on two properties of the store:
//
//   - The first policy change write makes takes the store's change lock in
//     the transaction and brings the engine up to date (store.Store.Lock);
//     the lock is held until the transaction ends, so from then on no
//     request, on this server or another replica, can change a role or a
//     membership.
//   - The changes write makes are published to the engine only once the
//     transaction commits (store.Store.InTransaction), so taken, which
//     reads the engine (GetRole, GetUser, CheckGrant, CheckAssign), sees
//     the policy as it was just before the write.
//
// taken is only under the lock when write changed the policy: a call that
// changes nothing (a user given the role it already has) takes no lock,
// but takes nothing away either.
//
// The handlers also check before they call guardedWrite: that early check
// answers refused requests without taking the lock and keeps the order of
// the errors (403 before 409); the checks in here are the ones that count.
// The route guard (role.create, entity_user.update, ...) is decided by the
// middleware before the handler runs, and is not repeated here.
func (s *Server) guardedWrite(ctx context.Context, subject model.Subject, write func(ctx context.Context, tx *gorm.DB) error, taken func(ctx context.Context) error) error {
	if f := s.beforeGuardedWrite.Load(); f != nil {
		(*f)()
	}
	return s.store.InTransaction(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := write(policy.WithGrantor(ctx, subject), tx); err != nil {
			return err
		}
		if taken == nil {
			return nil
		}
		return taken(ctx)
	})
}
