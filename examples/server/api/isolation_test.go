package api_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
)

// TestConcurrentWritesUnderRepeatableRead: on a PostgreSQL whose default
// isolation is REPEATABLE READ (as ALTER DATABASE can set it), concurrent
// PATCHes of one entity and payables created in it all succeed, and
// concurrent changes of one payable answer 200 or 409 (its deletions 204
// once, then 404): the server's writes
// run at READ COMMITTED, where a row lock or an update waits for the holder
// and then sees what it committed. Under the server's default, locking or
// updating a row another request had just changed failed with a
// serialization error (500).
func TestConcurrentWritesUnderRepeatableRead(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_DSN is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	t.Setenv("GATEHOUSE_TEST_POSTGRES_DSN", dsn+sep+"default_transaction_isolation=repeatable%20read")
	db, _, prefix := postgresTables(t, "iso_")
	var level string
	if err := db.Raw("SHOW default_transaction_isolation").Scan(&level).Error; err != nil || level != "repeatable read" {
		t.Fatalf("default_transaction_isolation = %q, %v; want repeatable read", level, err)
	}
	e := newEnv(t, api.Config{DB: db, TablePrefix: prefix})
	_, pt := e.partner("partner-1")
	ent := newEntity(e, pt)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan string, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			body := map[string]any{"email": fmt.Sprintf("ap%d@example.com", i)}
			if status, got, err := e.send("PATCH", "/entities/"+ent, pt, "", body); err != nil || status != 200 {
				errs <- fmt.Sprintf("PATCH entity: %d %v %s", status, err, got)
			}
		}()
		go func() {
			defer wg.Done()
			body := map[string]any{"currency": "EUR", "total_amount": 100 + i}
			if status, got, err := e.send("POST", "/payables", pt, ent, body); err != nil || status != 200 {
				errs <- fmt.Sprintf("POST payable: %d %v %s", status, err, got)
			}
		}()
	}
	wg.Wait()
	// Changes of one payable: PATCHes and an approval race; each answers
	// 200, or 409 once the payable is approved, never 500.
	pay := e.id("POST", "/payables", pt, ent, map[string]any{"currency": "EUR", "total_amount": 1}, 200)
	bad := make(chan string, 2*n+1)
	for i := range n + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method, path, body := "PATCH", "/payables/"+pay, any(map[string]any{"total_amount": 10 + i})
			if i == n/2 {
				method, path, body = "POST", "/payables/"+pay+"/approve_payment_operation", nil
			}
			if status, got, err := e.send(method, path, pt, ent, body); err != nil || status != 200 && status != 409 {
				bad <- fmt.Sprintf("%s %s: %d %v %s", method, path, status, err, got)
			}
		}()
	}
	wg.Wait()
	// Deletions of one payable race: one 204, the others 404.
	del := e.id("POST", "/payables", pt, ent, map[string]any{"currency": "EUR", "total_amount": 2}, 200)
	var deleted atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, got, err := e.send("DELETE", "/payables/"+del, pt, ent, nil)
			switch {
			case err == nil && status == 204:
				deleted.Add(1)
			case err != nil || status != 404:
				bad <- fmt.Sprintf("DELETE payable: %d %v %s", status, err, got)
			}
		}()
	}
	wg.Wait()
	if deleted.Load() != 1 {
		t.Errorf("%d deletions of one payable answered 204, want 1", deleted.Load())
	}
	close(errs)
	close(bad)
	for msg := range errs {
		t.Error(msg)
	}
	for msg := range bad {
		t.Error(msg)
	}
}
