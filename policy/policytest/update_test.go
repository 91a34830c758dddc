package policytest_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-authz/gatehouse/policy/policytest"
)

// This test binary defines its own -update flag, as a user's test package
// may: had policytest registered one at init, the binary would panic before
// running any test ("flag redefined: update"). It also keeps
// "go test ./policy/policytest -update" rewriting testdata/acme.matrix.
const updateUsage = "rewrite golden files (policytest_test's own flag)"

var update = flag.Bool("update", false, updateUsage)

func TestGoldenUpdate(t *testing.T) {
	t.Setenv(policytest.UpdateEnv, "")
	if *update {
		t.Skip("-update given: the flag is under test here")
	}
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	check := func(want string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("golden file = %q, %v; want %q", b, err, want)
		}
	}

	if policytest.Updating() {
		t.Fatal("Updating without -update or " + policytest.UpdateEnv)
	}
	if err := flag.Set("update", "true"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("update", "false") })
	policytest.Golden(t, path, "one\n")
	check("one\n")

	flag.Set("update", "false")
	t.Setenv(policytest.UpdateEnv, "1")
	policytest.Golden(t, path, "two\n")
	check("two\n")

	t.Setenv(policytest.UpdateEnv, "0")
	if policytest.Updating() {
		t.Fatal("Updating with " + policytest.UpdateEnv + "=0")
	}
	policytest.Golden(t, path, "two\n") // compares, and matches
}
