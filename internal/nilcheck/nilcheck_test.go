package nilcheck

import (
	"io"
	"strings"
	"testing"
)

func TestIsNil(t *testing.T) {
	var (
		p  *strings.Reader
		r  io.Reader = p
		f  func()
		m  map[int]int
		c  chan int
		s  []int
		ok = strings.NewReader("x")
	)
	for _, tc := range []struct {
		name string
		v    any
		nil_ bool
		desc string
	}{
		{"untyped", nil, true, "nil"},
		{"pointer", p, true, "nil *strings.Reader"},
		{"pointer in an interface", r, true, "nil *strings.Reader"},
		{"func", f, true, "nil func()"},
		{"map", m, true, "nil map[int]int"},
		{"chan", c, true, "nil chan int"},
		{"slice", s, true, "nil []int"},
		{"value", 0, false, ""},
		{"zero struct", struct{}{}, false, ""},
		{"live pointer", ok, false, ""},
	} {
		if got := IsNil(tc.v); got != tc.nil_ {
			t.Errorf("%s: IsNil = %v", tc.name, got)
		}
		if tc.nil_ && Name(tc.v) != tc.desc {
			t.Errorf("%s: Name = %q, want %q", tc.name, Name(tc.v), tc.desc)
		}
	}
}
