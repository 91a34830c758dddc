package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Grant types of the token endpoint.
const (
	GrantClientCredentials = "client_credentials"
	GrantEntityUser        = "entity_user"
)

// tokenResponse is Monite's AccessTokenResponse (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// TokenHandler returns the handler of POST /auth/token. It takes Monite's
// ObtainTokenPayload as JSON ({"grant_type", "client_id", "client_secret",
// "entity_user_id"}) or the same parameters form-encoded, with the client in
// the body or in HTTP Basic authentication (RFC 6749 §2.3.1), so that
// standard OAuth 2.0 clients work. It answers {"access_token", "token_type":
// "Bearer", "expires_in"}, or an RFC 6749 §5.2 error.
func (s *Service) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, oerr := s.readParams(w, r, tokenFields)
		if oerr != nil {
			s.o.writeError(w, r, oerr)
			return
		}
		grant := req.params["grant_type"]
		user, hasUser := req.params["entity_user_id"]
		var tok Token
		var err error
		switch {
		case grant == "":
			oerr = &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "grant_type is required"}
		case grant == GrantClientCredentials && hasUser:
			oerr = &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "entity_user_id is only allowed with grant_type entity_user"}
		case grant == GrantClientCredentials:
			tok, err = s.IssuePartnerToken(r.Context(), req.creds)
		case grant == GrantEntityUser && !hasUser:
			oerr = &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "entity_user_id is required with grant_type entity_user"}
		case grant == GrantEntityUser && s.dir == nil:
			oerr = &OAuthError{Status: http.StatusBadRequest, Code: CodeUnsupportedGrantType, Description: "grant_type entity_user is not enabled"}
		case grant == GrantEntityUser:
			tok, err = s.IssueEntityUserToken(r.Context(), req.creds, model.UserID(user))
		default:
			oerr = &OAuthError{Status: http.StatusBadRequest, Code: CodeUnsupportedGrantType, Description: "grant_type must be client_credentials or entity_user"}
		}
		if oerr == nil && err != nil {
			oerr = s.oauthError(r, err, req.basic)
		}
		if oerr != nil {
			s.o.writeError(w, r, oerr)
			return
		}
		writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn})
	})
}

// RevokeHandler returns the handler of POST /auth/revoke. It takes Monite's
// RevokeTokenPayload ({"client_id", "client_secret", "token"}) as JSON or
// form-encoded (the client may also use HTTP Basic). A client may revoke
// only tokens of its own partner. It answers 200 {"message": "Token
// revoked"} (also for an expired or already revoked token, while the key
// that signed it is kept), or an RFC 6749 error: invalid_client (401),
// invalid_grant (400) for a token that does not verify (one whose key has
// been dropped included) or belongs to another partner, server_error (503) when the token's
// key is unknown here and the keys cannot be reloaded from the store (the
// client should retry).
func (s *Service) RevokeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, oerr := s.readParams(w, r, revokeFields)
		if oerr != nil {
			s.o.writeError(w, r, oerr)
			return
		}
		token := req.params["token"]
		if token == "" {
			s.o.writeError(w, r, &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "token is required"})
			return
		}
		c, err := s.authenticateClient(r.Context(), req.creds.ID, req.creds.Secret)
		if err == nil {
			err = s.revoke(r.Context(), token, c.PartnerID)
		}
		if err != nil {
			s.o.writeError(w, r, s.oauthError(r, err, req.basic))
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Message string `json:"message"`
		}{"Token revoked"})
	})
}

// oauthError maps an error of the service to an answer.
func (s *Service) oauthError(r *http.Request, err error, basic bool) *OAuthError {
	var tma *TooManyAttemptsError
	switch {
	case errors.As(err, &tma):
		return &OAuthError{Status: http.StatusTooManyRequests, Code: CodeInvalidClient, Description: "too many failed attempts, retry later", RetryAfter: tma.RetryAfter}
	case errors.Is(err, ErrInvalidClient):
		return &OAuthError{Status: http.StatusUnauthorized, Code: CodeInvalidClient, Description: "client authentication failed", Basic: basic}
	case errors.Is(err, ErrInvalidRequest):
		return &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: "malformed entity_user_id"}
	case errors.Is(err, ErrUnknownUser):
		return &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Description: "unknown entity user"}
	case errors.Is(err, ErrNotOwner):
		return &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Description: "the token was not issued to this client's partner"}
	case errors.Is(err, ErrInvalidToken):
		return &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Description: "the token is not valid"}
	case errors.Is(err, ErrUnavailable):
		s.log.WarnContext(r.Context(), "token endpoint unavailable", slog.Any("error", err))
		return &OAuthError{Status: http.StatusServiceUnavailable, Code: CodeServerError, Description: "temporarily unavailable, retry later"}
	}
	s.log.ErrorContext(r.Context(), "token endpoint failed", slog.Any("error", err))
	return &OAuthError{Status: http.StatusInternalServerError, Code: CodeServerError, Description: "internal error"}
}

var (
	tokenFields  = []string{"grant_type", "client_id", "client_secret", "entity_user_id"}
	revokeFields = []string{"client_id", "client_secret", "token"}
)

// request is a parsed endpoint request.
type request struct {
	params map[string]string // known fields present in the body (not the client's)
	creds  ClientCredentials
	basic  bool // the client authenticated with HTTP Basic
}

func badRequest(desc string) *OAuthError {
	return &OAuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc}
}

// readParams reads a POST body of JSON or form parameters (the fields named)
// and the client's credentials from the body or from HTTP Basic.
func (s *Service) readParams(w http.ResponseWriter, r *http.Request, fields []string) (request, *OAuthError) {
	if r.Method != http.MethodPost {
		return request{}, &OAuthError{Status: http.StatusMethodNotAllowed, Code: CodeInvalidRequest, Description: "use POST"}
	}
	q := r.URL.Query()
	if q.Has("client_secret") || q.Has("token") {
		return request{}, badRequest("credentials and tokens must not be sent in the URL")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded") {
		return request{}, badRequest("Content-Type must be application/json or application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return request{}, &OAuthError{Status: http.StatusRequestEntityTooLarge, Code: CodeInvalidRequest, Description: "request body too large"}
		}
		return request{}, badRequest("cannot read the request body")
	}
	var params map[string]string
	var desc string
	if mt == "application/json" {
		params, desc = parseJSONParams(body, fields)
	} else {
		params, desc = parseFormParams(body, fields)
	}
	if desc != "" {
		return request{}, badRequest(desc)
	}
	req := request{params: params}
	req.creds.ID, req.creds.Secret = params["client_id"], params["client_secret"]
	delete(params, "client_id")
	delete(params, "client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		user, pass, ok := r.BasicAuth()
		if ok {
			user, err = url.QueryUnescape(user)
			if err == nil {
				pass, err = url.QueryUnescape(pass)
			}
			ok = err == nil
		}
		if !ok {
			return request{}, &OAuthError{Status: http.StatusUnauthorized, Code: CodeInvalidClient, Description: "malformed Basic authentication", Basic: true}
		}
		if req.creds.Secret != "" || (req.creds.ID != "" && req.creds.ID != user) {
			return request{}, badRequest("use one way of client authentication, not both")
		}
		req.creds, req.basic = ClientCredentials{ID: user, Secret: pass}, true
	}
	if req.creds.ID == "" || req.creds.Secret == "" {
		return request{}, &OAuthError{Status: http.StatusUnauthorized, Code: CodeInvalidClient, Description: "client_id and client_secret are required"}
	}
	return req, nil
}

// parseJSONParams reads a flat JSON object of string values (null counts as
// absent). Unknown or repeated fields, other value types and trailing data
// are refused. It returns a description of the problem, or "".
func parseJSONParams(body []byte, fields []string) (map[string]string, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, "the body must be a JSON object"
	}
	params := make(map[string]string, len(fields))
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, "malformed JSON"
		}
		k, _ := t.(string)
		if !slices.Contains(fields, k) {
			return nil, "unknown field in the body"
		}
		if seen[k] {
			return nil, "a field appears twice"
		}
		seen[k] = true
		v, err := dec.Token()
		if err != nil {
			return nil, "malformed JSON"
		}
		switch v := v.(type) {
		case string:
			params[k] = v
		case nil:
		default:
			return nil, "fields must be strings"
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, "malformed JSON"
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "trailing data after the JSON object"
	}
	return params, ""
}

// parseFormParams reads form parameters; the fields named may appear once
// (RFC 6749 §3.2), others are ignored (§3.2 says to).
func parseFormParams(body []byte, fields []string) (map[string]string, string) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, "malformed form body"
	}
	params := make(map[string]string, len(fields))
	for _, f := range fields {
		switch v := vals[f]; len(v) {
		case 0:
		case 1:
			if v[0] != "" {
				params[f] = v[0]
			}
		default:
			return nil, "a parameter appears twice"
		}
	}
	return params, ""
}

// writeJSON writes v with the headers RFC 6749 §5.1 asks for.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
