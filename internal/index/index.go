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
// The index follows the Casbin model's semantics for the rules the engine
// writes, and in part beyond them: roles are per entity (a role link and a
// permission meet only inside one entity), and a role's permission on an
// (object type, action) is the union of its "allowed" and "allowed_for_own"
// rules. It keeps one link where the engine writes one: a member's role, an
// entity's default role, an entity's owner. A store holding several (a user
// linked to two roles in one entity, two default roles, two owners: rules
// the engine never writes) gets the last one loaded, where Casbin would take
// their union: the index may then deny what Casbin allows, never the
// reverse.
package index

import (
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
	// (see memberVal), and role i's permissions are packed in rows
	// [i*span, (i+1)*span), each holding the role's id and rowSlots
	// catalog slots in one cache line: one row for catalogs of up to
	// rowSlots pairs (Monite's has 130). A decision thus reads the member's
	// record and one row. These fields fill the struct's first 64 bytes,
	// and the struct's size is a multiple of 64, so that they are one
	// cache line of the allocation (see TestEntityLayout).
	users  strtab.Table
	rows   []roleRow
	span   uint32 // rows per role
	nroles uint32
	stride uint32 // catalog slots per role

	ID      model.EntityID
	Partner model.PartnerID // "" when no partner owns it
	Default int32           // index in Roles of the default role, or NoRole
	Roles   []*Role         // by role index; nil where a role was removed
	RoleIdx map[model.RoleID]int32
	Users   map[model.UserID]int32 // role index, or DefaultMarker

	_ [48]byte // to a size of 192 bytes
}

// rowWords is the number of packed permission words in a role's row: 32
// slots of 2 bits to a word, so that the row (with the role's id) fills one
// 64-byte cache line.
const rowWords = 6

// rowSlots is the number of catalog slots a row holds.
const rowSlots = rowWords * 32

// roleRow is one role's hot data. Its size is a cache line, and a slice of
// rows starts on one (Go's size classes for multiples of 64 bytes are
// multiples of 64), so reading a row reads one line.
type roleRow struct {
	id model.RoleID // "" for a removed role
	w  [rowWords]uint64
}

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
// an entity without a default role. It does not allocate.
func (en *Entity) Member(u model.UserID) (role int32, viaDefault, member bool) {
	_, v, ok := en.users.Find(string(u))
	return int32(v&^viaBit) - 1, v >= viaBit, ok
}

// RolePerm returns role i's permission at catalog slot s and the role's
// id. An index or slot out of range (which a published snapshot does not
// give) yields NotAllowed and "": it fails closed.
func (en *Entity) RolePerm(i int32, s int) (model.Permission, model.RoleID) {
	k := uint(i)*uint(en.span) + uint(s)/rowSlots
	if uint(i) >= uint(en.nroles) || uint(s) >= uint(en.stride) || k >= uint(len(en.rows)) {
		return model.NotAllowed, ""
	}
	r := &en.rows[k]
	return model.Permission(r.w[uint(s)%rowSlots/32] >> (2 * (uint(s) % 32)) & 3), r.id
}

// compile rebuilds the hot path's view from the roles, users and default
// role.
func (en *Entity) compile(stride int) {
	span := max(1, (stride+rowSlots-1)/rowSlots)
	en.stride, en.span, en.nroles = uint32(stride), uint32(span), uint32(len(en.Roles))
	en.rows = make([]roleRow, len(en.Roles)*span)
	ub := strtab.New(len(en.Users))
	for u, i := range en.Users {
		i, via := en.resolve(i)
		ub.Set(string(u), memberVal(i, via))
	}
	en.users = *ub.Table()
	for i, r := range en.Roles {
		if r == nil {
			continue
		}
		rows := en.rows[i*span : (i+1)*span]
		for k := range rows {
			rows[k].id = r.ID
		}
		for s := range stride {
			rows[s/rowSlots].w[s%rowSlots/32] |= uint64(r.Perm(s)) << (2 * (s % 32))
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
func (en *Entity) UserRole(u model.UserID) (role *Role, viaDefault, member bool) {
	i, ok := en.Users[u]
	if !ok {
		return nil, false, false
	}
	i, viaDefault = en.resolve(i)
	if i == NoRole {
		return nil, viaDefault, true
	}
	return en.Roles[i], viaDefault, true
}

// resolve turns a member's stored role index into the index of the role
// that applies (NoRole when none does) and whether it is the default role.
func (en *Entity) resolve(i int32) (role int32, viaDefault bool) {
	if i == DefaultMarker {
		return en.Default, true
	}
	return i, false
}

func (en *Entity) empty() bool {
	return en.Partner == "" && en.Default == NoRole && len(en.RoleIdx) == 0 && len(en.Users) == 0
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
	userEnt sync.Map // model.UserID -> model.EntityID
	roleEnt sync.Map // model.RoleID -> model.EntityID
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

// UserEntity returns the entity user u is a member of.
func (ix *Index) UserEntity(u model.UserID) (model.EntityID, bool) {
	v, ok := ix.userEnt.Load(u)
	if !ok {
		return "", false
	}
	return v.(model.EntityID), true
}

// RoleEntity returns the entity role r belongs to.
func (ix *Index) RoleEntity(r model.RoleID) (model.EntityID, bool) {
	v, ok := ix.roleEnt.Load(r)
	if !ok {
		return "", false
	}
	return v.(model.EntityID), true
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
		en = &Entity{ID: e, Partner: old.Partner, Default: old.Default,
			Roles:   append([]*Role(nil), old.Roles...),
			RoleIdx: make(map[model.RoleID]int32, len(old.RoleIdx)),
			Users:   make(map[model.UserID]int32, len(old.Users))}
		for k, v := range old.RoleIdx {
			en.RoleIdx[k] = v
		}
		for k, v := range old.Users {
			en.Users[k] = v
		}
	} else {
		en = &Entity{ID: e, Default: NoRole, RoleIdx: map[model.RoleID]int32{}, Users: map[model.UserID]int32{}}
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
			en.Users[f.User] = DefaultMarker
		} else {
			en.Users[f.User] = b.role(en, f.Role, true)
		}
	case rules.KindDefaultRole:
		en.Default = b.role(en, f.Role, true)
	case rules.KindOwner:
		en.Partner = f.Partner
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
		if cur, ok := en.Users[f.User]; ok && cur == want {
			delete(en.Users, f.User)
		}
	case rules.KindDefaultRole:
		if i, ok := en.RoleIdx[f.Role]; ok && en.Default == i {
			en.Default = NoRole
		}
	case rules.KindOwner:
		if en.Partner == f.Partner {
			en.Partner = ""
		}
	}
	return true
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
		if role.Declared || role.nbits > 0 || en.Default == i {
			continue
		}
		if held == nil {
			held = make(map[int32]bool, len(en.Users))
			for _, ui := range en.Users {
				held[ui] = true
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
				b.ix.userEnt.CompareAndDelete(u, en.ID)
			}
		}
		for r := range old.RoleIdx {
			if _, ok := en.RoleIdx[r]; !ok {
				b.ix.roleEnt.CompareAndDelete(r, en.ID)
			}
		}
	}
	for u := range en.Users {
		if old == nil || !hasUser(old, u) {
			b.ix.userEnt.Store(u, en.ID)
		}
	}
	for r := range en.RoleIdx {
		if old == nil || !hasRole(old, r) {
			b.ix.roleEnt.Store(r, en.ID)
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
