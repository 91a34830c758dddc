package model

import "fmt"

// PartnerID identifies a partner: an API client of the platform that owns
// entities.
type PartnerID string

// EntityID identifies an entity: a tenant of a partner.
type EntityID string

// UserID identifies an entity user. A user belongs to exactly one entity.
type UserID string

// RoleID identifies a role. A role belongs to exactly one entity.
type RoleID string

// MaxIDLen is the longest identifier Gatehouse accepts, in bytes. With its
// kind prefix an identifier still fits the 100 characters of a Casbin rule
// column.
const MaxIDLen = 64

// ValidateID reports whether s can be used as an identifier of the given kind
// (used in the error only). Identifiers are 1 to [MaxIDLen] bytes of ASCII
// letters, digits and the characters "-", "_", ".", "@" and ":"; everything
// else (spaces, commas, quotes, control characters) could break the encoding
// of Casbin rules and is rejected with an error wrapping [ErrInvalidID].
func ValidateID(kind, s string) error {
	if s == "" {
		return &IDError{Kind: kind, ID: s, Why: "is empty"}
	}
	if len(s) > MaxIDLen {
		return &IDError{Kind: kind, ID: s[:MaxIDLen] + "...", Why: fmt.Sprintf("is longer than %d bytes", MaxIDLen)}
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return &IDError{Kind: kind, ID: s, Why: fmt.Sprintf("has the character %q at byte %d", s[i], i)}
		}
	}
	return nil
}

func idByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '_', c == '.', c == '@', c == ':':
		return true
	}
	return false
}

// Validate reports whether the partner id is well formed (see [ValidateID]).
func (id PartnerID) Validate() error { return ValidateID("partner id", string(id)) }

// Validate reports whether the entity id is well formed (see [ValidateID]).
func (id EntityID) Validate() error { return ValidateID("entity id", string(id)) }

// Validate reports whether the user id is well formed (see [ValidateID]).
func (id UserID) Validate() error { return ValidateID("entity user id", string(id)) }

// Validate reports whether the role id is well formed (see [ValidateID]).
func (id RoleID) Validate() error { return ValidateID("role id", string(id)) }

// SubjectKind says what kind of caller a [Subject] is.
type SubjectKind uint8

const (
	// NoSubject is the zero kind: no subject (an anonymous caller, or no
	// owner).
	NoSubject SubjectKind = iota
	// KindPartner is a partner, acting with a partner token.
	KindPartner
	// KindUser is an entity user, acting with an entity-user token.
	KindUser
)

// String returns "partner", "user" or "none".
func (k SubjectKind) String() string {
	switch k {
	case KindPartner:
		return "partner"
	case KindUser:
		return "user"
	}
	return "none"
}

// Subject is who makes a request, or who created an object. The zero Subject
// is "nobody".
type Subject struct {
	Kind SubjectKind
	ID   string
}

// Partner returns the subject of partner id.
func Partner(id PartnerID) Subject { return Subject{Kind: KindPartner, ID: string(id)} }

// User returns the subject of entity user id.
func User(id UserID) Subject { return Subject{Kind: KindUser, ID: string(id)} }

// IsZero reports whether s is the zero Subject.
func (s Subject) IsZero() bool { return s.Kind == NoSubject && s.ID == "" }

// String returns "partner:<id>", "user:<id>" or "" for the zero Subject.
func (s Subject) String() string {
	switch s.Kind {
	case KindPartner:
		return "partner:" + s.ID
	case KindUser:
		return "user:" + s.ID
	}
	return ""
}

// Validate reports whether s is a partner or a user with a well-formed id.
func (s Subject) Validate() error {
	switch s.Kind {
	case KindPartner:
		return PartnerID(s.ID).Validate()
	case KindUser:
		return UserID(s.ID).Validate()
	}
	return fmt.Errorf("%w: subject has no kind", ErrInvalidID)
}

// ParseSubject parses "partner:<id>" or "user:<id>" (the form [Subject.String]
// returns). The empty string parses to the zero Subject.
func ParseSubject(s string) (Subject, error) {
	if s == "" {
		return Subject{}, nil
	}
	for _, k := range []SubjectKind{KindPartner, KindUser} {
		p := k.String() + ":"
		if len(s) > len(p) && s[:len(p)] == p {
			sub := Subject{Kind: k, ID: s[len(p):]}
			return sub, sub.Validate()
		}
	}
	return Subject{}, fmt.Errorf("%w: subject %q is not partner:<id> or user:<id>", ErrInvalidID, s)
}
