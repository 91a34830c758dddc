package strtab

import (
	"fmt"
	"testing"
	"unsafe"
)

// probes returns how many slots a lookup of key (present, kept inline)
// visits.
func (t *Table) probes(key string) int {
	h := Hash(key)
	tag := t.tag(h, len(key))
	n := 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		r := t.recs[i*t.w : (i+1)*t.w]
		if uint32(r[0]) == tag && unsafe.String((*byte)(unsafe.Pointer(&r[1])), len(key)) == key {
			return n
		}
		n++
	}
}

// TestProbeLength checks that ids differing in a few digits, as generated
// ids do, spread over the table.
func TestProbeLength(t *testing.T) {
	for _, n := range []int{10, 200, 2000} {
		b := New(n)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("user-%06d-%03d", 77, i)
			b.Set(keys[i], uint32(i))
		}
		tab := b.Table()
		total, worst := 0, 0
		for _, k := range keys {
			p := tab.probes(k)
			total += p
			worst = max(worst, p)
		}
		mean := float64(total) / float64(n)
		t.Logf("n=%d slots=%d mean=%.2f worst=%d", n, tab.slots(), mean, worst)
		if 4*n > 3*tab.slots() {
			t.Errorf("n=%d: %d slots, load above 3/4", n, tab.slots())
		}
		// Linear probing at load 3/4 expects 2.5 probes for a hit; a weak
		// hash on these near-identical keys would give far more.
		if mean > 3 || worst > 40 {
			t.Errorf("n=%d: mean %.2f, worst %d probes: the hash clusters", n, mean, worst)
		}
	}
}

func (t *Table) slots() int { return int(t.mask + 1) }
