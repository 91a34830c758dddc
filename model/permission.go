package model

import "fmt"

// Permission is what a role grants on one (object type, action). The values
// are ordered: a larger Permission grants more.
type Permission uint8

const (
	// NotAllowed denies. It is the default for every (object type, action)
	// a role does not mention.
	NotAllowed Permission = iota
	// AllowedForOwn allows on objects the user created, on new objects, and
	// on lists filtered to the user's own objects.
	AllowedForOwn
	// Allowed allows on every object of the entity.
	Allowed
)

// String returns "not_allowed", "allowed_for_own" or "allowed".
func (p Permission) String() string {
	switch p {
	case NotAllowed:
		return "not_allowed"
	case AllowedForOwn:
		return "allowed_for_own"
	case Allowed:
		return "allowed"
	}
	return fmt.Sprintf("Permission(%d)", uint8(p))
}

// Valid reports whether p is one of the three permissions.
func (p Permission) Valid() bool { return p <= Allowed }

// ParsePermission parses the names [Permission.String] returns. Any other
// name is an error wrapping [ErrInvalidPermission].
func ParsePermission(s string) (Permission, error) {
	switch s {
	case "not_allowed":
		return NotAllowed, nil
	case "allowed_for_own":
		return AllowedForOwn, nil
	case "allowed":
		return Allowed, nil
	}
	return NotAllowed, fmt.Errorf("%w: %q (want not_allowed, allowed or allowed_for_own)", ErrInvalidPermission, s)
}

// MarshalText encodes p as its name.
func (p Permission) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrInvalidPermission, uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes a permission name.
func (p *Permission) UnmarshalText(b []byte) error {
	v, err := ParsePermission(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Scope is how much of a list a subject may see: nothing, the objects it
// created, or all of the entity's objects.
type Scope uint8

const (
	// ScopeNone: nothing.
	ScopeNone Scope = iota
	// ScopeOwn: only objects the subject created.
	ScopeOwn
	// ScopeAll: every object of the entity.
	ScopeAll
)

// String returns "none", "own" or "all".
func (s Scope) String() string {
	switch s {
	case ScopeOwn:
		return "own"
	case ScopeAll:
		return "all"
	}
	return "none"
}

// ParseScope parses the names [Scope.String] returns. Any other name is an
// error wrapping [ErrInvalidScope].
func ParseScope(s string) (Scope, error) {
	switch s {
	case "none":
		return ScopeNone, nil
	case "own":
		return ScopeOwn, nil
	case "all":
		return ScopeAll, nil
	}
	return ScopeNone, fmt.Errorf("%w: %q (want none, own or all)", ErrInvalidScope, s)
}

// Valid reports whether s is one of the three scopes.
func (s Scope) Valid() bool { return s <= ScopeAll }

// MarshalText encodes s as its name. A value that is not one of the three
// scopes is an error wrapping [ErrInvalidScope] (String would call it
// "none").
func (s Scope) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrInvalidScope, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a scope name.
func (s *Scope) UnmarshalText(b []byte) error {
	v, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ScopeOf returns the list scope a permission gives.
func ScopeOf(p Permission) Scope {
	switch p {
	case Allowed:
		return ScopeAll
	case AllowedForOwn:
		return ScopeOwn
	}
	return ScopeNone
}
