package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func TestTokenEndpointGrants(t *testing.T) {
	f := newFixture(t)
	c := f.client("partner-a")
	h := f.svc.TokenHandler()
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	cases := []struct {
		name   string
		ctype  string
		body   string
		hdr    []string
		kind   Kind
		userID string
	}{
		{"json partner", ctJSON, jsonBody("grant_type", "client_credentials", "client_id", c.ID, "client_secret", c.Secret), nil, KindPartner, ""},
		{"json entity user", ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "user-1"), nil, KindEntityUser, "user-1"},
		{"json null entity_user_id", ctJSON, `{"grant_type":"client_credentials","client_id":"` + c.ID + `","client_secret":"` + c.Secret + `","entity_user_id":null}`, nil, KindPartner, ""},
		{"json with charset", ctJSON + "; charset=utf-8", jsonBody("grant_type", "client_credentials", "client_id", c.ID, "client_secret", c.Secret), nil, KindPartner, ""},
		{"form partner", ctForm, form("grant_type", "client_credentials", "client_id", c.ID, "client_secret", c.Secret, "scope", "ignored"), nil, KindPartner, ""},
		{"form basic", ctForm, form("grant_type", "client_credentials"), []string{"Authorization", basic(c.ID, c.Secret)}, KindPartner, ""},
		{"form basic with client_id", ctForm, form("grant_type", "client_credentials", "client_id", c.ID), []string{"Authorization", basic(c.ID, c.Secret)}, KindPartner, ""},
		{"form entity user basic", ctForm, form("grant_type", "entity_user", "entity_user_id", "user-1"), []string{"Authorization", basic(c.ID, c.Secret)}, KindEntityUser, "user-1"},
		{"json basic", ctJSON, jsonBody("grant_type", "client_credentials"), []string{"Authorization", basic(c.ID, c.Secret)}, KindPartner, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, http.MethodPost, tc.ctype, tc.body, tc.hdr...)
			if r.Status != http.StatusOK || r.str("token_type") != "Bearer" || r.Body["expires_in"] != float64(1800) || r.str("access_token") == "" {
				t.Fatalf("answer %d %s", r.Status, r.Raw)
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", r.Header)
			}
			if len(r.Body) != 3 {
				t.Fatalf("extra fields: %s", r.Raw)
			}
			p, err := f.svc.Authenticate(context.Background(), r.str("access_token"))
			if err != nil || p.Kind != tc.kind || string(p.UserID) != tc.userID || p.ClientID != c.ID {
				t.Fatalf("principal %+v, %v", p, err)
			}
		})
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	f := newFixture(t, WithMaxBodyBytes(1024))
	c := f.client("partner-a")
	h := f.svc.TokenHandler()
	grant := func(extra ...string) string {
		return jsonBody(append([]string{"grant_type", "client_credentials", "client_id", c.ID, "client_secret", c.Secret}, extra...)...)
	}
	unknownID := "00000000-0000-4000-8000-000000000000"
	cases := []struct {
		name   string
		method string
		ctype  string
		body   string
		hdr    []string
		status int
		code   string
		basic  bool // WWW-Authenticate: Basic expected
	}{
		{"GET", http.MethodGet, ctJSON, grant(), nil, 405, CodeInvalidRequest, false},
		{"no content type", http.MethodPost, "", grant(), nil, 400, CodeInvalidRequest, false},
		{"text/plain", http.MethodPost, "text/plain", grant(), nil, 400, CodeInvalidRequest, false},
		{"too large", http.MethodPost, ctJSON, `{"grant_type":"` + strings.Repeat("x", 2000) + `"}`, nil, 413, CodeInvalidRequest, false},
		{"malformed json", http.MethodPost, ctJSON, `{"grant_type":`, nil, 400, CodeInvalidRequest, false},
		{"json array", http.MethodPost, ctJSON, `["client_credentials"]`, nil, 400, CodeInvalidRequest, false},
		{"trailing data", http.MethodPost, ctJSON, grant() + `{}`, nil, 400, CodeInvalidRequest, false},
		{"unknown field", http.MethodPost, ctJSON, grant("scope", "x"), nil, 400, CodeInvalidRequest, false},
		{"number field", http.MethodPost, ctJSON, `{"grant_type":"client_credentials","client_id":1,"client_secret":"x"}`, nil, 400, CodeInvalidRequest, false},
		{"duplicate json field", http.MethodPost, ctJSON, `{"grant_type":"client_credentials","client_id":"` + c.ID + `","client_secret":"` + c.Secret + `","client_id":"x"}`, nil, 400, CodeInvalidRequest, false},
		{"duplicate form param", http.MethodPost, ctForm, "grant_type=client_credentials&grant_type=entity_user&client_id=" + c.ID + "&client_secret=" + c.Secret, nil, 400, CodeInvalidRequest, false},
		{"malformed form", http.MethodPost, ctForm, "grant_type=%zz", nil, 400, CodeInvalidRequest, false},
		{"missing grant_type", http.MethodPost, ctJSON, jsonBody("client_id", c.ID, "client_secret", c.Secret), nil, 400, CodeInvalidRequest, false},
		{"unsupported grant", http.MethodPost, ctJSON, jsonBody("grant_type", "password", "client_id", c.ID, "client_secret", c.Secret), nil, 400, CodeUnsupportedGrantType, false},
		{"entity_user without user", http.MethodPost, ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret), nil, 400, CodeInvalidRequest, false},
		{"client_credentials with user", http.MethodPost, ctJSON, grant("entity_user_id", "user-1"), nil, 400, CodeInvalidRequest, false},
		{"missing secret", http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", c.ID), nil, 401, CodeInvalidClient, false},
		{"missing client", http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials"), nil, 401, CodeInvalidClient, false},
		{"secret in URL", http.MethodPost, ctJSON, grant(), nil, 400, CodeInvalidRequest, false}, // URL set below
		{"unknown client", http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", unknownID, "client_secret", c.Secret), nil, 401, CodeInvalidClient, false},
		{"wrong secret", http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", c.ID, "client_secret", "ghcs_wrong"), nil, 401, CodeInvalidClient, false},
		{"malformed client id", http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", "a b", "client_secret", c.Secret), nil, 401, CodeInvalidClient, false},
		{"basic wrong secret", http.MethodPost, ctForm, "grant_type=client_credentials", []string{"Authorization", basic(c.ID, "wrong")}, 401, CodeInvalidClient, true},
		{"basic unknown client", http.MethodPost, ctForm, "grant_type=client_credentials", []string{"Authorization", basic(unknownID, "wrong")}, 401, CodeInvalidClient, true},
		{"basic malformed", http.MethodPost, ctForm, "grant_type=client_credentials", []string{"Authorization", "Basic !!!"}, 401, CodeInvalidClient, true},
		{"bearer instead of basic", http.MethodPost, ctForm, "grant_type=client_credentials", []string{"Authorization", "Bearer x"}, 401, CodeInvalidClient, true},
		{"basic and body secret", http.MethodPost, ctForm, "grant_type=client_credentials&client_secret=" + c.Secret, []string{"Authorization", basic(c.ID, c.Secret)}, 400, CodeInvalidRequest, false},
		{"basic and other client_id", http.MethodPost, ctForm, "grant_type=client_credentials&client_id=other", []string{"Authorization", basic(c.ID, c.Secret)}, 400, CodeInvalidRequest, false},
		{"unknown user", http.MethodPost, ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "user-nobody"), nil, 400, CodeInvalidGrant, false},
		{"user of another partner", http.MethodPost, ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "user-b1"), nil, 400, CodeInvalidGrant, false},
		{"malformed user id", http.MethodPost, ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "a,b"), nil, 400, CodeInvalidRequest, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc
			var r reply
			if req.name == "secret in URL" {
				r = doURL(t, h, "/auth/token?client_secret=x", req.ctype, req.body)
			} else {
				r = do(t, h, req.method, req.ctype, req.body, req.hdr...)
			}
			if r.Status != tc.status || r.str("error") != tc.code || r.str("error_description") == "" || r.Body["access_token"] != nil {
				t.Fatalf("answer %d %s, want %d %s", r.Status, r.Raw, tc.status, tc.code)
			}
			if got := r.Header.Get("WWW-Authenticate"); (got != "") != tc.basic || tc.basic && !strings.HasPrefix(got, "Basic ") {
				t.Fatalf("WWW-Authenticate = %q", got)
			}
			if tc.status == 405 && r.Header.Get("Allow") != http.MethodPost {
				t.Fatalf("Allow = %q", r.Header.Get("Allow"))
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("Cache-Control")
			}
		})
	}
	// No client was locked out by the failures above (each id failed at most 5 times).
	if _, err := f.svc.IssuePartnerToken(context.Background(), c); err != nil && !errors.Is(err, ErrTooManyAttempts) {
		t.Fatal(err)
	}
}

func doURL(t *testing.T, h http.Handler, target, ctype, body string) reply {
	t.Helper()
	return do(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL, _ = url.Parse(target)
		h.ServeHTTP(w, r)
	}), http.MethodPost, ctype, body)
}

// Unknown client id and wrong secret must be indistinguishable.
func TestUnknownClientAndWrongSecretLookAlike(t *testing.T) {
	f := newFixture(t)
	c := f.client("partner-a")
	h := f.svc.TokenHandler()
	a := do(t, h, http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", c.ID, "client_secret", "ghcs_x"))
	b := do(t, h, http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", "00000000-0000-4000-8000-000000000001", "client_secret", "ghcs_x"))
	if a.Status != b.Status || a.Raw != b.Raw || a.Header.Get("WWW-Authenticate") != b.Header.Get("WWW-Authenticate") {
		t.Fatalf("answers differ:\n%d %s\n%d %s", a.Status, a.Raw, b.Status, b.Raw)
	}
	_, e1 := f.svc.IssuePartnerToken(context.Background(), ClientCredentials{ID: c.ID, Secret: "x"})
	_, e2 := f.svc.IssuePartnerToken(context.Background(), ClientCredentials{ID: "nobody", Secret: "x"})
	if e1 != ErrInvalidClient || e2 != ErrInvalidClient {
		t.Fatalf("errors %v / %v, want the very same ErrInvalidClient", e1, e2)
	}
}

func TestBruteForceLimit(t *testing.T) {
	f := newFixture(t, WithBruteForceLimit(5, time.Minute, 2*time.Minute))
	c := f.client("partner-a")
	h := f.svc.TokenHandler()
	try := func(id, secret string) reply {
		return do(t, h, http.MethodPost, ctJSON, jsonBody("grant_type", "client_credentials", "client_id", id, "client_secret", secret))
	}
	for _, id := range []string{c.ID, "00000000-0000-4000-8000-00000000dead"} { // known and unknown ids behave alike
		for i := range 5 {
			if r := try(id, "wrong"); r.Status != http.StatusUnauthorized {
				t.Fatalf("%s attempt %d: %d %s", id, i, r.Status, r.Raw)
			}
		}
		r := try(id, c.Secret)
		if r.Status != http.StatusTooManyRequests || r.str("error") != CodeInvalidClient || r.Header.Get("Retry-After") != "120" {
			t.Fatalf("after 5 failures: %d %v %s", r.Status, r.Header, r.Raw)
		}
	}
	_, err := f.svc.IssuePartnerToken(context.Background(), c)
	var tma *TooManyAttemptsError
	if !errors.As(err, &tma) || !errors.Is(err, ErrTooManyAttempts) || tma.RetryAfter != 2*time.Minute {
		t.Fatalf("Go call during cool-down: %v", err)
	}
	f.clock.advance(2*time.Minute + time.Second)
	if r := try(c.ID, c.Secret); r.Status != http.StatusOK {
		t.Fatalf("after cool-down: %d %s", r.Status, r.Raw)
	}

	// Spellings of one id in other cases share its count: on MySQL, whose
	// default collation ignores case, each would find the client.
	id := "00000000-0000-4000-8000-00000000beef"
	for i, spelling := range []string{id, strings.ToUpper(id), "00000000-0000-4000-8000-00000000BEEF", "00000000-0000-4000-8000-00000000Beef", "00000000-0000-4000-8000-00000000bEEf"} {
		if r := try(spelling, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("spelling %d: %d %s", i, r.Status, r.Raw)
		}
	}
	if r := try("00000000-0000-4000-8000-00000000BeEf", "wrong"); r.Status != http.StatusTooManyRequests {
		t.Fatalf("a sixth spelling after 5 failures: %d %s", r.Status, r.Raw)
	}
	// Success cleared the count: 4 new failures do not block.
	for range 4 {
		try(c.ID, "wrong")
	}
	if r := try(c.ID, c.Secret); r.Status != http.StatusOK {
		t.Fatalf("after 4 failures: %d %s", r.Status, r.Raw)
	}
	// Failures spread over more than the window do not add up.
	for range 4 {
		try(c.ID, "wrong")
	}
	f.clock.advance(time.Minute)
	for range 4 {
		try(c.ID, "wrong")
	}
	if r := try(c.ID, c.Secret); r.Status != http.StatusOK {
		t.Fatalf("failures across windows: %d %s", r.Status, r.Raw)
	}
}

func TestLimiterIsBounded(t *testing.T) {
	o := defaultOptions()
	o.limiterEntries = 100
	l := newLimiter(&o)
	now := time.Now()
	for i := range 10_000 {
		l.failed(strings.Repeat("x", i%50)+string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	if n := l.size(); n > 100 {
		t.Fatalf("limiter holds %d ids, cap 100", n)
	}
	// A blocked id survives eviction by ids that are not blocked.
	l = newLimiter(&o)
	for range 5 {
		l.failed("victim", now)
	}
	for i := range 1000 {
		l.failed(time.Duration(i).String(), now)
	}
	if _, ok := l.allow("victim", now); ok {
		t.Fatal("blocked id was evicted by a flood of other ids")
	}
}

func TestRevokeEndpoint(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.client("partner-a")
	a2 := f.client("partner-a")
	b := f.client("partner-b")
	h := f.svc.RevokeHandler()
	revoke := func(c ClientCredentials, token string) reply {
		return do(t, h, http.MethodPost, ctJSON, jsonBody("client_id", c.ID, "client_secret", c.Secret, "token", token))
	}

	tok := f.partnerToken(a)
	if _, err := f.svc.Authenticate(ctx, tok); err != nil { // cache it
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		r      func() reply
		status int
		code   string
	}{
		{"other partner", func() reply { return revoke(b, tok) }, 400, CodeInvalidGrant},
		{"wrong secret", func() reply { return revoke(ClientCredentials{ID: a.ID, Secret: "x"}, tok) }, 401, CodeInvalidClient},
		{"garbage token", func() reply { return revoke(a, "garbage") }, 400, CodeInvalidGrant},
		{"no token", func() reply { return revoke(a, "") }, 400, CodeInvalidRequest},
		{"unknown field", func() reply {
			return do(t, h, http.MethodPost, ctJSON, jsonBody("client_id", a.ID, "client_secret", a.Secret, "token", tok, "grant_type", "x"))
		}, 400, CodeInvalidRequest},
		{"GET", func() reply { return do(t, h, http.MethodGet, ctJSON, "{}") }, 405, CodeInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r()
			if r.Status != tc.status || r.str("error") != tc.code {
				t.Fatalf("answer %d %s, want %d %s", r.Status, r.Raw, tc.status, tc.code)
			}
			if _, err := f.svc.Authenticate(ctx, tok); err != nil {
				t.Fatalf("token no longer valid after a refused revocation: %v", err)
			}
		})
	}

	// Another client of the same partner may revoke; form bodies work too.
	r := do(t, h, http.MethodPost, ctForm, url.Values{"token": {tok}}.Encode(), "Authorization", basic(a2.ID, a2.Secret))
	if r.Status != http.StatusOK || r.str("message") == "" {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrRevokedToken) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after revocation: %v", err)
	}
	if r := revoke(a, tok); r.Status != http.StatusOK { // idempotent
		t.Fatalf("second revoke: %d %s", r.Status, r.Raw)
	}
	// An expired token needs no revocation.
	old := f.partnerToken(a)
	f.clock.advance(DefaultTokenTTL + time.Minute)
	if r := revoke(a, old); r.Status != http.StatusOK {
		t.Fatalf("expired: %d %s", r.Status, r.Raw)
	}
}

// A client revokes, on replica B, a token that replica A signed with a key
// it has just rotated in, right after B spent its rate-limited reload on a
// token of an unknown key: B reloads for the revocation, which takes effect.
func TestRevokeRightAfterRotationElsewhere(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	b := f.replica()
	c := f.client("partner-a")
	junk := forge(t, jwt.SigningMethodHS256, "k-junk", []byte(strings.Repeat("j", 32)), jwt.RegisteredClaims{Issuer: DefaultIssuer})
	if _, err := b.Authenticate(ctx, junk); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("junk kid: %v", err)
	}
	if _, err := f.svc.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	tok := f.partnerToken(c)
	r := do(t, b.RevokeHandler(), http.MethodPost, ctJSON, jsonBody("client_id", c.ID, "client_secret", c.Secret, "token", tok))
	if r.Status != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", r.Status, r.Raw)
	}
	for name, s := range map[string]*Service{"A": f.svc, "B": b} {
		waitFor(t, 5*time.Second, func() bool {
			_, err := s.Authenticate(ctx, tok)
			return errors.Is(err, ErrRevokedToken)
		})
		t.Logf("%s refuses the revoked token", name)
	}
}

// keyFailStore fails reading the signing keys while fail is set, and
// panics while panics is.
type keyFailStore struct {
	Store
	fail, panics atomic.Bool
}

func (s *keyFailStore) SigningKeys(ctx context.Context) ([]KeyRecord, error) {
	if s.panics.Load() {
		panic("store bug")
	}
	if s.fail.Load() {
		return nil, errors.New("database down")
	}
	return s.Store.SigningKeys(ctx)
}

// When the keys cannot be reloaded for a token of an unknown key, the
// revocation endpoint answers 503 server_error, not that the token is
// invalid: the client should retry, not give up on the revocation.
func TestRevokeWhenKeysCannotBeReloaded(t *testing.T) {
	ctx := context.Background()
	st := &keyFailStore{Store: NewMemoryStore()}
	a, err := New(ctx, st.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := a.CreateClient(ctx, "partner-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := a.IssuePartnerToken(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	if err := b.Revoke(ctx, tok.AccessToken); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Revoke: %v, want ErrUnavailable", err)
	}
	r := do(t, b.RevokeHandler(), http.MethodPost, ctJSON, jsonBody("client_id", c.ID, "client_secret", c.Secret, "token", tok.AccessToken))
	if r.Status != http.StatusServiceUnavailable || r.str("error") != CodeServerError {
		t.Fatalf("revoke endpoint: %d %s, want 503 %s", r.Status, r.Raw, CodeServerError)
	}
	st.fail.Store(false)
	r = do(t, b.RevokeHandler(), http.MethodPost, ctJSON, jsonBody("client_id", c.ID, "client_secret", c.Secret, "token", tok.AccessToken))
	if r.Status != http.StatusOK {
		t.Fatalf("revoke endpoint once the store is back: %d %s", r.Status, r.Raw)
	}
	if _, err := b.Authenticate(ctx, tok.AccessToken); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("after revocation: %v", err)
	}
}

func TestErrorWriterReplaceable(t *testing.T) {
	var got *OAuthError
	f := newFixture(t, WithErrorWriter(func(w http.ResponseWriter, _ *http.Request, e *OAuthError) {
		got = e
		w.WriteHeader(e.Status)
		_, _ = w.Write([]byte(`{"error":{"message":"` + e.Description + `"}}`))
	}))
	r := do(t, f.svc.TokenHandler(), http.MethodPost, ctJSON, jsonBody("grant_type", "x", "client_id", "a", "client_secret", "b"))
	if r.Status != 400 || got == nil || got.Code != CodeUnsupportedGrantType || r.Body["error"].(map[string]any)["message"] == "" {
		t.Fatalf("%d %s %+v", r.Status, r.Raw, got)
	}
}
