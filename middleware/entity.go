package middleware

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// refusal is why a request is refused; the zero refusal lets it through.
type refusal struct {
	status int
	code   Code
	detail string
	reason string // for the decision hook and the log
}

// Client-safe details, shared by every refusal of the same kind so that
// refusals reveal nothing about other tenants.
const (
	detailMissingEntity = "The entity header is required with a partner token."
	detailInvalidEntity = "The entity header is not one valid entity id."
	detailEntity        = "The token does not give access to this entity."
	detailForbidden     = "The token does not allow this operation."
	detailAPI           = "The token is not enabled for this API."
	detailPartnerOnly   = "This operation needs a partner token."
	detailNotFound      = "The object does not exist."
	detailInternal      = "The request could not be authorized."
)

var (
	refuseMissingEntity = refusal{http.StatusBadRequest, CodeMissingEntity, detailMissingEntity, "entity header missing"}
	refuseInvalidEntity = refusal{http.StatusBadRequest, CodeInvalidEntity, detailInvalidEntity, "entity header malformed"}
	refuseOtherEntity   = refusal{http.StatusForbidden, CodeForbidden, detailEntity, "entity user names another entity"}
	refuseForeignEntity = refusal{http.StatusForbidden, CodeForbidden, detailEntity, "partner does not own the entity"}
	refuseInternal      = refusal{http.StatusInternalServerError, CodeInternal, detailInternal, "internal error"}
)

// Entity returns a middleware that authenticates the request (unless a
// principal is already in its context) and resolves the entity it acts in
// ([EntityFromContext]) from the entity header:
//
//   - entity-user token: the header may be left out (the user's own entity);
//     when present it must name the user's own entity, else 403;
//   - partner token: the header is required (400 when missing) and must name
//     an entity of the partner, else 403 (an unknown entity gets the same
//     answer as another partner's);
//   - a malformed or repeated header: 400.
//
// The guards resolve the entity the same way by themselves; Entity is for
// routes that need the entity but no permission. Like them, it answers 503
// with Retry-After while Config.Fresh reports the policies stale.
func (m *Middleware) Entity() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st, r, ok := m.principal(w, r)
			if !ok {
				return
			}
			if m.stale(r) { // the entity's owners may have changed since
				m.refuse(w, r, refuseStale)
				return
			}
			if ref := m.resolveEntity(st, r); ref.status != 0 {
				m.log.DebugContext(r.Context(), "gatehouse: entity refused",
					slog.String("subject", st.p.Subject().String()), slog.String("reason", ref.reason))
				m.refuse(w, r, ref)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// resolveEntity fills st.entity from the entity header, once.
func (m *Middleware) resolveEntity(st *state, r *http.Request) refusal {
	if st.hasEntity {
		return refusal{}
	}
	vals := r.Header[m.header]
	if len(vals) > 1 {
		return refuseInvalidEntity
	}
	var e model.EntityID
	if len(vals) == 1 {
		e = model.EntityID(vals[0])
		if e.Validate() != nil {
			return refuseInvalidEntity
		}
	}
	switch st.p.Kind {
	case auth.KindEntityUser:
		if e == "" {
			e = st.p.EntityID
		} else if e != st.p.EntityID {
			return refuseOtherEntity
		}
	case auth.KindPartner:
		if e == "" {
			return refuseMissingEntity
		}
		owns, err := m.eng.OwnsEntity(r.Context(), st.p.PartnerID, e)
		switch {
		case errors.Is(err, policy.ErrNotFound):
			return refuseForeignEntity
		case err != nil:
			m.log.ErrorContext(r.Context(), "gatehouse: looking up the entity failed", slog.String("entity", string(e)), slog.Any("error", err))
			return refuseInternal
		case !owns:
			return refuseForeignEntity
		}
	default:
		return refusal{http.StatusForbidden, CodeForbidden, detailForbidden, "subject of no kind"}
	}
	st.entity, st.hasEntity = e, true
	return refusal{}
}
