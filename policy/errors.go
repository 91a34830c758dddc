package policy

import "errors"

// Sentinel errors. Every error the engine returns wraps one of them, so
// callers test with errors.Is, except when the call's context ends first:
// then the error is (or wraps) the context's, context.Canceled or
// context.DeadlineExceeded, and nothing was changed.
var (
	// ErrNotFound: the entity, role or user does not exist (in that entity).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change contradicts the current state (a duplicate id
	// or role name, deleting a role that is held or is the default role).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed (an id, a name, an unknown object
	// type or action, a permission value). It also wraps the model error
	// that says what is wrong (model.ErrInvalidID, model.ErrUnknownObject,
	// ...).
	ErrInvalid = errors.New("invalid input")
	// ErrEscalation: a subject tried to create, change or assign a role that
	// grants more than the subject holds itself.
	ErrEscalation = errors.New("privilege escalation")
	// ErrStorage: the store failed, and the engine did not publish the
	// change. The store did not keep it either, except where the store
	// cannot tell: a COMMIT whose reply was lost may have gone through
	// (package store says so with its own errors, and its Watcher then
	// applies the change if it did).
	ErrStorage = errors.New("storage error")
)
