package model_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/model"
)

// TestDefaultCatalog checks the built-in catalog against Monite's published
// permission catalog.
func TestDefaultCatalog(t *testing.T) {
	b, err := os.ReadFile("testdata/monite-rbac-catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := model.ParseCatalogJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	got := model.DefaultCatalog()
	if !slices.Equal(got.Keys(), want.Keys()) {
		t.Fatalf("default catalog differs from Monite's:\n got %v\nwant %v", got.Keys(), want.Keys())
	}
	if len(got.ObjectTypes()) != 31 || len(got.Actions("payable")) != 10 {
		t.Fatalf("got %d object types, %d payable actions", len(got.ObjectTypes()), len(got.Actions("payable")))
	}
	// The catalog is valid input to NewCatalog too.
	js, _ := json.Marshal(got)
	if _, err := model.ParseCatalogJSON(js); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogSlots(t *testing.T) {
	c, err := model.NewCatalog(map[model.ObjectType][]model.Action{"b": {"x", "y"}, "a": {"z"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range c.Keys() {
		if s, ok := c.Slot(k); !ok || s != i || c.Key(i) != k {
			t.Fatalf("slot of %v = %d, %v; want %d", k, s, ok, i)
		}
	}
	tests := []struct {
		o       model.ObjectType
		a       model.Action
		wantErr error
	}{
		{"a", "z", nil},
		{"b", "y", nil},
		{"c", "x", model.ErrUnknownObject},
		{"a", "x", model.ErrUnknownAction},
		{"", "", model.ErrUnknownObject},
	}
	for _, tt := range tests {
		if err := c.Check(tt.o, tt.a); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.o, tt.a, err, tt.wantErr)
		}
	}
}

func TestNewCatalogRejects(t *testing.T) {
	tests := map[string]map[model.ObjectType][]model.Action{
		"empty":            {},
		"no actions":       {"payable": nil},
		"upper case":       {"Payable": {"read"}},
		"comma in action":  {"payable": {"read,write"}},
		"duplicate action": {"payable": {"read", "read"}},
		"long name":        {model.ObjectType(strings.Repeat("a", 65)): {"read"}},
	}
	for name, m := range tests {
		if _, err := model.NewCatalog(m); !errors.Is(err, model.ErrInvalidCatalog) {
			t.Errorf("%s: err = %v, want ErrInvalidCatalog", name, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"3fa85f64-5717-4562-b3fc-2c963f66afa6", true},
		{"a.b_c@d:e", true},
		{"", false},
		{"a,b", false},
		{"a b", false},
		{`a"b`, false},
		{"a\nb", false},
		{"é", false},
		{strings.Repeat("x", model.MaxIDLen), true},
		{strings.Repeat("x", model.MaxIDLen+1), false},
	}
	for _, tt := range tests {
		err := model.ValidateID("role id", tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, model.ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, does not wrap ErrInvalidID", tt.id, err)
		}
	}
}

func TestPermissionAndScopeText(t *testing.T) {
	for _, p := range []model.Permission{model.NotAllowed, model.AllowedForOwn, model.Allowed} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q model.Permission
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Fatalf("round trip of %v: %v, %v", p, q, err)
		}
	}
	if _, err := model.ParsePermission("allow"); !errors.Is(err, model.ErrInvalidPermission) {
		t.Fatalf("ParsePermission(allow) = %v", err)
	}
	if !(model.NotAllowed < model.AllowedForOwn && model.AllowedForOwn < model.Allowed) {
		t.Fatal("permissions are not ordered by what they grant")
	}
	for _, s := range []model.Scope{model.ScopeNone, model.ScopeOwn, model.ScopeAll} {
		if got, err := model.ParseScope(s.String()); err != nil || got != s {
			t.Fatalf("ParseScope(%v) = %v, %v", s, got, err)
		}
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q model.Scope
		if err := q.UnmarshalText(b); err != nil || q != s {
			t.Fatalf("round trip of %v: %v, %v", s, q, err)
		}
	}
}

// TestParseErrorsWrapSentinels: every parser of the package reports bad
// input with an error that wraps the package's sentinel for it.
func TestParseErrorsWrapSentinels(t *testing.T) {
	var p model.Permission
	var s model.Scope
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"ParsePermission", second(model.ParsePermission("allow")), model.ErrInvalidPermission},
		{"ParsePermission empty", second(model.ParsePermission("")), model.ErrInvalidPermission},
		{"Permission.UnmarshalText", p.UnmarshalText([]byte("Allowed")), model.ErrInvalidPermission},
		{"Permission.MarshalText", second(model.Permission(3).MarshalText()), model.ErrInvalidPermission},
		{"ParseScope", second(model.ParseScope("everything")), model.ErrInvalidScope},
		{"ParseScope empty", second(model.ParseScope("")), model.ErrInvalidScope},
		{"Scope.UnmarshalText", s.UnmarshalText([]byte("All")), model.ErrInvalidScope},
		{"Scope.MarshalText", second(model.Scope(3).MarshalText()), model.ErrInvalidScope},
		{"ParseSubject kind", second(model.ParseSubject("role:r1")), model.ErrInvalidID},
		{"ParseSubject id", second(model.ParseSubject("user:a b")), model.ErrInvalidID},
		{"ParseCatalogJSON syntax", second(model.ParseCatalogJSON([]byte(`{"payable": [`))), model.ErrInvalidCatalog},
		{"ParseCatalogJSON type", second(model.ParseCatalogJSON([]byte(`["payable"]`))), model.ErrInvalidCatalog},
		{"ParseCatalogJSON content", second(model.ParseCatalogJSON([]byte(`{"payable": []}`))), model.ErrInvalidCatalog},
		{"ParseCatalogJSON null", second(model.ParseCatalogJSON([]byte(`null`))), model.ErrInvalidCatalog},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want one wrapping %v", tt.name, tt.err, tt.want)
		}
	}
	if p != model.NotAllowed || s != model.ScopeNone {
		t.Errorf("failed UnmarshalText changed its receiver: %v, %v", p, s)
	}
}

func second[T any](_ T, err error) error { return err }

func TestParseSubject(t *testing.T) {
	tests := []struct {
		in   string
		want model.Subject
		ok   bool
	}{
		{"partner:p1", model.Partner("p1"), true},
		{"user:u:1", model.User("u:1"), true},
		{"", model.Subject{}, true},
		{"role:r1", model.Subject{}, false},
		{"user:", model.Subject{}, false},
		{"user:a b", model.Subject{}, false},
	}
	for _, tt := range tests {
		got, err := model.ParseSubject(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseSubject(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() of %q = %q", tt.in, got.String())
		}
	}
}

// FuzzParseSubject: never a panic, and whatever parses prints back the same.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"partner:p1", "user:u", "", "user:", "x:y", "user:a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := model.ParseSubject(s)
		if err != nil {
			return
		}
		if sub.String() != s {
			t.Fatalf("ParseSubject(%q).String() = %q", s, sub.String())
		}
		if !sub.IsZero() && model.ValidateID("id", sub.ID) != nil {
			t.Fatalf("ParseSubject(%q) accepted an invalid id", s)
		}
	})
}

func TestCasbinModelParses(t *testing.T) {
	m, err := model.NewCasbinModel()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p", "p2"} {
		if _, ok := m["p"][k]; !ok {
			t.Errorf("model has no policy type %s", k)
		}
	}
	if !strings.Contains(model.Text(), "g2(r.sub, r.dom)") {
		t.Error("model text lost the partner rule")
	}
}

// TestSlotOfEveryPair asks the default catalog for every object type paired
// with every action any object type has: found exactly when the pair is in
// the catalog, at the slot whose key is the pair.
func TestSlotOfEveryPair(t *testing.T) {
	c := model.DefaultCatalog()
	in := map[model.Key]bool{}
	actions := map[model.Action]bool{}
	for _, k := range c.Keys() {
		in[k] = true
		actions[k.Action] = true
	}
	objects := append(c.ObjectTypes(), "", "payables", "Payable", "payable ", "p")
	// Names differing from a catalog name in one byte, at every position:
	// names longer than 16 bytes share their first and last 8 bytes with
	// the original when the byte is in the middle.
	for _, o := range c.ObjectTypes() {
		for i := range len(o) {
			b := []byte(o)
			b[i] ^= 0x20
			objects = append(objects, model.ObjectType(b))
		}
	}
	for _, o := range objects {
		for a := range actions {
			for _, a := range []model.Action{a, a + "x", "x" + a, ""} {
				k := model.Key{Object: o, Action: a}
				s, ok := c.SlotOf(o, a)
				if ok != in[k] || (ok && c.Key(s) != k) {
					t.Fatalf("SlotOf(%q, %q) = %d, %v; in catalog: %v", o, a, s, ok, in[k])
				}
			}
		}
	}
}

// FuzzSlotOf checks SlotOf against a map of the default catalog's pairs.
func FuzzSlotOf(f *testing.F) {
	c := model.DefaultCatalog()
	in := map[model.Key]int{}
	for i, k := range c.Keys() {
		in[k] = i
	}
	f.Add("payable", "approve")
	f.Add("payable", "approvf")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, o, a string) {
		k := model.Key{Object: model.ObjectType(o), Action: model.Action(a)}
		want, wok := in[k]
		got, ok := c.SlotOf(k.Object, k.Action)
		if ok != wok || (ok && got != want) {
			t.Fatalf("SlotOf(%q, %q) = %d, %v; want %d, %v", o, a, got, ok, want, wok)
		}
	})
}

// FuzzParseCatalogJSON: never a panic; what parses marshals to JSON that
// parses to the same catalog (same keys, in the same slots); what does not
// parse is an error wrapping ErrInvalidCatalog.
func FuzzParseCatalogJSON(f *testing.F) {
	monite, err := os.ReadFile("testdata/monite-rbac-catalog.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(monite)
	def, err := json.Marshal(model.DefaultCatalog())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	for _, s := range []string{
		`{"payable": ["read", "approve"]}`,
		`{"b": ["x", "y"], "a": ["z"]}`,
		`{"a": ["x"], "a": ["y"]}`,
		`{"payable": []}`,
		`{"payable": null}`,
		`{"payable": ["read", "read"]}`,
		`{"Payable": ["read"]}`,
		`{"p\u0061yable": ["read"]}`,
		`{"payable": [""]}`,
		`{}`,
		`null`,
		`[]`,
		`{"payable": ["read"]} x`,
		`{"payable": "read"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := model.ParseCatalogJSON(b)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseCatalogJSON(%q) returned a catalog and %v", b, err)
			}
			if !errors.Is(err, model.ErrInvalidCatalog) {
				t.Fatalf("ParseCatalogJSON(%q) = %v, does not wrap ErrInvalidCatalog", b, err)
			}
			return
		}
		js, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of %q: %v", b, err)
		}
		c2, err := model.ParseCatalogJSON(js)
		if err != nil {
			t.Fatalf("ParseCatalogJSON(%s), from MarshalJSON of %q: %v", js, b, err)
		}
		if !slices.Equal(c.Keys(), c2.Keys()) {
			t.Fatalf("round trip of %q through %s: keys %v, then %v", b, js, c.Keys(), c2.Keys())
		}
		if c.Len() == 0 || c.Len() != len(c.Keys()) {
			t.Fatalf("ParseCatalogJSON(%q): Len %d, %d keys", b, c.Len(), len(c.Keys()))
		}
		for i, k := range c.Keys() {
			if s, ok := c.Slot(k); !ok || s != i {
				t.Fatalf("ParseCatalogJSON(%q): slot of %v = %d, %v; want %d", b, k, s, ok, i)
			}
		}
	})
}

// TestSlotOfByAddress: SlotOf gives the same answer for the catalog's own
// strings (found by address), for copies of them, and for strings that
// share an address with a catalog name but not its length (a prefix of
// it), in every combination of a pair's object type and another pair's
// action; for the default catalog (Go literals) and for one parsed from
// JSON (strings on the heap).
func TestSlotOfByAddress(t *testing.T) {
	parsed, err := model.ParseCatalogJSON([]byte(`{"payable": ["read", "readonly", "approve"], "payables_purchase_order": ["read", "re"], "p": ["r"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*model.Catalog{"default": model.DefaultCatalog(), "parsed": parsed} {
		t.Run(name, func(t *testing.T) {
			in := map[model.Key]int{}
			for i, k := range c.Keys() {
				in[k] = i
			}
			check := func(o model.ObjectType, a model.Action) {
				t.Helper()
				want, wok := in[model.Key{Object: o, Action: a}]
				if got, ok := c.SlotOf(o, a); ok != wok || ok && got != want {
					t.Fatalf("SlotOf(%q, %q) = %d, %v; want %d, %v", o, a, got, ok, want, wok)
				}
			}
			for i := range c.Len() {
				k := c.Key(i)
				if s, ok := c.SlotOf(k.Object, k.Action); !ok || s != i {
					t.Fatalf("SlotOf(Key(%d)) = %d, %v", i, s, ok)
				}
				check(model.ObjectType(strings.Clone(string(k.Object))), model.Action(strings.Clone(string(k.Action))))
				for j := range c.Len() {
					check(k.Object, c.Key(j).Action) // another pair's action
				}
				for n := range len(k.Object) {
					check(k.Object[:n], k.Action)
				}
				for n := range len(k.Action) {
					check(k.Object, k.Action[:n])
				}
			}
		})
	}
}

// BenchmarkSlotOf measures the catalog lookup with the catalog's own
// strings (found by address) and with copies (hashed).
func BenchmarkSlotOf(b *testing.B) {
	c := model.DefaultCatalog()
	own := c.Keys()
	copies := make([]model.Key, len(own))
	for i, k := range own {
		copies[i] = model.Key{Object: model.ObjectType(strings.Clone(string(k.Object))), Action: model.Action(strings.Clone(string(k.Action)))}
	}
	for _, v := range []struct {
		name string
		keys []model.Key
	}{{"own", own}, {"copies", copies}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				k := v.keys[i%len(v.keys)]
				s, _ := c.SlotOf(k.Object, k.Action)
				n += s
			}
		})
	}
}

// TestKeyText: keys encode as "object.action", so that Permissions (a map
// keyed by Key) goes to JSON and back; malformed text is refused with
// ErrInvalidKey and leaves the key as it was.
func TestKeyText(t *testing.T) {
	ps := model.Permissions{
		{Object: "payable", Action: "approve"}:  model.AllowedForOwn,
		{Object: "entity_user", Action: "read"}: model.Allowed,
	}
	b, err := json.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"entity_user.read":"allowed","payable.approve":"allowed_for_own"}`; string(b) != want {
		t.Fatalf("JSON %s, want %s", b, want)
	}
	var back model.Permissions
	if err := json.Unmarshal(b, &back); err != nil || !maps.Equal(back, ps) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	for _, s := range []string{"", "payable", "payable.", ".read", "payable.read.x", "Payable.read", "pay able.read", "payable.réad", strings.Repeat("a", 65) + ".read"} {
		k := model.Key{Object: "keep", Action: "me"}
		if err := k.UnmarshalText([]byte(s)); !errors.Is(err, model.ErrInvalidKey) || k.Object != "keep" || k.Action != "me" {
			t.Errorf("UnmarshalText(%q): %v, key %v", s, err, k)
		}
	}
	if _, err := (model.Key{Object: "payable"}).MarshalText(); !errors.Is(err, model.ErrInvalidKey) {
		t.Errorf("MarshalText of a key without an action: %v", err)
	}
}

// FuzzKeyText: never a panic; text that decodes encodes back the same.
func FuzzKeyText(f *testing.F) {
	for _, s := range []string{"payable.read", "a.b", "", ".", "x.y.z", "entity_user.update"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var k model.Key
		if err := k.UnmarshalText([]byte(s)); err != nil {
			return
		}
		b, err := k.MarshalText()
		if err != nil || string(b) != s {
			t.Fatalf("UnmarshalText(%q) gave %v, which encodes as %q, %v", s, k, b, err)
		}
	})
}
