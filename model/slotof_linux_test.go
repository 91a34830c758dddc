//go:build linux

package model_test

import (
	"syscall"
	"testing"
	"unsafe"

	"github.com/gatehouse-authz/gatehouse/model"
)

// TestSlotOfHugeLengths: a string at a catalog name's address that is 4 GiB
// (or 2^32 + its length) longer is not the name either. The bytes are an
// anonymous mapping, so the strings point at memory that exists; the
// mapping is reserved, not written, beyond its first page.
func TestSlotOfHugeLengths(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) < 8 {
		t.Skip("needs 64-bit lengths")
	}
	mem, err := syscall.Mmap(-1, 0, 1<<32+4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot map 4 GiB: %v", err)
	}
	defer syscall.Munmap(mem)
	copy(mem, "payable")
	copy(mem[64:], "read")
	obj, act := model.ObjectType(unsafe.String(&mem[0], 7)), model.Action(unsafe.String(&mem[64], 4))
	c, err := model.NewCatalog(map[model.ObjectType][]model.Action{obj: {act}})
	if err != nil {
		t.Fatal(err)
	}
	k := c.Key(0)
	if s, ok := c.SlotOf(k.Object, k.Action); !ok || s != 0 {
		t.Fatalf("SlotOf(the catalog's strings) = %d, %v", s, ok)
	}
	for _, q := range []struct {
		o model.ObjectType
		a model.Action
	}{
		{model.ObjectType(unsafe.String(unsafe.StringData(string(k.Object)), 7+1<<32)), k.Action},
		{k.Object, model.Action(unsafe.String(unsafe.StringData(string(k.Action)), 4+1<<32-64))},
		{model.ObjectType(unsafe.String(unsafe.StringData(string(k.Object)), 6)), model.Action(unsafe.String(unsafe.StringData(string(k.Action)), 4+1<<32-64))},
	} {
		if s, ok := c.SlotOf(q.o, q.a); ok {
			t.Errorf("SlotOf(<%d bytes>, <%d bytes>) = %d, true; want false", len(q.o), len(q.a), s)
		}
	}
}
