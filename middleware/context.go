package middleware

import (
	"context"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/model"
)

// ctxKey is the key of the request state in a context.
type ctxKey struct{}

// state is what the middleware knows about a request. One state is
// allocated per request, when the principal is established; the entity and
// the scope are filled in by later stages before the handler runs, and never
// changed while the handler runs.
//
// The state is itself the request's context (it embeds its parent and
// answers Value for ctxKey), which saves the allocation of a separate
// context.WithValue node on every request.
type state struct {
	context.Context
	p         auth.Principal
	entity    model.EntityID
	scope     model.Scope
	hasEntity bool
	hasScope  bool
	shared    bool // made by NewContext: may serve many requests, so never filled in
}

// Value returns the state itself for ctxKey, and asks the parent otherwise.
func (st *state) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return st
	}
	return st.Context.Value(key)
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(ctxKey{}).(*state)
	return st
}

// NewContext returns a copy of ctx carrying p as the authenticated
// principal. The guards of a [Middleware] trust a principal found in the
// context and do not read the Authorization header again; use it in tests,
// or behind an authentication of your own.
//
// The context may serve many requests (a server's base context, say): each
// request gets its own copy of the state, so one request's entity and scope
// never leak into another's.
func NewContext(ctx context.Context, p auth.Principal) context.Context {
	return &state{Context: ctx, p: p, shared: true}
}

// PrincipalFromContext returns the principal the request was authenticated
// as, and whether there is one.
func PrincipalFromContext(ctx context.Context) (auth.Principal, bool) {
	if st := stateFrom(ctx); st != nil {
		return st.p, true
	}
	return auth.Principal{}, false
}

// EntityFromContext returns the entity the request acts in, once
// [Middleware.Entity] or a guard has resolved it, and whether there is one.
func EntityFromContext(ctx context.Context) (model.EntityID, bool) {
	if st := stateFrom(ctx); st != nil && st.hasEntity {
		return st.entity, true
	}
	return "", false
}

// ScopeFromContext returns what a list handler may return, once a guard has
// allowed the request: [model.ScopeAll] (every object of the entity) or
// [model.ScopeOwn] (only the objects the subject created). Without a
// decision it returns [model.ScopeNone] and false. [FilterScope] turns it
// into a query condition.
func ScopeFromContext(ctx context.Context) (model.Scope, bool) {
	if st := stateFrom(ctx); st != nil && st.hasScope {
		return st.scope, true
	}
	return model.ScopeNone, false
}
