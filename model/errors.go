package model

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidID is wrapped by every error about a malformed identifier.
	ErrInvalidID = errors.New("invalid identifier")
	// ErrUnknownObject is wrapped when an object type is not in the catalog.
	ErrUnknownObject = errors.New("unknown object type")
	// ErrUnknownAction is wrapped when an action is not in the catalog for
	// its object type.
	ErrUnknownAction = errors.New("unknown action")
	// ErrInvalidPermission is wrapped when a permission name is not one of
	// not_allowed, allowed, allowed_for_own.
	ErrInvalidPermission = errors.New("invalid permission")
	// ErrInvalidScope is wrapped when a scope name is not one of none, own,
	// all, or a Scope value is not one of the three scopes.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInvalidKey is wrapped when a key's text is not "object.action" of
	// two catalog names ([Key.UnmarshalText]).
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidCatalog is wrapped when a catalog cannot be built.
	ErrInvalidCatalog = errors.New("invalid catalog")
	// ErrUnknownUser is wrapped when an entity user does not exist. It is
	// shared by the packages that look users up (policy) and those that
	// ask them (auth), so that either can test the other's errors.
	ErrUnknownUser = errors.New("unknown entity user")
)

// IDError describes a malformed identifier. It wraps [ErrInvalidID].
type IDError struct {
	Kind string // "entity id", "role id", ...
	ID   string // the offending id; one longer than MaxIDLen is cut to its first MaxIDLen bytes and "..."
	Why  string // what is wrong with it
}

// Error returns e.g. `role id "a b": has the character ' ' at byte 1`.
func (e *IDError) Error() string { return fmt.Sprintf("%s %q %s", e.Kind, e.ID, e.Why) }

// Unwrap returns [ErrInvalidID].
func (e *IDError) Unwrap() error { return ErrInvalidID }
