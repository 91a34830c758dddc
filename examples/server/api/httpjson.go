package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// errorBody is Monite's ErrorSchemaResponse.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Monite's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	var b errorBody
	b.Error.Message = msg
	writeJSON(w, status, b)
}

// writeOAuthError writes the token endpoints' errors in Monite's shape,
// keeping the status and headers of package auth's answer.
func writeOAuthError(w http.ResponseWriter, _ *http.Request, e *auth.OAuthError) {
	w.Header().Set("Cache-Control", "no-store")
	if e.Basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Round(time.Second)/time.Second)))
	}
	writeError(w, e.Status, e.Code+": "+e.Description)
}

// decode reads a JSON body into dst: unknown fields, trailing data and bodies
// over the size limit are refused. On failure it has answered (400 for
// malformed JSON, 422 for a well-formed body that does not fit the schema,
// 413 for a body too large) and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	} else if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	if err == nil {
		return true
	}
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		invalid *fieldError
	)
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
	case errors.As(err, &invalid):
		writeError(w, http.StatusUnprocessableEntity, invalid.Error())
	case errors.As(err, &typ):
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("field %q must be of JSON type %s", typ.Field, typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		writeError(w, http.StatusUnprocessableEntity, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.As(err, &syntax), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		writeError(w, http.StatusBadRequest, "malformed JSON body")
	default:
		writeError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
	}
	return false
}

// fieldError is a validation error found while decoding (by an
// UnmarshalJSON method) or after: it answers 422 with its message.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// invalidf returns a fieldError.
func invalidf(format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}

// textField is a string the server stores, for checkText.
type textField struct {
	name     string  // the field's name in the API
	value    *string // nil: not given
	max      int     // the size of its column in characters; 0: none
	required bool    // it must not be empty
}

// checkText checks strings the server stores: each must be UTF-8 without a
// NUL character (PostgreSQL refuses both in text), fit its column (max
// characters, as PostgreSQL's and MySQL's varchar count them) and, when
// required, not be empty. The first that does not gives a fieldError
// (422) that names it.
func checkText(fields ...textField) error {
	for _, f := range fields {
		if f.value == nil {
			continue
		}
		v := *f.value
		switch {
		case f.required && v == "":
			return invalidf("%s must not be empty", f.name)
		case !utf8.ValidString(v):
			return invalidf("%s must be UTF-8 text", f.name)
		case strings.IndexByte(v, 0) >= 0:
			return invalidf("%s must not contain a NUL character", f.name)
		case f.max > 0 && utf8.RuneCountInString(v) > f.max:
			return invalidf("%s must be at most %d characters", f.name, f.max)
		}
	}
	return nil
}

// checkJSONText checks a JSON value the server stores as given (an
// entity's address, say): it must be UTF-8, and each of its strings and
// member names must pass checkText.
func checkJSONText(name string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil // not given
	}
	whole := string(raw)
	if err := checkText(textField{name: name, value: &whole}); err != nil {
		return err
	}
	if !json.Valid(raw) { // one JSON value, as json.Unmarshal requires
		return invalidf("%s must be JSON", name)
	}
	// Every string token, member names included: a \u0000 escape is a NUL
	// only once decoded.
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return invalidf("%s must be JSON", name)
		}
		if str, ok := tok.(string); ok {
			if err := checkText(textField{name: name, value: &str}); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeEngineError answers an error of the policy engine (or of a
// transaction around it) with the matching status.
func (s *Server) writeEngineError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusUnprocessableEntity, fe.msg)
	case errors.Is(err, policy.ErrEscalation):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, policy.ErrNotFound), errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, policy.ErrConflict), errors.Is(err, errConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, policy.ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal server error")
	}
}

var (
	errNotFound = errors.New("not found")
	errConflict = errors.New("conflict")
)

// caller returns the subject and the entity of a guarded request.
func caller(r *http.Request) (model.Subject, model.EntityID) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	e, _ := middleware.EntityFromContext(r.Context())
	return p.Subject(), e
}

// newID returns a random UUID (version 4), the form of Monite's ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// page is Monite's pagination answer: data and the tokens of the next and
// previous pages (null at either end).
type page[T any] struct {
	Data []T     `json:"data"`
	Next *string `json:"next_pagination_token"`
	Prev *string `json:"prev_pagination_token"`
}

// pageRequest is a parsed limit and pagination_token: an offset.
type pageRequest struct {
	Offset, Limit int
}

// parsePage reads limit (1 to 100, default 100) and pagination_token.
func parsePage(r *http.Request) (pageRequest, error) {
	p := pageRequest{Limit: 100}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, invalidf("limit must be an integer from 1 to 100")
		}
		p.Limit = n
	}
	if v := q.Get("pagination_token"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 || !strings.HasPrefix(string(b), "offset:") {
			return p, invalidf("invalid pagination_token")
		}
		p.Offset = n
	}
	return p, nil
}

// token encodes an offset as a pagination token.
func pageToken(offset int) *string {
	t := base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
	return &t
}

// makePage builds the answer for items read at p.Offset, where items may hold
// one more element than p.Limit (which says there is a next page).
func makePage[T any](p pageRequest, items []T) page[T] {
	out := page[T]{Data: items}
	if len(items) > p.Limit {
		out.Data = items[:p.Limit]
		out.Next = pageToken(p.Offset + p.Limit)
	}
	if out.Data == nil {
		out.Data = []T{}
	}
	if p.Offset > 0 {
		out.Prev = pageToken(max(0, p.Offset-p.Limit))
	}
	return out
}

// pageOf cuts a page out of a whole list held in memory.
func pageOf[T any](p pageRequest, all []T) page[T] {
	if p.Offset >= len(all) {
		return makePage(p, []T(nil))
	}
	end := min(len(all), p.Offset+p.Limit+1)
	return makePage(p, all[p.Offset:end])
}
