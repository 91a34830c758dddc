package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/internal/nilcheck"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Authenticator verifies a bearer token and says who it speaks for.
// *auth.Service implements it. Errors wrapping auth.ErrInvalidToken
// (auth.ErrExpiredToken and auth.ErrRevokedToken included) answer 401; any
// other error answers 503 and is logged.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (auth.Principal, error)
}

// Decider is the part of the policy engine the middleware uses.
// *policy.Engine implements it, and the middleware calls it directly;
// through another Decider a decision's request escapes to the heap, an
// allocation more per decision.
type Decider interface {
	Decide(*policy.Request) policy.Decision
	OwnsEntity(ctx context.Context, partner model.PartnerID, id model.EntityID) (bool, error)
}

var (
	_ Authenticator = (*auth.Service)(nil)
	_ Decider       = (*policy.Engine)(nil)
)

// Defaults of [Config].
const (
	DefaultEntityHeader = "X-Entity-Id"
	DefaultRealm        = "gatehouse"
)

// Config configures a [Middleware]. Authenticator and Engine are required:
// [New] refuses them with [ErrConfig] when they are nil, typed nils (a nil
// *policy.Engine) included.
type Config struct {
	// Authenticator verifies bearer tokens (an *auth.Service).
	Authenticator Authenticator
	// Engine decides requests (a *policy.Engine).
	Engine Decider
	// EntityHeader names the header that carries the entity id. The default
	// is "X-Entity-Id"; Monite's is "x-monite-entity-id".
	EntityHeader string
	// Realm is the realm of the WWW-Authenticate challenge (default
	// "gatehouse"). It may not contain quotes, backslashes or control
	// characters.
	Realm string
	// ErrorWriter writes every error answer (default [WriteProblem]).
	ErrorWriter ErrorWriter
	// OnDecision, when set, receives every authorization decision of the
	// guards, allowed or not ([SlogHook] logs them). It runs on the request's
	// goroutine before the handler or the error answer: keep it fast.
	OnDecision DecisionHook
	// Logger receives failures (at Error: storage, misconfiguration) and
	// refusals (at Debug). Tokens are never logged. The default discards.
	Logger *slog.Logger
	// Pattern, when set, tells [Middleware.Routes] the route pattern of a
	// request when r.Pattern is empty (the table middleware runs before the
	// router has matched, as with chi's Use). See Routes for the default.
	Pattern func(r *http.Request) string
	// Fresh, when set, is asked before every decision whether the engine's
	// policies are current; an error (a replica's store.Watcher.Behind says
	// store.ErrBehind when it knows of changes it has not applied) answers
	// 503 with Retry-After instead of deciding from a state known to be
	// stale, and is logged. It runs on every guarded request: keep it
	// cheap (Watcher.Behind reads no database).
	Fresh func() error
}

// Middleware authenticates requests, resolves their entity and authorizes
// them against the policy engine. Create it with [New]; it is safe for
// concurrent use and its methods build the per-route middlewares.
type Middleware struct {
	authn     Authenticator
	eng       Decider
	cat       *model.Catalog // nil when the engine does not say
	header    string         // canonical form of the entity header
	writeErr  ErrorWriter
	hook      DecisionHook
	log       *slog.Logger
	pattern   func(*http.Request) string
	fresh     func() error
	challenge map[Code]string // WWW-Authenticate values
	// scopeChallenge is the WWW-Authenticate value of a 403 for an object
	// type outside the token's APIs (RFC 6750 section 3.1).
	scopeChallenge string
}

// New checks cfg and returns a Middleware. Every configuration it cannot
// work with, a missing or typed-nil Authenticator or Engine included, is an
// error wrapping [ErrConfig]; New does not panic.
func New(cfg Config) (*Middleware, error) {
	// A typed nil (a nil *auth.Service or *policy.Engine in the interface)
	// is as missing as a nil interface: it would panic on the first request,
	// or at once when asked for its catalog below.
	if nilcheck.IsNil(cfg.Authenticator) {
		return nil, fmt.Errorf("%w: Config.Authenticator is required (got %s)", ErrConfig, nilcheck.Name(cfg.Authenticator))
	}
	if nilcheck.IsNil(cfg.Engine) {
		return nil, fmt.Errorf("%w: Config.Engine is required (got %s)", ErrConfig, nilcheck.Name(cfg.Engine))
	}
	m := &Middleware{
		authn: cfg.Authenticator, eng: cfg.Engine, writeErr: cfg.ErrorWriter,
		hook: cfg.OnDecision, log: cfg.Logger, pattern: cfg.Pattern, fresh: cfg.Fresh,
	}
	if c, ok := cfg.Engine.(interface{ Catalog() *model.Catalog }); ok {
		m.cat = c.Catalog()
	}
	h := cfg.EntityHeader
	if h == "" {
		h = DefaultEntityHeader
	}
	if !validHeaderName(h) {
		return nil, fmt.Errorf("%w: entity header %q is not a valid header name", ErrConfig, h)
	}
	m.header = textproto.CanonicalMIMEHeaderKey(h)
	realm := cfg.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	for i := 0; i < len(realm); i++ {
		if c := realm[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return nil, fmt.Errorf("%w: realm %q has a character not allowed in a quoted string", ErrConfig, realm)
		}
	}
	if m.writeErr == nil {
		m.writeErr = WriteProblem
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	base := `Bearer realm="` + realm + `"`
	m.challenge = map[Code]string{CodeMissingToken: base}
	for code, desc := range tokenErrors {
		m.challenge[code] = base + `, error="invalid_token", error_description="` + desc.challenge + `"`
	}
	m.scopeChallenge = base + `, error="insufficient_scope", error_description="` + strings.TrimSuffix(detailAPI, ".") + `"`
	return m, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// tokenErrors are the answers to unusable tokens: the RFC 6750
// error_description and the problem detail.
var tokenErrors = map[Code]struct{ challenge, detail string }{
	CodeInvalidToken: {"The access token is malformed or invalid", "The access token is malformed or invalid."},
	CodeExpiredToken: {"The access token expired", "The access token expired."},
	CodeRevokedToken: {"The access token was revoked", "The access token was revoked."},
}

// Authenticate returns a middleware that requires a valid bearer token and
// puts its principal in the request context ([PrincipalFromContext]). It
// does not authorize anything: use it for routes any caller may use, or in
// front of the guards. The guards authenticate by themselves when no
// principal is in the context yet, so it is optional in front of them.
func (m *Middleware) Authenticate() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, r, ok := m.principal(w, r); ok {
				next.ServeHTTP(w, r)
			}
		})
	}
}

// principal returns the request's state, authenticating the request if no
// principal is in its context yet. On failure it has written the answer.
func (m *Middleware) principal(w http.ResponseWriter, r *http.Request) (*state, *http.Request, bool) {
	var p auth.Principal
	ok := true
	if st := stateFrom(r.Context()); st != nil {
		if !st.shared {
			return st, r, true // this request's own
		}
		// Set by NewContext, perhaps for many requests: checked, and
		// copied for this one below.
		p = st.p
	} else if p, ok = m.authenticate(w, r); !ok {
		return nil, r, false
	}
	if !wellFormed(&p) {
		m.log.ErrorContext(r.Context(), "gatehouse: incomplete principal", slog.String("kind", p.Kind.String()))
		m.refuseToken(w, r, CodeInvalidToken)
		return nil, r, false
	}
	st := &state{Context: r.Context(), p: p}
	return st, r.WithContext(st), true
}

// authenticate verifies the request's bearer token. On failure it has
// written the answer.
func (m *Middleware) authenticate(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	token, code := bearerToken(r.Header)
	if code != "" {
		m.refuseToken(w, r, code)
		return auth.Principal{}, false
	}
	p, err := m.authn.Authenticate(r.Context(), token)
	if err != nil {
		switch {
		case errors.Is(err, auth.ErrExpiredToken):
			m.refuseToken(w, r, CodeExpiredToken)
		case errors.Is(err, auth.ErrRevokedToken):
			m.refuseToken(w, r, CodeRevokedToken)
		case errors.Is(err, auth.ErrInvalidToken):
			m.refuseToken(w, r, CodeInvalidToken)
		default:
			m.log.ErrorContext(r.Context(), "gatehouse: cannot verify tokens", slog.String("error", redact(err, token)))
			w.Header().Set("Retry-After", "1")
			m.fail(w, r, http.StatusServiceUnavailable, CodeUnavailable, "Authentication is unavailable; retry later.")
		}
		return auth.Principal{}, false
	}
	return p, true
}

// wellFormed reports whether p names a partner, or an entity user with its
// entity: anything else is refused like an invalid token.
func wellFormed(p *auth.Principal) bool {
	switch p.Kind {
	case auth.KindPartner:
		return p.PartnerID != ""
	case auth.KindEntityUser:
		return p.UserID != "" && p.EntityID != ""
	}
	return false
}

// redact removes the token from an error message, should an authenticator
// ever quote it.
func redact(err error, token string) string {
	s := err.Error()
	if token != "" && strings.Contains(s, token) {
		s = strings.ReplaceAll(s, token, "[redacted]")
	}
	return s
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1). It returns CodeMissingToken when there is no
// header or it uses another scheme (RFC 6750 §3.1: no error code then), and
// CodeInvalidToken when the header is not one well-formed bearer
// credential.
func bearerToken(h http.Header) (string, Code) {
	vals := h["Authorization"]
	switch {
	case len(vals) == 0 || len(vals) == 1 && vals[0] == "":
		return "", CodeMissingToken
	case len(vals) > 1:
		return "", CodeInvalidToken
	}
	v := vals[0]
	const scheme = "bearer "
	if sch, _, _ := strings.Cut(v, " "); !strings.EqualFold(sch, "bearer") {
		return "", CodeMissingToken // another scheme, or none
	}
	if len(v) <= len(scheme) {
		return "", CodeInvalidToken
	}
	tok := strings.TrimLeft(v[len(scheme):], " ")
	if !token68(tok) {
		return "", CodeInvalidToken
	}
	return tok, ""
}

// token68 reports whether s matches RFC 7235's token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It runs over every byte of every token, hence the table and no branch in
// the loop.
func token68(s string) bool {
	n := len(s)
	for n > 0 && s[n-1] == '=' {
		n--
	}
	if n == 0 {
		return false
	}
	ok := byte(1)
	for _, c := range []byte(s[:n]) {
		ok &= token68Chars[c]
	}
	return ok == 1
}

// token68Chars is 1 for the bytes of token68 before its "=" padding.
var token68Chars = func() (t [256]byte) {
	for c := range 256 {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0 {
			t[c] = 1
		}
	}
	return t
}()

// refuseToken answers 401 with a Bearer challenge.
func (m *Middleware) refuseToken(w http.ResponseWriter, r *http.Request, code Code) {
	w.Header().Set("WWW-Authenticate", m.challenge[code])
	detail := "An access token is required."
	if d, ok := tokenErrors[code]; ok {
		detail = d.detail
	}
	m.log.DebugContext(r.Context(), "gatehouse: token refused", slog.String("code", string(code)))
	m.fail(w, r, http.StatusUnauthorized, code, detail)
}

// fail writes an error answer through the error writer.
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, status int, code Code, detail string) {
	m.writeErr(w, r, Problem{Status: status, Code: code, Detail: detail})
}
