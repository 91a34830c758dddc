package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
)

// encode writes f with the package's encoders: the inverse of Decode.
func encode(t testing.TB, f rules.Fact) model.Rule {
	switch f.Kind {
	case rules.KindPermission:
		return rules.Permission(f.Entity, f.Role, f.Key, f.Perm)
	case rules.KindRole:
		return rules.RoleDecl(f.Entity, f.Role, f.Name, f.Created, f.Updated)
	case rules.KindMember:
		return rules.Member(f.Entity, f.User, f.Role)
	case rules.KindDefaultRole:
		return rules.DefaultRole(f.Entity, f.Role)
	case rules.KindOwner:
		return rules.Owner(f.Partner, f.Entity)
	}
	t.Fatalf("fact of unknown kind %d", f.Kind)
	return model.Rule{}
}

func rule(ptype string, values ...string) model.Rule {
	return model.Rule{PType: ptype, Values: values}
}

// TestRoundTrip: each encoder writes the rule the Casbin model expects, and
// Decode gives back the fact it was given.
func TestRoundTrip(t *testing.T) {
	const e, r, u, p = model.EntityID("e-1"), model.RoleID("r:1"), model.UserID("u@1"), model.PartnerID("p.1")
	payApprove := model.Key{Object: "payable", Action: "approve"}
	tests := []struct {
		name string
		rule model.Rule
		want rules.Fact
		line string // the rule as a line of a Casbin policy file
	}{
		{"permission allowed", rules.Permission(e, r, payApprove, model.Allowed),
			rules.Fact{Kind: rules.KindPermission, Entity: e, Role: r, Key: payApprove, Perm: model.Allowed},
			"p,role:r:1,entity:e-1,payable,approve,allowed"},
		{"permission allowed for own", rules.Permission(e, r, model.Key{Object: "receivable", Action: "read"}, model.AllowedForOwn),
			rules.Fact{Kind: rules.KindPermission, Entity: e, Role: r, Key: model.Key{Object: "receivable", Action: "read"}, Perm: model.AllowedForOwn},
			"p,role:r:1,entity:e-1,receivable,read,allowed_for_own"},
		{"role", rules.RoleDecl(e, r, "Accountant, senior", 1700000000000, 1700000000123),
			rules.Fact{Kind: rules.KindRole, Entity: e, Role: r, Name: "Accountant, senior", Created: 1700000000000, Updated: 1700000000123},
			`p2,role:r:1,entity:e-1,"Accountant, senior",1700000000000,1700000000123`},
		{"role with zero and negative times", rules.RoleDecl(e, r, "", 0, -1),
			rules.Fact{Kind: rules.KindRole, Entity: e, Role: r, Created: 0, Updated: -1},
			"p2,role:r:1,entity:e-1,,0,-1"},
		{"member with a role", rules.Member(e, u, r),
			rules.Fact{Kind: rules.KindMember, Entity: e, User: u, Role: r},
			"g,user:u@1,role:r:1,entity:e-1"},
		{"member with the default role", rules.Member(e, u, ""),
			rules.Fact{Kind: rules.KindMember, Entity: e, User: u},
			"g,user:u@1,default:e-1,entity:e-1"},
		{"default role", rules.DefaultRole(e, r),
			rules.Fact{Kind: rules.KindDefaultRole, Entity: e, Role: r},
			"g,default:e-1,role:r:1,entity:e-1"},
		{"owner", rules.Owner(p, e),
			rules.Fact{Kind: rules.KindOwner, Entity: e, Partner: p},
			"g2,partner:p.1,entity:e-1"},
		{"ids that look like prefixes", rules.Member("entity:x", "user:y", "default:z"),
			rules.Fact{Kind: rules.KindMember, Entity: "entity:x", User: "user:y", Role: "default:z"},
			"g,user:user:y,role:default:z,entity:entity:x"},
	}
	kinds := map[rules.Kind]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.String(); got != tt.line {
				t.Errorf("encoded as %s, want %s", got, tt.line)
			}
			got, err := rules.Decode(tt.rule)
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.rule, err)
			}
			if got != tt.want {
				t.Fatalf("Decode(%s) = %+v, want %+v", tt.rule, got, tt.want)
			}
			if again := encode(t, got); !again.Equal(tt.rule) {
				t.Fatalf("Decode(%s) encodes again as %s", tt.rule, again)
			}
			kinds[got.Kind] = true
		})
	}
	for k := rules.KindPermission; k <= rules.KindOwner; k++ {
		if !kinds[k] {
			t.Errorf("no round trip of kind %d", k)
		}
	}
}

// TestDecodeRejects: rules the encoders do not write are errors wrapping
// ErrMalformed that show the rule and say what was expected.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		rule model.Rule
		why  string // in the error
	}{
		{"unknown policy type", rule("p3", "role:r", "entity:e"), "unknown policy type"},
		{"no policy type", rule("", "role:r", "entity:e", "payable", "read", "allowed"), "unknown policy type"},
		{"no values", rule("p"), "want 5 values"},

		{"permission: 4 values", rule("p", "role:r", "entity:e", "payable", "allowed"), "want 5 values"},
		{"permission: 6 values", rule("p", "role:r", "entity:e", "payable", "read", "allowed", "x"), "want 5 values"},
		{"permission: no role prefix", rule("p", "r", "entity:e", "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"permission: empty role", rule("p", "role:", "entity:e", "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"permission: user as role", rule("p", "user:u", "entity:e", "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"permission: no entity prefix", rule("p", "role:r", "e", "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"permission: empty entity", rule("p", "role:r", "entity:", "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"permission: role id with a space", rule("p", "role:a b", "entity:e", "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"permission: entity id too long", rule("p", "role:r", "entity:"+strings.Repeat("e", 65), "payable", "read", "allowed"), "want role:<id>, entity:<id>"},
		{"link: non-ASCII user id", rule("g", "user:é", "role:r", "entity:e"), "want user:<id> or default:<entity> linked to a role"},
		{"permission: not_allowed", rule("p", "role:r", "entity:e", "payable", "read", "not_allowed"), "want allowed or allowed_for_own"},
		{"permission: unknown", rule("p", "role:r", "entity:e", "payable", "read", "Allowed"), "want allowed or allowed_for_own"},
		{"permission: empty", rule("p", "role:r", "entity:e", "payable", "read", ""), "want allowed or allowed_for_own"},

		{"role: 4 values", rule("p2", "role:r", "entity:e", "Admin", "1"), "want 5 values"},
		{"role: no role prefix", rule("p2", "r", "entity:e", "Admin", "1", "2"), "want role:<id>, entity:<id>, name, created, updated"},
		{"role: no entity prefix", rule("p2", "role:r", "partner:e", "Admin", "1", "2"), "want role:<id>, entity:<id>, name, created, updated"},
		{"role: created not a number", rule("p2", "role:r", "entity:e", "Admin", "yesterday", "2"), "created, updated"},
		{"role: updated empty", rule("p2", "role:r", "entity:e", "Admin", "1", ""), "created, updated"},
		{"role: updated overflows", rule("p2", "role:r", "entity:e", "Admin", "1", "9223372036854775808"), "created, updated"},
		{"role: created with a plus", rule("p2", "role:r", "entity:e", "Admin", "+1", "2"), "without + or leading zeros"},
		{"role: created with a leading zero", rule("p2", "role:r", "entity:e", "Admin", "01", "2"), "without + or leading zeros"},
		{"role: updated minus zero", rule("p2", "role:r", "entity:e", "Admin", "1", "-0"), "without + or leading zeros"},
		{"role: updated with spaces", rule("p2", "role:r", "entity:e", "Admin", "1", " 2"), "created, updated"},

		{"link: 2 values", rule("g", "user:u", "role:r"), "want 3 values"},
		{"link: 4 values", rule("g", "user:u", "role:r", "entity:e", "x"), "want 3 values"},
		{"link: no entity domain", rule("g", "user:u", "role:r", "e"), "want entity:<id> as domain"},
		{"link: empty entity domain", rule("g", "user:u", "role:r", "entity:"), "want entity:<id> as domain"},
		{"member: empty role", rule("g", "user:u", "role:", "entity:e"), "want role:<id> or default:<entity>"},
		{"member: user linked to a user", rule("g", "user:u", "user:v", "entity:e"), "want role:<id> or default:<entity>"},
		{"member: another entity's default", rule("g", "user:u", "default:f", "entity:e"), "want role:<id> or default:<entity>"},
		{"member: empty user", rule("g", "user:", "role:r", "entity:e"), "want user:<id> or default:<entity>"},
		{"default role: another entity's marker", rule("g", "default:f", "role:r", "entity:e"), "want user:<id> or default:<entity>"},
		{"default role: to the default", rule("g", "default:e", "default:e", "entity:e"), "want user:<id> or default:<entity>"},
		{"default role: empty role", rule("g", "default:e", "role:", "entity:e"), "want user:<id> or default:<entity>"},
		{"link: role linked to a role", rule("g", "role:a", "role:b", "entity:e"), "want user:<id> or default:<entity>"},
		{"link: partner", rule("g", "partner:p", "role:r", "entity:e"), "want user:<id> or default:<entity>"},

		{"owner: 3 values", rule("g2", "partner:p", "entity:e", "entity:e"), "want 2 values"},
		{"owner: 1 value", rule("g2", "partner:p"), "want 2 values"},
		{"owner: user as partner", rule("g2", "user:u", "entity:e"), "want partner:<id>, entity:<id>"},
		{"owner: empty partner", rule("g2", "partner:", "entity:e"), "want partner:<id>, entity:<id>"},
		{"owner: no entity prefix", rule("g2", "partner:p", "e"), "want partner:<id>, entity:<id>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := rules.Decode(tt.rule)
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want an error", tt.rule, f)
			}
			if !errors.Is(err, rules.ErrMalformed) {
				t.Errorf("Decode(%s) = %v, does not wrap ErrMalformed", tt.rule, err)
			}
			if f != (rules.Fact{}) {
				t.Errorf("Decode(%s) failed with the fact %+v", tt.rule, f)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.rule.String()) || !strings.Contains(msg, tt.why) {
				t.Errorf("Decode(%s) = %q, want the rule and %q", tt.rule, msg, tt.why)
			}
		})
	}
}

// FuzzDecode: Decode never panics; a rule it rejects is an error wrapping
// ErrMalformed; a rule it accepts is exactly what the encoders write for the
// fact, with non-empty identifiers.
func FuzzDecode(f *testing.F) {
	seeds := []model.Rule{
		rules.Permission("e-1", "r-1", model.Key{Object: "payable", Action: "approve"}, model.Allowed),
		rules.Permission("e-1", "r-1", model.Key{Object: "receivable", Action: "read"}, model.AllowedForOwn),
		rules.Permission("e-1", "r-1", model.Key{Object: "payable", Action: "read"}, model.NotAllowed),
		rules.RoleDecl("e-1", "r-1", "Role 1", 1700000000000, 1700000000000),
		rules.RoleDecl("e-1", "r-1", "a, \"b\"", -5, 0),
		rules.Member("e-1", "u-1", "r-1"),
		rules.Member("e-1", "u-1", ""),
		rules.DefaultRole("e-1", "r-1"),
		rules.Owner("p-1", "e-1"),
		rule("p2", "role:r", "entity:e", "Admin", "+1", "01"),
		rule("g", "user:u", "default:f", "entity:e"),
		rule("g", "default:e", "default:e", "entity:e"),
		rule("p3"),
	}
	for _, r := range seeds {
		v := append(r.Values, make([]string, 6)...)
		f.Add(r.PType, uint8(len(r.Values)), v[0], v[1], v[2], v[3], v[4], v[5])
	}
	f.Fuzz(func(t *testing.T, ptype string, n uint8, a, b, c, d, e, g string) {
		r := model.Rule{PType: ptype, Values: []string{a, b, c, d, e, g}[:n%7]}
		fact, err := rules.Decode(r)
		if err != nil {
			if !errors.Is(err, rules.ErrMalformed) {
				t.Fatalf("Decode(%s) = %v, does not wrap ErrMalformed", r, err)
			}
			if fact != (rules.Fact{}) {
				t.Fatalf("Decode(%s) failed with the fact %+v", r, fact)
			}
			return
		}
		if again := encode(t, fact); !again.Equal(r) {
			t.Fatalf("Decode(%s) = %+v, which encodes as %s", r, fact, again)
		}
		if fact.Entity == "" {
			t.Fatalf("Decode(%s) = %+v: no entity", r, fact)
		}
		switch fact.Kind {
		case rules.KindPermission:
			if fact.Role == "" || fact.Perm == model.NotAllowed || !fact.Perm.Valid() {
				t.Fatalf("Decode(%s) = %+v", r, fact)
			}
		case rules.KindRole, rules.KindDefaultRole:
			if fact.Role == "" {
				t.Fatalf("Decode(%s) = %+v: no role", r, fact)
			}
		case rules.KindMember:
			if fact.User == "" {
				t.Fatalf("Decode(%s) = %+v: no user", r, fact)
			}
		case rules.KindOwner:
			if fact.Partner == "" {
				t.Fatalf("Decode(%s) = %+v: no partner", r, fact)
			}
		}
	})
}
