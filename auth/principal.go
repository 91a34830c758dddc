package auth

import (
	"context"
	"slices"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Kind is the kind of a token: who it speaks for.
type Kind uint8

const (
	// KindPartner is a partner token (grant type client_credentials).
	KindPartner Kind = 1
	// KindEntityUser is an entity-user token (grant type entity_user).
	KindEntityUser Kind = 2
)

// String returns "partner", "entity_user", or "unknown" for other values.
func (k Kind) String() string {
	switch k {
	case KindPartner:
		return "partner"
	case KindEntityUser:
		return "entity_user"
	}
	return "unknown"
}

// parseKind is the inverse of [Kind.String]; it returns 0 for anything else.
func parseKind(s string) Kind {
	switch s {
	case "partner":
		return KindPartner
	case "entity_user":
		return KindEntityUser
	}
	return 0
}

// Principal is who a verified token speaks for. Principals returned by
// [Service.Authenticate] may share their APIs slice with a cache: treat it as
// read-only.
type Principal struct {
	Kind      Kind
	PartnerID model.PartnerID
	EntityID  model.EntityID // entity-user tokens only
	UserID    model.UserID   // entity-user tokens only
	ClientID  string         // the API client the token was issued to
	TokenID   string         // the token's jti
	KeyID     string         // the kid of the key that signed the token
	// APIs are the object types the client is enabled for; nil means all.
	// A non-nil empty list allows none.
	APIs      []model.ObjectType
	ExpiresAt time.Time
}

// Subject returns the decision subject: model.Partner(PartnerID) for a
// partner token, model.User(UserID) for an entity-user token, the zero
// Subject otherwise.
func (p Principal) Subject() model.Subject {
	switch p.Kind {
	case KindPartner:
		return model.Partner(p.PartnerID)
	case KindEntityUser:
		return model.User(p.UserID)
	}
	return model.Subject{}
}

// AllowsAPI reports whether the token may be used on object type o: true when
// APIs is nil (all object types) or lists o.
func (p Principal) AllowsAPI(o model.ObjectType) bool {
	return p.APIs == nil || slices.Contains(p.APIs, o)
}

// Directory answers which entity and partner an entity user belongs to. The
// policy engine implements it. For a user it does not know, LookupEntityUser
// must return an error wrapping [ErrUnknownUser] (which is
// [model.ErrUnknownUser]; the engine's error wraps it); the token service
// then answers as for a user of another partner (400 invalid_grant), so
// the two cannot be told apart. Any other error is treated as a failure of
// the directory (HTTP 500, logged), never as a grant.
type Directory interface {
	LookupEntityUser(ctx context.Context, user model.UserID) (model.EntityID, model.PartnerID, error)
}

// DirectoryFunc adapts a function to [Directory].
type DirectoryFunc func(ctx context.Context, user model.UserID) (model.EntityID, model.PartnerID, error)

// LookupEntityUser calls f.
func (f DirectoryFunc) LookupEntityUser(ctx context.Context, user model.UserID) (model.EntityID, model.PartnerID, error) {
	return f(ctx, user)
}
