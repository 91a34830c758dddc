package api_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

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

// TestDeleteEntityRace: payables created and entity updates sent while the
// entity is deleted either come before the deletion (and are deleted with
// it) or find no entity (403 from the middleware once the engine has
// removed it, 404 from the handler that waited for the deletion): no
// payable is left behind in a deleted entity.
func TestDeleteEntityRace(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		for round := 0; round < 3; round++ {
			ent := newEntity(e, pt)
			r := e.id("POST", "/roles", pt, ent, role("A", "payable.create=allowed"), 200)
			ut := e.userToken(creds, e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "a", "first_name": "A", "role_id": r}, 200))
			type request struct {
				method, path, token string
				body                any
				want                []int
			}
			reqs := []request{{"DELETE", "/entities/" + ent, pt, nil, []int{204}}}
			for i := 0; i < 30; i++ {
				reqs = append(reqs, request{"POST", "/payables", ut, map[string]any{"currency": "EUR"}, []int{200, 403, 404}})
				if i%10 == 0 {
					reqs = append(reqs, request{"PATCH", "/entities/" + ent, pt, map[string]any{"phone": "+49"}, []int{200, 404}})
				}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, rq := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					status, body, err := e.send(rq.method, rq.path, rq.token, "", rq.body)
					if err != nil || !slices.Contains(rq.want, status) {
						t.Errorf("%s %s: %d %s (%v), want one of %v", rq.method, rq.path, status, body, err, rq.want)
					}
				}()
			}
			close(start)
			wg.Wait()
			var n int64
			if err := e.srv.DB.Table(e.prefix+"payables").Where("entity_id = ?", ent).Count(&n).Error; err != nil || n != 0 {
				t.Fatalf("round %d: %d payables left in the deleted entity (%v)", round, n, err)
			}
		}
	})
}

// TestDeleteEntityWaits: a payable's creation and the entity's update wait
// for a transaction that deletes the entity's row (as deleteEntity does,
// holding its lock until it commits), then answer 404 and leave nothing.
func TestDeleteEntityWaits(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		r := e.id("POST", "/roles", pt, ent, role("A", "payable.create=allowed"), 200)
		ut := e.userToken(creds, e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "a", "first_name": "A", "role_id": r}, 200))

		tx := e.srv.DB.Begin() // SQLite: takes the write lock at once
		if err := tx.Table(e.prefix+"entities").Where("id = ?", ent).Delete(nil).Error; err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, rq := range []struct {
			method, path, token string
			body                any
		}{
			{"POST", "/payables", ut, map[string]any{"currency": "EUR"}},
			{"PATCH", "/entities/" + ent, pt, map[string]any{"phone": "+49"}},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, body, err := e.send(rq.method, rq.path, rq.token, "", rq.body); err != nil || status != 404 {
					t.Errorf("%s %s during the deletion: %d %s (%v), want 404", rq.method, rq.path, status, body, err)
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // the requests wait for the lock
		if err := tx.Commit().Error; err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		var n int64
		if err := e.srv.DB.Table(e.prefix+"payables").Where("entity_id = ?", ent).Count(&n).Error; err != nil || n != 0 {
			t.Errorf("%d payables in the deleted entity (%v)", n, err)
		}
	})
}
