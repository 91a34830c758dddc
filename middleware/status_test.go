package middleware_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/middleware"
)

const realm = `Bearer realm="gatehouse"`

func TestStatuses(t *testing.T) {
	wd := newWorld(t)
	logs := &syncBuffer{}
	mux, _ := wd.mux(t, middleware.Config{Logger: debugLogger(logs), OnDecision: middleware.SlogHook(debugLogger(logs))})
	const hdr = "X-Entity-Id"
	tests := []struct {
		name         string
		method, path string
		authz        string // Authorization header
		entity       string // X-Entity-Id ("" = none)
		status       int
		code         middleware.Code
		challenge    string // exact WWW-Authenticate, "" = none
		body         string // substring of a 200 body
	}{
		// 401 and 503: tokens.
		{name: "no token", method: "GET", path: "/payables", status: 401, code: middleware.CodeMissingToken, challenge: realm},
		{name: "no token on partner route", method: "POST", path: "/entities", status: 401, code: middleware.CodeMissingToken, challenge: realm},
		// RFC 6750 §3.1: another scheme is answered as no credentials, with
		// no error code.
		{name: "basic scheme", method: "GET", path: "/payables", authz: "Basic dTpw", status: 401, code: middleware.CodeMissingToken,
			challenge: realm},
		{name: "empty bearer", method: "GET", path: "/payables", authz: "Bearer ", status: 401, code: middleware.CodeInvalidToken},
		{name: "bearer with bad characters", method: "GET", path: "/payables", authz: "Bearer a,b", status: 401, code: middleware.CodeInvalidToken},
		{name: "bad signature", method: "GET", path: "/payables", authz: "Bearer " + tokBad, status: 401, code: middleware.CodeInvalidToken,
			challenge: realm + `, error="invalid_token", error_description="The access token is malformed or invalid"`},
		{name: "unknown token", method: "GET", path: "/me", authz: "Bearer nope", status: 401, code: middleware.CodeInvalidToken},
		{name: "expired", method: "GET", path: "/payables", authz: "Bearer " + tokExpired, status: 401, code: middleware.CodeExpiredToken,
			challenge: realm + `, error="invalid_token", error_description="The access token expired"`},
		{name: "revoked", method: "GET", path: "/payables", authz: "Bearer " + tokRevoked, status: 401, code: middleware.CodeRevokedToken,
			challenge: realm + `, error="invalid_token", error_description="The access token was revoked"`},
		{name: "lower-case scheme", method: "GET", path: "/me", authz: "bearer " + tokU1, status: 200},
		{name: "auth unavailable", method: "GET", path: "/payables", authz: "Bearer " + tokDown, entity: "e1", status: 503, code: middleware.CodeUnavailable},

		// Partner tokens.
		{name: "partner list", method: "GET", path: "/payables", authz: "Bearer " + tokP1, entity: "e1", status: 200, body: "entity=e1 scope=all"},
		{name: "partner second entity", method: "GET", path: "/payables", authz: "Bearer " + tokP1, entity: "e2", status: 200, body: "entity=e2 scope=all"},
		{name: "partner object", method: "GET", path: "/payables/o2", authz: "Bearer " + tokP1, entity: "e1", status: 200},
		{name: "partner approve", method: "POST", path: "/payables/o2/approve", authz: "Bearer " + tokP1, entity: "e1", status: 200},
		{name: "partner no entity header", method: "GET", path: "/payables", authz: "Bearer " + tokP1, status: 400, code: middleware.CodeMissingEntity},
		{name: "partner malformed entity", method: "GET", path: "/payables", authz: "Bearer " + tokP1, entity: "e 1/..", status: 400, code: middleware.CodeInvalidEntity},
		{name: "partner other partner's entity", method: "GET", path: "/payables", authz: "Bearer " + tokP1, entity: "e3", status: 403, code: middleware.CodeForbidden},
		{name: "partner unknown entity", method: "GET", path: "/payables", authz: "Bearer " + tokP1, entity: "e9", status: 403, code: middleware.CodeForbidden},
		{name: "partner 2 into p1", method: "GET", path: "/payables/o1", authz: "Bearer " + tokP2, entity: "e1", status: 403, code: middleware.CodeForbidden},
		{name: "partner outside its APIs", method: "GET", path: "/payables", authz: "Bearer " + tokLimited, entity: "e1", status: 403, code: middleware.CodeForbidden, challenge: realm + `, error="insufficient_scope", error_description="The token is not enabled for this API"`},
		{name: "partner-only route", method: "POST", path: "/entities", authz: "Bearer " + tokP1, status: 200},
		{name: "partner-only route, APIs without entity", method: "POST", path: "/entities", authz: "Bearer " + tokLimited, status: 403, code: middleware.CodeForbidden, challenge: realm + `, error="insufficient_scope", error_description="The token is not enabled for this API"`},
		{name: "partner-only route, APIs of entity only", method: "POST", path: "/entities", authz: "Bearer " + tokEntityAPI, status: 200},
		{name: "entity API only, outside it", method: "GET", path: "/payables", authz: "Bearer " + tokEntityAPI, entity: "e1", status: 403, code: middleware.CodeForbidden, challenge: realm + `, error="insufficient_scope", error_description="The token is not enabled for this API"`},
		{name: "partner entity route", method: "GET", path: "/entity", authz: "Bearer " + tokP1, entity: "e2", status: 200, body: "entity=e2 scope=-"},
		{name: "partner entity route no header", method: "GET", path: "/entity", authz: "Bearer " + tokP1, status: 400, code: middleware.CodeMissingEntity},
		{name: "partner entity route foreign", method: "GET", path: "/entity", authz: "Bearer " + tokP2, entity: "e1", status: 403, code: middleware.CodeForbidden},

		// Entity-user tokens.
		{name: "user no header", method: "GET", path: "/payables", authz: "Bearer " + tokU1, status: 200, body: "subject=user:u1 entity=e1 scope=all"},
		{name: "user own header", method: "GET", path: "/payables", authz: "Bearer " + tokU1, entity: "e1", status: 200},
		{name: "user other entity same partner", method: "GET", path: "/payables", authz: "Bearer " + tokU1, entity: "e2", status: 403, code: middleware.CodeForbidden},
		{name: "user other partner's entity", method: "GET", path: "/payables", authz: "Bearer " + tokU1, entity: "e3", status: 403, code: middleware.CodeForbidden},
		{name: "user malformed entity", method: "GET", path: "/payables", authz: "Bearer " + tokU1, entity: "e1,e2", status: 400, code: middleware.CodeInvalidEntity},
		{name: "user on partner-only route", method: "POST", path: "/entities", authz: "Bearer " + tokU1, status: 403, code: middleware.CodeForbidden},
		{name: "user default role denies", method: "GET", path: "/payables", authz: "Bearer " + tokU3, status: 403, code: middleware.CodeForbidden},
		{name: "user default role allows", method: "GET", path: "/payables", authz: "Bearer " + tokU5, status: 200, body: "entity=e2 scope=all"},
		{name: "own: list", method: "GET", path: "/payables", authz: "Bearer " + tokU2, status: 200, body: "scope=own"},
		{name: "own: create", method: "POST", path: "/payables", authz: "Bearer " + tokU2, status: 200, body: "scope=own"},
		{name: "own: own object", method: "GET", path: "/payables/o2", authz: "Bearer " + tokU2, status: 200, body: "scope=own"},
		{name: "own: approve own", method: "POST", path: "/payables/o2/approve", authz: "Bearer " + tokU2, status: 200},
		{name: "own: other's object", method: "GET", path: "/payables/o1", authz: "Bearer " + tokU2, status: 403, code: middleware.CodeForbidden},
		{name: "own: partner's object", method: "POST", path: "/payables/o3/approve", authz: "Bearer " + tokU2, status: 403, code: middleware.CodeForbidden},
		{name: "own: missing object", method: "GET", path: "/payables/nope", authz: "Bearer " + tokU2, status: 404, code: middleware.CodeNotFound},
		{name: "own: object of another entity looks missing", method: "GET", path: "/payables/o5", authz: "Bearer " + tokU2, status: 404, code: middleware.CodeNotFound},
		{name: "own: owner lookup fails", method: "GET", path: "/payables/boom", authz: "Bearer " + tokU2, status: 500, code: middleware.CodeInternal},
		{name: "own: owner lookup returns nobody", method: "GET", path: "/payables/orphan", authz: "Bearer " + tokU2, status: 403, code: middleware.CodeForbidden},
		{name: "all: lookup not needed", method: "GET", path: "/payables/boom", authz: "Bearer " + tokU1, status: 200, body: "scope=all"},
		{name: "user in other partner", method: "GET", path: "/payables/o5", authz: "Bearer " + tokU4, status: 200},
		{name: "user authenticate only", method: "GET", path: "/me", authz: "Bearer " + tokU3, status: 200, body: "subject=user:u3 entity= scope=-"},
		{name: "user entity route", method: "GET", path: "/entity", authz: "Bearer " + tokU3, status: 200, body: "entity=e1 scope=-"},
		{name: "user outside its APIs", method: "GET", path: "/payables", authz: "Bearer " + tokUserLimited, status: 403, code: middleware.CodeForbidden, challenge: realm + `, error="insufficient_scope", error_description="The token is not enabled for this API"`},
		{name: "user removed since the token", method: "GET", path: "/payables", authz: "Bearer " + tokUserRemoved, status: 403, code: middleware.CodeForbidden},
		{name: "user removed, object route", method: "GET", path: "/payables/o1", authz: "Bearer " + tokUserRemoved, status: 403, code: middleware.CodeForbidden},
		{name: "user of a removed entity", method: "GET", path: "/payables", authz: "Bearer " + tokUserGone, status: 403, code: middleware.CodeForbidden},
		{name: "user of a removed entity names it", method: "GET", path: "/payables", authz: "Bearer " + tokUserGone, entity: "gone", status: 403, code: middleware.CodeForbidden},
		{name: "partner names a removed entity", method: "GET", path: "/payables", authz: "Bearer " + tokP1, entity: "gone", status: 403, code: middleware.CodeForbidden},
		{name: "partner: lookup not needed", method: "GET", path: "/payables/boom", authz: "Bearer " + tokP1, entity: "e1", status: 200, body: "scope=all"},
		{name: "partner malformed header on partner-only route", method: "POST", path: "/entities", authz: "Bearer " + tokP1, entity: "e 1", status: 200},
		{name: "user entity route other", method: "GET", path: "/entity", authz: "Bearer " + tokU3, entity: "e2", status: 403, code: middleware.CodeForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.entity != "" {
				h[hdr] = tc.entity
			}
			w := do(mux, tc.method, tc.path, tc.authz, h)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); tc.challenge != "" && got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			} else if tc.status == 401 && !strings.HasPrefix(got, realm) {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
			} else if tc.status != 401 && tc.challenge == "" && got != "" {
				t.Errorf("WWW-Authenticate %q on a %d", got, tc.status)
			}
			if tc.status == 200 {
				if !strings.Contains(w.Body.String(), tc.body) {
					t.Errorf("body %q, want %q in it", w.Body, tc.body)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var doc struct {
				Type   string          `json:"type"`
				Title  string          `json:"title"`
				Status int             `json:"status"`
				Detail string          `json:"detail"`
				Code   middleware.Code `json:"code"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if doc.Type != "about:blank" || doc.Title != http.StatusText(tc.status) || doc.Status != tc.status || doc.Code != tc.code || doc.Detail == "" {
				t.Errorf("problem %+v, want status %d code %s", doc, tc.status, tc.code)
			}
			for _, secret := range []string{"hunter2", "db-internal", "pq:", "tok-", "dsn"} {
				if strings.Contains(w.Body.String(), secret) {
					t.Errorf("answer leaks %q: %s", secret, w.Body)
				}
			}
		})
	}
	// The log holds the failures, but never a token.
	out := logs.String()
	if !contains(out, "owner lookup failed", "hunter2", "cannot verify tokens", "gatehouse: decision") {
		t.Errorf("log lacks the failures:\n%s", out)
	}
	for _, tok := range []string{tokP1, tokP2, tokU1, tokU2, tokU3, tokU4, tokU5, tokLimited, tokExpired, tokRevoked, tokBad, tokDown, tokUserLimited, tokUserRemoved, tokUserGone} {
		if strings.Contains(out, tok) {
			t.Errorf("log contains token %q", tok)
		}
	}
}

func TestRepeatedHeaders(t *testing.T) {
	wd := newWorld(t)
	mux, _ := wd.mux(t, middleware.Config{})
	r := func() *http.Request {
		r, _ := http.NewRequest("GET", "/payables", nil)
		return r
	}
	req := r()
	req.Header.Add("Authorization", "Bearer "+tokU1)
	req.Header.Add("Authorization", "Bearer "+tokP1)
	if w := serve(mux, req); w.Code != 401 {
		t.Errorf("two Authorization headers: %d", w.Code)
	}
	req = r()
	req.Header.Set("Authorization", "Bearer "+tokP1)
	req.Header.Add("X-Entity-Id", "e1")
	req.Header.Add("X-Entity-Id", "e3")
	if w := serve(mux, req); w.Code != 400 {
		t.Errorf("two entity headers: %d", w.Code)
	}
}

func TestMoniteWriter(t *testing.T) {
	wd := newWorld(t)
	mux, _ := wd.mux(t, middleware.Config{ErrorWriter: middleware.WriteMonite, EntityHeader: "x-monite-entity-id"})
	tests := []struct {
		authz, entity string
		status        int
		challenge     bool
	}{
		{"", "", 401, true},
		{"Bearer " + tokBad, "", 401, true},
		{"Bearer " + tokExpired, "", 400, true},
		{"Bearer " + tokRevoked, "", 400, true},
		{"Bearer " + tokP1, "", 400, false},
		{"Bearer " + tokP1, "e3", 403, false},
		{"Bearer " + tokP1, "e1", 200, false},
		{"Bearer " + tokU1, "e2", 403, false},
	}
	for _, tc := range tests {
		h := map[string]string{}
		if tc.entity != "" {
			h["x-monite-entity-id"] = tc.entity
		}
		w := do(mux, "GET", "/payables", tc.authz, h)
		if w.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.authz, tc.entity, w.Code, tc.status)
			continue
		}
		if got := w.Header().Get("WWW-Authenticate") != ""; got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate present %v, want %v", tc.authz, got, tc.challenge)
		}
		if w.Code == 200 {
			continue
		}
		var doc struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc.Error.Message == "" {
			t.Errorf("body %q: %v", w.Body, err)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

func TestNewValidates(t *testing.T) {
	wd := newWorld(t)
	for _, cfg := range []middleware.Config{
		{},
		{Authenticator: wd.auth},
		{Authenticator: wd.auth, Engine: wd.eng, EntityHeader: "X Entity"},
		{Authenticator: wd.auth, Engine: wd.eng, Realm: `a"b`},
	} {
		if _, err := middleware.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestUndeclaredActionFailsClosed(t *testing.T) {
	wd := newWorld(t)
	logs := &syncBuffer{}
	mw, err := middleware.New(middleware.Config{Authenticator: wd.auth, Engine: wd.eng, Logger: debugLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	for _, g := range []func(http.Handler) http.Handler{
		mw.Require("payable", "fly"), mw.Require("spaceship", "read"), mw.Require("", "read"),
	} {
		if w := do(g(h), "GET", "/x", "Bearer "+tokP1, map[string]string{"X-Entity-Id": "e1"}); w.Code != 500 {
			t.Errorf("status %d, want 500", w.Code)
		}
	}
	// A method without a default action, on a route declared without one.
	if w := do(mw.Require("payable", "")(h), "OPTIONS", "/x", "Bearer "+tokP1, map[string]string{"X-Entity-Id": "e1"}); w.Code != 403 {
		t.Errorf("OPTIONS: status %d, want 403", w.Code)
	}
	if called {
		t.Error("handler called")
	}
	if !strings.Contains(logs.String(), "invalid route declaration") {
		t.Error("bad declarations not logged")
	}
}

func serve(h http.Handler, r *http.Request) *responseRecorder {
	w := newRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestConfigErrorsIs(t *testing.T) {
	wd := newWorld(t)
	if _, err := middleware.New(middleware.Config{}); !errors.Is(err, middleware.ErrConfig) {
		t.Errorf("New: %v", err)
	}
	_, mw := wd.mux(t, middleware.Config{})
	for _, table := range []middleware.Routes{
		{{Pattern: "get /x", Object: "payable"}},
		{{Pattern: "GET /x", Object: "spaceship"}},
		{{Pattern: "GET /x"}},
	} {
		if _, err := mw.Routes(table); !errors.Is(err, middleware.ErrConfig) {
			t.Errorf("Routes(%+v): %v", table, err)
		}
	}
}
