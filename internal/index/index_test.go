package index

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
)

// TestMemberAndRolePerm checks the hot path's two reads on one entity:
// which role a user reaches (own, default, none) and that role's packed
// permission at each catalog slot, including slots in the second packed
// word and requests out of range, which fail closed.
func TestMemberAndRolePerm(t *testing.T) {
	cat := model.DefaultCatalog()
	ix := New(cat)
	last := cat.Key(cat.Len() - 1) // in the last packed word
	first := cat.Key(0)
	e := model.EntityID("e1")
	ix.Apply(nil, []rules.Fact{
		{Kind: rules.KindOwner, Entity: e, Partner: "p1"},
		{Kind: rules.KindRole, Entity: e, Role: "clerk", Name: "Clerk"},
		{Kind: rules.KindRole, Entity: e, Role: "viewer", Name: "Viewer"},
		{Kind: rules.KindPermission, Entity: e, Role: "clerk", Key: first, Perm: model.Allowed},
		{Kind: rules.KindPermission, Entity: e, Role: "clerk", Key: last, Perm: model.AllowedForOwn},
		{Kind: rules.KindPermission, Entity: e, Role: "viewer", Key: last, Perm: model.Allowed},
		{Kind: rules.KindDefaultRole, Entity: e, Role: "viewer"},
		{Kind: rules.KindMember, Entity: e, User: "alice", Role: "clerk"},
		{Kind: rules.KindMember, Entity: e, User: "bob"}, // no role: the default
	})
	en := ix.Entity(e)
	if en == nil {
		t.Fatal("entity not found")
	}
	slot := func(k model.Key) int {
		s, ok := cat.Slot(k)
		if !ok {
			t.Fatalf("%v not in catalog", k)
		}
		return s
	}
	tests := []struct {
		user        model.UserID
		key         model.Key
		wantMember  bool
		wantDefault bool
		wantRole    model.RoleID
		wantPerm    model.Permission
	}{
		{"alice", first, true, false, "clerk", model.Allowed},
		{"alice", last, true, false, "clerk", model.AllowedForOwn},
		{"alice", cat.Key(1), true, false, "clerk", model.NotAllowed},
		{"bob", last, true, true, "viewer", model.Allowed},
		{"bob", first, true, true, "viewer", model.NotAllowed},
		{"carol", first, false, false, "", model.NotAllowed},
	}
	for _, tc := range tests {
		i, viaDefault, member := en.Member(tc.user)
		if member != tc.wantMember || viaDefault != tc.wantDefault {
			t.Errorf("Member(%s) = %d, %v, %v; want member %v, default %v", tc.user, i, viaDefault, member, tc.wantMember, tc.wantDefault)
			continue
		}
		if !member {
			if i != NoRole {
				t.Errorf("Member(%s): role %d for a non-member", tc.user, i)
			}
			continue
		}
		p, role := en.RolePerm(i, slot(tc.key))
		if p != tc.wantPerm || role != tc.wantRole {
			t.Errorf("%s on %v: RolePerm = %v, %q; want %v, %q", tc.user, tc.key, p, role, tc.wantPerm, tc.wantRole)
		}
	}
	i, _, _ := en.Member("alice")
	for _, c := range []struct {
		role int32
		slot int
	}{{i, -1}, {i, cat.Len()}, {-1, 0}, {int32(len(en.Roles)), 0}} {
		if p, role := en.RolePerm(c.role, c.slot); p != model.NotAllowed || role != "" {
			t.Errorf("RolePerm(%d, %d) = %v, %q; want NotAllowed, \"\"", c.role, c.slot, p, role)
		}
	}

	// The default role is read at decision time: changing it moves bob.
	ix.Apply([]rules.Fact{{Kind: rules.KindDefaultRole, Entity: e, Role: "viewer"}},
		[]rules.Fact{{Kind: rules.KindDefaultRole, Entity: e, Role: "clerk"}})
	en = ix.Entity(e)
	i, viaDefault, _ := en.Member("bob")
	if p, role := en.RolePerm(i, slot(first)); !viaDefault || role != "clerk" || p != model.Allowed {
		t.Errorf("after the default changed, bob has %v via %q (default %v); want allowed via clerk", p, role, viaDefault)
	}
}

// TestRolePermEverySlot checks the permission columns against the roles
// they are built from, at every slot, for entities of up to colRoles roles
// (one word a slot) and of more (several), with removed roles among them.
func TestRolePermEverySlot(t *testing.T) {
	for _, tc := range []struct{ slots, roles int }{
		{3, 1}, {130, 3}, {130, colRoles - 1}, {130, colRoles}, {130, colRoles + 1},
		{7, 2*colRoles + 5}, {583, 3*colRoles + 7},
	} {
		objects := map[model.ObjectType][]model.Action{}
		for i := range tc.slots {
			o := model.ObjectType(fmt.Sprintf("obj%03d", i/4))
			objects[o] = append(objects[o], model.Action(fmt.Sprintf("act%d", i%4)))
		}
		cat, err := model.NewCatalog(objects)
		if err != nil {
			t.Fatal(err)
		}
		ix := New(cat)
		e := model.EntityID("e1")
		var facts []rules.Fact
		var roles []model.RoleID
		for ri := range tc.roles {
			r := model.RoleID(fmt.Sprintf("r%d", ri))
			roles = append(roles, r)
			facts = append(facts, rules.Fact{Kind: rules.KindRole, Entity: e, Role: r, Name: string(r)})
			for s := range cat.Len() {
				if p := model.Permission((s*7 + ri*5) % 3); p != model.NotAllowed {
					facts = append(facts, rules.Fact{Kind: rules.KindPermission, Entity: e, Role: r, Key: cat.Key(s), Perm: p})
				}
			}
		}
		ix.Apply(nil, facts)
		// Remove every third role: its index stays, with no id and no
		// permission.
		var gone []rules.Fact
		for ri := 2; ri < tc.roles; ri += 3 {
			r := roles[ri]
			gone = append(gone, rules.Fact{Kind: rules.KindRole, Entity: e, Role: r, Name: string(r)})
			for s := range cat.Len() {
				if p := model.Permission((s*7 + ri*5) % 3); p != model.NotAllowed {
					gone = append(gone, rules.Fact{Kind: rules.KindPermission, Entity: e, Role: r, Key: cat.Key(s), Perm: p})
				}
			}
		}
		before := ix.Entity(e)
		ix.Apply(gone, nil)
		en := ix.Entity(e)
		if want := (tc.roles + colRoles - 1) / colRoles; int(en.cw) != want || len(en.cols) != want*cat.Len() {
			t.Errorf("%+v: %d words a slot, %d in all; want %d a slot", tc, en.cw, len(en.cols), want)
		}
		for ri, r := range roles {
			i := before.RoleIdx[r]
			for s := range cat.Len() {
				want, wantID := model.Permission((s*7+ri*5)%3), r
				if ri >= 2 && ri%3 == 2 {
					want, wantID = model.NotAllowed, ""
				}
				if p, id := en.RolePerm(i, s); p != want || id != wantID {
					t.Fatalf("%+v: RolePerm(%s, %d) = %v, %q; want %v, %q", tc, r, s, p, id, want, wantID)
				}
			}
			if p, id := en.RolePerm(i, cat.Len()); p != model.NotAllowed || id != "" {
				t.Errorf("%+v: RolePerm past the catalog = %v, %q", tc, p, id)
			}
		}
		for _, i := range []int32{-1, int32(tc.roles), int32(len(en.ids)), Multi} {
			if p, id := en.RolePerm(i, 0); p != model.NotAllowed || id != "" {
				t.Errorf("%+v: RolePerm(%d, 0) = %v, %q; want no permission", tc, i, p, id)
			}
		}
	}
}

// TestEntityLayout checks what the hot path's cache behaviour rests on: the
// fields a decision needs for its two reads at once (the member's record
// and the slot's permission word) lie in the first 64 bytes of an Entity,
// whose size is a multiple of 64 (so the allocator's size class places
// every Entity on a cache-line boundary, and those fields in one line),
// and the role ids' slice starts there.
func TestEntityLayout(t *testing.T) {
	var en Entity
	if end := unsafe.Offsetof(en.cw) + unsafe.Sizeof(en.cw); end > 64 {
		t.Errorf("the fields of the two reads end at %d, past 64", end)
	}
	if got := unsafe.Offsetof(en.ids); got >= 64 {
		t.Errorf("the role ids' slice starts at %d, past the first line", got)
	}
	if got := unsafe.Sizeof(en); got%64 != 0 {
		t.Errorf("sizeof(Entity) = %d, not a multiple of 64", got)
	}
	for range 100 {
		p := &Entity{}
		heldEntities = append(heldEntities, p) // on the heap, as published ones
		if a := uintptr(unsafe.Pointer(p)); a%64 != 0 {
			t.Fatalf("an Entity at %#x, not on a 64-byte boundary", a)
		}
	}
}

var heldEntities []*Entity

// TestLinkSets checks links of one kind held several times, which Casbin
// unions (the engine writes one of each; other tools may write more): a
// member's roles, its link without a role, default roles and owners. It
// checks which role decides, removal of one link of several, and that a
// role held only by a member's second link survives.
func TestLinkSets(t *testing.T) {
	cat := model.DefaultCatalog()
	a, b := cat.Key(0), cat.Key(1)
	sa, _ := cat.Slot(a)
	sb, _ := cat.Slot(b)
	e := model.EntityID("e1")
	member := func(u model.UserID, r model.RoleID) rules.Fact {
		return rules.Fact{Kind: rules.KindMember, Entity: e, User: u, Role: r}
	}
	dflt := func(r model.RoleID) rules.Fact { return rules.Fact{Kind: rules.KindDefaultRole, Entity: e, Role: r} }
	owner := func(p model.PartnerID) rules.Fact { return rules.Fact{Kind: rules.KindOwner, Entity: e, Partner: p} }
	ix := New(cat)
	ix.Apply(nil, []rules.Fact{
		owner("p2"), owner("p1"),
		{Kind: rules.KindPermission, Entity: e, Role: "r-own", Key: a, Perm: model.AllowedForOwn},
		{Kind: rules.KindPermission, Entity: e, Role: "r-all", Key: a, Perm: model.Allowed},
		{Kind: rules.KindPermission, Entity: e, Role: "r-b", Key: b, Perm: model.Allowed},
		{Kind: rules.KindPermission, Entity: e, Role: "r-b2", Key: b, Perm: model.Allowed},
		member("two", "r-own"), member("two", "r-all"),
		member("mixed", "r-own"), member("mixed", ""),
		member("plain", ""),
		member("same", "r-b"), member("same", ""),
		member("one", "r-b2"), member("one", ""),
		dflt("r-b"), dflt("r-b2"),
	})
	en := ix.Entity(e)
	if en.Partner() != "p1" || !en.OwnedBy("p2") || !en.OwnedBy("p1") || en.OwnedBy("p3") {
		t.Errorf("owners %v, Partner() %q", en.Owners, en.Partner())
	}
	tests := []struct {
		user     model.UserID
		slot     int
		wantPerm model.Permission
		wantRole model.RoleID
		wantVia  bool
	}{
		{"two", sa, model.Allowed, "r-all", false},         // the better of two own roles
		{"two", sb, model.NotAllowed, "r-all", false},      // none: the first by id
		{"mixed", sa, model.AllowedForOwn, "r-own", false}, // its role, before the defaults
		{"mixed", sb, model.Allowed, "r-b", true},          // a default role (the first by id of the two)
		{"plain", sb, model.Allowed, "r-b", true},          // two default roles
		{"same", sb, model.Allowed, "r-b", false},          // its role is also a default: its own
	}
	for _, tc := range tests {
		i, via, ok := en.Member(tc.user)
		if !ok {
			t.Fatalf("%s is not a member", tc.user)
		}
		var p model.Permission
		var role model.RoleID
		if i == Multi {
			p, role, via = en.UnionPerm(tc.user, tc.slot)
		} else {
			p, role = en.RolePerm(i, tc.slot)
		}
		if p != tc.wantPerm || role != tc.wantRole || via != tc.wantVia {
			t.Errorf("%s at slot %d: %v by %q (default %v); want %v by %q (default %v)", tc.user, tc.slot, p, role, via, tc.wantPerm, tc.wantRole, tc.wantVia)
		}
	}

	// Removing one link of several keeps the others; the role held only by
	// a second link stays.
	ix.Apply([]rules.Fact{member("two", "r-own"), owner("p1"), dflt("r-b")}, nil)
	en = ix.Entity(e)
	if got := en.Links("two"); len(got) != 1 || en.Roles[got[0]].ID != "r-all" {
		t.Errorf("links of two after removing r-own: %v", got)
	}
	if en.Partner() != "p2" || en.OwnedBy("p1") {
		t.Errorf("owners after removing p1: %v", en.Owners)
	}
	if i, via, _ := en.Member("plain"); i == Multi || !via || en.Roles[i].ID != "r-b2" {
		t.Errorf("plain after r-b stopped being a default: role %d, via %v", i, via)
	}
	if i, via, _ := en.Member("one"); i == Multi || via || en.Roles[i].ID != "r-b2" {
		t.Errorf("one, reaching r-b2 directly and as the default: role %d, via %v; want r-b2 on the fast path, its own", i, via)
	}
	ix.Apply([]rules.Fact{member("mixed", "r-own")}, nil)
	if en = ix.Entity(e); en.Role("r-own") == nil {
		t.Errorf("r-own, with permissions, was dropped")
	}
	ix.Apply([]rules.Fact{{Kind: rules.KindPermission, Entity: e, Role: "r-all", Key: a, Perm: model.Allowed}}, []rules.Fact{member("mixed", "r-all")})
	ix.Apply([]rules.Fact{member("two", "r-all")}, nil)
	en = ix.Entity(e)
	if _, ok := en.Users["two"]; ok {
		t.Errorf("two is still a member after its last link went")
	}
	if u, ok := en.HolderOf(en.RoleIdx["r-all"]); !ok || u != "mixed" {
		t.Errorf("r-all, held by mixed's second link, has holder %q, %v", u, ok)
	}
}

// TestPack checks that packing the entities' hot data into slabs changes
// no answer, and that the packed columns and role ids lie back to back
// (strtab's TestRelocate checks the users tables' side).
func TestPack(t *testing.T) {
	cat := model.DefaultCatalog()
	ix := New(cat)
	var facts []rules.Fact
	for e := range 20 {
		ent := model.EntityID(fmt.Sprintf("e%d", e))
		facts = append(facts, rules.Fact{Kind: rules.KindOwner, Entity: ent, Partner: "p"})
		for r := range 1 + e%4 {
			role := model.RoleID(fmt.Sprintf("r%d-%d", e, r))
			facts = append(facts, rules.Fact{Kind: rules.KindPermission, Entity: ent, Role: role, Key: cat.Key((e + r) % cat.Len()), Perm: model.Permission(1 + r%2)})
			for u := range 3 + e {
				if u%4 == r {
					facts = append(facts, rules.Fact{Kind: rules.KindMember, Entity: ent, User: model.UserID(fmt.Sprintf("u%d-%d", e, u)), Role: role})
				}
			}
		}
	}
	ix.Apply(nil, facts)
	type answer struct {
		role        int32
		via, member bool
		perm        model.Permission
		roleID      model.RoleID
	}
	answers := func() map[string]answer {
		out := map[string]answer{}
		for e := range 20 {
			en := ix.Entity(model.EntityID(fmt.Sprintf("e%d", e)))
			for u := range 3 + e + 2 { // two non-members too
				uid := model.UserID(fmt.Sprintf("u%d-%d", e, u))
				i, via, ok := en.Member(uid)
				for s := range cat.Len() {
					p, id := en.RolePerm(i, s)
					out[fmt.Sprint(e, uid, s)] = answer{i, via, ok, p, id}
				}
			}
		}
		return out
	}
	before := answers()
	ix.Pack()
	if after := answers(); len(after) != len(before) {
		t.Fatalf("%d answers after Pack, %d before", len(after), len(before))
	} else {
		for k, a := range before {
			if after[k] != a {
				t.Fatalf("%s: %+v after Pack, %+v before", k, after[k], a)
			}
		}
	}
	var prev, prevIDs uintptr
	ix.Entities(func(en *Entity) bool {
		cols := uintptr(unsafe.Pointer(unsafe.SliceData(en.cols)))
		if prev != 0 && cols != prev {
			t.Errorf("entity %s: columns not right after the previous entity's", en.ID)
		}
		prev = cols + uintptr(len(en.cols))*unsafe.Sizeof(uint32(0))
		ids := uintptr(unsafe.Pointer(unsafe.SliceData(en.ids)))
		if prevIDs != 0 && ids != prevIDs {
			t.Errorf("entity %s: role ids not right after the previous entity's", en.ID)
		}
		prevIDs = ids + uintptr(len(en.ids))*unsafe.Sizeof(model.RoleID(""))
		return true
	})
}

// TestIDsInSeveralEntities: a user or role id used in several entities
// (rules the engine does not write) stays known while any entity has it,
// and UserEntity and RoleEntity give the first entity by id.
func TestIDsInSeveralEntities(t *testing.T) {
	ix := New(model.DefaultCatalog())
	member := func(e model.EntityID) rules.Fact {
		return rules.Fact{Kind: rules.KindMember, Entity: e, User: "u", Role: "r"}
	}
	for _, e := range []model.EntityID{"e2", "e3", "e1"} { // one batch each
		ix.Apply(nil, []rules.Fact{member(e)})
	}
	for _, step := range []struct {
		remove model.EntityID
		want   model.EntityID // "" when no entity has the ids any more
	}{
		{"", "e1"}, {"e1", "e2"}, {"e3", "e2"}, {"e2", ""},
	} {
		if step.remove != "" {
			ix.Apply([]rules.Fact{member(step.remove)}, nil)
		}
		ue, uok := ix.UserEntity("u")
		re, rok := ix.RoleEntity("r")
		if ue != step.want || re != step.want || uok != (step.want != "") || rok != (step.want != "") {
			t.Fatalf("after removing u from %q: UserEntity %q, %v; RoleEntity %q, %v; want %q", step.remove, ue, uok, re, rok, step.want)
		}
	}
}

// TestBatchView: a batch's View shows an entity as the batch's changes
// leave it (decisions included), nil for one they empty, and nothing for
// one they do not touch, while the published index stays as it was.
func TestBatchView(t *testing.T) {
	cat := model.DefaultCatalog()
	k := cat.Key(0)
	s, _ := cat.Slot(k)
	ix := New(cat)
	ix.Apply(nil, []rules.Fact{
		{Kind: rules.KindOwner, Entity: "e1", Partner: "p1"},
		{Kind: rules.KindOwner, Entity: "e2", Partner: "p1"},
		{Kind: rules.KindRole, Entity: "e1", Role: "r", Name: "R"},
		{Kind: rules.KindMember, Entity: "e1", User: "u"},
	})
	b := ix.Begin()
	if en, changed := b.View("e1"); en != nil || changed {
		t.Fatalf("untouched entity: %v, %v", en, changed)
	}
	b.Add(rules.Fact{Kind: rules.KindPermission, Entity: "e1", Role: "r", Key: k, Perm: model.Allowed})
	b.Add(rules.Fact{Kind: rules.KindDefaultRole, Entity: "e1", Role: "r"})
	en, changed := b.View("e1")
	if en == nil || !changed {
		t.Fatalf("changed entity: %v, %v", en, changed)
	}
	i, viaDefault, member := en.Member("u")
	if p, role := en.RolePerm(i, s); !member || !viaDefault || role != "r" || p != model.Allowed {
		t.Fatalf("view: u reaches %q (%v, default %v, member %v); want r, allowed, by default", role, p, viaDefault, member)
	}
	if pub := ix.Entity("e1"); len(pub.Defaults) != 0 || pub.Role("r").Perm(s) != model.NotAllowed {
		t.Fatal("View published the batch's changes")
	}
	b.Remove(rules.Fact{Kind: rules.KindOwner, Entity: "e2", Partner: "p1"})
	if en, changed := b.View("e2"); en != nil || !changed {
		t.Fatalf("emptied entity: %v, %v; want nil, true", en, changed)
	}
	if ix.Entity("e2") == nil {
		t.Fatal("View removed e2 from the index")
	}
}
