package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

func TestClientSecretStoredHashed(t *testing.T) {
	ctx := context.Background()
	for name, opts := range map[string][]Option{"sha256": nil, "pepper": {WithSecretPepper([]byte("pepper"))}} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, opts...)
			c := f.client("partner-a")
			if len(c.Secret) < 40 || !strings.HasPrefix(c.Secret, secretPrefix) || len(c.ID) != 36 {
				t.Fatalf("credentials %q / %d-byte secret", c.ID, len(c.Secret))
			}
			rec, err := f.store.Client(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(rec.SecretHash), c.Secret) || len(rec.SecretHash) != 32 {
				t.Fatal("secret stored in clear")
			}
			for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
				if strings.Contains(s, c.Secret) {
					t.Fatalf("formatting shows the secret: %s", s)
				}
			}
			var sb strings.Builder
			slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "creds", c)
			if strings.Contains(sb.String(), c.Secret) {
				t.Fatal("slog shows the secret")
			}
		})
	}
	// A pepper changes the hash: the same store read with another pepper refuses the secret.
	f := newFixture(t, WithSecretPepper([]byte("one")))
	c := f.client("partner-a")
	other := f.replica(WithSecretPepper([]byte("two")))
	if _, err := other.IssuePartnerToken(ctx, c); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("other pepper: %v", err)
	}
}

func TestCreateClientValidation(t *testing.T) {
	f := newFixture(t)
	for name, call := range map[string]func() error{
		"bad partner": func() error { _, err := f.svc.CreateClient(context.Background(), "a b"); return err },
		"empty apis":  func() error { _, err := f.svc.CreateClient(context.Background(), "p", WithAPIs()); return err },
		"bad api":     func() error { _, err := f.svc.CreateClient(context.Background(), "p", WithAPIs("Payable")); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := f.client("partner-a", WithAPIs("receivable", "payable", "payable"))
	rec, _ := f.store.Client(context.Background(), c.ID)
	if fmt.Sprint(rec.APIs) != "[payable receivable]" {
		t.Fatalf("APIs %v", rec.APIs)
	}
}

func TestRotateClientSecret(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := f.client("partner-a")
	tok := f.partnerToken(c)

	next, err := f.svc.RotateClientSecret(ctx, c.ID, f.clock.now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if next.ID != c.ID || next.Secret == c.Secret {
		t.Fatalf("rotated %+v", next)
	}
	for _, s := range []ClientCredentials{c, next} {
		if _, err := f.svc.IssuePartnerToken(ctx, s); err != nil {
			t.Fatalf("before cut-off: %v", err)
		}
	}
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("issued token after rotation: %v", err)
	}
	f.clock.advance(time.Hour)
	if _, err := f.svc.IssuePartnerToken(ctx, c); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("old secret after cut-off: %v", err)
	}
	if _, err := f.svc.IssuePartnerToken(ctx, next); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	// Rotation without grace ends the old secret at once.
	third, err := f.svc.RotateClientSecret(ctx, c.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.IssuePartnerToken(ctx, next); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("previous secret without grace: %v", err)
	}
	if _, err := f.svc.IssuePartnerToken(ctx, third); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RotateClientSecret(ctx, "nobody", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
}

func TestDeleteClient(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other := f.replica()
	c := f.client("partner-a")
	keep := f.client("partner-a")
	tok := f.partnerToken(c)
	kept := f.partnerToken(keep)
	if _, err := other.Authenticate(ctx, tok); err != nil { // cached on the replica
		t.Fatal(err)
	}
	if err := f.svc.DeleteClient(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.IssuePartnerToken(ctx, c); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("deleted client: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("token of deleted client: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool {
		_, err := other.Authenticate(ctx, tok)
		return errors.Is(err, ErrRevokedToken)
	})
	if _, err := other.Authenticate(ctx, kept); err != nil {
		t.Fatalf("token of another client of the partner: %v", err)
	}
	if err := f.svc.DeleteClient(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestEntityUserTokenDirectory(t *testing.T) {
	ctx := context.Background()
	failing := DirectoryFunc(func(context.Context, model.UserID) (model.EntityID, model.PartnerID, error) {
		return "", "", errors.New("database down")
	})
	st := NewMemoryStore()
	s, err := New(ctx, st, failing)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := s.CreateClient(ctx, "partner-a")
	if _, err := s.IssueEntityUserToken(ctx, c, "user-1"); err == nil || errors.Is(err, ErrUnknownUser) {
		t.Fatalf("directory failure: %v", err)
	}
	r := do(t, s.TokenHandler(), "POST", ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "user-1"))
	if r.Status != 500 || r.str("error") != CodeServerError || strings.Contains(r.Raw, "database") {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	// Without a directory the grant is not offered.
	s2, _ := New(ctx, st, nil)
	defer s2.Close()
	r = do(t, s2.TokenHandler(), "POST", ctJSON, jsonBody("grant_type", "entity_user", "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", "user-1"))
	if r.Status != 400 || r.str("error") != CodeUnsupportedGrantType {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
}

// undeletableStore fails deleting clients: DeleteClient then leaves the
// client revoked but stored.
type undeletableStore struct{ Store }

func (undeletableStore) DeleteClient(context.Context, string) error {
	return errors.New("database down")
}

// A client deleted (or only revoked, its deletion having failed) while the
// directory answers an entity_user grant slowly gets no token: the token
// would outlive the client's revocation, which lasts one token lifetime
// from the deletion.
func TestNoTokenForClientDeletedDuringIssue(t *testing.T) {
	for _, deletion := range []string{"deleted", "revoked only"} {
		t.Run(deletion, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			st := NewMemoryStore()
			opts := []Option{WithNow(clk.now), WithRevocationPoll(5 * time.Millisecond)}
			var s, deleter *Service
			var victim string
			dir := DirectoryFunc(func(ctx context.Context, u model.UserID) (model.EntityID, model.PartnerID, error) {
				err := deleter.DeleteClient(ctx, victim)
				if deletion == "deleted" && err != nil {
					t.Errorf("DeleteClient: %v", err)
				}
				if deletion != "deleted" { // s learns of the revocation by polling
					waitFor(t, 5*time.Second, func() bool { return s.revoked.has(&Principal{ClientID: victim}) })
				}
				clk.advance(DefaultTokenTTL / 2) // slow
				return defaultDir.LookupEntityUser(ctx, u)
			})
			var err error
			if s, err = New(ctx, st, dir, opts...); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var dst Store = st
			if deletion != "deleted" {
				dst = undeletableStore{st}
			}
			if deleter, err = New(ctx, dst, nil, opts...); err != nil {
				t.Fatal(err)
			}
			defer deleter.Close()
			c, err := s.CreateClient(ctx, "partner-a")
			if err != nil {
				t.Fatal(err)
			}
			victim = c.ID
			tok, err := s.IssueEntityUserToken(ctx, c, "user-1")
			if !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("token issued to a client %s meanwhile: %v, %+v", deletion, err, tok.Principal)
			}
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}
