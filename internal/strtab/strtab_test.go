package strtab

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// Get returns the value of key and whether key is in the table (Find
// without the slot, for the tests).
func (t *Table) Get(key string) (uint32, bool) {
	_, v, ok := t.Find(key)
	return v, ok
}

// TestAgainstMap builds tables of random keys and checks every lookup,
// present and absent, against a Go map holding the same keys.
func TestAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 8, 9, 100, 1000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := map[string]uint32{}
			b := New(n / 2) // too small on purpose: Set must grow it
			for i := 0; i < n; i++ {
				k := fmt.Sprintf("k%d", rng.IntN(2*n+1))
				want[k] = uint32(i)
				b.Set(k, uint32(i))
			}
			tab := b.Table()
			if tab.Len() != len(want) {
				t.Fatalf("Len = %d, want %d", tab.Len(), len(want))
			}
			for i := 0; i < 3*n+10; i++ {
				k := fmt.Sprintf("k%d", i)
				got, ok := tab.Get(k)
				w, wok := want[k]
				if ok != wok || got != w {
					t.Fatalf("Get(%q) = %d, %v; want %d, %v", k, got, ok, w, wok)
				}
			}
		})
	}
}

func TestZeroTable(t *testing.T) {
	var tab Table
	for n := 0; n <= 100; n++ { // every lookup path, none may read records
		if v, ok := tab.Get(strings.Repeat("k", n)); ok || v != 0 {
			t.Fatalf("zero table found %d for a key of %d bytes", v, n)
		}
	}
	if tab.Len() != 0 {
		t.Fatal("zero table not empty")
	}
}

// TestFiveWordKeys checks keys of 33 to 40 bytes (find5's) against tables
// whose records are too short for them (their lookups must not read past a
// record), just long enough, and longer.
func TestFiveWordKeys(t *testing.T) {
	key := func(n, i int) string { return fmt.Sprintf("%0*d", n, i) }
	for _, keyLen := range []int{8, 32, 33, 36, 40, 41, 56} {
		t.Run(fmt.Sprint(keyLen), func(t *testing.T) {
			b := New(0)
			for i := range 50 {
				b.Set(key(keyLen, i), uint32(i))
			}
			tab := b.Table()
			for n := 33; n <= 40; n++ {
				for i := range 60 {
					v, ok := tab.Get(key(n, i))
					if want := n == keyLen && i < 50; ok != want || (ok && v != uint32(i)) {
						t.Fatalf("Get(%q) = %d, %v; want found=%v", key(n, i), v, ok, want)
					}
				}
			}
		})
	}
}

// TestEmptyKey checks that the empty string is a key like any other.
func TestEmptyKey(t *testing.T) {
	b := New(1)
	b.Set("", 7)
	tab := b.Table()
	if v, ok := tab.Get(""); !ok || v != 7 {
		t.Fatalf("Get(\"\") = %d, %v", v, ok)
	}
	if _, ok := tab.Get("x"); ok {
		t.Fatal("found an absent key")
	}
}

func FuzzTable(f *testing.F) {
	f.Add("a,b,c", "b")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, keys, probe string) {
		want := map[string]uint32{}
		b := New(0)
		start := 0
		for i := 0; i <= len(keys); i++ {
			if i == len(keys) || keys[i] == ',' {
				k := keys[start:i]
				want[k] = uint32(i)
				b.Set(k, uint32(i))
				start = i + 1
			}
		}
		tab := b.Table()
		for k, w := range want {
			if v, ok := tab.Get(k); !ok || v != w {
				t.Fatalf("Get(%q) = %d, %v; want %d", k, v, ok, w)
			}
		}
		w, wok := want[probe]
		if v, ok := tab.Get(probe); ok != wok || v != w {
			t.Fatalf("Get(%q) = %d, %v; want %d, %v", probe, v, ok, w, wok)
		}
	})
}

// BenchmarkGet compares a lookup with a Go map's, for generated ids of 15
// bytes and for UUIDs (36 bytes, as Monite's ids).
func BenchmarkGet(b *testing.B) {
	shapes := []struct {
		name string
		key  func(i int) string
	}{
		{"id15", func(i int) string { return fmt.Sprintf("user-%06d-%03d", i, i%200) }},
		{"uuid", func(i int) string {
			return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rand.Uint32(), i&0xffff, i%4096, i%4093, rand.Uint64()&0xffffffffffff)
		}},
	}
	for _, shape := range shapes {
		for _, n := range []int{16, 200, 100000} {
			b.Run(fmt.Sprintf("%s/%d", shape.name, n), func(b *testing.B) {
				keys := make([]string, n)
				bt := New(n)
				m := make(map[string]uint32, n)
				for i := range keys {
					keys[i] = shape.key(i)
					bt.Set(keys[i], uint32(i))
					m[keys[i]] = uint32(i)
				}
				tab := bt.Table()
				b.Run("strtab", func(b *testing.B) {
					b.ReportAllocs()
					s := uint32(0)
					for i := 0; b.Loop(); i++ {
						v, _ := tab.Get(keys[i%n])
						s += v
					}
					_ = s
				})
				b.Run("map", func(b *testing.B) {
					b.ReportAllocs()
					s := uint32(0)
					for i := 0; b.Loop(); i++ {
						s += m[keys[i%n]]
					}
					_ = s
				})
			})
		}
	}
}

func BenchmarkHash(b *testing.B) {
	k := "user-000123-045"
	var s uint64
	for b.Loop() {
		s += Hash(k)
	}
	_ = s
}

// TestKeyLengths mixes keys of every length from 0 to 100 bytes, zero bytes
// included, in one table: keys kept inline and keys kept aside must both be
// found, and a key's prefix or zero-padded extension must not be.
func TestKeyLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, maxLen := range []int{0, 7, 8, 9, 56, 57, 100} {
		t.Run(fmt.Sprint(maxLen), func(t *testing.T) {
			want := map[string]uint32{}
			b := New(0)
			for n := 0; n <= maxLen; n++ {
				k := make([]byte, n)
				for i := range k {
					k[i] = byte(rng.IntN(3)) // many zero bytes
				}
				want[string(k)] = uint32(n)
				b.Set(string(k), uint32(n))
			}
			tab := b.Table()
			if tab.Len() != len(want) {
				t.Fatalf("Len = %d, want %d", tab.Len(), len(want))
			}
			for k, w := range want {
				if v, ok := tab.Get(k); !ok || v != w {
					t.Fatalf("Get(%q) = %d, %v; want %d", k, v, ok, w)
				}
				for _, probe := range []string{k + "\x00", k + "\x01", "\x00" + k} {
					w, wok := want[probe]
					if v, ok := tab.Get(probe); ok != wok || v != w {
						t.Fatalf("Get(%q) = %d, %v; want %d, %v", probe, v, ok, w, wok)
					}
				}
			}
		})
	}
}

// TestFindComparesEveryWord plants, in the slot where a key's lookup
// starts, a record with the key's tag (hash bits and length) and its words
// with one of them changed: a tag collision, which random keys almost never
// produce. The lookup must compare every word and not take it for the key.
func TestFindComparesEveryWord(t *testing.T) {
	for n := 0; n <= maxInline; n++ {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte('a' + i%26)
		}
		m := nwords(n)
		words := make([]uint64, m)
		for j := 0; j < m-1; j++ {
			words[j] = binary.LittleEndian.Uint64(key[8*j:])
		}
		words[m-1] = lastWord(key)
		h := Hash(string(key))
		for flip := -1; flip < m; flip++ {
			w := uint64(1 + m)
			x := &extra{recs: make([]uint64, 8*w), n: 1}
			tab := &Table{recs: unsafe.Pointer(&x.recs[0]), w: uint32(w), mask: 7, x: x}
			r := x.recs[(h&7)*w : (h&7+1)*w]
			r[0] = uint64(tag(h, n)) | 42<<32
			copy(r[1:], words)
			if flip >= 0 {
				r[1+flip] ^= 1 << 40
			}
			v, ok := tab.Get(string(key))
			if want := flip < 0; ok != want || (ok && v != 42) {
				t.Fatalf("n=%d, word %d changed: Get = %d, %v; want found=%v", n, flip, v, ok, want)
			}
		}
	}
}

// TestHashOneScheme checks that every length is hashed by one scheme (the
// word form, two words to a multiplication): Hash's unrolled form for 17 to
// 56 bytes must agree with the plain loop written here. (Find hashes keys
// of up to 16 bytes, and find5 those of 33 to 40, with code of their own;
// TestKeyLengths would fail if either disagreed with Hash, which the
// tables are built with.)
func TestHashOneScheme(t *testing.T) {
	for n := 0; n <= 80; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		m := nwords(n)
		h := seed ^ uint64(n)*k0
		j := 0
		for ; j+1 < m; j += 2 {
			h = mix(wordAt(b, j, m)^s1, wordAt(b, j+1, m)^h)
		}
		if j < m {
			h = mix(wordAt(b, j, m)^s1, h^k2)
		}
		if want := mix(h, k0); Hash(string(b)) != want {
			t.Errorf("n=%d: Hash = %#x, the plain loop %#x", n, Hash(string(b)), want)
		}
	}
}

// TestNoWordBlindsTheHash checks that no first word a caller can choose
// makes the rest of the key irrelevant. With a public constant in its place
// of s1, a first word equal to that constant would zero the first product
// and give every such key (of one length) the same hash.
func TestNoWordBlindsTheHash(t *testing.T) {
	for _, first := range []uint64{0xe7037ed1a0b428db, 0, 0x6161616161616161, ^uint64(0)} {
		seen := map[uint64]bool{}
		for i := range 1000 {
			b := make([]byte, 16)
			binary.LittleEndian.PutUint64(b, first)
			binary.LittleEndian.PutUint64(b[8:], uint64(i))
			seen[Hash(string(b))] = true
		}
		if len(seen) < 990 {
			t.Errorf("first word %#x: 1000 keys gave %d hashes", first, len(seen))
		}
	}
}

// TestRelocate packs two tables into one slab and checks that the copies
// find every key in the same slot with the same value, and no other key,
// once the originals' records are wiped; a slab of the wrong size gives
// the table back unchanged.
func TestRelocate(t *testing.T) {
	var tabs []*Table
	var keys [][]string
	for ti, n := range []int{5, 300} {
		b := New(n)
		var ks []string
		for i := range n {
			k := fmt.Sprintf("t%d-%s-%d", ti, strings.Repeat("x", i%70), i) // inline and long keys
			ks = append(ks, k)
			b.Set(k, uint32(i))
		}
		tabs, keys = append(tabs, b.Table()), append(keys, ks)
	}
	slab := make([]uint64, tabs[0].Size()+tabs[1].Size())
	n0 := tabs[0].Size()
	moved := []Table{tabs[0].Relocate(slab[:n0:n0]), tabs[1].Relocate(slab[n0:])}
	type hit struct {
		slot int
		val  uint32
	}
	want := make([]map[string]hit, 2)
	for i, tab := range tabs {
		want[i] = map[string]hit{}
		for _, k := range keys[i] {
			s, v, ok := tab.Find(k)
			if !ok {
				t.Fatalf("table %d lost %q before relocation", i, k)
			}
			want[i][k] = hit{s, v}
		}
		clear(tab.x.recs) // the copies must not read the originals
	}
	for i := range moved {
		if moved[i].Len() != len(keys[i]) || moved[i].Slots() == 0 {
			t.Fatalf("relocated table %d: Len %d, Slots %d", i, moved[i].Len(), moved[i].Slots())
		}
		for _, k := range keys[i] {
			if s, v, ok := moved[i].Find(k); !ok || (hit{s, v}) != want[i][k] {
				t.Errorf("relocated table %d: Find(%q) = %d, %d, %v; want %+v", i, k, s, v, ok, want[i][k])
			}
		}
		for _, k := range keys[1-i] {
			if _, _, ok := moved[i].Find(k); ok {
				t.Errorf("relocated table %d finds %q, a key of the other table", i, k)
			}
		}
	}
	b := New(1)
	b.Set("k", 1)
	tab := b.Table()
	if got := tab.Relocate(make([]uint64, tab.Size()+1)); got.recs != tab.recs {
		t.Errorf("Relocate into a slab of the wrong size moved the table")
	}
}
