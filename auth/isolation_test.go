package auth

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentWritesUnderRepeatableRead: on a PostgreSQL whose default
// isolation is REPEATABLE READ (as ALTER DATABASE can set it), two replicas
// rotating the signing key and one client's secret at the same moment, and
// pruning revocations, all succeed: the store's changing statements run at
// READ COMMITTED. At the server's default, an update of a row the other
// replica had just changed failed with a serialization error (40001),
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
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for _, s := range svcs {
			wg.Add(3)
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
	}
}
