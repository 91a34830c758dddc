package model_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/gatehouse-authz/gatehouse/model"
)

// TestSlotOfLengthWraps: a string that starts at a catalog name's bytes and
// is 65536 bytes longer (plain slicing, no unsafe) is not that name: the
// lookup by address compares whole lengths.
func TestSlotOfLengthWraps(t *testing.T) {
	cfg := strings.Repeat("payable", 20000) // e.g. a config file's contents
	obj := model.ObjectType(cfg[:7])        // "payable", a substring of it
	c, err := model.NewCatalog(map[model.ObjectType][]model.Action{obj: {"read"}})
	if err != nil {
		t.Fatal(err)
	}
	k := c.Key(0)
	long := model.ObjectType(cfg[:7+1<<16]) // same address, 65543 bytes
	if s, ok := c.SlotOf(long, k.Action); ok {
		t.Errorf("SlotOf(<%d-byte object>, %q) = %d, true; want false", len(long), k.Action, s)
	}
	if err := c.Check(long, k.Action); err == nil {
		t.Errorf("Check(<%d-byte object>, read) = nil", len(long))
	}
	// The action's length spills into the object's 16 bits: an empty
	// object at the catalog's address plus a long action.
	act := "read" + strings.Repeat("x", 7<<16)
	c2, _ := model.NewCatalog(map[model.ObjectType][]model.Action{obj: {model.Action(act[:4])}})
	k2 := c2.Key(0)
	if s, ok := c2.SlotOf(k2.Object[:0], model.Action(act[:4+7<<16])); ok {
		t.Errorf("SlotOf(\"\", <long action>) = %d, true; want false", s)
	}
}

// TestSlotOfZeroCatalog: a zero Catalog finds nothing, without a panic.
func TestSlotOfZeroCatalog(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("SlotOf on a zero Catalog panics: %v", r)
		}
	}()
	var c model.Catalog
	if _, ok := c.SlotOf("payable", "read"); ok {
		t.Error("found")
	}
}

// FuzzSlotOfAlias: catalogs whose names are substrings of one buffer (so names
// share addresses: prefixes of one another, equal texts at other
// addresses), looked up with substrings of that buffer at any offset and
// length, copies, and empty strings; SlotOf must agree with a lookup by
// content.
func FuzzSlotOfAlias(f *testing.F) {
	f.Add(uint64(1), []byte("ab"), uint16(10), uint8(3))
	f.Add(uint64(2), []byte("payable_read"), uint16(40), uint8(0))
	f.Fuzz(func(t *testing.T, seed uint64, pat []byte, nq uint16, mode uint8) {
		if len(pat) == 0 {
			pat = []byte{0}
		}
		const alpha = "ab_0"
		var sb strings.Builder
		for sb.Len() < 3<<16 {
			for _, b := range pat {
				sb.WriteByte(alpha[int(b)%len(alpha)])
			}
		}
		buf := sb.String()
		rng := rand.New(rand.NewPCG(seed, uint64(mode)))
		sub := func(maxLen int) string {
			p := rng.IntN(len(buf) - maxLen)
			return buf[p : p+1+rng.IntN(maxLen)]
		}
		objs := map[model.ObjectType][]model.Action{}
		var names []string
		for range 1 + rng.IntN(40) {
			o := model.ObjectType(sub(20))
			seen := map[model.Action]bool{}
			for _, a := range objs[o] {
				seen[a] = true
			}
			for range 1 + rng.IntN(5) {
				a := model.Action(sub(20))
				if !seen[a] {
					seen[a] = true
					objs[o] = append(objs[o], a)
				}
			}
		}
		c, err := model.NewCatalog(objs)
		if err != nil {
			t.Skip(err)
		}
		in := map[model.Key]int{}
		for i, k := range c.Keys() {
			in[k] = i
			names = append(names, string(k.Object), string(k.Action))
		}
		// alias returns a string at a catalog name's address plus off,
		// of any length within buf.
		alias := func() string {
			n := names[rng.IntN(len(names))]
			base := int(uintptr(unsafe.Pointer(unsafe.StringData(n))) - uintptr(unsafe.Pointer(unsafe.StringData(buf))))
			p := base + rng.IntN(3) // 0..2 bytes in
			if p > len(buf) {
				p = len(buf)
			}
			var l int
			switch rng.IntN(4) {
			case 0:
				l = rng.IntN(len(buf) - p + 1)
			case 1:
				l = len(n) - (p - base) + rng.IntN(3) - 1
			default: // lengths equal modulo 1<<16
				l = len(n) + rng.IntN(3)<<16 + rng.IntN(3) - 1
			}
			l = max(0, min(l, len(buf)-p))
			return buf[p : p+l]
		}
		pick := func() string {
			switch rng.IntN(5) {
			case 0:
				return names[rng.IntN(len(names))]
			case 1:
				return strings.Clone(names[rng.IntN(len(names))])
			case 2:
				return ""
			case 3:
				n := names[rng.IntN(len(names))]
				return unsafe.String(unsafe.StringData(n), 0)
			}
			return alias()
		}
		for range int(nq%200) + 1 {
			o, a := model.ObjectType(pick()), model.Action(pick())
			want, wok := in[model.Key{Object: o, Action: a}]
			if got, ok := c.SlotOf(o, a); ok != wok || ok && got != want {
				t.Fatalf("SlotOf(<%d bytes %.20q>, <%d bytes %.20q>) = %d, %v; want %d, %v", len(o), o, len(a), a, got, ok, want, wok)
			}
		}
	})
}
