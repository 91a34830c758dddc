package api_test

import (
	"testing"
)

// TestPartnerIDsDifferingInCase: partners "acme" and "ACME" are two
// partners, on every database: neither lists, reads, changes or deletes the
// other's entity. On MySQL the example's tables compared ids without case
// (the default collation), and "ACME" did all four to "acme"'s entity.
func TestPartnerIDsDifferingInCase(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		_, victim := e.partner("acme")
		_, attacker := e.partner("ACME")
		ent := newEntity(e, victim)
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		e.do("GET", "/entities", attacker, "", nil, 200, &list)
		if len(list.Data) != 0 {
			t.Errorf("ACME lists %d entities, want none", len(list.Data))
		}
		e.do("GET", "/entities/"+ent, attacker, "", nil, 404, nil)
		e.do("PATCH", "/entities/"+ent, attacker, "", map[string]any{"email": "evil@example.com"}, 404, nil)
		e.do("DELETE", "/entities/"+ent, attacker, "", nil, 404, nil)
		var got struct {
			Email string `json:"email"`
		}
		e.do("GET", "/entities/"+ent, victim, "", nil, 200, &got)
		if got.Email == "evil@example.com" {
			t.Error("ACME changed acme's entity")
		}
	})
}
