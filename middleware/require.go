package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// OwnerLookup returns the creator of the single object a request is about
// (for example from the {id} path value), for routes whose permission may be
// allowed_for_own. It must look the object up inside the request's entity
// ([EntityFromContext]) and return an error wrapping [ErrNotFound] (or
// gorm.ErrRecordNotFound) when it is not there: an object of another entity
// must look exactly like a missing one. Any other error denies the request
// (500, logged); a zero Subject (no known creator) denies it too (403, as
// someone else's object, logged).
type OwnerLookup func(r *http.Request) (model.Subject, error)

// guard is one declared authorization: an object type and an action (or
// the method's default action), or a partner-only operation.
type guard struct {
	obj         model.ObjectType
	act         model.Action // "" → from the method
	owner       OwnerLookup
	partnerOnly bool
	bad         error // a declaration error found at construction
	// methodActs are, for a guard without an action of its own, the
	// methods' default actions (by methodIndex): the catalog's strings
	// where obj has the action, else methodActions'.
	methodActs [len(methodActions)]model.Action
}

// Require returns a middleware that lets a request through only if its
// subject may do act on objects of type obj in the request's entity. An
// empty act takes the method's default (GET and HEAD read, POST create, PUT
// and PATCH update, DELETE delete; other methods are refused with 403).
//
// It authenticates the request (401) unless a principal is already in the
// context, refuses object types outside the token's APIs (403, before the
// entity is looked at), resolves the entity as [Middleware.Entity] does
// (400, 403) and asks the engine (403 on deny). When the role allows the
// action on own objects only, the request goes through with
// [model.ScopeOwn] in the context ([ScopeFromContext]): the handler must
// restrict itself to the subject's objects (see [FilterScope]); use
// [Middleware.RequireOwned] for routes about one existing object. An object type or action outside the engine's
// catalog is a programming error: it is logged when Require is called and
// every request answers 500. An explicit act applies whatever the method:
// register such a guard on a method pattern ("GET /payables"), or leave act
// empty.
func (m *Middleware) Require(obj model.ObjectType, act model.Action) func(http.Handler) http.Handler {
	return m.wrap(m.newGuard(obj, act, nil, false))
}

// RequireOwned is [Middleware.Require] for a route about one existing object
// whose creator owner returns. When the subject's role allows the action on
// own objects only, the middleware calls owner and lets the request through
// only if the subject created the object (403 otherwise, 404 when owner
// reports [ErrNotFound], 500 on any other error). For a subject allowed on
// every object, and for create, owner is not called.
func (m *Middleware) RequireOwned(obj model.ObjectType, act model.Action, owner OwnerLookup) func(http.Handler) http.Handler {
	return m.wrap(m.newGuard(obj, act, owner, false))
}

// PartnerOnly returns a middleware for partner operations (creating or
// listing entities, partner settings): it authenticates the request and
// refuses anything but a partner token with 403, and a partner token limited
// to some object types ([auth.WithAPIs]) that does not list
// [PartnerOnlyAPI], also with 403. It needs no entity and asks the engine
// nothing.
func (m *Middleware) PartnerOnly() func(http.Handler) http.Handler {
	return m.wrap(&guard{partnerOnly: true})
}

// PartnerOnlyAPI is the object type that partner-only routes
// ([Middleware.PartnerOnly], [Route].PartnerOnly) count as, for tokens
// limited to some object types: entity management, Monite's "entity" API.
// A token whose APIs leave it out is refused there, as it is on the routes
// of any other object type it does not list.
const PartnerOnlyAPI model.ObjectType = "entity"

func (m *Middleware) newGuard(obj model.ObjectType, act model.Action, owner OwnerLookup, partnerOnly bool) *guard {
	g := &guard{obj: obj, act: act, owner: owner, partnerOnly: partnerOnly}
	if err := m.checkDecl(obj, act); err != nil {
		g.bad = fmt.Errorf("%w: %w", ErrConfig, err)
		m.log.Error("gatehouse: invalid route declaration; its requests will be refused", slog.Any("error", g.bad))
	}
	m.canonical(g)
	return g
}

// canonical makes the guard's object type and actions (its own, or the
// methods' defaults) the catalog's own strings, where the pairs are in the
// engine's catalog: the engine finds those by their addresses, without
// hashing them (see model.Catalog.SlotOf). Which pairs the guard checks
// does not change.
func (m *Middleware) canonical(g *guard) {
	g.methodActs = methodActions
	if m.cat == nil || g.partnerOnly {
		return
	}
	if g.act != "" {
		if s, ok := m.cat.SlotOf(g.obj, g.act); ok {
			k := m.cat.Key(s)
			g.obj, g.act = k.Object, k.Action
		}
		return
	}
	for i, a := range methodActions {
		if s, ok := m.cat.SlotOf(g.obj, a); ok {
			k := m.cat.Key(s)
			g.obj, g.methodActs[i] = k.Object, k.Action
		}
	}
}

// checkDecl checks an object type and action against the catalog, when the
// engine has one.
func (m *Middleware) checkDecl(obj model.ObjectType, act model.Action) error {
	if obj == "" {
		return errors.New("no object type declared")
	}
	if m.cat == nil {
		return nil
	}
	if act == "" {
		if !m.cat.HasObject(obj) {
			return m.cat.Check(obj, "read")
		}
		return nil
	}
	return m.cat.Check(obj, act)
}

func (m *Middleware) wrap(g *guard) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.authorize(w, r, g, g.act, next)
		})
	}
}

// methodActions are the default actions of HTTP methods, by methodIndex.
var methodActions = [...]model.Action{"read", "create", "update", "delete"}

// methodIndex returns the index in methodActions of an HTTP method's
// default action, or -1.
func methodIndex(method string) int {
	switch method {
	case http.MethodGet, http.MethodHead:
		return 0
	case http.MethodPost:
		return 1
	case http.MethodPut, http.MethodPatch:
		return 2
	case http.MethodDelete:
		return 3
	}
	return -1
}

// methodAction returns the default action of an HTTP method, or "".
func methodAction(method string) model.Action {
	if i := methodIndex(method); i >= 0 {
		return methodActions[i]
	}
	return ""
}

// methodAction is the package's methodAction as the catalog's string, when
// the guard's object type has that action.
func (g *guard) methodAction(method string) model.Action {
	if i := methodIndex(method); i >= 0 {
		return g.methodActs[i]
	}
	return ""
}

// authorize runs a guard and calls next if the request is allowed.
func (m *Middleware) authorize(w http.ResponseWriter, r *http.Request, g *guard, act model.Action, next http.Handler) {
	st, r, ok := m.principal(w, r)
	if !ok {
		return
	}
	var start time.Time
	if m.hook != nil {
		start = time.Now()
	}
	if act == "" && !g.partnerOnly {
		act = g.methodAction(r.Method)
	}
	d, owner, ref := m.decide(st, r, g, act)
	if m.hook != nil {
		ev := DecisionEvent{
			Subject: st.p.Subject(), ClientID: st.p.ClientID, Entity: st.entity, Object: g.obj, Action: act,
			Owner: owner, Allowed: ref.status == 0, Status: ref.status, Scope: d.Scope, Role: d.Role,
			ViaDefault: d.ViaDefault, Reason: ref.reason, Latency: time.Since(start),
		}
		if ev.Allowed {
			ev.Status, ev.Reason = http.StatusOK, d.Reason.String()
		} else if ref.reason == "" {
			ev.Reason = d.Reason.String()
		}
		m.hook(r.Context(), ev)
	}
	if ref.status != 0 {
		if ref.status >= 500 {
			m.log.ErrorContext(r.Context(), "gatehouse: request refused", slog.String("subject", st.p.Subject().String()),
				slog.String("object", string(g.obj)), slog.String("action", string(act)), slog.String("reason", ref.reason))
		} else {
			m.log.DebugContext(r.Context(), "gatehouse: request refused", slog.String("subject", st.p.Subject().String()),
				slog.String("object", string(g.obj)), slog.String("action", string(act)), slog.Int("status", ref.status))
		}
		m.refuse(w, r, ref)
		return
	}
	st.scope, st.hasScope = d.Scope, true
	next.ServeHTTP(w, r)
}

// refuse answers ref: its headers (Retry-After for a 503, the
// insufficient_scope challenge for an object type outside the token's
// APIs), then the error body.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, ref refusal) {
	if ref.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if ref == refuseAPI {
		w.Header().Set("WWW-Authenticate", m.scopeChallenge)
	}
	m.fail(w, r, ref.status, ref.code, ref.detail)
}

var (
	refuseAPI         = refusal{http.StatusForbidden, CodeForbidden, detailAPI, "object type outside the token's APIs"}
	refusePartnerOnly = refusal{http.StatusForbidden, CodeForbidden, detailPartnerOnly, "partner-only operation"}
	refuseNoAction    = refusal{http.StatusForbidden, CodeForbidden, detailForbidden, "no action for the method"}
	refuseNotFound    = refusal{http.StatusNotFound, CodeNotFound, detailNotFound, "object not found"}
	refuseNoOwner     = refusal{http.StatusForbidden, CodeForbidden, detailForbidden, "owner lookup returned no subject"}
	refuseDenied      = refusal{http.StatusForbidden, CodeForbidden, detailForbidden, ""}
	refuseStale       = refusal{http.StatusServiceUnavailable, CodeUnavailable, "Authorization is unavailable; retry later.", "policies are stale"}
)

// decideReq asks the engine about *req. A *policy.Engine is called
// directly, so that the caller's request stays on its stack; through the
// Decider interface the address escapes, and a copy is made on the heap
// for that call only.
func (m *Middleware) decideReq(req *policy.Request) policy.Decision {
	if e, ok := m.eng.(*policy.Engine); ok {
		return e.Decide(req)
	}
	r := *req
	return m.eng.Decide(&r)
}

// stale reports (and logs) whether Config.Fresh says the engine's policies
// are behind the store: a guard or Entity then answers 503 rather than
// decide from them.
func (m *Middleware) stale(r *http.Request) bool {
	if m.fresh == nil {
		return false
	}
	if err := m.fresh(); err != nil {
		m.log.ErrorContext(r.Context(), "gatehouse: not deciding from stale policies", slog.Any("error", err))
		return true
	}
	return false
}

// decide is the decision path of a guard. The decision's Reason is used when
// the refusal has none.
func (m *Middleware) decide(st *state, r *http.Request, g *guard, act model.Action) (policy.Decision, model.Subject, refusal) {
	if m.stale(r) {
		return policy.Decision{}, model.Subject{}, refuseStale
	}
	switch {
	case g.partnerOnly:
		if st.p.Kind != auth.KindPartner {
			return policy.Decision{}, model.Subject{}, refusePartnerOnly
		}
		if !st.p.AllowsAPI(PartnerOnlyAPI) {
			return policy.Decision{}, model.Subject{}, refuseAPI
		}
		return policy.Decision{Allowed: true, Scope: model.ScopeAll, Reason: policy.ReasonPartnerOwner}, model.Subject{}, refusal{}
	case g.bad != nil:
		return policy.Decision{}, model.Subject{}, refuseInternal
	case act == "":
		return policy.Decision{}, model.Subject{}, refuseNoAction
	case !st.p.AllowsAPI(g.obj):
		return policy.Decision{}, model.Subject{}, refuseAPI
	}
	if ref := m.resolveEntity(st, r); ref.status != 0 {
		return policy.Decision{}, model.Subject{}, ref
	}
	req := policy.Request{Subject: st.p.Subject(), Entity: st.entity, Object: g.obj, Action: act}
	d := m.decideReq(&req)
	switch {
	case d.Err != nil:
		m.log.ErrorContext(r.Context(), "gatehouse: the engine refused the request as malformed", slog.Any("error", d.Err))
		return policy.Decision{}, model.Subject{}, refuseInternal
	case !d.Allowed:
		return d, model.Subject{}, refuseDenied
	case d.Scope != model.ScopeOwn || g.owner == nil || d.Reason == policy.ReasonOwnCreate:
		return d, model.Subject{}, refusal{}
	}
	owner, err := g.owner(r)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, gorm.ErrRecordNotFound):
		return d, model.Subject{}, refuseNotFound
	case err != nil:
		m.log.ErrorContext(r.Context(), "gatehouse: owner lookup failed", slog.String("object", string(g.obj)), slog.Any("error", err))
		return d, model.Subject{}, refuseInternal
	case owner.Kind != model.KindPartner && owner.Kind != model.KindUser:
		m.log.WarnContext(r.Context(), "gatehouse: owner lookup returned no subject", slog.String("object", string(g.obj)))
		return d, model.Subject{}, refuseNoOwner
	}
	req.Owner = owner
	d = m.decideReq(&req)
	if d.Err != nil || !d.Allowed {
		return d, owner, refuseDenied
	}
	return d, owner, refusal{}
}
