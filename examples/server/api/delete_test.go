package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestDeleteEntity: DELETE /entities/{entity_id} is partner-only, touches
// only the partner's own entities, and removes the entity with everything
// in it, from the engine and from the server's tables.
func TestDeleteEntity(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		_, pt2 := e.partner("partner-2")
		ent, keep := newEntity(e, pt), newEntity(e, pt)
		for _, en := range []string{ent, keep} {
			admin := e.id("POST", "/roles", pt, en, role("Admin", "payable.create=allowed", "payable.read=allowed"), 200)
			user := e.id("POST", "/entity_users", pt, en, map[string]any{"login": "ann", "first_name": "Ann", "role_id": admin}, 200)
			ut := e.userToken(creds, user)
			e.id("POST", "/payables", ut, "", map[string]any{"currency": "EUR", "total_amount": 1}, 200)
			if en == ent {
				defer func() {
					// The user's token no longer gives access to anything.
					e.do("GET", "/payables", ut, "", nil, 403, nil)
					e.do("POST", "/payables", ut, "", map[string]any{"currency": "EUR"}, 403, nil)
					e.do("GET", "/entity_users/me", ut, "", nil, 404, nil)
				}()
				e.do("DELETE", "/entities/"+ent, ut, "", nil, 403, nil) // partner-only
			}
		}
		e.do("DELETE", "/entities/"+ent, pt2, "", nil, 404, nil) // another partner's entity looks missing
		e.do("DELETE", "/entities/"+ent, "", "", nil, 401, nil)
		e.do("DELETE", "/entities/"+ent, pt, "", nil, 204, nil)

		e.do("GET", "/entities/"+ent, pt, "", nil, 404, nil)
		e.do("DELETE", "/entities/"+ent, pt, "", nil, 404, nil)
		e.do("GET", "/payables", pt, ent, nil, 403, nil)
		e.do("GET", "/roles", pt, ent, nil, 403, nil)
		if _, err := e.srv.Engine.GetEntity(context.Background(), model.EntityID(ent)); !errors.Is(err, policy.ErrNotFound) {
			t.Errorf("the engine still has the entity: %v", err)
		}
		for _, table := range []string{"entities", "entity_users", "role_creators", "payables"} {
			var n int64
			col := "entity_id"
			if table == "entities" {
				col = "id"
			}
			if err := e.srv.DB.Table(e.prefix+table).Where(col+" = ?", ent).Count(&n).Error; err != nil || n != 0 {
				t.Errorf("%s: %d rows of the deleted entity left (%v)", table, n, err)
			}
		}

		// The other entity is untouched.
		var ents page
		e.do("GET", "/entities", pt, "", nil, 200, &ents)
		if len(ents.Data) != 1 || ents.Data[0].ID != keep {
			t.Errorf("entities after the delete: %+v, want only %s", ents.Data, keep)
		}
		var list page
		e.do("GET", "/payables", pt, keep, nil, 200, &list)
		if len(list.Data) != 1 {
			t.Errorf("%d payables left in the other entity, want 1", len(list.Data))
		}
	})
}
