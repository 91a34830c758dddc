// Package api is Gatehouse's reference server: a small, Monite-compatible
// HTTP API built only from the library's public packages (model, policy,
// store, auth and middleware).
//
// It speaks Monite's paths and JSON shapes (API version 2024-05-25) for
//
//   - POST /auth/token, POST /auth/revoke (package auth's handlers);
//   - POST/GET /entities, GET/PATCH/DELETE /entities/{entity_id} and
//     PATCH /entities/{entity_id}/settings (partner tokens only; DELETE
//     removes the entity with its roles, users and payables; the settings
//     accept default_role_id, the entity's default role, which is an
//     addition to Monite's schema);
//   - POST/GET /roles, GET/PATCH/DELETE /roles/{role_id};
//   - POST/GET /entity_users, GET/PATCH/DELETE /entity_users/{entity_user_id},
//     GET /entity_users/me and GET /entity_users/my_role;
//   - a small payables resource: POST/GET /payables,
//     GET/PATCH/DELETE /payables/{payable_id} and
//     POST /payables/{payable_id}/approve_payment_operation (a payable is
//     edited and approved only while it is new; otherwise 409).
//
// The entity is named by the x-monite-entity-id header and errors are written
// as Monite does ({"error": {"message": "..."}}; an expired or revoked token
// gets 400). A string the server stores must be UTF-8 without a NUL
// character and fit its column, or the request gets 422. Every
// entity-scoped route is guarded by the middleware with the
// object type and action of Monite's permission catalog; routes about one
// object look up its creator, so that allowed_for_own works, and lists are
// filtered with middleware.FilterScope. Creating, changing, deleting and
// assigning roles also goes through the engine's escalation guard (policy
// CheckGrant and CheckAssign): an entity user cannot grant more than it
// holds, nor take away what it could not grant, nor change a user whose
// role grants more than it holds. The handlers check it
// early, and the management calls run with the caller as the grantor
// (policy.WithGrantor), so the engine checks it again, for what a change
// grants and what it takes away, under the store's change lock inside the
// transaction that writes the change: neither the caller's role nor the
// target's can change between the check and the write (see guardedWrite).
//
// Policy changes and the server's own rows (entity and user details, role
// creators, payables) are written in one transaction with
// store.Store.InTransaction, so a failed request changes nothing.
//
// Several servers may share one database: with Config.Watch each runs a
// store.Watcher that applies the policy changes the others commit, and
// catches up before every request that may change something.
//
// New builds a Server from a Config; Server.Handler is its http.Handler, for
// http.Server or httptest.NewServer. The command examples/server runs it, and
// examples/quickstart walks through the whole story against it.
package api
