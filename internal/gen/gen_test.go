package gen

import (
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// TestActiveRequests checks that ActiveRequests takes the entity, the
// partner and the user of every request from its active set, and that
// Requests spreads over all entities.
func TestActiveRequests(t *testing.T) {
	ds := New(1, 100_000, model.DefaultCatalog())
	if len(ds.Entities) < 50 {
		t.Fatalf("only %d entities", len(ds.Entities))
	}
	for _, tc := range []struct {
		name     string
		reqs     []policy.Request
		min, max int // entities drawn
	}{
		{"active 5", ds.ActiveRequests(3, 4096, 5), 5, 5},
		{"active beyond all", ds.ActiveRequests(3, 4096, 1<<20), len(ds.Entities) * 9 / 10, len(ds.Entities)},
		{"all", ds.Requests(3, 4096), len(ds.Entities) * 9 / 10, len(ds.Entities)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ents := map[model.EntityID]bool{}
			for _, r := range tc.reqs {
				ents[r.Entity] = true
			}
			if len(ents) < tc.min || len(ents) > tc.max {
				t.Fatalf("%d entities drawn, want %d to %d", len(ents), tc.min, tc.max)
			}
			callers := map[model.Subject]bool{}
			for i, e := range ds.Entities {
				if ents[e.ID] {
					callers[model.Partner(e.Partner)] = true
					for u := range e.Users {
						callers[model.User(ds.UserID(i, u))] = true
					}
				}
			}
			for _, r := range tc.reqs {
				if !callers[r.Subject] {
					t.Fatalf("caller %s is of no drawn entity", r.Subject)
				}
				if r.Owner.Kind != model.NoSubject && !callers[r.Owner] {
					t.Fatalf("owner %s is of no drawn entity", r.Owner)
				}
			}
		})
	}
}
