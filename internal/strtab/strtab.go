// Package strtab is an immutable hash table from strings to numbers, built
// once and then read without locks by any number of goroutines.
//
// It exists for the decision hot path: an open-addressing table with linear
// probing over one flat slice of words, each slot holding its key (up to 56
// bytes) in word form next to the key's tag and value. A lookup is one
// hash, one probe run over adjacent slots and a comparison of a few words,
// with no pointer to the key's bytes to follow and no directories or groups
// as in a general-purpose map. A table is rebuilt, not changed, when its
// keys change.
package strtab

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"unsafe"
)

// seed and s1 are shared by every table of the process and drawn at random,
// so that keys chosen to collide on one process do not collide on another.
// s1 is mixed into every word of a key before it is multiplied, so that no
// word that a caller can choose makes a product zero on every process.
var (
	seed = rand.Uint64() | 1
	s1   = rand.Uint64() | 1
)

// Table maps strings to uint32 values (indexes into the caller's slices).
// The zero Table is empty and usable. A Table is immutable once built.
//
// Slots are records of w words in one flat []uint64: word 0 holds the tag
// (low half: hash bits and the key's length, 0 for an empty slot) and the
// value (high half); the next words hold the key in word form (see
// nwords). A lookup thus finds the key in the slot it probes and compares
// it a word at a time, with no pointer to follow to the key's bytes and no
// call to compare memory, and the garbage collector has no pointer to scan.
// A key longer than 56 bytes is kept in long, and its slot holds its index
// there.
//
// The Table value itself is 24 bytes, what a lookup reads: a holder can
// keep it in the same cache line as other hot fields.
type Table struct {
	recs unsafe.Pointer // the data of x.recs; nil for an empty table
	mask uint32         // slots - 1
	w    uint32         // words per slot: 1 + the most words of an inline key; 0 when empty
	x    *extra         // nil for an empty table
}

// extra is the part of a Table that only building, long keys and counting
// read.
type extra struct {
	recs []uint64 // w times a power of two words
	n    int
	long []string // keys longer than maxInline
}

// maxInline is the longest key kept inline.
const maxInline = 56

// Constants of Hash (two of wyhash's).
const k0, k2 = 0xa0761d6478bd642f, 0x8ebc6af09c88c6e3

// A key of n bytes has a word form of nwords(n) words: for n >= 8, its
// 8-byte blocks, the last one taken from the key's last 8 bytes (so it
// overlaps the block before when n is not a multiple of 8); for n < 8, one
// word from short. With n known, the word form holds every byte: two keys
// of the same length are equal exactly when their word forms are.
func nwords(n int) int {
	if n < 8 {
		return 1
	}
	return (n + 7) >> 3
}

// short is the word form of a key of n < 8 bytes.
func short(b []byte, n int) uint64 {
	switch {
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<32
	case n > 0:
		return uint64(b[0]) | uint64(b[n>>1])<<8 | uint64(b[n-1])<<16
	}
	return 0
}

// lastWord is the last word of the word form of b.
func lastWord(b []byte) uint64 {
	if n := len(b); n >= 8 {
		return binary.LittleEndian.Uint64(b[n-8:])
	}
	return short(b, len(b))
}

// bytesOf is a read-only view of s's bytes.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// wordAt is word j of the word form of b, which has m words.
func wordAt(b []byte, j, m int) uint64 {
	if j == m-1 {
		return lastWord(b)
	}
	return binary.LittleEndian.Uint64(b[8*j:])
}

// Hash returns the hash of key used by every table: its word form mixed two
// words to a 64-bit multiplication (the scheme of wyhash), which for the
// short ids of the hot path costs a fraction of a general-purpose hash
// call.
func Hash(key string) uint64 {
	b := bytesOf(key)
	if n := len(b); n > 16 && n <= maxInline {
		var kw [8]uint64
		h, _ := wordForm(b, &kw)
		return h
	}
	m := nwords(len(b))
	h := seed ^ uint64(len(b))*k0
	j := 0
	for ; j+1 < m; j += 2 {
		h = mix(wordAt(b, j, m)^s1, wordAt(b, j+1, m)^h)
	}
	if j < m {
		h = mix(wordAt(b, j, m)^s1, h^k2)
	}
	return mix(h, k0)
}

// wordForm writes the word form of b (16 < len(b) <= 56: 3 to 7 words) to
// kw and returns Hash(b) and the number of words: Hash's loop, unrolled by
// hand for the lookup of an inline key.
func wordForm(b []byte, kw *[8]uint64) (h uint64, m int) {
	le := binary.LittleEndian
	n := len(b)
	m = (n + 7) >> 3
	last := le.Uint64(b[n-8:])
	h = seed ^ uint64(n)*k0
	// Pairs of whole blocks (none of them the last word): one for m of 3
	// or 4, two for 5 or 6, three for 7.
	kw[0], kw[1] = le.Uint64(b), le.Uint64(b[8:])
	h = mix(kw[0]^s1, kw[1]^h)
	j := 2
	if m >= 5 {
		kw[2], kw[3] = le.Uint64(b[16:]), le.Uint64(b[24:])
		h = mix(kw[2]^s1, kw[3]^h)
		j = 4
	}
	if m >= 7 {
		kw[4], kw[5] = le.Uint64(b[32:]), le.Uint64(b[40:])
		h = mix(kw[4]^s1, kw[5]^h)
		j = 6
	}
	if m-j == 2 { // a block and the last word
		kw[j&7], kw[(j+1)&7] = le.Uint64(b[8*j:]), last
		h = mix(kw[j&7]^s1, last^h)
	} else { // the last word alone
		kw[j&7] = last
		h = mix(last^s1, h^k2)
	}
	return mix(h, k0), m
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// New returns a builder with room for about n keys; set them with
// [Builder.Set].
func New(n int) *Builder {
	return &Builder{keys: make([]string, 0, n), vals: make([]uint32, 0, n)}
}

// Builder builds a [Table]; use it from one goroutine.
type Builder struct {
	keys []string
	vals []uint32
}

// Set adds key with value v, or replaces the value of key.
func (b *Builder) Set(key string, v uint32) {
	b.keys = append(b.keys, key)
	b.vals = append(b.vals, v)
}

// Table returns the table of the keys set so far. The builder must not be
// used after.
func (b *Builder) Table() *Table {
	keys, vals := b.keys, b.vals
	b.keys, b.vals = nil, nil
	t := &Table{}
	if len(keys) == 0 {
		return t
	}
	w := uint64(2) // at least room for the index of a long key
	for _, k := range keys {
		if len(k) <= maxInline {
			w = max(w, 1+uint64(nwords(len(k))))
		}
	}
	// load factor at most 3/4: short probe runs, small tables. (Keys set
	// twice make it lower.)
	size := max(8, 1<<bits.Len(uint((4*len(keys)+2)/3-1)))
	mask := uint64(size - 1)
	x := &extra{recs: make([]uint64, uint64(size)*w)}
	recs := x.recs
	t.recs, t.mask, t.w, t.x = unsafe.Pointer(unsafe.SliceData(recs)), uint32(mask), uint32(w), x
	for i, k := range keys {
		v := vals[i]
		if i, _, ok := t.Find(k); ok { // set before: the last value wins
			recs[uint64(i)*w] = recs[uint64(i)*w]&0xffffffff | uint64(v)<<32
			continue
		}
		h := Hash(k)
		i := h & mask
		for recs[i*w] != 0 {
			i = (i + 1) & mask
		}
		r := recs[i*w : (i+1)*w]
		r[0] = uint64(tag(h, len(k))) | uint64(v)<<32
		if len(k) > maxInline {
			r[1] = uint64(len(x.long))
			x.long = append(x.long, k)
		} else {
			b := bytesOf(k)
			m := nwords(len(k))
			for j := 0; j < m-1; j++ {
				r[1+j] = binary.LittleEndian.Uint64(b[8*j:])
			}
			r[m] = lastWord(b)
		}
		x.n++
	}
	return t
}

// tag is the low half of a slot's first word for a key of length n and
// hash h: 23 bits of the hash, a bit that is always set, and the length
// (255 for a key kept in long).
func tag(h uint64, n int) uint32 {
	if n > maxInline {
		n = 255
	}
	return uint32(h>>32)&^0x1ff | 0x100 | uint32(n)
}

// Find returns the slot that holds key (0 <= slot < [Table.Slots]) and its
// value, and whether key is in the table. A caller can keep data of its own
// in an array indexed by slot: its address is known as soon as the key's
// hash is, so reading it does not wait for the table's record. It does not
// allocate.
func (t *Table) Find(key string) (slot int, val uint32, ok bool) {
	b := bytesOf(key)
	n := len(b)
	if n > 16 {
		if uint(n-33) < 8 && t.w > 5 { // 33 to 40 bytes, and records that hold them
			return t.find5(b)
		}
		return t.findWords(key)
	}
	// A key of at most 16 bytes has one or two words, hashed and compared
	// here without a loop: w0 is the first and w1 the last (the same word
	// when there is one).
	m := uint64(1)
	var w0, w1 uint64
	h := seed ^ uint64(n)*k0
	if n > 8 {
		m = 2
		w0, w1 = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[n-8:])
		h = mix(w0^s1, w1^h)
	} else {
		w0 = lastWord(b)
		w1 = w0
		h = mix(w0^s1, h^k2)
	}
	if m >= uint64(t.w) { // longer than any key of the table, or an empty table
		return 0, 0, false
	}
	h = mix(h, k0)
	tg := tag(h, n)
	// Every slot index i below is masked, so i*w+w <= len(x.recs), and a
	// record has w-1 >= m key words: the records are read without bounds
	// checks.
	base, w, mask := t.recs, uint64(t.w)*8, uint64(t.mask)
	for i := h & mask; ; i = (i + 1) & mask {
		r := unsafe.Add(base, i*w)
		r0 := *(*uint64)(r)
		if uint32(r0) == tg && *(*uint64)(unsafe.Add(r, 8)) == w0 && *(*uint64)(unsafe.Add(r, 8*m)) == w1 {
			return int(i), uint32(r0 >> 32), true
		}
		if r0 == 0 {
			return 0, 0, false
		}
	}
}

// findWords is Find for a key of more than 16 bytes.
func (t *Table) findWords(key string) (slot int, val uint32, ok bool) {
	b := bytesOf(key)
	if n := len(b); n > maxInline || uint64(nwords(n)) >= uint64(t.w) {
		return t.findLong(key) // longer than any inline key, or an empty table
	}
	var kw [8]uint64
	h, m := wordForm(b, &kw)
	tg := tag(h, len(b))
	base, w, mask := t.recs, uint64(t.w)*8, uint64(t.mask)
	for i := h & mask; ; i = (i + 1) & mask {
		r := unsafe.Add(base, i*w)
		r0 := *(*uint64)(r)
		if uint32(r0) == tg {
			// m >= 3 words, all compared: their differences, or-ed. The
			// record has w-1 > m-1 key words.
			d := (*(*uint64)(unsafe.Add(r, 8)) ^ kw[0]) | (*(*uint64)(unsafe.Add(r, 16)) ^ kw[1]) | (*(*uint64)(unsafe.Add(r, 24)) ^ kw[2])
			for j := 3; j < m; j++ {
				d |= *(*uint64)(unsafe.Add(r, 8+8*j)) ^ kw[j&7]
			}
			if d == 0 {
				return int(i), uint32(r0 >> 32), true
			}
		}
		if r0 == 0 {
			return 0, 0, false
		}
	}
}

// find5 is Find for a key of 33 to 40 bytes (five words; UUIDs have 36)
// in a table whose records hold more than five key words, with Hash's
// steps for five words written out: no word array, no loop.
func (t *Table) find5(b []byte) (slot int, val uint32, ok bool) {
	// The caller checked the length: the five reads are inside b.
	n := len(b)
	p := unsafe.Pointer(unsafe.SliceData(b))
	w0, w1, w2, w3, w4 := load64(p, 0), load64(p, 8), load64(p, 16), load64(p, 24), load64(p, uintptr(n-8))
	h := seed ^ uint64(n)*k0
	h = mix(w0^s1, w1^h)
	h = mix(w2^s1, w3^h)
	h = mix(w4^s1, h^k2)
	h = mix(h, k0)
	tg := tag(h, n)
	// The caller checked that the records have more than five key words.
	base, w, mask := t.recs, uint64(t.w)*8, uint64(t.mask)
	for i := h & mask; ; i = (i + 1) & mask {
		r := unsafe.Add(base, i*w)
		r0 := *(*uint64)(r)
		if uint32(r0) == tg {
			d := (*(*uint64)(unsafe.Add(r, 8)) ^ w0) | (*(*uint64)(unsafe.Add(r, 16)) ^ w1) | (*(*uint64)(unsafe.Add(r, 24)) ^ w2) |
				(*(*uint64)(unsafe.Add(r, 32)) ^ w3) | (*(*uint64)(unsafe.Add(r, 40)) ^ w4)
			if d == 0 {
				return int(i), uint32(r0 >> 32), true
			}
		}
		if r0 == 0 {
			return 0, 0, false
		}
	}
}

// load64 reads the little-endian word at p+off, with no bounds check.
func load64(p unsafe.Pointer, off uintptr) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(p, off)), 8))
}

// findLong is Find for a key that no table keeps inline.
func (t *Table) findLong(key string) (slot int, val uint32, ok bool) {
	if t.x == nil || len(key) <= maxInline { // x is nil exactly when the table is empty
		return 0, 0, false // a key this short would be inline
	}
	h := Hash(key)
	tg := tag(h, len(key))
	w, mask := uint64(t.w), uint64(t.mask)
	for i := h & mask; ; i = (i + 1) & mask {
		r := t.x.recs[i*w : (i+1)*w]
		if uint32(r[0]) == tg {
			if j := r[1]; j < uint64(len(t.x.long)) && t.x.long[j] == key {
				return int(i), uint32(r[0] >> 32), true
			}
		}
		if r[0] == 0 {
			return 0, 0, false
		}
	}
}

// Size returns the number of words of the table's records.
func (t *Table) Size() int {
	if t.x == nil {
		return 0
	}
	return len(t.x.recs)
}

// Relocate returns a copy of t whose records are dst (of t.Size() words),
// into which it copies them; t is left as it was. Tables built one by one
// can so be packed into one allocation, their records sharing pages. With
// dst of another length, it returns t.
func (t *Table) Relocate(dst []uint64) Table {
	if t.x == nil || len(dst) != len(t.x.recs) {
		return *t
	}
	copy(dst, t.x.recs)
	x := &extra{recs: dst, n: t.x.n, long: t.x.long}
	return Table{recs: unsafe.Pointer(unsafe.SliceData(dst)), mask: t.mask, w: t.w, x: x}
}

// Slots returns the number of slots (0 for an empty table).
func (t *Table) Slots() int {
	if t.x == nil {
		return 0
	}
	return int(t.mask) + 1
}

// Len returns the number of keys.
func (t *Table) Len() int {
	if t.x == nil {
		return 0
	}
	return t.x.n
}

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
