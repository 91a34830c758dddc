package api_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
)

// TestConcurrentWritesUnderRepeatableRead: on a PostgreSQL whose default
// isolation is REPEATABLE READ (as ALTER DATABASE can set it), concurrent
// PATCHes of one entity and payables created in it all
// succeed: the server's transactions run at READ COMMITTED, where a row
// lock waits for the holder and then reads what it committed. Under the
// server's default, the lock of a row another request had just changed
// failed with a serialization error (500).
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
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
