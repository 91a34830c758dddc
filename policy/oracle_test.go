package policy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/casbin/casbin/v2"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// oracle is casbin.Enforce on the embedded model, loaded with an engine's
// rules: the specification the engine's index is checked against.
type oracle struct{ e *casbin.Enforcer }

func newOracle(t testing.TB, rules []model.Rule) oracle {
	t.Helper()
	m, err := model.NewCasbinModel()
	if err != nil {
		t.Fatal(err)
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if _, err := e.AddNamedPolicy(r.PType, r.Values); r.Section() == "p" && err != nil {
			t.Fatal(err)
		}
		if r.Section() == "g" {
			if _, err := e.AddNamedGroupingPolicy(r.PType, r.Values); err != nil {
				t.Fatal(err)
			}
		}
	}
	return oracle{e}
}

func (o oracle) enforce(t testing.TB, r policy.Request, owner string) bool {
	t.Helper()
	ok, err := o.e.Enforce(r.Subject.String(), "entity:"+string(r.Entity), string(r.Object), string(r.Action), owner)
	if err != nil {
		t.Fatalf("casbin.Enforce(%+v): %v", r, err)
	}
	return ok
}

// decide returns Casbin's answer to r, and its list scope (for actions other
// than create, whose scope Casbin does not distinguish).
func (o oracle) decide(t testing.TB, r policy.Request) (bool, model.Scope) {
	allowed := o.enforce(t, r, r.Owner.String())
	scope := model.ScopeNone
	switch {
	case o.enforce(t, r, "user:\x00someone-else"):
		scope = model.ScopeAll
	case o.enforce(t, r, r.Subject.String()):
		scope = model.ScopeOwn
	}
	return allowed, scope
}

// world drives an engine through random changes and makes random requests
// against it. Every random choice comes from one seeded source, so a world
// is reproducible from its seed.
type world struct {
	rng      *rand.Rand
	eng      *policy.Engine
	cat      *model.Catalog
	partners []model.PartnerID
	entities []model.EntityID
	roles    []model.RoleID // every role id ever made (some deleted)
	users    []model.UserID // every user id ever made (some removed)
	ctx      context.Context
}

var objectNames = []model.ObjectType{"payable", "receivable", "counterpart", "role", "entity_user", "tag"}
var actionNames = []model.Action{"read", "create", "update", "delete", "approve", "pay"}

// xid is the id numbered i of a world's partners, entities and users. Ids
// run from 2 to 64 bytes, with the number in the middle of runs of the same
// letter, so that the index's tables meet keys of every shape: short,
// one or two words, several words differing only inside, and longer than
// the tables keep inline.
func xid(i int) string {
	k := (i * 13) % 60
	return "x" + strings.Repeat("m", k/2) + strconv.Itoa(i) + strings.Repeat("z", k-k/2)
}

func randomCatalog(rng *rand.Rand) *model.Catalog {
	m := map[model.ObjectType][]model.Action{}
	for _, o := range objectNames[:1+rng.IntN(len(objectNames))] {
		n := 1 + rng.IntN(len(actionNames))
		perm := rng.Perm(len(actionNames))[:n]
		for _, i := range perm {
			m[o] = append(m[o], actionNames[i])
		}
	}
	c, err := model.NewCatalog(m)
	if err != nil {
		panic(err)
	}
	return c
}

func newWorld(t testing.TB, seed uint64, opts ...policy.Option) *world {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &world{rng: rng, cat: randomCatalog(rng), ctx: context.Background()}
	n := 0
	eng, err := policy.New(w.ctx, append([]policy.Option{policy.WithCatalog(w.cat),
		// Ids deliberately shared across kinds: a role, a user and a partner
		// may all be called "x3"; the encoding must keep them apart.
		policy.WithIDGenerator(func() string { n++; return xid(n) })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	for i := range 1 + rng.IntN(3) {
		w.partners = append(w.partners, model.PartnerID(xid(i+1)))
	}
	return w
}

func pick[T any](rng *rand.Rand, xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	return xs[rng.IntN(len(xs))]
}

func (w *world) randomPerms() model.Permissions {
	ps := model.Permissions{}
	for _, k := range w.cat.Keys() {
		switch w.rng.IntN(4) {
		case 0:
			ps[k] = model.Allowed
		case 1:
			ps[k] = model.AllowedForOwn
		}
	}
	return ps
}

// step makes one random change. Refusals (conflicts, not found) are part of
// the game: they must leave the policy as it was, which the comparison with
// Casbin then checks.
func (w *world) step() (string, error) {
	ctx, rng := w.ctx, w.rng
	ent := pick(rng, w.entities)
	switch op := rng.IntN(100); {
	case op < 8 || len(w.entities) == 0:
		id := model.EntityID(xid(len(w.entities) + 1))
		w.entities = append(w.entities, id)
		_, err := w.eng.CreateEntity(ctx, pick(rng, w.partners), id)
		return "create entity", err
	case op < 25:
		r, err := w.eng.CreateRole(ctx, ent, policy.RoleSpec{Name: fmt.Sprintf("role %d", rng.IntN(6)), Permissions: w.randomPerms()})
		if err == nil {
			w.roles = append(w.roles, r.ID)
		}
		return "create role", err
	case op < 33:
		_, err := w.eng.UpdateRole(ctx, ent, pick(rng, w.roles), policy.RoleUpdate{Permissions: w.randomPerms()})
		return "update role", err
	case op < 38:
		return "delete role", w.eng.DeleteRole(ctx, ent, pick(rng, w.roles))
	case op < 60:
		id := model.UserID(xid(len(w.users) + 1))
		w.users = append(w.users, id)
		var role model.RoleID
		if rng.IntN(2) == 0 {
			role = pick(rng, w.roles)
		}
		_, err := w.eng.AddUser(ctx, ent, id, role)
		return "add user", err
	case op < 72:
		var role model.RoleID
		if rng.IntN(3) > 0 {
			role = pick(rng, w.roles)
		}
		_, err := w.eng.SetUserRole(ctx, ent, pick(rng, w.users), role)
		return "set user role", err
	case op < 77:
		return "remove user", w.eng.RemoveUser(ctx, ent, pick(rng, w.users))
	case op < 92:
		var role model.RoleID
		if rng.IntN(4) > 0 {
			role = pick(rng, w.roles)
		}
		return "set default role", w.eng.SetDefaultRole(ctx, ent, role)
	default:
		return "remove entity", w.eng.RemoveEntity(ctx, ent)
	}
}

func (w *world) subject() model.Subject {
	switch w.rng.IntN(5) {
	case 0:
		return model.Partner(pick(w.rng, w.partners))
	case 1:
		return model.Partner(model.PartnerID(xid(w.rng.IntN(9) + 1)))
	default:
		return model.User(model.UserID(xid(w.rng.IntN(len(w.users)+2) + 1)))
	}
}

func (w *world) request() policy.Request {
	rng := w.rng
	k := pick(rng, w.cat.Keys())
	r := policy.Request{Subject: w.subject(), Entity: pick(rng, w.entities), Object: k.Object, Action: k.Action}
	if rng.IntN(8) == 0 {
		r.Entity = model.EntityID(xid(rng.IntN(9) + 1))
	}
	switch rng.IntN(4) {
	case 0: // a list: no owner
	case 1:
		r.Owner = r.Subject
	default:
		r.Owner = w.subject()
	}
	return r
}
