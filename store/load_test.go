package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// testLoadDuringWrite: Load only reads. While another replica's write
// transaction is open (it holds the change lock: the revision row, on
// SQLite the database's write lock), Load returns at once with the state
// before it, rather than waiting for the writer (on SQLite, a BEGIN
// IMMEDIATE snapshot waited, then failed with "database is locked" after
// the busy timeout).
func testLoadDuringWrite(t *testing.T, b backend) {
	ctx := context.Background()
	stA, stB, engA, _ := twoReplicas(t, b)
	// One connection: the later reads reuse the one Load used.
	if sqlDB, err := stB.DB().DB(); err == nil {
		sqlDB.SetMaxOpenConns(1)
	}
	setupEntity(t, ctx, engA, "e1")
	before := storedRules(t, stB)

	commit := openTransaction(t, stA, func(ctx context.Context) error {
		_, err := engA.CreateEntity(ctx, "p1", "e2")
		return err
	})
	start := time.Now()
	var got []model.Rule
	err := stB.Load(ctx, func(r model.Rule) error { got = append(got, r); return nil })
	took := time.Since(start)
	txErr := commit(nil)
	if err != nil {
		t.Fatalf("Load while a write transaction is open: %v (after %v)", err, took)
	}
	if took > 2*time.Second {
		t.Fatalf("Load waited %v for the writer", took)
	}
	assertSameRules(t, "Load during a write", before, sortedRules(got))
	if txErr != nil {
		t.Fatalf("InTransaction: %v", txErr)
	}
	// The connection goes back to the pool out of its transaction, after
	// a failed Load too: the next Load on it sees the later commits.
	errStop := errors.New("stop")
	if err := stB.Load(ctx, func(model.Rule) error { return errStop }); !errors.Is(err, errStop) {
		t.Fatalf("Load = %v, want the callback's error", err)
	}
	if _, err := engA.CreateEntity(ctx, "p1", "e3"); err != nil {
		t.Fatal(err)
	}
	assertSameRules(t, "Load after the write", sortedRules(engA.Rules()), storedRules(t, stB))
}
