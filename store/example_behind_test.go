package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/gatehouse-authz/gatehouse/store"
)

// replica opens its own pool, store, engine and watcher on path.
func replica(ctx context.Context, path string, opts ...store.WatcherOption) (*policy.Engine, *store.Watcher, func()) {
	db, err := store.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	st, err := store.New(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	eng, err := policy.New(ctx, policy.WithStore(st))
	if err != nil {
		log.Fatal(err)
	}
	w, err := store.NewWatcher(ctx, st, eng, opts...)
	if err != nil {
		log.Fatal(err)
	}
	return eng, w, func() {
		w.Close()
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
}

// Two replicas share a database. Replica B polls rarely, so it is behind
// after A's change, and does not know it yet. A management call on B takes
// the store's change lock first, which catches B up: B's attempt to create
// the same entity is refused because the entity exists (policy.ErrConflict),
// not because B was behind. A server checks Behind before it serves a
// decision that must not be stale (with a 503, say); Sync catches up with
// everything committed so far.
func ExampleWatcher_Behind() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "gatehouse-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.db")
	engA, _, closeA := replica(ctx, path)
	defer closeA()
	engB, wB, closeB := replica(ctx, path, store.WithPollInterval(time.Hour))
	defer closeB()

	if _, err := engA.CreateEntity(ctx, "acme", "shop"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("B knows it is behind:", wB.Behind() != nil) // nobody told B yet

	_, err = engB.CreateEntity(ctx, "acme", "shop")
	fmt.Println("B's change refused as a conflict:", errors.Is(err, policy.ErrConflict))
	fmt.Println("B's change refused as behind:", errors.Is(err, store.ErrBehind))
	fmt.Println("B behind after its change:", wB.Behind() != nil)
	if err := wB.Sync(ctx); err != nil { // everything committed so far
		log.Fatal(err)
	}
	d := engB.Decide(&policy.Request{Subject: model.Partner("acme"), Entity: "shop", Object: "payable", Action: "read"})
	fmt.Println("the partner may read the shop's payables on B:", d.Allowed)
	// Output:
	// B knows it is behind: false
	// B's change refused as a conflict: true
	// B's change refused as behind: false
	// B behind after its change: false
	// the partner may read the shop's payables on B: true
}
