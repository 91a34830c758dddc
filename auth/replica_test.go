package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// replicaStores returns two stores on one database of the backend ("memory"
// or one of sqlBackends), each with its own connection pool as two
// processes would have, or skips the test.
func replicaStores(t *testing.T, backend string) (Store, Store) {
	t.Helper()
	if backend == "memory" {
		st := NewMemoryStore()
		return st, st
	}
	open := dbOpener(t, backend)
	prefix := testPrefix()
	stA := gormStore(t, open(), prefix)
	stB, err := NewGormStore(open(), WithTablePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return stA, stB
}

// Two services on one database, as two replicas: a revocation, a client
// deletion and a key rotation on one are seen by the other.
func TestReplicas(t *testing.T) {
	for _, b := range append([]string{"memory"}, sqlBackends...) {
		t.Run(b, func(t *testing.T) {
			ctx := context.Background()
			stA, stB := replicaStores(t, b)
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

// retireBarrier holds RetireSigningKeys until every rotation of the test
// has added its key: both add, then both retire.
type retireBarrier struct {
	Store
	wg *sync.WaitGroup
}

func (b retireBarrier) RetireSigningKeys(ctx context.Context, keep string, at, until time.Time) error {
	b.wg.Done()
	b.wg.Wait()
	return b.Store.RetireSigningKeys(ctx, keep, at, until)
}

// Two replicas rotate at once, both adding their key before either retires:
// exactly one key is left to sign, both replicas load it and sign with it,
// and every token verifies on both.
func TestConcurrentKeyRotations(t *testing.T) {
	for _, b := range append([]string{"memory"}, sqlBackends...) {
		t.Run(b, func(t *testing.T) {
			ctx := context.Background()
			stA, stB := replicaStores(t, b)
			clk := newClock() // one instant: the two new keys tie on creation time
			barrier := &sync.WaitGroup{}
			barrier.Add(2)
			var svcs []*Service
			for _, st := range []Store{stA, stB} {
				s, err := New(ctx, retireBarrier{st, barrier}, nil, WithNow(clk.now))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				svcs = append(svcs, s)
			}
			c, err := svcs[0].CreateClient(ctx, "partner-a")
			if err != nil {
				t.Fatal(err)
			}
			old, err := svcs[0].IssuePartnerToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, len(svcs))
			for i, s := range svcs {
				wg.Go(func() { _, errs[i] = s.RotateSigningKey(ctx) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("rotations: %v", err)
			}
			recs, err := stA.SigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var live []string
			for _, r := range recs {
				if r.RetiredAt.IsZero() {
					live = append(live, r.ID)
				}
			}
			if len(recs) != 3 || len(live) != 1 {
				t.Fatalf("%d keys, unretired %v: want 3 keys, one unretired", len(recs), live)
			}
			var toks []string
			for i, s := range svcs {
				if err := s.loadKeys(ctx); err != nil {
					t.Fatalf("replica %d: reload: %v", i, err)
				}
				if kid := s.keys.Load().signing.kid; kid != live[0] {
					t.Fatalf("replica %d signs with %s, want %s", i, kid, live[0])
				}
				tok, err := s.IssuePartnerToken(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok.AccessToken)
			}
			for i, s := range svcs {
				for j, tok := range append(toks, old.AccessToken) {
					if _, err := s.Authenticate(ctx, tok); err != nil {
						t.Fatalf("replica %d, token %d: %v", i, j, err)
					}
				}
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

// Revocations outlive the tokens they revoke on every replica, whatever
// the TTL and leeway of the replica that wrote them: a replica that issues
// longer-lived tokens, or allows more clock skew, must not accept a revoked
// token again once the revoking replica would have let the row expire.
func TestRevocationOutlivesOtherReplicasSettings(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name            string
		issuer, revoker []Option
		wait            time.Duration
		revoke          func(s *Service, c ClientCredentials, tok string) error
	}{
		{
			name:   "client deleted by a replica of a shorter TTL",
			issuer: []Option{WithTokenTTL(2 * time.Hour)}, revoker: []Option{WithTokenTTL(30 * time.Minute)},
			wait:   31 * time.Minute,
			revoke: func(s *Service, c ClientCredentials, _ string) error { return s.DeleteClient(ctx, c.ID) },
		},
		{
			name:   "token revoked by a replica of no leeway",
			issuer: []Option{WithLeeway(time.Minute)}, revoker: []Option{WithLeeway(0)},
			wait:   DefaultTokenTTL + 10*time.Second, // past exp, within the issuer's leeway
			revoke: func(s *Service, _ ClientCredentials, tok string) error { return s.Revoke(ctx, tok) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.issuer...)
			c := f.client("partner-a")
			tok := f.partnerToken(c)
			if err := tc.revoke(f.replica(tc.revoker...), c, tok); err != nil {
				t.Fatal(err)
			}
			f.clock.advance(tc.wait)
			// A replica with the issuer's settings, started now: it knows
			// only what the store still holds.
			if p, err := f.replica(tc.issuer...).Authenticate(ctx, tok); !errors.Is(err, ErrRevokedToken) {
				t.Fatalf("revoked token after %s: principal %+v, err %v; want ErrRevokedToken", tc.wait, p, err)
			}
		})
	}
}

// slowKeysStore delays reading the signing keys, so that a reload is in
// flight while other requests arrive, and counts the reads.
type slowKeysStore struct {
	Store
	delay atomic.Int64 // nanoseconds
	reads atomic.Int64
}

func (s *slowKeysStore) SigningKeys(ctx context.Context) ([]KeyRecord, error) {
	s.reads.Add(1)
	select {
	case <-time.After(time.Duration(s.delay.Load())):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.SigningKeys(ctx)
}

// TestConcurrentKeyReloads: a token signed with a key just rotated on
// another replica is accepted, never refused as invalid because a reload of
// the keys was in flight or had run less than a second before (which anyone
// can cause with a made-up key id): it waits for a reload that starts after
// it. A made-up key id is invalid (401), never "unavailable" (503), however
// many come; their reloads are shared, one a second at most; and a request
// waits no longer than its context (found in review: the first version
// answered ErrUnavailable to junk, and waited for a stalled store past any
// deadline).
func TestConcurrentKeyReloads(t *testing.T) {
	ctx := context.Background()
	bogus := "eyJhbGciOiJIUzI1NiIsImtpZCI6Im5vcGUiLCJ0eXAiOiJKV1QifQ.e30.AAAA" // kid "nope"
	setup := func(t *testing.T) (a, b *Service, slow *slowKeysStore, c ClientCredentials) {
		mem := NewMemoryStore()
		slow = &slowKeysStore{Store: mem}
		var err error
		if a, err = New(ctx, mem, defaultDir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		if b, err = New(ctx, slow, defaultDir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if c, err = a.CreateClient(ctx, "partner-a"); err != nil {
			t.Fatal(err)
		}
		return a, b, slow, c
	}

	t.Run("reload in flight", func(t *testing.T) {
		a, b, slow, c := setup(t)
		if _, err := a.RotateSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		tok, err := a.IssuePartnerToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		slow.delay.Store(int64(200 * time.Millisecond))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				if i == 1 {
					time.Sleep(50 * time.Millisecond) // while the first one's reload is in flight
				}
				_, errs[i] = b.Authenticate(ctx, tok.AccessToken)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
	})

	t.Run("reload less than a second ago", func(t *testing.T) {
		a, b, slow, c := setup(t)
		if _, err := b.Authenticate(ctx, bogus); !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("made-up key id: %v, want ErrInvalidToken", err)
		}
		noKID := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.AAAA" // bad whatever the store holds
		reads := slow.reads.Load()
		if _, err := b.Authenticate(ctx, noKID); !errors.Is(err, ErrInvalidToken) || slow.reads.Load() != reads {
			t.Fatalf("token without a key id: %v, %d reloads; want ErrInvalidToken, none", err, slow.reads.Load()-reads)
		}
		if _, err := a.RotateSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		tok, err := a.IssuePartnerToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// The new key's token and a crowd of made-up ones, together.
		reads = slow.reads.Load()
		var wg sync.WaitGroup
		junk := make([]error, 20)
		for i := range junk {
			wg.Go(func() { _, junk[i] = b.Authenticate(ctx, bogus) })
		}
		start := time.Now()
		_, err = b.Authenticate(ctx, tok.AccessToken)
		waited := time.Since(start)
		wg.Wait()
		if err != nil {
			t.Fatalf("token of a freshly rotated key, within a second of a reload: %v", err)
		}
		if waited > 3*time.Second {
			t.Errorf("it waited %v", waited)
		}
		for i, err := range junk {
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("made-up key id %d: %v, want ErrInvalidToken", i, err)
			}
		}
		if n := slow.reads.Load() - reads; n != 1 {
			t.Errorf("%d reloads for 21 requests of unknown key ids at once, want 1", n)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		_, b, slow, _ := setup(t)
		slow.delay.Store(int64(2 * time.Second)) // a stalled store
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				start := time.Now()
				_, err := b.Authenticate(dctx, bogus)
				if took := time.Since(start); took > time.Second {
					t.Errorf("a request of 50 ms waited %v", took)
				}
				if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
				}
			})
		}
		wg.Wait()
	})
}

// TestReplicaRevokeSigningKey: revoking a signing key (a leaked one)
// refuses every token it signed at once, here and, within the poll
// interval, on another replica, cached or not; the service signs with a new
// key from then on, and those tokens are good everywhere.
func TestReplicaRevokeSigningKey(t *testing.T) {
	for _, b := range append([]string{"memory"}, sqlBackends...) {
		t.Run(b, func(t *testing.T) {
			ctx := context.Background()
			stA, stB := replicaStores(t, b)
			var svcs []*Service
			for _, st := range []Store{stA, stB} {
				s, err := New(ctx, st, defaultDir, WithRevocationPoll(10*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				svcs = append(svcs, s)
			}
			a, other := svcs[0], svcs[1]
			c, err := a.CreateClient(ctx, "partner-a")
			if err != nil {
				t.Fatal(err)
			}
			old, err := a.IssuePartnerToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range svcs { // both replicas cache it
				if p, err := s.Authenticate(ctx, old.AccessToken); err != nil || p.KeyID != old.Principal.KeyID || p.KeyID == "" {
					t.Fatalf("replica %d before: %+v, %v", i, p, err)
				}
			}
			if err := a.RevokeSigningKey(ctx, "k-no-such-key"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown key: %v, want ErrNotFound", err)
			}
			if err := a.RevokeSigningKey(ctx, old.Principal.KeyID); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Authenticate(ctx, old.AccessToken); !errors.Is(err, ErrRevokedToken) {
				t.Fatalf("revoking replica: %v, want ErrRevokedToken", err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := other.Authenticate(ctx, old.AccessToken)
				if errors.Is(err, ErrRevokedToken) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("other replica after 5 s: %v, want ErrRevokedToken", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Both replicas sign with another key from now on: the other
			// one, which knows of the revocation, reloads its keys rather
			// than sign with the revoked one (found in review: it did, for
			// up to its key reload interval).
			for _, i := range []int{1, 0} { // the other first: before anything else made it reload its keys
				s := svcs[i]
				fresh, err := s.IssuePartnerToken(ctx, c)
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
				if fresh.Principal.KeyID == old.Principal.KeyID {
					t.Fatalf("replica %d signs with the revoked key", i)
				}
				for j, s := range svcs {
					if _, err := s.Authenticate(ctx, fresh.AccessToken); err != nil {
						t.Fatalf("replica %d, token of replica %d's new key: %v", j, i, err)
					}
				}
			}
			if err := a.RevokeSigningKey(ctx, old.Principal.KeyID); err != nil {
				t.Fatalf("revoking it again: %v", err)
			}
		})
	}
}

// TestDeleteClientOtherCase: deleting a client by its id spelt in another
// case either finds nothing (databases that compare case) or revokes the
// tokens of the client it deletes (MySQL, whose default collation ignores
// case: found in review, the revocation named the id as given, and the
// deleted client's tokens stayed good).
func TestDeleteClientOtherCase(t *testing.T) {
	for _, b := range append([]string{"memory"}, sqlBackends...) {
		t.Run(b, func(t *testing.T) {
			ctx := context.Background()
			st, _ := replicaStores(t, b)
			s, err := New(ctx, st, defaultDir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			c, err := s.CreateClient(ctx, "partner-a")
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.IssuePartnerToken(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			err = s.DeleteClient(ctx, strings.ToUpper(c.ID))
			if errors.Is(err, ErrNotFound) {
				return // ids compare case: the client is untouched
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Client(ctx, c.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted, yet the client reads back: %v", err)
			}
			if _, err := s.Authenticate(ctx, tok.AccessToken); !errors.Is(err, ErrRevokedToken) {
				t.Fatalf("the deleted client's token: %v, want ErrRevokedToken", err)
			}
		})
	}
}

// TestKeyReloadPanic: a store that panics while the keys are reloaded for
// a token of an unknown key fails that request (ErrUnavailable) instead of
// the process: the reload runs outside Authenticate's own recover.
func TestKeyReloadPanic(t *testing.T) {
	ctx := context.Background()
	st := &keyFailStore{Store: NewMemoryStore()}
	s, err := New(ctx, st, defaultDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st.panics.Store(true)
	bogus := "eyJhbGciOiJIUzI1NiIsImtpZCI6Im5vcGUiLCJ0eXAiOiJKV1QifQ.e30.AAAA"
	if _, err := s.Authenticate(ctx, bogus); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}
