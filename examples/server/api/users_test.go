package api_test

import (
	"testing"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
)

// TestUpdateUserEscalation: changing any field of a user (login, email,
// name, not only its role) needs the role that applies to that user now,
// as removing it does: an entity user cannot take over the account of a
// user who holds more than it does, by its own role or by the entity's
// default role.
func TestUpdateUserEscalation(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		admin := e.id("POST", "/roles", pt, ent, role("Admin", "payable.read=allowed", "payable.delete=allowed",
			"entity_user.read=allowed", "entity_user.update=allowed", "entity_user.delete=allowed"), 200)
		clerk := e.id("POST", "/roles", pt, ent, role("Clerk", "payable.read=allowed_for_own", "entity_user.read=allowed", "entity_user.update=allowed"), 200)
		viewer := e.id("POST", "/roles", pt, ent, role("Viewer", "payable.read=allowed_for_own"), 200)
		user := func(login, role string) string {
			body := map[string]any{"login": login, "first_name": login}
			if role != "" {
				body["role_id"] = role
			}
			return e.id("POST", "/entity_users", pt, ent, body, 200)
		}
		boss, cl, peer, view, defaulted := user("boss", admin), user("clerk", clerk), user("peer", clerk), user("view", viewer), user("defaulted", "")
		e.do("PATCH", "/entities/"+ent+"/settings", pt, "", map[string]any{"default_role_id": admin}, 200, nil)
		bt, ct := e.userToken(creds, boss), e.userToken(creds, cl)

		for _, tc := range []struct {
			name, token, target string
			body                map[string]any
			want                int
		}{
			{"clerk changes the admin's login", ct, boss, map[string]any{"login": "pwned"}, 403},
			{"clerk changes the admin's email", ct, boss, map[string]any{"email": "attacker@example.com"}, 403},
			{"clerk changes the admin's name and phone", ct, boss, map[string]any{"first_name": "Z", "phone": "+1"}, 403},
			{"clerk changes a user with the admin default role", ct, defaulted, map[string]any{"login": "pwned"}, 403},
			{"clerk changes a user with its own role", ct, peer, map[string]any{"login": "peer2", "email": "peer@example.com"}, 200},
			{"clerk changes a user with less", ct, view, map[string]any{"email": "view@example.com"}, 200},
			{"clerk changes itself", ct, cl, map[string]any{"first_name": "Clerk"}, 200},
			{"admin changes the clerk", bt, cl, map[string]any{"email": "clerk@example.com"}, 200},
			{"partner changes the admin", pt, boss, map[string]any{"email": "boss@example.com"}, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.in(t)
				header := ""
				if tc.token == pt {
					header = ent
				}
				var before, after map[string]any
				e.do("GET", "/entity_users/"+tc.target, pt, ent, nil, 200, &before)
				e.do("PATCH", "/entity_users/"+tc.target, tc.token, header, tc.body, tc.want, nil)
				e.do("GET", "/entity_users/"+tc.target, pt, ent, nil, 200, &after)
				for k, v := range tc.body {
					if changed := after[k] == v; changed != (tc.want == 200) {
						t.Errorf("%s: %v before, %v after (status %d)", k, before[k], after[k], tc.want)
					}
				}
			})
		}
	})
}

// TestConcurrentUserPatches: two PATCHes of different fields of one user,
// the second made while the first is between its early checks and its
// write, both stay: each applies its fields to the row as it is under the
// change lock (found in review: the first wrote back every column as read
// before, undoing the second).
func TestConcurrentUserPatches(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		_, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		u := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "ulla", "first_name": "Ulla"}, 200)
		api.SetBeforeGuardedWrite(e.srv, func() {
			api.SetBeforeGuardedWrite(e.srv, nil)
			e.do("PATCH", "/entity_users/"+u, pt, ent, map[string]any{"login": "ulla2"}, 200, nil)
		})
		e.do("PATCH", "/entity_users/"+u, pt, ent, map[string]any{"email": "ulla@example.com"}, 200, nil)
		api.SetBeforeGuardedWrite(e.srv, nil)
		var got struct {
			Login string  `json:"login"`
			Email *string `json:"email"`
		}
		e.do("GET", "/entity_users/"+u, pt, ent, nil, 200, &got)
		if got.Login != "ulla2" || got.Email == nil || *got.Email != "ulla@example.com" {
			t.Fatalf("login %q, email %v: want both PATCHes kept", got.Login, got.Email)
		}
	})
}
