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

// Table maps strings to uint32 values (indexes into the caller's slices).
// The zero Table is empty and usable. A Table is immutable once built.
//
// Slots are records of w words in one flat []uint64: word 0 holds the tag
// (low half: hash bits and the key's length, 0 for an empty slot) and the
// value (high half); the next w-1 words hold the key's bytes, zero-padded.
// A lookup thus finds the key in the slot it probes, with no pointer to
// follow to the key's bytes, and the garbage collector has no pointer to
// scan. A key longer than the room any table keeps inline (56 bytes) is
// kept in long, and its slot holds its index there.
type Table struct {
	recs []uint64 // len is w times a power of two, or 0
	w    uint64   // words per slot: 1 + room/8
	room int      // inline key bytes per slot
	long []string // keys longer than room
	mask uint64
	n    int
}

// maxRoom is the longest key kept inline.
const maxRoom = 56

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

// New returns a builder with room for about n keys; set them with
// [Builder.Set].
func New(n int) *Builder { return &Builder{m: make(map[string]uint32, n)} }

// Builder builds a [Table]; use it from one goroutine.
type Builder struct{ m map[string]uint32 }

// Set adds key with value v, or replaces the value of key.
func (b *Builder) Set(key string, v uint32) { b.m[key] = v }

// Table returns the table of the keys set so far. The builder must not be
// used after.
func (b *Builder) Table() *Table {
	m := b.m
	b.m = nil
	t := &Table{}
	if len(m) == 0 {
		return t
	}
	for k := range m {
		if len(k) <= maxRoom {
			t.room = max(t.room, len(k))
		}
	}
	t.room = (t.room + 7) &^ 7
	t.w = 1 + uint64(t.room/8)
	if t.room == 0 {
		t.w = 2 // room for the index of a long key
	}
	// load factor at most 3/4: short probe runs, small tables.
	size := max(8, 1<<bits.Len(uint((4*len(m)+2)/3-1)))
	t.mask = uint64(size - 1)
	t.recs = make([]uint64, uint64(size)*t.w)
	for k, v := range m {
		h := Hash(k)
		i := h & t.mask
		for t.recs[i*t.w] != 0 {
			i = (i + 1) & t.mask
		}
		r := t.recs[i*t.w : (i+1)*t.w]
		r[0] = uint64(t.tag(h, len(k))) | uint64(v)<<32
		if len(k) > t.room {
			r[1] = uint64(len(t.long))
			t.long = append(t.long, k)
		} else {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&r[1])), t.room), k)
		}
		t.n++
	}
	return t
}

// tag is the low half of a slot's first word for a key of length n and
// hash h: 23 bits of the hash, a bit that is always set, and the length
// (255 for a key kept in long).
func (t *Table) tag(h uint64, n int) uint32 {
	if n > t.room {
		n = 255
	}
	return uint32(h>>32)&^0x1ff | 0x100 | uint32(n)
}

// Get returns the value of key and whether key is in the table. It does not
// allocate.
func (t *Table) Get(key string) (uint32, bool) {
	_, v, ok := t.Find(key)
	return v, ok
}

// Find returns the slot that holds key (0 <= slot < [Table.Slots]) and its
// value, and whether key is in the table. A caller can keep data of its own
// in an array indexed by slot: its address is known as soon as the key's
// hash is, so reading it does not wait for the table's record. It does not
// allocate.
func (t *Table) Find(key string) (slot int, val uint32, ok bool) {
	if t.n == 0 {
		return 0, 0, false
	}
	h := Hash(key)
	tag := t.tag(h, len(key))
	// Every slot index i below is masked, so i*w+w <= len(t.recs): the
	// records are read without bounds checks.
	base, w := unsafe.Pointer(unsafe.SliceData(t.recs)), t.w*8
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		r := unsafe.Add(base, i*w)
		r0 := *(*uint64)(r)
		if uint32(r0) == tag {
			if len(key) > t.room {
				if j := *(*uint64)(unsafe.Add(r, 8)); j < uint64(len(t.long)) && t.long[j] == key {
					return int(i), uint32(r0 >> 32), true
				}
			} else if unsafe.String((*byte)(unsafe.Add(r, 8)), len(key)) == key {
				return int(i), uint32(r0 >> 32), true
			}
		}
		if r0 == 0 {
			return 0, 0, false
		}
	}
}

// Slots returns the number of slots (0 for an empty table).
func (t *Table) Slots() int {
	if t.n == 0 {
		return 0
	}
	return int(t.mask + 1)
}

// Len returns the number of keys.
func (t *Table) Len() int { return t.n }

// Words returns two words made of the bytes of s: the first and last eight
// (four for shorter strings; for up to three bytes, all of them in lo). For
// a string of at most 16 bytes they hold every byte, so two such strings of
// the same length are equal exactly when their words are; for a longer
// string they only narrow a search that then compares the strings. It
// never reads outside s.
func Words(s string) (lo, hi uint64) {
	n := len(s)
	b := unsafe.Slice(unsafe.StringData(s), n)
	if n >= 8 {
		return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
	}
	if n >= 4 {
		return uint64(binary.LittleEndian.Uint32(b)), uint64(binary.LittleEndian.Uint32(b[n-4:]))
	}
	if n > 0 {
		lo = uint64(b[0]) | uint64(b[n>>1])<<8 | uint64(b[n-1])<<16
	}
	return lo, 0
}

// WordsExact is the longest string that [Words] holds whole.
const WordsExact = 16

// Mix scrambles x so that its low bits depend on all of its bits.
func Mix(x uint64) uint64 { return mix(x^x>>29, 0x9e3779b97f4a7c15) }
