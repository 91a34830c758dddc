package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Sentinel errors. Test for them with [errors.Is]; the errors of the
// conditions below wrap them with more detail. Not every error wraps one:
// a failure of the [Store], of the [Directory] or of the system wraps its
// cause (a Store's own [ErrNotFound] or [ErrConflict] included), and an
// error caused by a done context is, or wraps, the context's error
// ([context.Canceled] or [context.DeadlineExceeded]).
//
// [ErrExpiredToken] and [ErrRevokedToken] both wrap [ErrInvalidToken], so a
// caller that only cares whether a token is usable tests ErrInvalidToken; a
// caller that must tell the cases apart (the middleware in Monite mode) tests
// ErrExpiredToken and ErrRevokedToken first.
var (
	// ErrInvalidToken: the token is malformed, badly signed, signed with an
	// unknown or expired key or with another algorithm than its key's, issued
	// by another issuer, not yet valid, or its claims are inconsistent.
	ErrInvalidToken = errors.New("invalid token")
	// ErrExpiredToken: the token was valid but has expired. It wraps
	// ErrInvalidToken.
	ErrExpiredToken = fmt.Errorf("%w: expired", ErrInvalidToken)
	// ErrRevokedToken: the token was revoked. It wraps ErrInvalidToken.
	ErrRevokedToken = fmt.Errorf("%w: revoked", ErrInvalidToken)

	// ErrInvalidClient: unknown client id, wrong secret, or a secret past its
	// cut-off. The two cases are not told apart, on purpose.
	ErrInvalidClient = errors.New("invalid client credentials")
	// ErrTooManyAttempts: too many failed attempts were made with this
	// client id recently; retry after the cool-down. See [TooManyAttemptsError].
	ErrTooManyAttempts = errors.New("too many failed attempts")
	// ErrUnknownUser: the entity user does not exist, or does not belong to
	// an entity of the client's partner. It is [model.ErrUnknownUser] (the
	// same value, so errors.Is holds either way): a [Directory] returns an
	// error wrapping it for users it does not know, as the policy engine
	// does.
	ErrUnknownUser = model.ErrUnknownUser
	// ErrNotOwner: a client tried to revoke a token of another partner.
	ErrNotOwner = errors.New("token belongs to another partner")
	// ErrInvalidRequest: an argument is malformed (an identifier, an option).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnavailable: the service cannot vouch for a token right now: its
	// revocation list has not been refreshed from the store for longer than
	// the configured bound (fail closed), the token names a key unknown here
	// and the keys could not be reloaded from the store, or the service is
	// closed.
	ErrUnavailable = errors.New("authentication unavailable")

	// ErrNotFound is returned by a [Store] for a client that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned by a [Store] when a client id is already taken.
	ErrConflict = errors.New("conflict")
)

// TooManyAttemptsError is returned while a client id is cooling down after
// repeated failures. It wraps [ErrTooManyAttempts].
type TooManyAttemptsError struct {
	RetryAfter time.Duration // how long until attempts are accepted again
}

// Error returns a message with the cool-down left.
func (e *TooManyAttemptsError) Error() string {
	return fmt.Sprintf("%v: retry in %s", ErrTooManyAttempts, e.RetryAfter.Round(time.Second))
}

// Unwrap returns [ErrTooManyAttempts].
func (e *TooManyAttemptsError) Unwrap() error { return ErrTooManyAttempts }

// OAuth 2.0 error codes (RFC 6749 §5.2), and server_error for failures of
// the service itself.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeServerError          = "server_error"
)

// OAuthError is an error answer of the token and revocation endpoints, in the
// shape of RFC 6749 §5.2. It is what an [ErrorWriter] receives.
type OAuthError struct {
	Status      int    // HTTP status: 400, 401, 405, 413, 429, 500 or 503
	Code        string // one of the Code* constants
	Description string // safe to show to the client: never names a secret, a token or whether a client exists
	// Basic is set on 401 answers to a request that authenticated with HTTP
	// Basic: the answer carries "WWW-Authenticate: Basic".
	Basic bool
	// RetryAfter, when positive, is sent as a Retry-After header (429).
	RetryAfter time.Duration
}

// Error returns "code: description".
func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// ErrorWriter writes an error answer. The default, [WriteOAuthError], writes
// RFC 6749 JSON; replace it with [WithErrorWriter] to speak another dialect.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, e *OAuthError)

// WriteOAuthError writes e as RFC 6749 §5.2 JSON:
// {"error": "...", "error_description": "..."}, with Cache-Control: no-store,
// WWW-Authenticate: Basic when e.Basic and Retry-After when e.RetryAfter > 0.
func WriteOAuthError(w http.ResponseWriter, _ *http.Request, e *OAuthError) {
	h := w.Header()
	if e.Basic && e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if e.Status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	writeJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}
