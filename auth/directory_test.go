package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// errorCounter is a slog.Handler that counts the records at Error level or
// above and drops the rest.
type errorCounter struct{ n atomic.Int64 }

func (c *errorCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *errorCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		c.n.Add(1)
	}
	return nil
}
func (c *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *errorCounter) WithGroup(string) slog.Handler      { return c }

// The policy engine as the Directory: an unknown user and a user of another
// partner's entity get the same 400 invalid_grant answer (no existence oracle,
// no 500, nothing logged at Error level); a user of the client's partner gets
// a token.
func TestTokenEndpointWithPolicyEngine(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx) // no store: in memory
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(eng.CreateEntity(ctx, "partner-a", "acme"))
	must(eng.CreateEntity(ctx, "partner-b", "globex"))
	must(eng.AddUser(ctx, "acme", "alice", ""))
	must(eng.AddUser(ctx, "globex", "bob", ""))
	must(eng.AddUser(ctx, "acme", "carol", ""))
	if err := eng.RemoveUser(ctx, "acme", "carol"); err != nil {
		t.Fatal(err)
	}

	logs := &errorCounter{}
	clk := newClock()
	svc, err := New(ctx, NewMemoryStore(), eng, WithNow(clk.now), WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	c, err := svc.CreateClient(ctx, "partner-a")
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	h := svc.TokenHandler()

	var refusal string // the body of the first refusal; every refusal must match it
	cases := []struct {
		name   string
		user   string
		ok     bool
		entity model.EntityID
	}{
		{"user of the client's partner", "alice", true, "acme"},
		{"unknown user", "nobody", false, ""},
		{"user of another partner", "bob", false, ""},
		{"removed user", "carol", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := logs.n.Load()
			r := do(t, h, http.MethodPost, ctJSON, jsonBody("grant_type", GrantEntityUser, "client_id", c.ID, "client_secret", c.Secret, "entity_user_id", tc.user))
			if n := logs.n.Load() - before; n != 0 {
				t.Errorf("%d records logged at Error level", n)
			}
			_, gerr := svc.IssueEntityUserToken(ctx, c, model.UserID(tc.user))
			if tc.ok {
				if r.Status != http.StatusOK || r.str("access_token") == "" || gerr != nil {
					t.Fatalf("answer %d %s; IssueEntityUserToken: %v", r.Status, r.Raw, gerr)
				}
				p, err := svc.Authenticate(ctx, r.str("access_token"))
				if err != nil || p.Kind != KindEntityUser || p.UserID != model.UserID(tc.user) || p.EntityID != tc.entity || p.PartnerID != "partner-a" {
					t.Fatalf("Authenticate: %+v, %v", p, err)
				}
				return
			}
			if r.Status != http.StatusBadRequest || r.str("error") != CodeInvalidGrant || len(r.Body) != 2 {
				t.Fatalf("answer %d %s, want 400 invalid_grant", r.Status, r.Raw)
			}
			if refusal == "" {
				refusal = r.Raw
			} else if r.Raw != refusal {
				t.Fatalf("answer %s differs from the other refusals' %s", r.Raw, refusal)
			}
			if !errors.Is(gerr, ErrUnknownUser) || !errors.Is(gerr, model.ErrUnknownUser) || errors.Is(gerr, policy.ErrNotFound) {
				t.Fatalf("IssueEntityUserToken: %v, want exactly ErrUnknownUser", gerr)
			}
		})
	}

	// The engine's own error wraps the sentinel, seen from either package.
	_, _, err = eng.LookupEntityUser(ctx, "nobody")
	if !errors.Is(err, ErrUnknownUser) || !errors.Is(err, model.ErrUnknownUser) || !errors.Is(err, policy.ErrNotFound) {
		t.Fatalf("LookupEntityUser(unknown): %v", err)
	}
}
