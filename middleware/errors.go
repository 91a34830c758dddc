package middleware

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ErrNotFound is returned (wrapped) by an [OwnerLookup] when the object does
// not exist in the request's entity. The middleware then answers 404 itself
// and does not call the handler. gorm.ErrRecordNotFound is treated the same.
var ErrNotFound = errors.New("middleware: object not found")

// ErrConfig is wrapped by the errors of [New] and [Middleware.Routes]: a
// configuration, route declaration or route table the middleware cannot
// work with. The guards of such a declaration answer 500 to every request.
var ErrConfig = errors.New("middleware: invalid configuration")

// Code is a stable, machine-readable name for an error answer. It is sent as
// the "code" member of problem documents and lets an [ErrorWriter] choose its
// own status and wording.
type Code string

// The codes of the middleware's error answers, with their default status.
const (
	CodeMissingToken  Code = "missing_token"  // 401: no Authorization header
	CodeInvalidToken  Code = "invalid_token"  // 401: malformed, badly signed or otherwise unusable token
	CodeExpiredToken  Code = "expired_token"  // 401: the token has expired
	CodeRevokedToken  Code = "revoked_token"  // 401: the token was revoked
	CodeMissingEntity Code = "missing_entity" // 400: a partner token without the entity header on an entity-scoped route
	CodeInvalidEntity Code = "invalid_entity" // 400: the entity header is malformed or repeated
	CodeForbidden     Code = "forbidden"      // 403: authenticated, but not allowed
	CodeNotFound      Code = "not_found"      // 404: the owner lookup found no such object
	CodeUnavailable   Code = "unavailable"    // 503: tokens cannot be verified right now
	CodeInternal      Code = "internal_error" // 500: a failure or a misconfiguration on the server
)

// Problem is one error answer, as the middleware hands it to an
// [ErrorWriter]. Detail is a fixed sentence chosen by the middleware: it
// never carries internal errors, identifiers from storage or tokens, so a
// writer may show it to the client as it is.
type Problem struct {
	Status int    // HTTP status the middleware suggests
	Code   Code   // what went wrong
	Detail string // a short explanation, safe for the client
}

// ErrorWriter writes an error answer. The middleware sets the
// WWW-Authenticate header (for token errors, and for a 403 outside the
// token's APIs: insufficient_scope) and Retry-After (for 503)
// before calling it; a writer must keep them and must not call the next
// handler. [WriteProblem] is the default; [WriteMonite] speaks Monite's
// dialect.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, p Problem)

// problemDoc is an RFC 9457 problem details document.
type problemDoc struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   Code   `json:"code,omitempty"`
}

// WriteProblem writes p as an RFC 9457 problem document
// (application/problem+json) with type "about:blank", the status text as
// title, the status, the detail and the code as an extension member.
func WriteProblem(w http.ResponseWriter, _ *http.Request, p Problem) {
	writeJSON(w, "application/problem+json", p.Status, problemDoc{
		Type: "about:blank", Title: http.StatusText(p.Status), Status: p.Status, Detail: p.Detail, Code: p.Code,
	})
}

// moniteDoc is Monite's error body: {"error": {"message": "..."}}.
type moniteDoc struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// WriteMonite writes p as Monite does: {"error": {"message": ...}} in
// application/json, and status 400 instead of 401 for an expired or revoked
// token (the WWW-Authenticate header set by the middleware stays).
func WriteMonite(w http.ResponseWriter, _ *http.Request, p Problem) {
	status := p.Status
	if p.Code == CodeExpiredToken || p.Code == CodeRevokedToken {
		status = http.StatusBadRequest
	}
	var d moniteDoc
	d.Error.Message = p.Detail
	if d.Error.Message == "" {
		d.Error.Message = http.StatusText(status)
	}
	writeJSON(w, "application/json", status, d)
}

func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for our documents
		b = []byte(`{}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
