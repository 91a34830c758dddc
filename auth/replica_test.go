package auth

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// Two services on one database, as two replicas: a revocation, a client
// deletion and a key rotation on one are seen by the other.
func TestReplicas(t *testing.T) {
	for _, b := range append([]string{"memory"}, sqlBackends...) {
		t.Run(b, func(t *testing.T) {
			ctx := context.Background()
			var stA, stB Store
			if b == "memory" {
				stA = NewMemoryStore()
				stB = stA
			} else {
				open := dbOpener(t, b)
				prefix := testPrefix()
				stA = gormStore(t, open(), prefix)
				stB, _ = NewGormStore(open(), WithTablePrefix(prefix)) // its own connection pool
			}
			const poll = 50 * time.Millisecond
			start := func(st Store) *Service {
				s, err := New(ctx, st, defaultDir, WithRevocationPoll(poll))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			a, bsvc := start(stA), start(stB)
			if a.keys.Load().signing.kid != bsvc.keys.Load().signing.kid {
				t.Fatal("replicas sign with different keys")
			}
			c, err := a.CreateClient(ctx, "partner-a")
			if err != nil {
				t.Fatal(err)
			}
			// The client made on A works on B.
			tokB, err := bsvc.IssuePartnerToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := a.IssueEntityUserToken(ctx, c, "user-1")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []*Service{a, bsvc} { // verified, hence cached, on both
				for _, tk := range []string{tok.AccessToken, tokB.AccessToken} {
					if _, err := s.Authenticate(ctx, tk); err != nil {
						t.Fatal(err)
					}
				}
			}

			// Revoke through A's endpoint: B refuses within a bound.
			r := do(t, a.RevokeHandler(), http.MethodPost, ctJSON, jsonBody("client_id", c.ID, "client_secret", c.Secret, "token", tok.AccessToken))
			if r.Status != http.StatusOK {
				t.Fatalf("revoke: %d %s", r.Status, r.Raw)
			}
			revokedAt := time.Now()
			if _, err := a.Authenticate(ctx, tok.AccessToken); !errors.Is(err, ErrRevokedToken) {
				t.Fatalf("A: %v", err)
			}
			waitFor(t, 5*time.Second, func() bool {
				_, err := bsvc.Authenticate(ctx, tok.AccessToken)
				return errors.Is(err, ErrRevokedToken)
			})
			t.Logf("%s: revocation seen by the other replica after %s (poll %s)", b, time.Since(revokedAt).Round(time.Millisecond), poll)
			if _, err := bsvc.Authenticate(ctx, tokB.AccessToken); err != nil {
				t.Fatalf("other token refused: %v", err)
			}

			// A key rotated on A: tokens A signs verify on B.
			if _, err := a.RotateSigningKey(ctx); err != nil {
				t.Fatal(err)
			}
			fresh, err := a.IssuePartnerToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bsvc.Authenticate(ctx, fresh.AccessToken); err != nil {
				t.Fatalf("B on the rotated key: %v", err)
			}
			if _, err := bsvc.Authenticate(ctx, tokB.AccessToken); err != nil {
				t.Fatalf("B on the retired key: %v", err)
			}

			// A client deleted on B: A refuses its tokens and its secret.
			if err := bsvc.DeleteClient(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, func() bool {
				_, err := a.Authenticate(ctx, fresh.AccessToken)
				return errors.Is(err, ErrRevokedToken)
			})
			if _, err := a.IssuePartnerToken(ctx, c); !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("deleted client on A: %v", err)
			}
		})
	}
}

// A replica started after a revocation knows it from the start.
func TestRevocationLoadedAtStart(t *testing.T) {
	f := newFixture(t)
	tok := f.partnerToken(f.client("partner-a"))
	if err := f.svc.Revoke(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	late := f.replica()
	if _, err := late.Authenticate(context.Background(), tok); !errors.Is(err, ErrRevokedToken) {
		t.Fatalf("late replica: %v", err)
	}
}

// failingStore fails revocation reads on demand.
type failingStore struct {
	Store
	fail chan bool
}

func (s *failingStore) Revocations(ctx context.Context, after int64, t time.Time, n int) ([]Revocation, error) {
	select {
	case f := <-s.fail:
		if f {
			return nil, errors.New("database down")
		}
	default:
	}
	return s.Store.Revocations(ctx, after, t, n)
}

// When revocations cannot be read for longer than the bound, Authenticate
// fails closed, and recovers when reads succeed again.
func TestFailClosedWhenRevocationsStale(t *testing.T) {
	ctx := context.Background()
	st := &failingStore{Store: NewMemoryStore(), fail: make(chan bool)}
	s, err := New(ctx, st, nil, WithRevocationPoll(5*time.Millisecond), WithMaxRevocationStaleness(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := s.CreateClient(ctx, "partner-a")
	tok, _ := s.IssuePartnerToken(ctx, c)
	if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() { // keep failing every poll
		for {
			select {
			case st.fail <- true:
			case <-stop:
				return
			}
		}
	}()
	waitFor(t, 5*time.Second, func() bool {
		_, err := s.Authenticate(ctx, tok.AccessToken)
		return errors.Is(err, ErrUnavailable)
	})
	close(stop)
	waitFor(t, 5*time.Second, func() bool {
		_, err := s.Authenticate(ctx, tok.AccessToken)
		return err == nil
	})
}

func TestRevocationSyncRereadsCommitWindow(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStore()
	set := newRevokedSet()
	var rs revocationSync
	now := time.Now()
	_ = st.AddRevocation(ctx, Revocation{ID: "a", ExpiresAt: now.Add(time.Hour)})
	if err := rs.sync(ctx, st, set, now); err != nil {
		t.Fatal(err)
	}
	if rs.base != 0 {
		t.Fatalf("base moved to %d before the commit window passed", rs.base)
	}
	// Pretend the first poll was long ago: the base moves to what it saw.
	rs.marks[0].at = rs.marks[0].at.Add(-2 * revocationCommitWindow)
	_ = st.AddRevocation(ctx, Revocation{ID: "b", ExpiresAt: now.Add(time.Hour)})
	if err := rs.sync(ctx, st, set, now); err != nil {
		t.Fatal(err)
	}
	if rs.base != 1 || !set.has(&Principal{TokenID: "b"}) || !set.has(&Principal{TokenID: "a"}) {
		t.Fatalf("base %d, set %v", rs.base, set.tokens)
	}
	if set.has(&Principal{TokenID: "c"}) {
		t.Fatal("unrevoked token reported revoked")
	}
}
