package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/golang-jwt/jwt/v5"
)

func TestIssueAndAuthenticate(t *testing.T) {
	for _, alg := range []Algorithm{HS256, EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			f := newFixture(t, WithSigningAlgorithm(alg), WithTokenTTL(10*time.Minute))
			ctx := context.Background()
			c := f.client("partner-a", WithAPIs("payable", "receivable"))

			tok, err := f.svc.IssuePartnerToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.ExpiresIn != 600 || !tok.ExpiresAt.Equal(f.clock.now().Add(10*time.Minute)) {
				t.Fatalf("token = %+v", tok)
			}
			p, err := f.svc.Authenticate(ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != KindPartner || p.PartnerID != "partner-a" || p.ClientID != c.ID || p.TokenID == "" ||
				p.EntityID != "" || p.UserID != "" || !p.ExpiresAt.Equal(tok.ExpiresAt) {
				t.Fatalf("principal = %+v", p)
			}
			if p.Subject() != model.Partner("partner-a") {
				t.Fatalf("subject = %v", p.Subject())
			}
			if !p.AllowsAPI("payable") || p.AllowsAPI("entity") {
				t.Fatalf("APIs = %v", p.APIs)
			}

			ut, err := f.svc.IssueEntityUserToken(ctx, c, "user-1")
			if err != nil {
				t.Fatal(err)
			}
			up, err := f.svc.Authenticate(ctx, ut.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if up.Kind != KindEntityUser || up.UserID != "user-1" || up.EntityID != "entity-1" || up.PartnerID != "partner-a" ||
				up.Subject() != model.User("user-1") || up.TokenID == p.TokenID {
				t.Fatalf("principal = %+v", up)
			}
			if hdr := strings.SplitN(tok.AccessToken, ".", 2)[0]; hdr == "" {
				t.Fatal("no header")
			}
			tt, _, _ := jwt.NewParser().ParseUnverified(tok.AccessToken, jwt.MapClaims{})
			if tt.Header["alg"] != string(alg) || tt.Header["kid"] == "" {
				t.Fatalf("header = %v", tt.Header)
			}
			for _, k := range []string{"iss", "sub", "exp", "iat", "nbf", "jti", "kind", "partner_id", "client_id", "apis"} {
				if _, ok := tt.Claims.(jwt.MapClaims)[k]; !ok {
					t.Errorf("claim %s missing", k)
				}
			}
		})
	}
}

func TestPrincipalNoAPIsAllowsAll(t *testing.T) {
	f := newFixture(t)
	p, err := f.svc.Authenticate(context.Background(), f.partnerToken(f.client("partner-a")))
	if err != nil {
		t.Fatal(err)
	}
	if p.APIs != nil || !p.AllowsAPI("anything") {
		t.Fatalf("APIs = %#v", p.APIs)
	}
	if (Principal{APIs: []model.ObjectType{}}).AllowsAPI("payable") {
		t.Fatal("an empty non-nil list must allow nothing")
	}
	if KindPartner.String() != "partner" || KindEntityUser.String() != "entity_user" || Kind(9).String() != "unknown" {
		t.Fatal("Kind.String")
	}
}

// An empty API list (allows none) survives the token: it does not come back
// as nil (all). CreateClient refuses an empty WithAPIs, but a store may hold
// one. A client without restriction gets no apis claim at all.
func TestEmptyAPIListSurvivesToken(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	const secret = "ghcs_empty-list-client"
	rec := ClientRecord{ID: newClientID(), PartnerID: "partner-a", SecretHash: f.svc.hashSecret(secret), APIs: []model.ObjectType{}, CreatedAt: f.clock.now()}
	if err := f.store.CreateClient(ctx, rec); err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.IssuePartnerToken(ctx, ClientCredentials{ID: rec.ID, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Principal.APIs == nil {
		t.Fatal("issued principal: empty list became nil")
	}
	for name, s := range map[string]*Service{"issuer": f.svc, "replica": f.replica()} {
		p, err := s.Authenticate(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if p.APIs == nil || len(p.APIs) != 0 || p.AllowsAPI("payable") {
			t.Fatalf("%s: APIs = %#v, want an empty list that allows nothing", name, p.APIs)
		}
	}
	tt, _, _ := jwt.NewParser().ParseUnverified(tok.AccessToken, jwt.MapClaims{})
	if apis, ok := tt.Claims.(jwt.MapClaims)["apis"].([]any); !ok || len(apis) != 0 {
		t.Fatalf("apis claim = %#v, want []", tt.Claims.(jwt.MapClaims)["apis"])
	}
	all, _, _ := jwt.NewParser().ParseUnverified(f.partnerToken(f.client("partner-a")), jwt.MapClaims{})
	if v, ok := all.Claims.(jwt.MapClaims)["apis"]; ok {
		t.Fatalf("unrestricted client: apis claim %#v present", v)
	}
}

// forge signs claims with the given method, kid and key.
func forge(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticateRefusals(t *testing.T) {
	ctx := context.Background()
	hs := newFixture(t)
	ed := newFixture(t, WithSigningAlgorithm(EdDSA))
	hsKey := hs.svc.keys.Load().signing
	edKey := ed.svc.keys.Load().signing
	now := hs.clock.now()

	good := func() *claims {
		return &claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: DefaultIssuer, Subject: "partner:partner-a", ID: "jti-1",
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			},
			Kind: "partner", PartnerID: "partner-a", ClientID: "client-1",
		}
	}
	with := func(mut func(*claims)) *claims { c := good(); mut(c); return c }
	hsSign := func(c jwt.Claims) string { return forge(t, jwt.SigningMethodHS256, hsKey.kid, hsKey.sign, c) }

	// Sanity: the forged good token is accepted, so each refusal below is due to its one change.
	if _, err := hs.svc.Authenticate(ctx, hsSign(good())); err != nil {
		t.Fatalf("good forged token refused: %v", err)
	}
	if _, err := ed.svc.Authenticate(ctx, forge(t, jwt.SigningMethodEdDSA, edKey.kid, edKey.sign, good())); err != nil {
		t.Fatalf("good forged EdDSA token refused: %v", err)
	}

	valid := hsSign(good())
	parts := strings.Split(valid, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	none := forge(t, jwt.SigningMethodNone, hsKey.kid, jwt.UnsafeAllowNoneSignatureType, good())
	// Algorithm confusion: an HS256 token "signed" with the EdDSA public key, naming the EdDSA kid.
	confused := forge(t, jwt.SigningMethodHS256, edKey.kid, []byte(edKey.verify.(ed25519.PublicKey)), good())
	_, otherPriv, _ := ed25519.GenerateKey(nil)

	cases := []struct {
		name  string
		svc   *Service
		token string
		want  error
	}{
		{"empty", hs.svc, "", ErrInvalidToken},
		{"garbage", hs.svc, "not a token", ErrInvalidToken},
		{"three dots", hs.svc, "a.b.c", ErrInvalidToken},
		{"too long", hs.svc, valid + strings.Repeat("A", maxTokenLen), ErrInvalidToken},
		{"alg none", hs.svc, none, ErrInvalidToken},
		{"alg none unsigned", hs.svc, parts[0] + "." + parts[1] + ".", ErrInvalidToken},
		{"HS256 with EdDSA public key", ed.svc, confused, ErrInvalidToken},
		{"EdDSA token on HS256 key id", hs.svc, forge(t, jwt.SigningMethodEdDSA, hsKey.kid, otherPriv, good()), ErrInvalidToken},
		{"wrong issuer", hs.svc, hsSign(with(func(c *claims) { c.Issuer = "evil" })), ErrInvalidToken},
		{"no issuer", hs.svc, hsSign(with(func(c *claims) { c.Issuer = "" })), ErrInvalidToken},
		{"bad signature", hs.svc, parts[0] + "." + parts[1] + "." + flip(parts[2]), ErrInvalidToken},
		{"tampered payload", hs.svc, parts[0] + "." + flip(parts[1]) + "." + parts[2], ErrInvalidToken},
		{"padded signature", hs.svc, valid + "=", ErrInvalidToken},
		{"other HMAC key", hs.svc, forge(t, jwt.SigningMethodHS256, hsKey.kid, []byte(strings.Repeat("k", 32)), good()), ErrInvalidToken},
		{"unknown kid", hs.svc, forge(t, jwt.SigningMethodHS256, "k-unknown", hsKey.sign, good()), ErrInvalidToken},
		{"no kid", hs.svc, forge(t, jwt.SigningMethodHS256, "", hsKey.sign, good()), ErrInvalidToken},
		{"HS384", hs.svc, forge(t, jwt.SigningMethodHS384, hsKey.kid, hsKey.sign, good()), ErrInvalidToken},
		{"expired", hs.svc, hsSign(with(func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-DefaultLeeway - time.Second)) })), ErrExpiredToken},
		{"not yet valid", hs.svc, hsSign(with(func(c *claims) { c.NotBefore = jwt.NewNumericDate(now.Add(DefaultLeeway + 2*time.Second)) })), ErrInvalidToken},
		{"issued in the future", hs.svc, hsSign(with(func(c *claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })), ErrInvalidToken},
		{"no exp", hs.svc, hsSign(with(func(c *claims) { c.ExpiresAt = nil })), ErrInvalidToken},
		{"no nbf", hs.svc, hsSign(with(func(c *claims) { c.NotBefore = nil })), ErrInvalidToken},
		{"no iat", hs.svc, hsSign(with(func(c *claims) { c.IssuedAt = nil })), ErrInvalidToken},
		{"no jti", hs.svc, hsSign(with(func(c *claims) { c.ID = "" })), ErrInvalidToken},
		{"unknown kind", hs.svc, hsSign(with(func(c *claims) { c.Kind = "admin" })), ErrInvalidToken},
		{"sub mismatch", hs.svc, hsSign(with(func(c *claims) { c.Subject = "partner:partner-b" })), ErrInvalidToken},
		{"partner token with user", hs.svc, hsSign(with(func(c *claims) { c.EntityUserID = "user-1" })), ErrInvalidToken},
		{"user token without entity", hs.svc, hsSign(with(func(c *claims) { c.Kind, c.Subject, c.EntityUserID = "entity_user", "user:user-1", "user-1" })), ErrInvalidToken},
		{"bad partner id", hs.svc, hsSign(with(func(c *claims) { c.PartnerID, c.Subject = "a b", "partner:a b" })), ErrInvalidToken},
		{"no client id", hs.svc, hsSign(with(func(c *claims) { c.ClientID = "" })), ErrInvalidToken},
		{"bad api name", hs.svc, hsSign(with(func(c *claims) { c.APIs = &[]string{"Payable!"} })), ErrInvalidToken},
		{"map claims with wrong types", hs.svc, forge(t, jwt.SigningMethodHS256, hsKey.kid, hsKey.sign, jwt.MapClaims{"iss": DefaultIssuer, "exp": "soon", "kind": 1}), ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.svc.Authenticate(ctx, tc.token)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != ErrExpiredToken && errors.Is(err, ErrExpiredToken) {
				t.Fatalf("err = %v must not be ErrExpiredToken", err)
			}
			if p.Kind != 0 || p.PartnerID != "" || p.TokenID != "" {
				t.Fatalf("principal %+v returned with an error", p)
			}
		})
	}
}

func TestLeewayAndExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, WithLeeway(3*time.Second), WithTokenTTL(time.Minute))
	tok := f.partnerToken(f.client("partner-a"))
	if _, err := f.svc.Authenticate(ctx, tok); err != nil { // now cached
		t.Fatal(err)
	}
	f.clock.advance(time.Minute + 2*time.Second) // past exp, within leeway
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	f.clock.advance(2 * time.Second) // past exp + leeway
	if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("err = %v, want ErrExpiredToken", err)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, WithTokenTTL(time.Minute))
	other := f.replica(WithTokenTTL(time.Minute))
	c := f.client("partner-a")
	old := f.partnerToken(c)
	oldKID := f.svc.keys.Load().signing.kid

	kid, err := f.svc.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid == oldKID || f.svc.keys.Load().signing.kid != kid {
		t.Fatalf("signing kid = %s, want new %s", f.svc.keys.Load().signing.kid, kid)
	}
	fresh := f.partnerToken(c)
	for name, s := range map[string]*Service{"rotating": f.svc, "replica": other} {
		for _, tok := range []string{old, fresh} {
			if _, err := s.Authenticate(ctx, tok); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if other.keys.Load().signing.kid != kid {
		t.Fatal("replica did not pick up the new key on an unknown kid")
	}
	recs, _ := f.store.SigningKeys(ctx)
	if len(recs) != 2 {
		t.Fatalf("history has %d keys, want 2", len(recs))
	}

	// Once the old key's tokens have all expired, the old key is dropped.
	f.clock.advance(time.Minute + DefaultLeeway + 2*keyReloadEvery + time.Second)
	if err := f.svc.loadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.svc.keys.Load().byKID[oldKID]; ok {
		t.Fatal("retired key still verifies after its cut-off")
	}
	if _, err := parseWith(f.svc, old); !errors.Is(err, errUnknownKID) {
		t.Fatalf("old token: %v, want unknown kid", err)
	}
}

// A retired key stops verifying at its cut-off even when the keys have not
// been reloaded since (the store may be unreachable): a token it signed that
// has not expired yet is refused.
func TestRetiredKeyRefusedAfterCutoff(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, WithTokenTTL(time.Hour))
	tok := f.partnerToken(f.client("partner-a"))
	now := f.clock.now()
	next, err := generateKey(HS256, now.Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddSigningKey(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RetireSigningKeys(ctx, next.ID, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.loadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("before the cut-off: %v", err)
	}
	f.clock.advance(time.Minute)
	if _, err := parseWith(f.svc, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("parse at the cut-off: %v, want ErrInvalidToken", err)
	}
	if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Authenticate at the cut-off: %v, want ErrInvalidToken", err)
	}
}

// When the store marks every key retired (as "retire all but mine" from
// two replicas of an older version can leave it), a reload does not keep
// signing with the retired key held in memory: it makes a new key.
func TestNoSigningWithRetiredKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client("partner-a")
	old := f.partnerToken(c)
	oldKID := f.svc.keys.Load().signing.kid
	now := f.clock.now()
	st := f.store.(*MemoryStore)
	st.mu.Lock()
	for id, k := range st.keys {
		k.RetiredAt, k.VerifyUntil = now, now.Add(time.Hour)
		st.keys[id] = k
	}
	st.mu.Unlock()
	if err := f.svc.loadKeys(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	tok, err := f.svc.IssuePartnerToken(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	recs, _ := f.store.SigningKeys(ctx)
	for _, r := range recs {
		if r.ID == kid && !r.RetiredAt.IsZero() {
			t.Fatalf("signed with %s, which the store marks retired (old key %s)", kid, oldKID)
		}
	}
	for _, tk := range []string{old, tok.AccessToken} {
		if _, err := f.svc.Authenticate(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
}

func parseWith(s *Service, tok string) (Principal, error) {
	p, _, err := parse(s.keys.Load(), tok)
	return p, err
}

func TestKeyEncryptionAtRest(t *testing.T) {
	ctx := context.Background()
	kek := []byte(strings.Repeat("K", 32))
	st := NewMemoryStore()
	s, err := New(ctx, st, nil, WithKeyEncryption(kek))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, _ := st.SigningKeys(ctx)
	if len(recs) != 1 || !recs[0].Sealed || string(recs[0].Private) == string(s.keys.Load().signing.sign.([]byte)) {
		t.Fatal("key material is not sealed")
	}
	c, _ := s.CreateClient(ctx, "partner-a")
	tok, err := s.IssuePartnerToken(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(ctx, st, nil, WithKeyEncryption(kek))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]Option{"no kek": nil, "wrong kek": {WithKeyEncryption([]byte(strings.Repeat("X", 32)))}} {
		if s3, err := New(ctx, st, nil, opts...); err == nil {
			s3.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestNewRejectsNilDependencies: a nil store, or a typed nil store or
// directory (which would panic at the first call), is refused with
// ErrInvalidRequest; a nil Directory interface means no directory.
func TestNewRejectsNilDependencies(t *testing.T) {
	ctx := context.Background()
	var gs *GormStore
	var eng *policy.Engine
	for name, tc := range map[string]struct {
		st  Store
		dir Directory
	}{
		"nil store":       {nil, nil},
		"typed nil store": {gs, nil},
		"typed nil dir":   {NewMemoryStore(), eng},
	} {
		if s, err := New(ctx, tc.st, tc.dir); !errors.Is(err, ErrInvalidRequest) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	s, err := New(ctx, NewMemoryStore(), nil)
	if err != nil {
		t.Fatalf("no directory: %v", err)
	}
	s.Close()
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"ttl":       WithTokenTTL(0),
		"issuer":    WithIssuer(""),
		"leeway":    WithLeeway(time.Hour),
		"alg":       WithSigningAlgorithm("RS256"),
		"cache":     WithCacheSize(-1),
		"poll":      WithRevocationPoll(0),
		"stale":     WithMaxRevocationStaleness(time.Millisecond),
		"kek":       WithKeyEncryption([]byte("short")),
		"empty kek": WithKeyEncryption([]byte{}), // an unset environment variable: not "no encryption"
		"nil kek":   WithKeyEncryption(nil),
		"pepper":    WithSecretPepper([]byte{}),
		"limit":     WithBruteForceLimit(0, time.Minute, time.Minute),
		"body":      WithMaxBodyBytes(10),
		"nil clock": WithNow(nil),
	} {
		if s, err := New(context.Background(), NewMemoryStore(), nil, opt); !errors.Is(err, ErrInvalidRequest) {
			if s != nil {
				s.Close()
			}
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
