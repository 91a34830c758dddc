package api_test

import (
	"strings"
	"testing"
)

// TestUpdatePayableState: PATCH /payables/{payable_id} edits only a new
// payable; once approved it answers 409 (Monite's "Payable couldn't be
// updated due to current state") and the payable keeps its values, also
// for a clerk who may update its own payables.
func TestUpdatePayableState(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		admin := e.id("POST", "/roles", pt, ent, role("Admin", "payable.read=allowed", "payable.approve=allowed"), 200)
		clerk := e.id("POST", "/roles", pt, ent, role("Clerk", "payable.create=allowed", "payable.read=allowed_for_own", "payable.update=allowed_for_own"), 200)
		bt := e.userToken(creds, e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "boss", "first_name": "Boss", "role_id": admin}, 200))
		ct := e.userToken(creds, e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "clerk", "first_name": "Clerk", "role_id": clerk}, 200))

		type payable struct {
			Status      string `json:"status"`
			Currency    string `json:"currency"`
			TotalAmount int64  `json:"total_amount"`
		}
		for _, tc := range []struct {
			name    string
			approve bool
			token   string
			entity  string
			body    any
			want    int
			after   payable
		}{
			{"new, clerk", false, ct, "", map[string]any{"total_amount": 7, "currency": "USD"}, 200, payable{"new", "USD", 7}},
			{"new, partner", false, pt, ent, map[string]any{"total_amount": 8}, 200, payable{"new", "EUR", 8}},
			{"new, same values", false, ct, "", map[string]any{"total_amount": 100, "currency": "EUR"}, 200, payable{"new", "EUR", 100}},
			{"new, invalid", false, ct, "", map[string]any{"currency": "euro"}, 422, payable{"new", "EUR", 100}},
			{"approved, clerk", true, ct, "", map[string]any{"total_amount": 99999999, "currency": "USD"}, 409, payable{"waiting_to_be_paid", "EUR", 100}},
			{"approved, partner", true, pt, ent, map[string]any{"description": "changed"}, 409, payable{"waiting_to_be_paid", "EUR", 100}},
			{"approved, empty patch", true, ct, "", map[string]any{}, 409, payable{"waiting_to_be_paid", "EUR", 100}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := e.in(t)
				id := e.id("POST", "/payables", ct, "", map[string]any{"currency": "EUR", "total_amount": 100}, 200)
				if tc.approve {
					e.do("POST", "/payables/"+id+"/approve_payment_operation", bt, "", nil, 200, nil)
				}
				b := e.do("PATCH", "/payables/"+id, tc.token, tc.entity, tc.body, tc.want, nil)
				if tc.want == 409 && !strings.Contains(message(b), "waiting_to_be_paid") {
					t.Errorf("409 message %q does not name the state", message(b))
				}
				var got payable
				e.do("GET", "/payables/"+id, pt, ent, nil, 200, &got)
				if got != tc.after {
					t.Errorf("payable after the PATCH: %+v, want %+v", got, tc.after)
				}
			})
		}
		e.do("PATCH", "/payables/00000000-0000-4000-8000-000000000000", pt, ent, map[string]any{"total_amount": 1}, 404, nil)
	})
}
