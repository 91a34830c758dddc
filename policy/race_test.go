package policy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestConcurrentDecideAndChange runs decisions on several goroutines while
// another makes changes (run it with -race). Every change must be visible to
// the decision made right after the call returns, and readers must only ever
// see whole states: a user is allowed to approve exactly when its role's
// approve permission and its membership agree. Other entities appear and
// vanish meanwhile.
func TestConcurrentDecideAndChange(t *testing.T) {
	ctx := context.Background()
	eng := newEngine(t, policy.WithAdapter(newMemAdapter()))
	must[policy.Entity](t)(eng.CreateEntity(ctx, "p1", "e1"))
	must[policy.Role](t)(eng.CreateRole(ctx, "e1", policy.RoleSpec{ID: "on", Name: "On", Permissions: model.Permissions{kApprove: model.Allowed, kRead: model.Allowed}}))
	must[policy.Role](t)(eng.CreateRole(ctx, "e1", policy.RoleSpec{ID: "off", Name: "Off", Permissions: model.Permissions{kRead: model.Allowed}}))
	must[policy.User](t)(eng.AddUser(ctx, "e1", "u", "on"))

	var stop atomic.Bool
	var wg sync.WaitGroup
	var decisions atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				d := eng.Decide(&policy.Request{Subject: model.User("u"), Entity: "e1", Object: "payable", Action: "approve"})
				switch {
				case d.Allowed && d.Role != "on":
					t.Errorf("goroutine %d: allowed by role %q", g, d.Role)
				case !d.Allowed && d.Role == "on":
					t.Errorf("goroutine %d: role on denied: %+v", g, d)
				}
				// Read the management view concurrently too.
				if i%64 == 0 {
					_, _ = eng.ListRoles(ctx, "e1")
					_ = eng.Rules()
				}
				decisions.Add(1)
			}
		}()
	}
	req := policy.Request{Subject: model.User("u"), Entity: "e1", Object: "payable", Action: "approve"}
	for i := range 2000 {
		role := model.RoleID([]string{"off", "on"}[i%2])
		// Entities appearing and vanishing rebuild the entity table; the
		// change to e1 around them must still be seen at once.
		side := model.EntityID(fmt.Sprintf("side-%d", i%7))
		if i%3 == 0 {
			_ = eng.RemoveEntity(ctx, side) // absent half of the time
		}
		if _, err := eng.SetUserRole(ctx, "e1", "u", role); err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			if _, err := eng.CreateEntity(ctx, "p1", side); err != nil && !errors.Is(err, policy.ErrConflict) {
				t.Fatal(err)
			}
		}
		if got := eng.Decide(&req); got.Role != role || got.Allowed != (role == "on") {
			t.Fatalf("change %d not visible to the next decision: %+v", i, got)
		}
		if i%100 == 0 {
			name := fmt.Sprintf("Off %d", i)
			if _, err := eng.UpdateRole(ctx, "e1", "off", policy.RoleUpdate{Name: &name}); err != nil {
				t.Fatal(err)
			}
			if err := eng.Reload(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if decisions.Load() == 0 {
		t.Fatal("no concurrent decisions were made")
	}
}
