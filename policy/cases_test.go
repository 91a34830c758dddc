package policy_test

import (
	"context"
	"testing"

	"github.com/gatehouse-authz/gatehouse/policy/policytest"
)

// TestSemantics runs the behaviour cases of testdata/semantics.yaml (one or
// more per decision rule of the package documentation) against the
// engine, and checks every answer against casbin.Enforce on the same rules
// too.
func TestSemantics(t *testing.T) {
	f, err := policytest.Load("testdata/semantics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eng, err := f.Engine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Check(ctx, eng); err != nil {
				t.Fatal(err)
			}
			if c.Expect == "error" {
				return // the catalog is checked before the Casbin model applies
			}
			req, err := c.Request()
			if err != nil {
				t.Fatal(err)
			}
			if got := newOracle(t, eng.Rules()).enforce(t, req, req.Owner.String()); got != (c.Expect == "allow") {
				t.Fatalf("casbin.Enforce = %v, the case expects %s", got, c.Expect)
			}
		})
	}
}
