// Package strtab is an immutable hash table from strings to numbers, built
// once and then read without locks by any number of goroutines.
//
// It exists for the decision hot path: an open-addressing table with linear
// probing over one flat slice, so that a lookup is one hash, one probe run
// over adjacent slots and one key comparison, with no pointer chasing
// through directories and groups as in a general-purpose map. A table is
// rebuilt, not changed, when its keys change.
package strtab

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"unsafe"
)

// seed is shared by every table of the process and drawn at random, so that
// keys chosen to collide on one process do not collide on another.
var seed = rand.Uint64() | 1

type slot struct {
	key string
	tag uint32 // high bits of the hash, 0 for an empty slot
	val uint32
}

// Table maps strings to uint32 values (indexes into the caller's slices).
// The zero Table is empty and usable. A Table is immutable once built.
type Table struct {
	slots []slot // len is 0 or a power of two
	mask  uint64
	n     int
}

// Hash returns the hash of key used by every table.
// It reads the key eight bytes at a time and mixes with 64-bit
// multiplications (the scheme of wyhash), which for the short ids of the hot
// path costs a fraction of a general-purpose hash call.
func Hash(key string) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	n := len(key)
	h := seed ^ uint64(n)*k0
	if n == 0 {
		return mix(h, k2)
	}
	// A read-only view of the key's bytes; little-endian loads compile to
	// single (unaligned) loads where the machine has them.
	b := unsafe.Slice(unsafe.StringData(key), n)
	le := binary.LittleEndian
	switch {
	case n > 16:
		i := 0
		for ; n-i > 8; i += 8 {
			h = mix(h^le.Uint64(b[i:]), k1)
		}
		// the last 8 bytes, overlapping the block before when n is not a
		// multiple of 8
		h = mix(h^le.Uint64(b[n-8:]), k2)
	case n > 8:
		h = mix(h^le.Uint64(b), k1)
		h = mix(h^le.Uint64(b[n-8:]), k2)
	case n == 8:
		h = mix(h^le.Uint64(b), k2)
	case n >= 4:
		h = mix(h^(uint64(le.Uint32(b))<<32|uint64(le.Uint32(b[n-4:]))), k2)
	default:
		h = mix(h^(uint64(b[0])<<16|uint64(b[n>>1])<<8|uint64(b[n-1])), k2)
	}
	return mix(h, k1)
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// New builds a table with room for n keys; set them with [Builder.Set].
func New(n int) *Builder {
	size := 8
	if n > 0 {
		// load factor at most 3/4: short probe runs, small tables.
		size = max(8, 1<<bits.Len(uint((4*n+2)/3-1)))
	}
	return &Builder{t: Table{slots: make([]slot, size), mask: uint64(size - 1)}}
}

// Builder builds a [Table]; use it from one goroutine.
type Builder struct{ t Table }

// Set adds key with value v, or replaces the value of key. It grows the
// table when needed.
func (b *Builder) Set(key string, v uint32) {
	if 4*(b.t.n+1) > 3*len(b.t.slots) {
		old := b.t.slots
		nb := New(2 * (b.t.n + 1))
		for _, s := range old {
			if s.tag != 0 {
				nb.t.insert(s.key, s.val, Hash(s.key))
			}
		}
		b.t = nb.t
	}
	b.t.insert(key, v, Hash(key))
}

// Table returns the table built so far. The builder must not be used after.
func (b *Builder) Table() *Table {
	t := b.t
	b.t = Table{}
	return &t
}

func tagOf(h uint64) uint32 { return uint32(h>>32) | 1 }

func (t *Table) insert(key string, v uint32, h uint64) {
	tag := tagOf(h)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.tag == 0 {
			*s = slot{key: key, tag: tag, val: v}
			t.n++
			return
		}
		if s.tag == tag && s.key == key {
			s.val = v
			return
		}
	}
}

// Get returns the value of key and whether key is in the table. It does not
// allocate.
func (t *Table) Get(key string) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	h := Hash(key)
	tag := tagOf(h)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.tag == tag && s.key == key {
			return s.val, true
		}
		if s.tag == 0 {
			return 0, false
		}
	}
}

// Len returns the number of keys.
func (t *Table) Len() int { return t.n }

// Fingerprint folds the length and the first and last eight bytes of s
// into one word, in a few instructions. Distinct strings can share a
// fingerprint (those that differ only in the middle of long strings), so it
// only narrows a search that then compares the strings themselves.
func Fingerprint(s string) uint64 {
	n := len(s)
	b := unsafe.Slice(unsafe.StringData(s), n)
	le := binary.LittleEndian
	var x uint64
	switch {
	case n >= 8:
		x = le.Uint64(b) ^ bits.RotateLeft64(le.Uint64(b[n-8:]), 31)
	case n >= 4:
		x = uint64(le.Uint32(b)) | uint64(le.Uint32(b[n-4:]))<<32
	case n > 0:
		x = uint64(b[0]) | uint64(b[n>>1])<<8 | uint64(b[n-1])<<16
	}
	return x ^ uint64(n)<<56
}

// Mix scrambles x so that its low bits depend on all of its bits.
func Mix(x uint64) uint64 { return mix(x^x>>29, 0x9e3779b97f4a7c15) }
