// Package rules encodes Gatehouse's typed policy facts as Casbin rules and
// decodes them back. It is the only place that knows the string prefixes of
// gatehouse.conf.
package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Prefixes of the identifier kinds inside rules.
const (
	PartnerPrefix = "partner:"
	EntityPrefix  = "entity:"
	UserPrefix    = "user:"
	RolePrefix    = "role:"
	DefaultPrefix = "default:"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed rule")

// Permission encodes role r's permission p on k (p must not be NotAllowed).
func Permission(e model.EntityID, r model.RoleID, k model.Key, p model.Permission) model.Rule {
	return model.Rule{PType: model.PTypePermission, Values: []string{RolePrefix + string(r), EntityPrefix + string(e), string(k.Object), string(k.Action), p.String()}}
}

// RoleDecl encodes the declaration of role r with its name and times (Unix
// milliseconds).
func RoleDecl(e model.EntityID, r model.RoleID, name string, created, updated int64) model.Rule {
	return model.Rule{PType: model.PTypeRole, Values: []string{RolePrefix + string(r), EntityPrefix + string(e), name, strconv.FormatInt(created, 10), strconv.FormatInt(updated, 10)}}
}

// Member encodes user u's membership of e with role r, or with no role (the
// entity's default) when r is empty.
func Member(e model.EntityID, u model.UserID, r model.RoleID) model.Rule {
	target := DefaultPrefix + string(e)
	if r != "" {
		target = RolePrefix + string(r)
	}
	return model.Rule{PType: model.PTypeLink, Values: []string{UserPrefix + string(u), target, EntityPrefix + string(e)}}
}

// DefaultRole encodes r as e's default role.
func DefaultRole(e model.EntityID, r model.RoleID) model.Rule {
	return model.Rule{PType: model.PTypeLink, Values: []string{DefaultPrefix + string(e), RolePrefix + string(r), EntityPrefix + string(e)}}
}

// Owner encodes partner p's ownership of e.
func Owner(p model.PartnerID, e model.EntityID) model.Rule {
	return model.Rule{PType: model.PTypeOwner, Values: []string{PartnerPrefix + string(p), EntityPrefix + string(e)}}
}

// Subject encodes a request's subject or owner ("" for the zero Subject).
func Subject(s model.Subject) string { return s.String() }

// Entity encodes a request's entity.
func Entity(e model.EntityID) string { return EntityPrefix + string(e) }

// Kind says which fact a decoded rule states.
type Kind uint8

// The facts a rule can state.
const (
	KindPermission  Kind = iota + 1 // Role has Perm on Key in Entity
	KindRole                        // Role is declared in Entity with Name, Created, Updated
	KindMember                      // User is a member of Entity with Role ("" = default role)
	KindDefaultRole                 // Role is Entity's default role
	KindOwner                       // Partner owns Entity
)

// Fact is a decoded rule.
type Fact struct {
	Kind    Kind
	Entity  model.EntityID
	Role    model.RoleID
	User    model.UserID
	Partner model.PartnerID
	Key     model.Key
	Perm    model.Permission
	Name    string
	Created int64
	Updated int64
}

// Decode decodes a rule written by the encoders above (with valid
// identifiers, see model.ValidateID). Any other rule is an error wrapping ErrMalformed. A rule that
// decodes is exactly what the encoders write for its Fact.
func Decode(r model.Rule) (Fact, error) {
	v := r.Values
	bad := func(why string) (Fact, error) {
		return Fact{}, fmt.Errorf("%w: %s: %s", ErrMalformed, r, why)
	}
	switch r.PType {
	case model.PTypePermission:
		if len(v) != 5 {
			return bad("want 5 values")
		}
		role, ok1 := cut(v[0], RolePrefix)
		ent, ok2 := cut(v[1], EntityPrefix)
		if !ok1 || !ok2 {
			return bad("want role:<id>, entity:<id>")
		}
		p, err := model.ParsePermission(v[4])
		if err != nil || p == model.NotAllowed {
			return bad("want allowed or allowed_for_own")
		}
		return Fact{Kind: KindPermission, Role: model.RoleID(role), Entity: model.EntityID(ent), Key: model.Key{Object: model.ObjectType(v[2]), Action: model.Action(v[3])}, Perm: p}, nil
	case model.PTypeRole:
		if len(v) != 5 {
			return bad("want 5 values")
		}
		role, ok1 := cut(v[0], RolePrefix)
		ent, ok2 := cut(v[1], EntityPrefix)
		c, ok3 := millis(v[3])
		u, ok4 := millis(v[4])
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return bad("want role:<id>, entity:<id>, name, created, updated (decimal integers without + or leading zeros)")
		}
		return Fact{Kind: KindRole, Role: model.RoleID(role), Entity: model.EntityID(ent), Name: v[2], Created: c, Updated: u}, nil
	case model.PTypeLink:
		if len(v) != 3 {
			return bad("want 3 values")
		}
		ent, ok := cut(v[2], EntityPrefix)
		if !ok {
			return bad("want entity:<id> as domain")
		}
		if user, ok := cut(v[0], UserPrefix); ok {
			if role, ok := cut(v[1], RolePrefix); ok {
				return Fact{Kind: KindMember, User: model.UserID(user), Role: model.RoleID(role), Entity: model.EntityID(ent)}, nil
			}
			if d, ok := cut(v[1], DefaultPrefix); ok && d == ent {
				return Fact{Kind: KindMember, User: model.UserID(user), Entity: model.EntityID(ent)}, nil
			}
			return bad("want role:<id> or default:<entity>")
		}
		if d, ok := cut(v[0], DefaultPrefix); ok && d == ent {
			if role, ok := cut(v[1], RolePrefix); ok {
				return Fact{Kind: KindDefaultRole, Role: model.RoleID(role), Entity: model.EntityID(ent)}, nil
			}
		}
		return bad("want user:<id> or default:<entity> linked to a role")
	case model.PTypeOwner:
		if len(v) != 2 {
			return bad("want 2 values")
		}
		p, ok1 := cut(v[0], PartnerPrefix)
		ent, ok2 := cut(v[1], EntityPrefix)
		if !ok1 || !ok2 {
			return bad("want partner:<id>, entity:<id>")
		}
		return Fact{Kind: KindOwner, Partner: model.PartnerID(p), Entity: model.EntityID(ent)}, nil
	}
	return bad("unknown policy type")
}

// millis parses a time as RoleDecl writes it. Other spellings of the same
// number ("+5", "05", "-0") are refused: the engine removes a role's
// declaration by encoding it again, which would not match such a row.
func millis(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && strconv.FormatInt(n, 10) == s
}

// cut returns the id after prefix, and whether s is prefix and a valid id
// (model.ValidateID): ids read from a store meet the rules the management
// calls enforce.
func cut(s, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	return rest, ok && model.ValidateID("id", rest) == nil
}
