package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
	"github.com/gatehouse-authz/gatehouse/store"
)

// An engine stores its policies in SQLite; a second engine started on the
// same database (a restart) decides the same way, and the audit trail says
// who changed what.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "gatehouse-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, filepath.Join(dir, "policy.db"))
	if err != nil {
		log.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	st, err := store.New(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil { // explicit and idempotent
		log.Fatal(err)
	}
	eng, err := policy.New(ctx, policy.WithStore(st))
	if err != nil {
		log.Fatal(err)
	}

	actx := policy.WithActor(ctx, "partner:acme")
	if _, err := eng.CreateEntity(actx, "acme", "shop"); err != nil {
		log.Fatal(err)
	}
	clerk, err := eng.CreateRole(actx, "shop", policy.RoleSpec{
		ID: "clerk", Name: "Clerk",
		Permissions: model.Permissions{{Object: "payable", Action: "read"}: model.Allowed},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := eng.AddUser(actx, "shop", "ann", clerk.ID); err != nil {
		log.Fatal(err)
	}

	// A restart: a new engine loads the same policy.
	restarted, err := policy.New(ctx, policy.WithStore(st))
	if err != nil {
		log.Fatal(err)
	}
	d := restarted.Decide(&policy.Request{Subject: model.User("ann"), Entity: "shop", Object: "payable", Action: "read"})
	fmt.Println("ann may read payables:", d.Allowed)

	rev, _ := st.Revision(ctx)
	fmt.Println("revision:", rev)
	records, err := st.Audit(ctx, store.AuditFilter{Entity: "shop"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range records {
		fmt.Printf("%d %s by %s: +%d -%d rules\n", r.Revision, r.Op, r.Actor, len(r.Added), len(r.Removed))
	}
	// Output:
	// ann may read payables: true
	// revision: 3
	// 1 entity.create by partner:acme: +1 -0 rules
	// 2 role.create by partner:acme: +2 -0 rules
	// 3 user.add by partner:acme: +1 -0 rules
}
