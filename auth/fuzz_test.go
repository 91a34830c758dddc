package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzAuthenticate: Authenticate never panics, and accepts nothing but the
// exact tokens the service issued.
func FuzzAuthenticate(f *testing.F) {
	ctx := context.Background()
	svc, err := New(ctx, NewMemoryStore(), defaultDir)
	if err != nil {
		f.Fatal(err)
	}
	defer svc.Close()
	c, _ := svc.CreateClient(ctx, "partner-a", WithAPIs("payable"))
	issued := map[string]bool{}
	for _, issue := range []func() (Token, error){
		func() (Token, error) { return svc.IssuePartnerToken(ctx, c) },
		func() (Token, error) { return svc.IssueEntityUserToken(ctx, c, "user-1") },
	} {
		tok, err := issue()
		if err != nil {
			f.Fatal(err)
		}
		issued[tok.AccessToken] = true
		f.Add(tok.AccessToken)
		parts := strings.Split(tok.AccessToken, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1])
		f.Add(tok.AccessToken + "=")
		f.Add(strings.ToUpper(tok.AccessToken))
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": DefaultIssuer, "kind": "partner"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(none)
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"` + svc.keys.Load().signing.kid + `"}`))
	f.Add(hdr + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1e309}`)) + ".AAAA")
	for _, s := range []string{"", ".", "..", "a.b.c", "Bearer x", "\x00", strings.Repeat("A", 5000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := svc.Authenticate(ctx, token)
		if err == nil && !issued[token] {
			t.Fatalf("accepted a token it did not issue: %q → %+v", token, p)
		}
		if err != nil && (p.Kind != 0 || p.TokenID != "") {
			t.Fatalf("principal returned with error %v", err)
		}
	})
}

// FuzzTokenRequest: the token endpoint never panics, always answers JSON,
// and gives a token only to a request carrying the client's secret.
func FuzzTokenRequest(f *testing.F) {
	ctx := context.Background()
	svc, err := New(ctx, NewMemoryStore(), defaultDir, WithBruteForceLimit(1<<30, 1, 1))
	if err != nil {
		f.Fatal(err)
	}
	defer svc.Close()
	c, _ := svc.CreateClient(ctx, "partner-a")
	h := svc.TokenHandler()

	f.Add(uint8(0), jsonBody("grant_type", "client_credentials", "client_id", c.ID, "client_secret", c.Secret), "")
	f.Add(uint8(0), jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "user-1"), "")
	f.Add(uint8(1), "grant_type=client_credentials&client_id="+c.ID+"&client_secret="+c.Secret, "")
	f.Add(uint8(1), "grant_type=client_credentials", basic(c.ID, c.Secret))
	f.Add(uint8(1), "grant_type=entity_user&entity_user_id=user-b1", basic(c.ID, c.Secret))
	f.Add(uint8(0), `{"grant_type":"client_credentials","client_id":"`+c.ID+`","client_secret":"wrong"}`, "")
	f.Add(uint8(0), `{"grant_type":null,"client_id":{},"client_secret":[]}`, "")
	f.Add(uint8(0), `{"a":1}{"b":2}`, "")
	f.Add(uint8(1), "grant_type=%zz&&&==", "Basic %%%")
	f.Add(uint8(2), "", "")

	f.Fuzz(func(t *testing.T, ct uint8, body, auth string) {
		req := httptest.NewRequest(http.MethodPost, "/auth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", []string{ctJSON, ctForm, "text/plain"}[ct%3])
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var ans map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if rec.Code != http.StatusOK {
			if _, ok := ans["error"].(string); !ok || ans["access_token"] != nil {
				t.Fatalf("%d without an error code: %s", rec.Code, rec.Body.String())
			}
			return
		}
		if !carriesSecret(body, auth, c.Secret) {
			t.Fatalf("token issued without the secret: body %q auth %q", body, auth)
		}
		if _, err := svc.Authenticate(ctx, ans["access_token"].(string)); err != nil {
			t.Fatalf("issued token does not verify: %v", err)
		}
	})
}

// carriesSecret reports whether the secret can be read from the body or the
// Authorization header by any of the decodings the endpoint applies.
func carriesSecret(body, auth, secret string) bool {
	cands := []string{body, auth}
	if u, err := url.QueryUnescape(body); err == nil {
		cands = append(cands, u)
	}
	if vals, err := url.ParseQuery(body); err == nil {
		for _, vs := range vals {
			cands = append(cands, vs...)
		}
	}
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) == nil {
		for _, v := range m {
			if s, ok := v.(string); ok {
				cands = append(cands, s)
			}
		}
	}
	if _, p, ok := (&http.Request{Header: http.Header{"Authorization": {auth}}}).BasicAuth(); ok {
		cands = append(cands, p)
		if u, err := url.QueryUnescape(p); err == nil {
			cands = append(cands, u)
		}
	}
	for _, c := range cands {
		if strings.Contains(c, secret) {
			return true
		}
	}
	return false
}
