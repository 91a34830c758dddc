// Package middleware is Gatehouse's net/http middleware for multi-tenant
// APIs: it authenticates bearer tokens, finds the entity (tenant) a request
// acts in, and lets the request through only if the policy engine allows
// its subject to do the route's action on the route's object type there.
//
// Unlike Casbin's HTTP middlewares (subject from Basic Auth, object from the
// URL path, 403 for everything, no tenants), it answers as an API must:
//
//   - 401 with an RFC 6750 "WWW-Authenticate: Bearer" challenge for a
//     missing, malformed, invalid, expired or revoked token;
//   - 400 for a malformed entity header, or none with a partner token on an
//     entity-scoped route;
//   - 403 for an entity-user token naming another entity, a partner token
//     naming an entity it does not own (unknown entities look the same), an
//     object type outside the token's APIs (with an RFC 6750
//     insufficient_scope challenge), an entity-user token on a partner-only
//     route, or a decision that denies;
//   - 404 when an owner lookup finds no object, 500 when the decision path
//     fails or a route has no declaration, 503 when tokens cannot be verified
//     or when [Config.Fresh] says the policies are stale (a replica behind
//     its database: give it a store.Watcher's Behind).
//
// # Pieces
//
// [New] builds a [Middleware] from a [Config]: an [Authenticator]
// (*auth.Service), a [Decider] (*policy.Engine), the entity header
// ("X-Entity-Id" by default; Monite uses "x-monite-entity-id"), an
// [ErrorWriter], a decision hook and a logger. Its methods return
// func(http.Handler) http.Handler, for http.ServeMux (Go 1.22 patterns)
// and any router on net/http:
//
//   - [Middleware.Require](obj, act) and [Middleware.RequireOwned](obj, act,
//     owner) declare a route by wrapping its handler;
//   - [Middleware.Routes](table) declares many routes at once, keyed by
//     their pattern (r.Pattern, or the mux's match when it wraps an
//     *http.ServeMux), with the method's default action when none is given;
//   - [Middleware.PartnerOnly] guards partner operations;
//   - [Middleware.Authenticate] and [Middleware.Entity] only authenticate,
//     or authenticate and resolve the entity.
//
// The guards authenticate and resolve the entity themselves when no earlier
// middleware has, so one guard per route is enough. A route without a
// declaration is never let through: Routes answers 500 for it.
//
// Handlers read the outcome with [PrincipalFromContext], [EntityFromContext]
// and [ScopeFromContext]. A role's allowed_for_own permission lets a list
// through with scope own; [FilterScope] turns the scope into a GORM
// condition (entity, and creator for own; no rows without a decision).
// Creators are stored as the subject's string form, model.Subject.String()
// ("user:u1", "partner:p1"), so that a partner and a user with the same id
// never own each other's objects. For a route about one object,
// RequireOwned asks an [OwnerLookup] for the object's creator and decides
// itself.
//
// # Errors and observability
//
// Every error answer goes through one [ErrorWriter]: [WriteProblem] (RFC
// 9457 problem JSON, the default) or [WriteMonite] ({"error": {"message"}}
// and Monite's 400 for expired and revoked tokens). Answers carry fixed
// sentences only; internal errors are logged (log/slog), never sent. Every
// decision of a guard can go to a [DecisionHook] ([SlogHook] logs them).
// Tokens are never logged. [New] and [Middleware.Routes] refuse a
// configuration or route table they cannot work with by an error wrapping
// [ErrConfig]; an [OwnerLookup] reports a missing object with [ErrNotFound].
//
// # Cost and concurrency
//
// A Middleware is immutable after New and safe for concurrent use. On the
// allowed path, with a *policy.Engine, a guard makes two allocations: the request state (which is
// also the request's new context) and the request copy that net/http's
// WithContext makes; header lookups, the token syntax check, the entity
// check and the decision (policy.Engine.Decide) do not allocate, and
// *auth.Service answers a cached token without allocating. Around an
// *http.ServeMux, [Middleware.Routes] matches each request once more than
// the mux does; wrapping each handler avoids that. BenchmarkMiddleware in
// this package times the whole path and the same handler without it in
// turns, and reports the difference (added-ns/op, added-allocs/op).
package middleware
