package policy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Create a role, assign it, and decide.
func Example() {
	ctx := context.Background()
	eng, _ := policy.New(ctx) // in memory, Monite's catalog

	eng.CreateEntity(ctx, "partner-1", "acme")
	eng.CreateRole(ctx, "acme", policy.RoleSpec{
		ID:   "clerk",
		Name: "Clerk",
		Permissions: model.Permissions{
			{Object: "payable", Action: "read"}:    model.Allowed,
			{Object: "payable", Action: "approve"}: model.AllowedForOwn,
		},
	})
	eng.AddUser(ctx, "acme", "alice", "clerk")

	approve := policy.Request{Subject: model.User("alice"), Entity: "acme", Object: "payable", Action: "approve"}
	approve.Owner = model.User("alice")
	fmt.Println(eng.Decide(&approve).Allowed)
	approve.Owner = model.User("bob")
	d := eng.Decide(&approve)
	fmt.Println(d.Allowed, d.Scope, d.Role, d.Reason)
	// Output:
	// true
	// false own clerk role allows the action on own objects only; someone else created this one
}

// A user without a role gets the entity's default role, read when the
// request is decided.
func ExampleEngine_SetDefaultRole() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	eng.CreateEntity(ctx, "partner-1", "acme")
	eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "viewer", Name: "Viewer",
		Permissions: model.Permissions{{Object: "payable", Action: "read"}: model.Allowed}})
	eng.AddUser(ctx, "acme", "carol", "") // no role

	read := policy.Request{Subject: model.User("carol"), Entity: "acme", Object: "payable", Action: "read"}
	fmt.Println(eng.Decide(&read).Allowed)
	eng.SetDefaultRole(ctx, "acme", "viewer")
	d := eng.Decide(&read)
	fmt.Println(d.Allowed, d.Role, d.ViaDefault)
	// Output:
	// false
	// true viewer true
}

// A list endpoint asks for the scope and filters by creator when it is own.
func ExampleEngine_Scope() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	eng.CreateEntity(ctx, "partner-1", "acme")
	eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "clerk", Name: "Clerk",
		Permissions: model.Permissions{{Object: "receivable", Action: "read"}: model.AllowedForOwn}})
	eng.AddUser(ctx, "acme", "alice", "clerk")

	s, _ := eng.Scope(model.User("alice"), "acme", "receivable", "read")
	fmt.Println(s)
	s, _ = eng.Scope(model.Partner("partner-1"), "acme", "receivable", "read")
	fmt.Println(s)
	// Output:
	// own
	// all
}

// Explain says why, in words.
func ExampleEngine_Explain() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	eng.CreateEntity(ctx, "partner-1", "acme")
	eng.AddUser(ctx, "acme", "erin", "")
	_, why := eng.Explain(&policy.Request{Subject: model.User("erin"), Entity: "acme", Object: "payable", Action: "pay"})
	fmt.Println(why)
	// Output:
	// denied: user:erin may pay payable in entity "acme"? The user has no role and the entity has no default role.
}

// A user may not hand out more than it holds.
func ExampleEngine_CheckGrant() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	eng.CreateEntity(ctx, "partner-1", "acme")
	eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "lead", Name: "Lead", Permissions: model.Permissions{
		{Object: "role", Action: "create"}:     model.Allowed,
		{Object: "payable", Action: "approve"}: model.AllowedForOwn,
	}})
	eng.AddUser(ctx, "acme", "lena", "lead")
	err := eng.CheckGrant(model.User("lena"), "acme", model.Permissions{{Object: "payable", Action: "approve"}: model.Allowed})
	fmt.Println(err)
	// Output:
	// privilege escalation: user:lena may not grant payable.approve (allowed, holds allowed_for_own)
}

// Management calls made for an entity user check, under their own lock,
// that the user grants nothing it does not hold.
func ExampleWithGrantor() {
	ctx := context.Background()
	eng, _ := policy.New(ctx)
	eng.CreateEntity(ctx, "partner-1", "acme")
	read := model.Key{Object: "payable", Action: "read"}
	pay := model.Key{Object: "payable", Action: "pay"}
	eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "lead", Name: "Lead", Permissions: model.Permissions{read: model.Allowed}})
	eng.CreateRole(ctx, "acme", policy.RoleSpec{ID: "payer", Name: "Payer", Permissions: model.Permissions{pay: model.Allowed}})
	eng.AddUser(ctx, "acme", "alice", "lead")

	asAlice := policy.WithGrantor(ctx, model.User("alice"))
	_, err := eng.AddUser(asAlice, "acme", "bob", "payer")
	fmt.Println(errors.Is(err, policy.ErrEscalation))
	_, err = eng.AddUser(asAlice, "acme", "bob", "lead")
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}
