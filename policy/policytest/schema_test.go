package policytest_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/policy/policytest"
)

// TestSchemaCoversFixture checks that the JSON Schema names exactly the
// fields the Go types read, at every level.
func TestSchemaCoversFixture(t *testing.T) {
	b, err := os.ReadFile("fixture.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	props := func(path ...string) map[string]any {
		var cur any = s
		for _, p := range path {
			cur = cur.(map[string]any)[p]
		}
		return cur.(map[string]any)["properties"].(map[string]any)
	}
	check := func(where string, typ reflect.Type, schema map[string]any) {
		want := map[string]bool{}
		for i := 0; i < typ.NumField(); i++ {
			if !typ.Field(i).IsExported() {
				continue // not read from YAML
			}
			want[strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]] = true
		}
		for k := range schema {
			if !want[k] {
				t.Errorf("%s: schema has %q, the Go type does not", where, k)
			}
			delete(want, k)
		}
		for k := range want {
			t.Errorf("%s: the Go type has %q, the schema does not", where, k)
		}
	}
	check("fixture", reflect.TypeOf(policytest.Fixture{}), props())
	ent := props("properties", "entities", "items")
	check("entity", reflect.TypeOf(policytest.Entity{}), ent)
	check("role", reflect.TypeOf(policytest.Role{}), ent["roles"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any))
	check("user", reflect.TypeOf(policytest.User{}), ent["users"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any))
	check("case", reflect.TypeOf(policytest.Case{}), props("properties", "cases", "items"))
	check("step", reflect.TypeOf(policytest.Step{}), props("$defs", "step"))
}
