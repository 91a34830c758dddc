// Package index is the compiled decision index: an immutable, lock-free view
// of the policies, organised for one decision in a few map lookups whatever
// the number of rules, entities or users.
//
// The index keeps one immutable snapshot per entity behind an atomic pointer,
// and an immutable map of entities behind another. A change copies only the
// snapshots of the entities it touches (and the entity map when entities
// appear or vanish) and publishes them with atomic stores, so readers never
// lock and never see half a change to an entity. Writers must be serialised
// by the caller.
//
// The index follows the Casbin model's semantics for every rule that
// decodes (package rules): roles are per entity (a role link and a
// permission meet only inside one entity), and a role's permission on an
// (object type, action) is the union of its "allowed" and "allowed_for_own"
// rules. Links are sets, as in Casbin: the engine writes one role link per
// member, one default role and one owner per entity, but a store may hold
// several (rules written by other tools). A member then reaches the union
// of its roles (and of the default roles, through a link without a role),
// and every owner may act as the entity's partner. The hot path keeps its
// two reads for a member that reaches at most one role; a member that
// reaches several is decided by [Entity.UnionPerm].
package index

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/internal/strtab"
	"github.com/gatehouse-authz/gatehouse/model"
)

// DefaultMarker is the role index of a member without an explicit role.
const DefaultMarker int32 = -1

// NoRole is the role index of an entity without a default role.
const NoRole int32 = -1

// Multi is the role index [Entity.Member] gives a member that reaches
// several roles: [Entity.UnionPerm] decides for it.
const Multi int32 = 1<<30 - 1

// Permission bits of a role's slot: which rules exist.
const (
	bitOwn uint8 = 1 << iota // an allowed_for_own rule exists
	bitAll                   // an allowed rule exists
)

// Role is one role of an entity, immutable once published.
type Role struct {
	ID       model.RoleID
	Name     string
	Declared bool  // a p2 rule exists
	Created  int64 // Unix milliseconds
	Updated  int64 // Unix milliseconds
	bits     []uint8
	nbits    int // number of set bits: rules of type p
}

// Perm returns the role's effective permission at catalog slot i.
func (r *Role) Perm(slot int) model.Permission {
	b := r.bits[slot]
	switch {
	case b&bitAll != 0:
		return model.Allowed
	case b&bitOwn != 0:
		return model.AllowedForOwn
	}
	return model.NotAllowed
}

// set records (on) or forgets (off) the role's rule granting p at slot.
// The role must be the batch's own copy.
func (r *Role) set(slot int, p model.Permission, on bool) {
	bit := bitOwn
	if p == model.Allowed {
		bit = bitAll
	}
	switch has := r.bits[slot]&bit != 0; {
	case on && !has:
		r.bits[slot] |= bit
		r.nbits++
	case !on && has:
		r.bits[slot] &^= bit
		r.nbits--
	}
}

// Rules returns the number of permission rules of the role.
func (r *Role) Rules() int { return r.nbits }

// Entity is one entity's snapshot, immutable once published.
type Entity struct {
	// The hot path's view, rebuilt when the snapshot is published and
	// placed first: users maps a member to the role that applies to it
	// (see memberVal); cols holds the roles' permissions by catalog slot,
	// cw words a slot, each word the permissions of colRoles roles, two
	// bits a role (role i at word s*cw + i/colRoles, bits 2*(i%colRoles));
	// ids holds the roles' ids by role index ("" where a role was
	// removed). An entity of at most colRoles roles thus has one word a
	// slot, and a decision reads the member's record and the slot's word
	// at once: the word's address does not wait for the member's role. The
	// fields those two reads need lie in the struct's first 64 bytes, and
	// its size is a multiple of 64, so that they are one cache line of the
	// allocation; the role's id, needed only once the member's record is
	// in, may come from the next (see TestEntityLayout).
	users strtab.Table
	cols  []uint32
	cw    uint32
	ids   []model.RoleID

	ID model.EntityID
	// Owners are the partners that own the entity, sorted; the engine
	// writes one. Never changed in place.
	Owners []model.PartnerID
	// Defaults are the indexes in Roles of the entity's default roles, in
	// the order they were linked; the engine writes at most one. Never
	// changed in place.
	Defaults []int32
	Roles    []*Role // by role index; nil where a role was removed
	RoleIdx  map[model.RoleID]int32
	// Users holds a member's first link: a role index, or DefaultMarker
	// for a link without a role (the default roles apply).
	Users map[model.UserID]int32
	// Extra holds a member's other links, for the rare member with several
	// (the engine writes one); nil when no member has any. Its slices are
	// never changed in place.
	Extra map[model.UserID][]int32
}

// Partner returns the entity's owner (the first of them, when rules made
// elsewhere give it several), or "" when no partner owns it.
func (en *Entity) Partner() model.PartnerID {
	if len(en.Owners) == 0 {
		return ""
	}
	return en.Owners[0]
}

// OwnedBy reports whether partner p owns the entity.
func (en *Entity) OwnedBy(p model.PartnerID) bool { return slices.Contains(en.Owners, p) }

// Default returns the index of the entity's default role (the first of
// them, when rules made elsewhere give it several), or NoRole.
func (en *Entity) Default() int32 {
	if len(en.Defaults) == 0 {
		return NoRole
	}
	return en.Defaults[0]
}

// IsDefault reports whether role i is a default role of the entity.
func (en *Entity) IsDefault(i int32) bool { return slices.Contains(en.Defaults, i) }

// Links returns user u's links: role indexes, and DefaultMarker for a link
// without a role; the first is Users[u]. It is nil for a non-member.
func (en *Entity) Links(u model.UserID) []int32 {
	first, ok := en.Users[u]
	if !ok {
		return nil
	}
	return append([]int32{first}, en.Extra[u]...)
}

// HolderOf returns a member linked to role i, if there is one.
func (en *Entity) HolderOf(i int32) (model.UserID, bool) {
	for u, j := range en.Users {
		if j == i {
			return u, true
		}
	}
	for u, more := range en.Extra {
		if slices.Contains(more, i) {
			return u, true
		}
	}
	return "", false
}

// colRoles is the number of roles whose permissions at a catalog slot
// share a word of an entity's columns, two bits each.
const colRoles = 16

// A member's value in the users table is the role that applies to it,
// resolved when the snapshot is built (a change of the default role builds
// a new snapshot): the role's index plus one (0 when no role applies), with
// viaBit set when it is the default role. A missing key's value, 0, thus
// decodes to NoRole as well.
const viaBit uint32 = 1 << 31

// memberVal encodes role index i (or NoRole) for the users table.
func memberVal(i int32, viaDefault bool) uint32 {
	v := uint32(i + 1) // NoRole is -1
	if viaDefault {
		v |= viaBit
	}
	return v
}

// Member returns the index of the role that applies to user u (its own, or
// the entity's default role: viaDefault), and whether u is a member at all.
// The role is NoRole for a non-member, and for a member without a role in
// an entity without a default role; it is Multi for a member that reaches
// several roles (see [Entity.UnionPerm]). It does not allocate.
func (en *Entity) Member(u model.UserID) (role int32, viaDefault, member bool) {
	_, v, ok := en.users.Find(string(u))
	return int32(v&^viaBit) - 1, v >= viaBit, ok
}

// RolePerm returns role i's permission at catalog slot s and the role's
// id. An index or slot out of range (which a published snapshot does not
// give) yields NotAllowed and "": it fails closed.
func (en *Entity) RolePerm(i int32, s int) (model.Permission, model.RoleID) {
	// With one word a slot, the word's index is the slot: the branch,
	// predicted, lets the read start before i is known. With several,
	// k < len(cols) holds exactly when s is in range, since i/colRoles <
	// cw for every i < len(ids).
	k := uint(s)
	if en.cw != 1 {
		k = uint(s)*uint(en.cw) + uint(i)/colRoles
	}
	if uint(i) >= uint(len(en.ids)) || k >= uint(len(en.cols)) {
		return model.NotAllowed, ""
	}
	return model.Permission(en.cols[k] >> (2 * (uint(i) % colRoles)) & 3), en.ids[i]
}

// reach is a role a member reaches: its index, and whether only through a
// link without a role (that is, as a default role).
type reach struct {
	i   int32
	via bool
}

// reached appends to buf (empty; a caller's array keeps it off the heap)
// the roles member u reaches through its links, each once: those it is
// linked to first (by role id), then the default roles it reaches only
// through a link without a role (by role id). It appends nothing for a
// non-member.
func (en *Entity) reached(u model.UserID, buf []reach) []reach {
	first, ok := en.Users[u]
	if !ok {
		return buf
	}
	more := en.Extra[u]
	viaDefault := false
	for k := -1; k < len(more); k++ {
		l := first
		if k >= 0 {
			l = more[k]
		}
		if l == DefaultMarker {
			viaDefault = true
		} else if !hasReach(buf, l) {
			buf = append(buf, reach{l, false})
		}
	}
	byID := func(a, b reach) int { return cmp.Compare(en.Roles[a.i].ID, en.Roles[b.i].ID) }
	slices.SortFunc(buf, byID)
	if viaDefault {
		n := len(buf)
		for _, d := range en.Defaults {
			if !hasReach(buf, d) {
				buf = append(buf, reach{d, true})
			}
		}
		slices.SortFunc(buf[n:], byID)
	}
	return buf
}

func hasReach(rs []reach, i int32) bool {
	for _, r := range rs {
		if r.i == i {
			return true
		}
	}
	return false
}

// UnionPerm decides for a member u that reaches several roles (Member gave
// Multi), as Casbin does: the best permission at catalog slot s among
// them. It returns that permission, the role that gives it and whether
// that role is reached only as a default role; when several give it, the
// first in the order of roles u is linked to, then default roles, each by
// role id. A slot out of range yields NotAllowed.
func (en *Entity) UnionPerm(u model.UserID, s int) (perm model.Permission, role model.RoleID, viaDefault bool) {
	best := -1
	var buf [8]reach
	for _, r := range en.reached(u, buf[:0]) {
		p, id := en.RolePerm(r.i, s)
		if int(p) > best {
			best, perm, role, viaDefault = int(p), p, id, r.via
		}
	}
	return perm, role, viaDefault
}

// memberValue is the users table's value for member u, whose first link
// is first.
func (en *Entity) memberValue(u model.UserID, first int32) uint32 {
	if _, more := en.Extra[u]; !more {
		switch {
		case first != DefaultMarker:
			return memberVal(first, false)
		case len(en.Defaults) <= 1:
			return memberVal(en.Default(), true)
		}
		return memberVal(Multi, false)
	}
	var buf [8]reach
	switch rs := en.reached(u, buf[:0]); len(rs) {
	case 0: // links without a role only, and no default role
		return memberVal(NoRole, true)
	case 1:
		return memberVal(rs[0].i, rs[0].via)
	}
	return memberVal(Multi, false)
}

// compile rebuilds the hot path's view from the roles, users and default
// roles.
func (en *Entity) compile(stride int) {
	cw := max(1, (len(en.Roles)+colRoles-1)/colRoles)
	en.cw = uint32(cw)
	en.cols = make([]uint32, stride*cw)
	en.ids = make([]model.RoleID, len(en.Roles))
	ub := strtab.New(len(en.Users))
	for u, first := range en.Users {
		ub.Set(string(u), en.memberValue(u, first))
	}
	en.users = *ub.Table()
	for i, r := range en.Roles {
		if r == nil {
			continue
		}
		en.ids[i] = r.ID
		for s := range stride {
			en.cols[s*cw+i/colRoles] |= uint32(r.Perm(s)) << (2 * (i % colRoles))
		}
	}
}

// Role returns the role with id r, or nil.
func (en *Entity) Role(r model.RoleID) *Role {
	i, ok := en.RoleIdx[r]
	if !ok {
		return nil
	}
	return en.Roles[i]
}

// UserRole returns the role user u reaches (its own or the default), whether
// it came from the default role, and whether u is a member at all. The role
// is nil when u is a member without a role in an entity without a default.
// For a member that reaches several roles (through rules the engine does
// not write), it is the first in the order of [Entity.UnionPerm].
func (en *Entity) UserRole(u model.UserID) (role *Role, viaDefault, member bool) {
	if _, ok := en.Users[u]; !ok {
		return nil, false, false
	}
	var buf [8]reach
	rs := en.reached(u, buf[:0])
	if len(rs) == 0 {
		return nil, true, true
	}
	return en.Roles[rs[0].i], rs[0].via, true
}

func (en *Entity) empty() bool {
	return len(en.Owners) == 0 && len(en.Defaults) == 0 && len(en.RoleIdx) == 0 && len(en.Users) == 0
}

// link adds link l (a role index or DefaultMarker) to member u.
func (en *Entity) link(u model.UserID, l int32) {
	first, ok := en.Users[u]
	switch {
	case !ok:
		en.Users[u] = l
	case first == l || slices.Contains(en.Extra[u], l):
	default:
		if en.Extra == nil {
			en.Extra = map[model.UserID][]int32{}
		}
		more := en.Extra[u]
		en.Extra[u] = append(more[:len(more):len(more)], l)
	}
}

// unlink removes link l from member u; u stays a member while it has
// another link.
func (en *Entity) unlink(u model.UserID, l int32) {
	first, ok := en.Users[u]
	more := en.Extra[u]
	switch {
	case !ok:
		return
	case first == l && len(more) == 0:
		delete(en.Users, u)
		return
	case first == l:
		en.Users[u], more = more[0], more[1:]
	default:
		j := slices.Index(more, l)
		if j < 0 {
			return
		}
		more = slices.Concat(more[:j], more[j+1:])
	}
	if len(more) == 0 {
		delete(en.Extra, u)
	} else {
		en.Extra[u] = more
	}
}

type cell struct{ snap atomic.Pointer[Entity] }

// entMap is the table of entities, rebuilt when entities appear or vanish;
// a change to an existing entity swaps only its cell's snapshot. The cell
// of an entity sits at the index of the id table's slot that holds its id,
// so a lookup reads the slot and the cell at once (the cell's address does
// not wait for the slot's contents). A rebuilt table copies the cells'
// snapshots: a reader still holding the table before it sees the state
// before the change, as if it had decided a moment earlier.
type entMap struct {
	ids   strtab.Table // entity ids; the values are unused
	cells []cell       // by slot of ids; empty slots have nil snapshots
}

func (m *entMap) get(e string) (*cell, bool) {
	i, _, ok := m.ids.Find(e)
	if !ok || i >= len(m.cells) {
		return nil, false
	}
	return &m.cells[i], true
}

// Index is the compiled policy. Reads are lock-free and safe for concurrent
// use with one writer at a time.
type Index struct {
	cat     *model.Catalog
	ents    atomic.Pointer[entMap]
	userEnt idEnts // the entities of each user
	roleEnt idEnts // the entities of each role
}

// New returns an empty index over catalog c.
func New(c *model.Catalog) *Index {
	ix := &Index{cat: c}
	ix.ents.Store(&entMap{})
	return ix
}

// Catalog returns the catalog the index was built for.
func (ix *Index) Catalog() *model.Catalog { return ix.cat }

// Entity returns the snapshot of entity e, or nil if no rule names it.
func (ix *Index) Entity(e model.EntityID) *Entity {
	m := ix.ents.Load()
	if i, _, ok := m.ids.Find(string(e)); ok && uint(i) < uint(len(m.cells)) {
		return m.cells[i].snap.Load()
	}
	return nil
}

// Entities calls fn for every entity's snapshot, in no particular order.
func (ix *Index) Entities(fn func(*Entity) bool) {
	cells := ix.ents.Load().cells
	for i := range cells {
		if en := cells[i].snap.Load(); en != nil && !fn(en) {
			return
		}
	}
}

// Pack copies the hot data of every entity (its users table, permission
// columns and role ids) into three allocations, one of each, and
// publishes the copies: the reads
// of a decision then fall in a few pages rather than anywhere in the heap.
// The caller serialises it with changes.
func (ix *Index) Pack() {
	m := ix.ents.Load()
	var words, cols, ids int
	for i := range m.cells {
		if en := m.cells[i].snap.Load(); en != nil {
			words += en.users.Size()
			cols += len(en.cols)
			ids += len(en.ids)
		}
	}
	wslab := make([]uint64, words)
	cslab := make([]uint32, cols)
	islab := make([]model.RoleID, ids)
	for i := range m.cells {
		en := m.cells[i].snap.Load()
		if en == nil {
			continue
		}
		ne := *en
		n := en.users.Size()
		ne.users = en.users.Relocate(wslab[:n:n])
		wslab = wslab[n:]
		k := copy(cslab, en.cols)
		ne.cols, cslab = cslab[:k:k], cslab[k:]
		k = copy(islab, en.ids)
		ne.ids, islab = islab[:k:k], islab[k:]
		m.cells[i].snap.Store(&ne)
	}
}

// UserEntity returns the entity user u is a member of (the first by id,
// when rules made elsewhere make it a member of several).
func (ix *Index) UserEntity(u model.UserID) (model.EntityID, bool) {
	return ix.userEnt.first(string(u))
}

// RoleEntity returns the entity role r belongs to (the first by id, when
// rules made elsewhere use its id in several).
func (ix *Index) RoleEntity(r model.RoleID) (model.EntityID, bool) {
	return ix.roleEnt.first(string(r))
}

// UserEntities returns every entity user u is a member of (one, unless
// rules made elsewhere make it a member of several).
func (ix *Index) UserEntities(u model.UserID) []model.EntityID {
	return ix.userEnt.all(string(u))
}

// RoleEntities returns every entity that uses role id r (one, unless rules
// made elsewhere use it in several).
func (ix *Index) RoleEntities(r model.RoleID) []model.EntityID {
	return ix.roleEnt.all(string(r))
}

// idEnts maps an id (a user's, a role's) to the entities that have it: a
// model.EntityID, or for the rare id in several entities (rules the engine
// does not write) a sorted []model.EntityID, replaced and never changed in
// place. Reads are lock-free; the index's single writer makes the writes.
type idEnts struct{ m sync.Map }

func (x *idEnts) all(id string) []model.EntityID {
	switch v, _ := x.m.Load(id); v := v.(type) {
	case model.EntityID:
		return []model.EntityID{v}
	case []model.EntityID:
		return v
	}
	return nil
}

func (x *idEnts) first(id string) (model.EntityID, bool) {
	switch v, _ := x.m.Load(id); v := v.(type) {
	case model.EntityID:
		return v, true
	case []model.EntityID:
		return v[0], true
	}
	return "", false
}

func (x *idEnts) add(id string, e model.EntityID) {
	cur := x.all(id)
	i, found := slices.BinarySearch(cur, e)
	switch {
	case found:
	case len(cur) == 0:
		x.m.Store(id, e)
	default:
		x.m.Store(id, slices.Insert(slices.Clone(cur), i, e))
	}
}

func (x *idEnts) remove(id string, e model.EntityID) {
	cur := x.all(id)
	i, found := slices.BinarySearch(cur, e)
	switch {
	case !found:
	case len(cur) == 1:
		x.m.Delete(id)
	case len(cur) == 2:
		x.m.Store(id, cur[1-i])
	default:
		x.m.Store(id, slices.Delete(slices.Clone(cur), i, i+1))
	}
}

// Apply removes then adds the given facts and publishes the result. Facts
// about (object type, action) pairs outside the catalog are skipped and
// counted. The caller serialises calls to Apply.
func (ix *Index) Apply(remove, add []rules.Fact) (skipped int) {
	b := ix.Begin()
	for _, f := range remove {
		if !b.Remove(f) {
			skipped++
		}
	}
	for _, f := range add {
		if !b.Add(f) {
			skipped++
		}
	}
	b.Publish()
	return skipped
}

// Batch collects changes to publish together. Use it from one goroutine.
type Batch struct {
	ix     *Index
	work   map[model.EntityID]*Entity
	owned  map[*Role]bool
	slotOf func(model.Key) (int, bool)
}

// Begin starts a batch of changes.
func (ix *Index) Begin() *Batch {
	return &Batch{ix: ix, work: map[model.EntityID]*Entity{}, owned: map[*Role]bool{}, slotOf: ix.cat.Slot}
}

// entity returns the batch's working copy of e, creating it if needed.
func (b *Batch) entity(e model.EntityID) *Entity {
	if en := b.work[e]; en != nil {
		return en
	}
	var en *Entity
	if old := b.ix.Entity(e); old != nil {
		en = &Entity{ID: e, Owners: old.Owners, Defaults: old.Defaults,
			Roles:   append([]*Role(nil), old.Roles...),
			RoleIdx: maps.Clone(old.RoleIdx), Users: maps.Clone(old.Users), Extra: maps.Clone(old.Extra)}
	} else {
		en = &Entity{ID: e, RoleIdx: map[model.RoleID]int32{}, Users: map[model.UserID]int32{}}
	}
	b.work[e] = en
	return en
}

// role returns the index of a writable copy of role r in en, creating the
// role if create is set (else -1 when it does not exist).
func (b *Batch) role(en *Entity, r model.RoleID, create bool) int32 {
	i, ok := en.RoleIdx[r]
	if !ok {
		if !create {
			return -1
		}
		i = int32(len(en.Roles))
		nr := &Role{ID: r, bits: make([]uint8, b.ix.cat.Len())}
		en.Roles = append(en.Roles, nr)
		en.RoleIdx[r] = i
		b.owned[nr] = true
		return i
	}
	if old := en.Roles[i]; !b.owned[old] {
		nr := *old
		nr.bits = append([]uint8(nil), old.bits...)
		en.Roles[i] = &nr
		b.owned[&nr] = true
	}
	return i
}

// Add applies one added fact. It returns false if the fact names an
// (object type, action) outside the catalog.
func (b *Batch) Add(f rules.Fact) bool {
	en := b.entity(f.Entity)
	switch f.Kind {
	case rules.KindPermission:
		slot, ok := b.slotOf(f.Key)
		if !ok {
			return false
		}
		en.Roles[b.role(en, f.Role, true)].set(slot, f.Perm, true)
	case rules.KindRole:
		r := en.Roles[b.role(en, f.Role, true)]
		r.Declared, r.Name, r.Created, r.Updated = true, f.Name, f.Created, f.Updated
	case rules.KindMember:
		if f.Role == "" {
			en.link(f.User, DefaultMarker)
		} else {
			en.link(f.User, b.role(en, f.Role, true))
		}
	case rules.KindDefaultRole:
		if i := b.role(en, f.Role, true); !en.IsDefault(i) {
			en.Defaults = append(en.Defaults[:len(en.Defaults):len(en.Defaults)], i)
		}
	case rules.KindOwner:
		if !en.OwnedBy(f.Partner) {
			owners := append(en.Owners[:len(en.Owners):len(en.Owners)], f.Partner)
			slices.Sort(owners)
			en.Owners = owners
		}
	}
	return true
}

// Remove applies one removed fact. It returns false if the fact names an
// (object type, action) outside the catalog.
func (b *Batch) Remove(f rules.Fact) bool {
	en := b.entity(f.Entity)
	switch f.Kind {
	case rules.KindPermission:
		slot, ok := b.slotOf(f.Key)
		if !ok {
			return false
		}
		if i := b.role(en, f.Role, false); i >= 0 {
			en.Roles[i].set(slot, f.Perm, false)
		}
	case rules.KindRole:
		if i := b.role(en, f.Role, false); i >= 0 {
			r := en.Roles[i]
			if r.Declared && r.Name == f.Name && r.Created == f.Created && r.Updated == f.Updated {
				r.Declared, r.Name, r.Created, r.Updated = false, "", 0, 0
			}
		}
	case rules.KindMember:
		want := DefaultMarker
		if f.Role != "" {
			i, ok := en.RoleIdx[f.Role]
			if !ok {
				return true
			}
			want = i
		}
		en.unlink(f.User, want)
	case rules.KindDefaultRole:
		if i, ok := en.RoleIdx[f.Role]; ok && en.IsDefault(i) {
			en.Defaults = slices.DeleteFunc(slices.Clone(en.Defaults), func(j int32) bool { return j == i })
		}
	case rules.KindOwner:
		if en.OwnedBy(f.Partner) {
			en.Owners = slices.DeleteFunc(slices.Clone(en.Owners), func(p model.PartnerID) bool { return p == f.Partner })
		}
	}
	return true
}

// View returns the batch's working copy of entity e as Publish would
// publish it, and whether the batch changed e at all: nil (and true) when
// its changes leave e empty. The copy is the batch's own, never published
// by View, and changes with the batch's later Add and Remove calls; it is
// for reading what a batch of changes makes of an entity before the
// batch, or another one with the same changes, is published.
func (b *Batch) View(e model.EntityID) (en *Entity, changed bool) {
	en, changed = b.work[e]
	if !changed {
		return nil, false
	}
	b.gc(en)
	en.compile(b.ix.cat.Len())
	if en.empty() {
		return nil, true
	}
	return en, true
}

// Publish makes the batch's changes visible to readers.
func (b *Batch) Publish() {
	if len(b.work) == 0 {
		return
	}
	top := b.ix.ents.Load()
	added := map[string]*Entity{} // entities that appear
	gone := map[string]bool{}     // entities that vanish
	for id, en := range b.work {
		b.gc(en)
		en.compile(b.ix.cat.Len())
		c, ok := top.get(string(id))
		var old *Entity
		if ok {
			old = c.snap.Load()
		}
		b.syncLookups(old, en)
		switch {
		case en.empty():
			if ok {
				gone[string(id)] = true
			}
		case ok:
			c.snap.Store(en)
		default:
			added[string(id)] = en
		}
	}
	if len(added) > 0 || len(gone) > 0 {
		var keep []*Entity
		for i := range top.cells {
			if en := top.cells[i].snap.Load(); en != nil && !gone[string(en.ID)] {
				keep = append(keep, en)
			}
		}
		for _, en := range added {
			keep = append(keep, en)
		}
		nb := strtab.New(len(keep))
		for _, en := range keep {
			nb.Set(string(en.ID), 0)
		}
		next := &entMap{ids: *nb.Table()}
		next.cells = make([]cell, next.ids.Slots())
		for _, en := range keep {
			i, _, _ := next.ids.Find(string(en.ID))
			next.cells[i].snap.Store(en)
		}
		b.ix.ents.Store(next)
	}
	b.work = map[model.EntityID]*Entity{}
	b.owned = map[*Role]bool{}
}

// gc drops roles that no rule mentions any more.
func (b *Batch) gc(en *Entity) {
	var held map[int32]bool
	for r, i := range en.RoleIdx {
		role := en.Roles[i]
		if role.Declared || role.nbits > 0 || en.IsDefault(i) {
			continue
		}
		if held == nil {
			held = make(map[int32]bool, len(en.Users))
			for _, ui := range en.Users {
				held[ui] = true
			}
			for _, more := range en.Extra {
				for _, ui := range more {
					held[ui] = true
				}
			}
		}
		if !held[i] {
			delete(en.RoleIdx, r)
			en.Roles[i] = nil
		}
	}
	for len(en.Roles) > 0 && en.Roles[len(en.Roles)-1] == nil {
		en.Roles = en.Roles[:len(en.Roles)-1]
	}
}

// syncLookups updates the user and role lookups from old to en.
func (b *Batch) syncLookups(old, en *Entity) {
	if old != nil {
		for u := range old.Users {
			if _, ok := en.Users[u]; !ok {
				b.ix.userEnt.remove(string(u), en.ID)
			}
		}
		for r := range old.RoleIdx {
			if _, ok := en.RoleIdx[r]; !ok {
				b.ix.roleEnt.remove(string(r), en.ID)
			}
		}
	}
	for u := range en.Users {
		if old == nil || !hasUser(old, u) {
			b.ix.userEnt.add(string(u), en.ID)
		}
	}
	for r := range en.RoleIdx {
		if old == nil || !hasRole(old, r) {
			b.ix.roleEnt.add(string(r), en.ID)
		}
	}
}

func hasUser(en *Entity, u model.UserID) bool { _, ok := en.Users[u]; return ok }
func hasRole(en *Entity, r model.RoleID) bool { _, ok := en.RoleIdx[r]; return ok }

// Grants returns the permission rules the role has at slot i: none, one, or
// (only in hand-made data) both allowed_for_own and allowed.
func (r *Role) Grants(slot int) []model.Permission {
	switch r.bits[slot] {
	case bitOwn:
		return []model.Permission{model.AllowedForOwn}
	case bitAll:
		return []model.Permission{model.Allowed}
	case bitOwn | bitAll:
		return []model.Permission{model.AllowedForOwn, model.Allowed}
	}
	return nil
}
