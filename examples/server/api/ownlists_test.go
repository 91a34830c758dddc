package api_test

import (
	"slices"
	"testing"
)

// TestOwnLists: with allowed_for_own on read, every list endpoint returns
// only what the caller created (Monite's behaviour), and with allowed the
// whole entity's.
func TestOwnLists(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		own := e.id("POST", "/roles", pt, ent, role("Own",
			"payable.create=allowed", "payable.read=allowed_for_own",
			"role.create=allowed", "role.read=allowed_for_own",
			"entity_user.create=allowed", "entity_user.read=allowed_for_own"), 200)
		all := e.id("POST", "/roles", pt, ent, role("All",
			"payable.read=allowed", "role.read=allowed", "entity_user.read=allowed"), 200)
		ann := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "ann", "first_name": "Ann", "role_id": own}, 200)
		bob := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "bob", "first_name": "Bob", "role_id": own}, 200)
		cid := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "cid", "first_name": "Cid", "role_id": all}, 200)
		at, bt, ct := e.userToken(creds, ann), e.userToken(creds, bob), e.userToken(creds, cid)

		pay := map[string]any{"currency": "EUR", "total_amount": 5}
		annPay := e.id("POST", "/payables", at, "", pay, 200)
		bobPay := e.id("POST", "/payables", bt, "", pay, 200)
		annRole := e.id("POST", "/roles", at, "", role("Ann's", "payable.read=allowed_for_own"), 200)
		annUser := e.id("POST", "/entity_users", at, "", map[string]any{"login": "dan", "first_name": "Dan", "role_id": annRole}, 200)

		ids := func(token, path string) []string {
			t.Helper()
			var p page
			e.do("GET", path, token, "", nil, 200, &p)
			var out []string
			for _, d := range p.Data {
				out = append(out, d.ID)
			}
			slices.Sort(out)
			return out
		}
		sorted := func(s ...string) []string { slices.Sort(s); return s }
		for _, tc := range []struct {
			who, token, path string
			want             []string
		}{
			{"ann", at, "/payables", sorted(annPay)},
			{"bob", bt, "/payables", sorted(bobPay)},
			{"cid", ct, "/payables", sorted(annPay, bobPay)},
			{"ann", at, "/roles", sorted(annRole)},
			{"bob", bt, "/roles", nil},
			{"cid", ct, "/roles", sorted(own, all, annRole)},
			{"ann", at, "/entity_users", sorted(annUser)},
			{"bob", bt, "/entity_users", nil},
			{"cid", ct, "/entity_users", sorted(ann, bob, cid, annUser)},
		} {
			if got := ids(tc.token, tc.path); !slices.Equal(got, tc.want) {
				t.Errorf("%s lists %s: %v, want %v", tc.who, tc.path, got, tc.want)
			}
		}
		// One object: bob may read his own payable only.
		e.do("GET", "/payables/"+bobPay, bt, "", nil, 200, nil)
		e.do("GET", "/payables/"+annPay, bt, "", nil, 403, nil)
	})
}
