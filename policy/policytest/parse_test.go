package policytest_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/gatehouse-authz/gatehouse/policy/policytest"
)

// crashers once made go-yaml panic inside Parse, or made Parse accept a
// tag it then dropped.
var crashers = []struct {
	name, yaml, want string
}{
	{"custom tag without value", "entities: !0", "[1:11] tag !0 is not supported"},
	{"custom tag on cases", "cases: !x", "[1:8] tag !x is not supported"},
	{"standard tag on a mapping for a list", "entities: !!map {}", "[1:11] tag !!map is not supported"},
	{"standard tag on a scalar for a list", "entities: !!str x", "[1:11] tag !!str is not supported"},
	{"tag on a nested list", "entities:\n  - id: e\n    partner: p\n    roles: !!map {}\n", "[4:12] tag !!map is not supported"},
	{"tag inside a flow mapping", "catalog: {payable: !x [read]}", "tag !x is not supported"},
	{"verbatim tag", "entities: !<tag:yaml.org,2002:seq> []", "is not supported"},
	{"tag on the document", "!!map {entities: []}", "[1:1] tag !!map is not supported"},
}

func TestParseRejectsTags(t *testing.T) {
	for _, tt := range crashers {
		t.Run(tt.name, func(t *testing.T) {
			f, err := policytest.Parse([]byte(tt.yaml))
			if f != nil || !errors.Is(err, policytest.ErrFixture) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v, %v; want an ErrFixture error with %q", tt.yaml, f, err, tt.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, that its errors wrap
// ErrFixture, and that a fixture it accepts survives a round trip through
// YAML: it marshals to YAML that Parse accepts and that marshals to the same
// text again.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	// policy's behaviour cases make a rich seed, when they are there.
	files = append(files, "../testdata/semantics.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) && !strings.HasPrefix(name, "testdata") {
			continue
		} else if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range crashers {
		f.Add([]byte(c.yaml))
	}
	f.Add([]byte("entities:\n  - id: e\n    partner: p\n    colour: red\n"))
	f.Add([]byte("entities: [{id: e, partner: p, users: [{id: u, role: r}]}]\ncases: [{name: c, do: [{op: remove_user, entity: e, user: u}], subject: user:u, entity: e, object: payable, action: read, expect: deny, default: false}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fix, err := policytest.Parse(data)
		if err != nil {
			if !errors.Is(err, policytest.ErrFixture) {
				t.Fatalf("error does not wrap ErrFixture: %v", err)
			}
			// Parse recovers from decoder panics as a last line of
			// defence; the fuzzer still reports them, as bugs to fix.
			if strings.Contains(err.Error(), "decoder panic") {
				t.Fatalf("go-yaml panicked: %v", err)
			}
			if fix != nil {
				t.Fatalf("Parse returned both a fixture and an error: %v", err)
			}
			return
		}
		if fix == nil {
			t.Fatal("Parse returned neither a fixture nor an error")
		}
		out, err := yaml.Marshal(fix)
		if err != nil {
			t.Skipf("go-yaml cannot marshal the fixture: %v", err)
		}
		again, err := policytest.Parse(out)
		if err != nil {
			t.Fatalf("Parse rejects the fixture it read, once marshalled:\n%s\n%v", out, err)
		}
		out2, err := yaml.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the fixture:\n%s\nthen\n%s", out, out2)
		}
	})
}

// TestParseValidates: case fields read as strings, duplicate case names and
// bad permissions are input errors with their position.
func TestParseValidates(t *testing.T) {
	const ent = "entities: [{id: e, partner: p}]\n"
	const c = "subject: partner:p, entity: e, object: payable, action: read"
	for _, tt := range []struct{ name, yaml, want string }{
		{"bad expect", ent + "cases:\n  - {" + c + ", expect: alow}\n", `[3:76] expect "alow" is not allow, deny or error`},
		{"missing expect", ent + "cases:\n  - {" + c + "}\n", "[3:5] case 1: expect is required"},
		{"bad scope", ent + "cases:\n  - {" + c + ", expect: allow, scope: mine}\n", `scope "mine" is not all, own or none`},
		{"duplicate name", ent + "cases:\n  - {name: x, " + c + ", expect: allow}\n  - {name: x, " + c + ", expect: deny}\n", `[4:12] case name "x" is used by case 1 too`},
		{"bad permission", "entities:\n  - id: e\n    partner: p\n    roles:\n      - id: r\n        permissions: {payable: {read: alow}}\n", `[6:39] invalid permission: "alow"`},
		{"bad permission in a step", ent + "cases:\n  - do:\n      - op: update_role\n        entity: e\n        permissions:\n          payable:\n            read: yes please\n", `[8:19] invalid permission`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := policytest.Parse([]byte(tt.yaml))
			if f != nil || !errors.Is(err, policytest.ErrFixture) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, %v; want an ErrFixture error with %q", f, err, tt.want)
			}
		})
	}
}

// TestApplyErrorsNameFileAndPosition: errors the engine returns while a
// loaded fixture is applied give the file and the node's position.
func TestApplyErrorsNameFileAndPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yaml")
	os.WriteFile(path, []byte("entities:\n  - id: e\n    partner: p\n    users:\n      - {id: u, role: nope}\n"), 0o644)
	f, err := policytest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Engine(t.Context())
	if !errors.Is(err, policytest.ErrFixture) || !strings.HasPrefix(err.Error(), path+": invalid fixture: [5:") || !strings.Contains(err.Error(), `user "u"`) {
		t.Fatalf("Engine: %v", err)
	}
}

// TestParseRefusesWhatItWouldMisread: YAML the decoder would take without
// an error but not as written is refused, with its position (found in
// review: each made a case pass or vanish without a word).
func TestParseRefusesWhatItWouldMisread(t *testing.T) {
	const ent = "entities: [{id: e, partner: p, roles: [{id: r, permissions: {payable: {read: allowed}}}], users: [{id: u, role: r}]}]\n"
	const c = "{subject: user:u, entity: e, object: payable, action: read, expect: allow}"
	for _, tt := range []struct{ name, yaml, want string }{
		{"a second document", ent + "cases: [" + c + "]\n---\ncases: [" + c + "]\n", "[4:6] a second YAML document"},
		{"an octal id", "entities: [{id: 0123, partner: p}]\n", "[1:17] 0123 is a number"},
		{"a hex id", "entities: [{id: e, partner: 0x10}]\n", "[1:29] 0x10 is a number"},
		{"a number as a user", "entities: [{id: e, partner: p, users: [{id: 1_000}]}]\n", "1_000 is a number"},
		{"a boolean as a name", "entities: [{id: e, partner: p, roles: [{id: r, name: true}]}]\n", "true is a boolean"},
		{"a number as a permission", "entities: [{id: e, partner: p, roles: [{id: r, permissions: {payable: {read: 2}}}]}]\n", "2 is a number"},
		{"a number as an action key", "entities: [{id: e, partner: p, roles: [{id: r, permissions: {payable: {1: allowed}}}]}]\n", "1 is a number"},
		{"default without a value", ent + "cases: [{subject: user:u, entity: e, object: payable, action: read, expect: allow, default: ~}]\n", "default must be true or false"},
		{"a case without entity", ent + "cases: [{subject: user:u, object: payable, action: read, expect: deny}]\n", "entity is required"},
		{"a case without subject", ent + "cases: [{entity: e, object: payable, action: read, expect: deny}]\n", "subject is required"},
		{"a case without object", ent + "cases: [{subject: user:u, entity: e, action: read, expect: deny}]\n", "object is required"},
		{"a case without action", ent + "cases: [{subject: user:u, entity: e, object: payable, expect: deny}]\n", "action is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := policytest.Parse([]byte(tt.yaml))
			if f != nil || !errors.Is(err, policytest.ErrFixture) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, %v; want an ErrFixture error with %q", f, err, tt.want)
			}
		})
	}
	// Quoted, the same values are strings, as written.
	f, err := policytest.Parse([]byte("entities: [{id: \"0123\", partner: \"0x10\", users: [{id: \"1_000\"}]}]\n"))
	if err != nil || f.Entities[0].ID != "0123" || f.Entities[0].Partner != "0x10" || f.Entities[0].Users[0].ID != "1_000" {
		t.Fatalf("quoted ids: %+v, %v", f, err)
	}
}
