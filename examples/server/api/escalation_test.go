package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestEscalationUnderLock changes the policy between a handler's early
// escalation check and its write (the time-of-check to time-of-use window):
// the check the engine makes again under the store's change lock, for what
// the change grants and what it takes away, as the handlers pass the caller
// with policy.WithGrantor, must refuse the request with 403, and nothing
// may change. The same requests then
// succeed once the policy is left alone.
func TestEscalationUnderLock(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		eid := model.EntityID(ent)
		accountant := e.id("POST", "/roles", pt, ent, role("Accountant",
			"payable.read=allowed", "payable.create=allowed", "payable.approve=allowed",
			"role.create=allowed", "role.read=allowed", "role.update=allowed", "role.delete=allowed",
			"entity_user.create=allowed", "entity_user.read=allowed", "entity_user.update=allowed", "entity_user.delete=allowed"), 200)
		demoted := e.id("POST", "/roles", pt, ent, role("Demoted", "payable.read=allowed_for_own"), 200)
		admin := e.id("POST", "/roles", pt, ent, role("Admin", "payable.delete=allowed"), 200)
		approver := e.id("POST", "/roles", pt, ent, role("Approver", "payable.read=allowed", "payable.approve=allowed"), 200)
		spare := e.id("POST", "/roles", pt, ent, role("Spare", "payable.approve=allowed"), 200)
		viewer := e.id("POST", "/roles", pt, ent, role("Viewer", "payable.read=allowed"), 200)
		reader := e.id("POST", "/roles", pt, ent, role("Reader", "payable.read=allowed_for_own"), 200)
		alice := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "alice", "first_name": "Alice", "role_id": accountant}, 200)
		bob := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "bob", "first_name": "Bob"}, 200)
		carol := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "carol", "first_name": "Carol", "role_id": approver}, 200)
		dave := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "dave", "first_name": "Dave", "role_id": viewer}, 200)
		frank := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "frank", "first_name": "Frank", "role_id": viewer}, 200)
		hank := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "hank", "first_name": "Hank"}, 200)
		at := e.userToken(creds, alice)

		setDefault := func(role string) {
			t.Helper()
			if err := e.srv.Engine.SetDefaultRole(ctx, eid, model.RoleID(role)); err != nil {
				t.Fatalf("SetDefaultRole(%s): %v", role, err)
			}
		}
		setRole := func(user, role string) {
			t.Helper()
			if _, err := e.srv.Engine.SetUserRole(ctx, eid, model.UserID(user), model.RoleID(role)); err != nil {
				t.Fatalf("SetUserRole(%s, %s): %v", user, role, err)
			}
		}
		setPerms := func(role string, perms ...string) {
			t.Helper()
			ps := model.Permissions{}
			for _, p := range perms {
				k, v, _ := strings.Cut(p, "=")
				o, a, _ := strings.Cut(k, ".")
				pv, err := model.ParsePermission(v)
				if err != nil {
					t.Fatal(err)
				}
				ps[model.Key{Object: model.ObjectType(o), Action: model.Action(a)}] = pv
			}
			if _, err := e.srv.Engine.UpdateRole(ctx, eid, model.RoleID(role), policy.RoleUpdate{Permissions: ps}); err != nil {
				t.Fatalf("UpdateRole(%s): %v", role, err)
			}
		}
		count := func(path string) int {
			t.Helper()
			var p page
			e.do("GET", path+"?limit=100", pt, ent, nil, 200, &p)
			return len(p.Data)
		}
		roleOf := func(user string) string {
			t.Helper()
			var u struct {
				RoleID *string `json:"role_id"`
			}
			e.do("GET", "/entity_users/"+user, pt, ent, nil, 200, &u)
			if u.RoleID == nil {
				return ""
			}
			return *u.RoleID
		}
		var rl struct {
			Name        string `json:"name"`
			Permissions struct {
				Objects []struct {
					ObjectType string `json:"object_type"`
					Actions    []struct {
						ActionName string `json:"action_name"`
						Permission string `json:"permission"`
					} `json:"actions"`
				} `json:"objects"`
			} `json:"permissions"`
		}
		actions := func() int {
			n := 0
			for _, o := range rl.Permissions.Objects {
				n += len(o.Actions)
			}
			return n
		}
		var roles, users int

		for _, tc := range []struct {
			name          string
			demote        func() // runs in the window; nil: setRole(alice, demoted)
			restore       func() // nil: setRole(alice, accountant)
			method, path  string
			body          any
			ok            int    // the status without demote
			afterRefusal  func() // optional; the role and user counts are always checked
			afterAccepted func()
		}{
			{
				name: "create role", method: "POST", path: "/roles",
				body: role("Sneaky", "payable.approve=allowed"),
				ok:   200,
			},
			{
				name: "update role", method: "PATCH", path: "/roles/" + approver,
				body: map[string]any{"name": "Approver+", "permissions": perms("payable.read=allowed", "payable.approve=allowed", "payable.create=allowed")},
				ok:   200,
				afterRefusal: func() {
					e.do("GET", "/roles/"+approver, pt, ent, nil, 200, &rl)
					if rl.Name != "Approver" || actions() != 2 {
						t.Errorf("refused update changed the role: %+v", rl)
					}
				},
				afterAccepted: func() { // the answer shows the role after the update
					if rl.Name != "Approver+" || actions() != 3 {
						t.Errorf("update answered %+v, want the updated role", rl)
					}
				},
			},
			{
				// The role grants no more than the demoted alice holds:
				// only what the update grants exceeds.
				name: "widen a role", method: "PATCH", path: "/roles/" + reader,
				body: map[string]any{"permissions": perms("payable.read=allowed")},
				ok:   200,
				afterRefusal: func() {
					e.do("GET", "/roles/"+reader, pt, ent, nil, 200, &rl)
					if actions() != 1 || rl.Permissions.Objects[0].Actions[0].Permission != "allowed_for_own" {
						t.Errorf("refused update changed the role: %+v", rl)
					}
				},
				afterAccepted: func() {
					if actions() != 1 || rl.Permissions.Objects[0].Actions[0].Permission != "allowed" {
						t.Errorf("update answered %+v, want payable.read allowed", rl)
					}
				},
			},
			{
				name: "delete role", method: "DELETE", path: "/roles/" + spare,
				ok:           204,
				afterRefusal: func() { e.do("GET", "/roles/"+spare, pt, ent, nil, 200, nil) },
			},
			{
				name: "create user", method: "POST", path: "/entity_users",
				body: map[string]any{"login": "eve", "first_name": "Eve", "role_id": approver},
				ok:   200,
			},
			{
				name: "assign role", method: "PATCH", path: "/entity_users/" + bob,
				body: map[string]any{"role_id": approver},
				ok:   200,
				afterRefusal: func() {
					if r := roleOf(bob); r != "" {
						t.Errorf("bob's role %q after a refused assignment, want none", r)
					}
				},
			},
			{
				// The target's role changes in the window, to one alice
				// may not take away.
				name: "reassign a user promoted meanwhile", method: "PATCH", path: "/entity_users/" + dave,
				body:   map[string]any{"role_id": approver},
				demote: func() { setRole(dave, admin) }, restore: func() { setRole(dave, viewer) },
				ok: 200,
				afterRefusal: func() {
					if r := roleOf(dave); r != admin {
						t.Errorf("dave's role %q after a refused assignment, want %s", r, admin)
					}
				},
			},
			{
				// Details alone, no role: the target is promoted in the
				// window (found in review: only the early check ran, and
				// the promoted user's login and email were rewritten).
				name: "change the details of a user promoted meanwhile", method: "PATCH", path: "/entity_users/" + dave,
				body:   map[string]any{"login": "pwned", "email": "attacker@example.com"},
				demote: func() { setRole(dave, admin) }, restore: func() { setRole(dave, viewer) },
				ok: 200,
				afterRefusal: func() {
					var u struct {
						Login string `json:"login"`
					}
					e.do("GET", "/entity_users/"+dave, pt, ent, nil, 200, &u)
					if u.Login != "dave" {
						t.Errorf("dave's login %q after a refused change", u.Login)
					}
				},
			},
			{
				// The same, with the user's current role repeated in the
				// body: a role "change" that changes nothing (found in
				// review: the engine made no change and checked nothing,
				// and the handler skipped its own recheck).
				name: "repeat the role of a user whose role is widened meanwhile", method: "PATCH", path: "/entity_users/" + dave,
				body:    map[string]any{"role_id": viewer, "login": "pwned2"},
				demote:  func() { setPerms(viewer, "payable.read=allowed", "payable.delete=allowed") },
				restore: func() { setPerms(viewer, "payable.read=allowed") },
				ok:      200,
			},
			{
				name: "repeat no role for a user whose default role is promoted meanwhile", method: "PATCH", path: "/entity_users/" + hank,
				body:   map[string]any{"role_id": nil, "login": "hank2"},
				demote: func() { setDefault(admin) }, restore: func() { setDefault("") },
				ok: 200,
			},
			{
				name: "delete user", method: "DELETE", path: "/entity_users/" + carol,
				ok:           204,
				afterRefusal: func() { e.do("GET", "/entity_users/"+carol, pt, ent, nil, 200, nil) },
			},
			{
				// A user created without a role gets the entity's default
				// role, which becomes one alice may not grant.
				name: "create user under a default role promoted meanwhile", method: "POST", path: "/entity_users",
				body:   map[string]any{"login": "gina", "first_name": "Gina"},
				demote: func() { setDefault(admin) }, restore: func() { setDefault("") },
				ok: 200,
			},
			{
				// Taking a user's role away leaves it the default role.
				name: "take a role away under a default role promoted meanwhile", method: "PATCH", path: "/entity_users/" + frank,
				body:   map[string]any{"role_id": nil},
				demote: func() { setDefault(admin) }, restore: func() { setDefault("") },
				ok: 200,
				afterRefusal: func() {
					if r := roleOf(frank); r != viewer {
						t.Errorf("frank's role %q after a refused change, want %s", r, viewer)
					}
				},
			},
		} {
			t.Logf("case %s", tc.name)
			if tc.demote == nil {
				tc.demote = func() { setRole(alice, demoted) }
			}
			if tc.restore == nil {
				tc.restore = func() { setRole(alice, accountant) }
			}
			roles, users = count("/roles"), count("/entity_users")
			api.SetBeforeGuardedWrite(e.srv, tc.demote)
			late := message(e.do(tc.method, tc.path, at, "", tc.body, 403, nil))
			api.SetBeforeGuardedWrite(e.srv, nil)
			if !strings.HasPrefix(late, policy.ErrEscalation.Error()+": ") {
				t.Errorf("refusal %q, want an escalation refusal", late)
			}
			// Once the change is in place, the early check refuses the
			// same request with the same answer (unless the route guard
			// refuses it first: alice demoted).
			if early := message(e.do(tc.method, tc.path, at, "", tc.body, 403, nil)); strings.HasPrefix(early, policy.ErrEscalation.Error()) && early != late {
				t.Errorf("refusal under the lock %q, early refusal %q", late, early)
			}
			if n := count("/roles"); n != roles {
				t.Errorf("%d roles after a refused %s, want %d", n, tc.name, roles)
			}
			if n := count("/entity_users"); n != users {
				t.Errorf("%d users after a refused %s, want %d", n, tc.name, users)
			}
			if tc.afterRefusal != nil {
				tc.afterRefusal()
			}
			tc.restore()

			rl.Name, rl.Permissions.Objects = "", nil
			var dst any
			if tc.ok == 200 {
				dst = &rl
			}
			e.do(tc.method, tc.path, at, "", tc.body, tc.ok, dst)
			if tc.afterAccepted != nil {
				tc.afterAccepted()
			}
		}
	})
}
