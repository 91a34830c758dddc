package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentWritesUnderRepeatableRead: on a PostgreSQL whose default
// isolation is REPEATABLE READ (as ALTER DATABASE can set it), two replicas
// rotating the signing key and one client's secret at the same moment,
// pruning the same expired revocations, revoking the same token and
// creating a client of the same id all succeed (but for one conflict): the
// store's changing statements run at READ COMMITTED. At the server's
// default, a write over a row the other replica had just changed or
// inserted failed with a serialization error (40001); a rotation failed
// after the new key was added and before the old ones were retired.
func TestConcurrentWritesUnderRepeatableRead(t *testing.T) {
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", envPostgres)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	t.Setenv(envPostgres, dsn+sep+"default_transaction_isolation=repeatable%20read")
	ctx := context.Background()
	stA, stB := replicaStores(t, "postgres")
	var level string
	if err := stA.(*GormStore).db.Raw("SHOW default_transaction_isolation").Scan(&level).Error; err != nil || level != "repeatable read" {
		t.Fatalf("default_transaction_isolation = %q, %v; want repeatable read", level, err)
	}
	var svcs [2]*Service
	for i, st := range []Store{stA, stB} {
		s, err := New(ctx, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		svcs[i] = s
	}
	creds, err := svcs[0].CreateClient(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		// Expired revocations for both replicas to prune at once.
		now := time.Now()
		for i := range 3 {
			r := Revocation{ID: fmt.Sprintf("old-%d-%d", round, i), PartnerID: "p1", ExpiresAt: now.Add(-time.Hour), RevokedAt: now.Add(-2 * time.Hour)}
			if err := stA.AddRevocation(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for _, s := range svcs {
			wg.Add(5)
			go func() { // the same token revoked on both
				defer wg.Done()
				r := Revocation{ID: fmt.Sprint("jti-", round), PartnerID: "p1", ExpiresAt: now.Add(time.Hour), RevokedAt: now}
				if err := s.store.AddRevocation(ctx, r); err != nil {
					errs <- err
				}
			}()
			go func() { // the same client id created on both: one conflict
				defer wg.Done()
				c := ClientRecord{ID: fmt.Sprint("client-", round), PartnerID: "p1", SecretHash: []byte("h"), CreatedAt: now}
				if err := s.store.CreateClient(ctx, c); err != nil && !errors.Is(err, ErrConflict) {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := s.RotateSigningKey(ctx); err != nil {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := s.RotateClientSecret(ctx, creds.ID, time.Now().Add(time.Minute)); err != nil {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := s.store.PruneRevocations(ctx, time.Now()); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if n, err := stB.PruneRevocations(ctx, now); err != nil || n != 0 {
			t.Errorf("round %d: %d expired revocations left, %v", round, n, err)
		}
	}
}
