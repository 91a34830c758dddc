package model

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/gatehouse-authz/gatehouse/internal/strtab"
)

// ObjectType is a kind of object an API manages: "payable", "receivable",
// "counterpart", "entity_user", "role", ...
type ObjectType string

// Action is something done to an object: "read", "create", "update",
// "delete", "approve", "pay", ...
type Action string

// Key is one (object type, action) pair of a catalog.
type Key struct {
	Object ObjectType
	Action Action
}

// String returns "object.action".
func (k Key) String() string { return string(k.Object) + "." + string(k.Action) }

// MarshalText encodes k as "object.action", so that a [Permissions] map
// encodes to JSON as an object keyed by those strings. Names that no
// catalog accepts (empty, or with characters other than [a-z0-9_]) are an
// error wrapping [ErrInvalidKey].
func (k Key) MarshalText() ([]byte, error) {
	if !validName(string(k.Object)) || !validName(string(k.Action)) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, k.String())
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes "object.action" (two names of [a-z0-9_], as
// catalogs have). Any other text is an error wrapping [ErrInvalidKey] and
// leaves k as it was. Whether the catalog has the key is for
// [Permissions.Validate] to say.
func (k *Key) UnmarshalText(b []byte) error {
	o, a, ok := strings.Cut(string(b), ".")
	if !ok || !validName(o) || !validName(a) {
		return fmt.Errorf("%w: %q: want object.action, each 1 to %d of [a-z0-9_]", ErrInvalidKey, b, maxName)
	}
	*k = Key{Object: ObjectType(o), Action: Action(a)}
	return nil
}

// Catalog says which actions each object type has. A Catalog is immutable and
// safe for concurrent use. Each (object type, action) has a dense slot number
// in [0, Len()), which the engine uses to index role permissions.
type Catalog struct {
	objects []ObjectType
	actions map[ObjectType][]Action
	keys    []Key
	table   []keyEntry // the hot-path lookup: (object, action) -> slot; len a power of two
	mask    uint64
	byAddr  []addrEntry // the first lookup: by the names' addresses; len(table) entries
	shift   uint        // 64 - log2(len(byAddr))
}

// addrEntry is one entry of the catalog's table by address: a pair whose
// names are the catalog's own strings (the same bytes, not only the same
// text) is found by their addresses and lengths, without reading or
// hashing a byte of them. Callers that pass the catalog's strings (the
// middleware does, and Go string literals share their bytes with the
// default catalog's) thus skip the key table. A string at a name's address
// with the name's length is the name: the catalog keeps the bytes alive, so
// no other bytes come to sit at their address, and Go strings never change.
// (A longer or shorter string at the same address is not, hence the
// lengths.)
type addrEntry struct {
	o, a unsafe.Pointer // nil in an empty entry
	lens uint64         // addrLens; ^0 (no pair's) in an empty entry
	slot int32
}

// addrLens packs the lengths of a pair's names for addrEntry.lens. A length
// over maxName, which no name of a catalog has, packs as maxName+1: so a
// string longer than any name (however long) never matches an entry.
func addrLens(o ObjectType, a Action) uint64 {
	return min(uint64(len(o)), maxName+1)<<32 | min(uint64(len(a)), maxName+1)
}

// addrHash hashes the addresses of a pair's names; its high bits index
// byAddr.
func addrHash(o, a unsafe.Pointer) uint64 {
	return (uint64(uintptr(o))*0x9e3779b97f4a7c15 ^ uint64(uintptr(a))) * 0xbf58476d1ce4e5b9
}

// keyEntry is one entry of the catalog's open-addressing key table: the
// pair's names as [strtab.Words], their lengths and the pair's slot. For
// names of at most 16 bytes (nearly all), equal words and lengths mean
// equal names, so a lookup compares five words and no strings.
type keyEntry struct {
	o, a keyWords
	lens uint32 // len(object) << 16 | len(action), each at most 64
	slot int32  // -1 for an empty entry
}

type keyWords struct{ lo, hi uint64 }

// emptyEntry marks a free entry of the key table: its lengths are no
// pair's (names have at most 64 bytes), so it matches no lookup.
var emptyEntry = keyEntry{lens: ^uint32(0), slot: -1}

// maxName is the longest object type or action name of a catalog.
const maxName = 64

// pairKey returns the words and lengths of (o, a), and their hash.
func pairKey(o ObjectType, a Action) (ow, aw keyWords, lens uint32, h uint64) {
	ow.lo, ow.hi = strtab.Words(string(o))
	aw.lo, aw.hi = strtab.Words(string(a))
	lens = uint32(len(o))<<16 | uint32(len(a))
	return ow, aw, lens, pairHash(ow, aw, lens)
}

func pairHash(ow, aw keyWords, lens uint32) uint64 {
	return strtab.Mix(ow.lo ^ bits.RotateLeft64(ow.hi, 23) ^ (aw.lo^bits.RotateLeft64(aw.hi, 41)^uint64(lens))*0xe7037ed1a0b428db)
}

// NewCatalog builds a catalog from object types and their actions. Names are
// 1 to 64 bytes of lowercase ASCII letters, digits and underscores; an object
// type needs at least one action; duplicates are refused. Errors wrap
// [ErrInvalidCatalog].
func NewCatalog(objects map[ObjectType][]Action) (*Catalog, error) {
	if len(objects) == 0 {
		return nil, fmt.Errorf("%w: no object types", ErrInvalidCatalog)
	}
	for o, acts := range objects {
		if !validName(string(o)) {
			return nil, fmt.Errorf("%w: object type %q: want 1 to 64 of [a-z0-9_]", ErrInvalidCatalog, o)
		}
		if len(acts) == 0 {
			return nil, fmt.Errorf("%w: object type %q has no actions", ErrInvalidCatalog, o)
		}
		seen := make(map[Action]bool, len(acts))
		for _, a := range acts {
			if !validName(string(a)) {
				return nil, fmt.Errorf("%w: action %q of %q: want 1 to 64 of [a-z0-9_]", ErrInvalidCatalog, a, o)
			}
			if seen[a] {
				return nil, fmt.Errorf("%w: action %q of %q appears twice", ErrInvalidCatalog, a, o)
			}
			seen[a] = true
		}
	}
	return buildCatalog(objects), nil
}

// buildCatalog builds a catalog from valid input.
func buildCatalog(objects map[ObjectType][]Action) *Catalog {
	c := &Catalog{actions: make(map[ObjectType][]Action, len(objects))}
	for o := range objects {
		c.objects = append(c.objects, o)
	}
	sort.Slice(c.objects, func(i, j int) bool { return c.objects[i] < c.objects[j] })
	for _, o := range c.objects {
		c.actions[o] = slices.Clone(objects[o])
		for _, a := range c.actions[o] {
			c.keys = append(c.keys, Key{o, a})
		}
	}
	// At most a quarter full: a lookup of a pair in the catalog reads one
	// entry, nearly always.
	size := 16
	for size < 4*len(c.keys) {
		size *= 2
	}
	c.table, c.mask = make([]keyEntry, size), uint64(size-1)
	for i := range c.table {
		c.table[i] = emptyEntry
	}
	for slot, k := range c.keys {
		ow, aw, lens, h := pairKey(k.Object, k.Action)
		i := h & c.mask
		for c.table[i].slot >= 0 {
			i = (i + 1) & c.mask
		}
		c.table[i] = keyEntry{o: ow, a: aw, lens: lens, slot: int32(slot)}
	}
	c.byAddr, c.shift = make([]addrEntry, size), uint(64-bits.TrailingZeros(uint(size)))
	for i := range c.byAddr {
		c.byAddr[i].lens = ^uint64(0) // so that ("", "") matches no empty entry
	}
	for slot, k := range c.keys {
		op, ap := unsafe.Pointer(unsafe.StringData(string(k.Object))), unsafe.Pointer(unsafe.StringData(string(k.Action)))
		i := addrHash(op, ap) >> c.shift
		for c.byAddr[i].o != nil {
			i = (i + 1) & c.mask
		}
		c.byAddr[i] = addrEntry{o: op, a: ap, lens: addrLens(k.Object, k.Action), slot: int32(slot)}
	}
	return c
}

func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// DefaultCatalog returns Monite's permission catalog (the object types and
// actions of Monite's RBAC schemas, API version 2024-05-25): 31 object types
// with create, read, update and delete, and payables with pay, approve,
// cancel, submit, create_from_mail and reopen besides. Each call returns the
// same immutable value.
func DefaultCatalog() *Catalog { return defaultCatalog() }

var defaultCatalog = sync.OnceValue(func() *Catalog {
	crud := []Action{"create", "read", "update", "delete"}
	m := map[ObjectType][]Action{
		"payable": append(slices.Clone(crud), "pay", "approve", "cancel", "submit", "create_from_mail", "reopen"),
	}
	for _, o := range []ObjectType{
		"approval_policy", "approval_request", "comment", "counterpart", "counterpart_vat_id",
		"delivery_note", "entity", "entity_bank_account", "entity_user", "entity_vat_ids", "export",
		"mailbox", "ocr_task", "onboarding", "overdue_reminder", "payables_purchase_order",
		"payment_record", "payment_reminder", "person", "product", "project", "receipt",
		"receivable", "reconciliation", "role", "tag", "todo_task", "todo_task_mute",
		"transaction", "workflow",
	} {
		m[o] = crud
	}
	return buildCatalog(m) // valid by construction; TestDefaultCatalog checks it against Monite's file
})

// ParseCatalogJSON builds a catalog from a JSON object of object types to
// arrays of actions, e.g. {"payable": ["read", "approve"]}. Errors, of JSON
// syntax or of content (see [NewCatalog]), wrap [ErrInvalidCatalog].
func ParseCatalogJSON(b []byte) (*Catalog, error) {
	var m map[ObjectType][]Action
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCatalog, err)
	}
	return NewCatalog(m)
}

// MarshalJSON encodes the catalog in the form [ParseCatalogJSON] reads.
func (c *Catalog) MarshalJSON() ([]byte, error) { return json.Marshal(c.actions) }

// Len returns the number of (object type, action) pairs.
func (c *Catalog) Len() int { return len(c.keys) }

// Slot returns the dense slot number of k, and whether k is in the catalog.
func (c *Catalog) Slot(k Key) (int, bool) { return c.SlotOf(k.Object, k.Action) }

// SlotOf returns the dense slot number of (o, a), and whether the pair is in
// the catalog. It does not allocate. It is fastest when o and a are the
// catalog's own strings (those of [Catalog.Key], or Go string literals for
// the default catalog): it then finds the pair by their addresses.
func (c *Catalog) SlotOf(o ObjectType, a Action) (int, bool) {
	op, ap := unsafe.Pointer(unsafe.StringData(string(o))), unsafe.Pointer(unsafe.StringData(string(a)))
	if i := addrHash(op, ap) >> c.shift; i < uint64(len(c.byAddr)) { // not so in a zero Catalog
		al := addrLens(o, a)
		// The table is at most a quarter full: the probe meets an empty
		// entry.
		for e := &c.byAddr[i]; e.o != nil; e = &c.byAddr[i] {
			if e.o == op && e.a == ap && e.lens == al {
				return int(e.slot), true
			}
			i = (i + 1) & c.mask
		}
	}
	return c.slotOf(o, a)
}

// slotOf is SlotOf in the key table: for names that are not the
// catalog's own strings.
func (c *Catalog) slotOf(o ObjectType, a Action) (int, bool) {
	if len(o) > strtab.WordsExact || len(a) > strtab.WordsExact {
		return c.slotOfLong(o, a)
	}
	// Names of at most 16 bytes are whole in their words, so equal words
	// and lengths are equal names.
	ow, aw, lens, h := pairKey(o, a)
	for i := h & c.mask; i < uint64(len(c.table)); i = (i + 1) & c.mask {
		e := &c.table[i]
		if e.o == ow && e.a == aw && e.lens == lens {
			return int(e.slot), true
		}
		if e.slot < 0 {
			break
		}
	}
	return 0, false
}

// slotOfLong is SlotOf for a pair with a name of more than 16 bytes: the
// words hold only its ends, so a match is confirmed on the names.
func (c *Catalog) slotOfLong(o ObjectType, a Action) (int, bool) {
	if len(o) > maxName || len(a) > maxName {
		return 0, false // longer than any name of a catalog
	}
	ow, aw, lens, h := pairKey(o, a)
	for i := h & c.mask; i < uint64(len(c.table)); i = (i + 1) & c.mask {
		e := &c.table[i]
		if e.slot < 0 {
			break
		}
		if e.o == ow && e.a == aw && e.lens == lens {
			if k := &c.keys[e.slot]; k.Object == o && k.Action == a {
				return int(e.slot), true
			}
		}
	}
	return 0, false
}

// Key returns the pair at slot i (0 <= i < Len()).
func (c *Catalog) Key(i int) Key { return c.keys[i] }

// Keys returns every pair, in slot order (object types sorted, actions in
// the order given).
func (c *Catalog) Keys() []Key { return slices.Clone(c.keys) }

// ObjectTypes returns the object types, sorted.
func (c *Catalog) ObjectTypes() []ObjectType { return slices.Clone(c.objects) }

// Actions returns the actions of object type o (nil if o is unknown).
func (c *Catalog) Actions(o ObjectType) []Action { return slices.Clone(c.actions[o]) }

// HasObject reports whether o is in the catalog.
func (c *Catalog) HasObject(o ObjectType) bool { _, ok := c.actions[o]; return ok }

// Check returns nil if (o, a) is in the catalog, else an error wrapping
// [ErrUnknownObject] or [ErrUnknownAction].
func (c *Catalog) Check(o ObjectType, a Action) error {
	if _, ok := c.SlotOf(o, a); ok {
		return nil
	}
	if !c.HasObject(o) {
		return fmt.Errorf("%w %q", ErrUnknownObject, o)
	}
	return fmt.Errorf("%w %q for object type %q", ErrUnknownAction, a, o)
}

// Permissions maps (object type, action) pairs to what a role grants; a
// missing pair is [NotAllowed].
type Permissions map[Key]Permission

// Grant is one entry of a [Permissions] set, as a flat value.
type Grant struct {
	Object     ObjectType
	Action     Action
	Permission Permission
}

// Validate checks every pair against the catalog and every value.
func (ps Permissions) Validate(c *Catalog) error {
	for _, k := range ps.sortedKeys() {
		if err := c.Check(k.Object, k.Action); err != nil {
			return err
		}
		if p := ps[k]; !p.Valid() {
			return fmt.Errorf("%w: %s: %d", ErrInvalidPermission, k, uint8(p))
		}
	}
	return nil
}

// Grants returns the entries that are not [NotAllowed], sorted by object type
// and action.
func (ps Permissions) Grants() []Grant {
	out := make([]Grant, 0, len(ps))
	for _, k := range ps.sortedKeys() {
		if p := ps[k]; p != NotAllowed {
			out = append(out, Grant{k.Object, k.Action, p})
		}
	}
	return out
}

// Clone returns a copy of ps without its NotAllowed entries.
func (ps Permissions) Clone() Permissions {
	out := make(Permissions, len(ps))
	for k, p := range ps {
		if p != NotAllowed {
			out[k] = p
		}
	}
	return out
}

func (ps Permissions) sortedKeys() []Key {
	keys := make([]Key, 0, len(ps))
	for k := range ps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Object != keys[j].Object {
			return keys[i].Object < keys[j].Object
		}
		return keys[i].Action < keys[j].Action
	})
	return keys
}
