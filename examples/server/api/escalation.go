package api

import (
	"context"

	"gorm.io/gorm"
)

// guardedWrite runs write in one store transaction and then, still inside
// it, check, the escalation rule; an error from either rolls everything
// back. It closes the window between checking the caller's authority and
// writing the change:
//
//   - The first policy change that write makes through the engine (with the
//     ctx it receives) takes the store's change lock in the transaction and
//     brings the engine up to date with every change committed before
//     (store.Store.Lock). The lock is held until the transaction ends, so
//     from then on no request, on this server or another replica, can
//     change a role or a membership: not the caller's, not the target's.
//   - The changes write makes are published to the engine only once the
//     transaction commits (store.Store.InTransaction), so check, which
//     reads the engine (CheckGrant, CheckAssign, GetRole, GetUser), judges
//     the caller against the current policy as it was just before the
//     write.
//
// So check and write see one state that nothing can change in between, as
// if they were one atomic step. The handlers also check before they call
// guardedWrite: that early check answers refused requests without taking
// the lock and keeps the order of the errors (403 before 409); it is the
// check in here that counts.
//
// The policy package has no call that applies the escalation rule inside
// its own management calls, under their lock, which would not rely on the
// two properties above. Without it, check is only under the lock when
// write changed the policy: a call that changes nothing (a user given the
// role it already has) takes no lock, but grants nothing either. The route
// guard (role.create, entity_user.update, ...) is decided by the
// middleware before the handler runs, and is not repeated here.
func (s *Server) guardedWrite(ctx context.Context, write func(ctx context.Context, tx *gorm.DB) error, check func(ctx context.Context) error) error {
	if f := s.beforeGuardedWrite.Load(); f != nil {
		(*f)()
	}
	return s.store.InTransaction(ctx, func(ctx context.Context, tx *gorm.DB) error {
		if err := write(ctx, tx); err != nil {
			return err
		}
		return check(ctx)
	})
}
