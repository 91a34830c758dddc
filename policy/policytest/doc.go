// Package policytest lets users pin their authorization rules in their own
// tests. A fixture file (YAML; schema in fixture.schema.json) describes a
// catalog (optional; Monite's by default), entities with their partner,
// roles, users and default role, and cases: a request with the expected
// answer. [Load] reads one, [Fixture.Engine] builds an in-memory engine from
// it, and [Fixture.Run] runs its cases as subtests whose failures say which
// role decided and why.
//
// A case may first make changes (set a default role, change a user's role,
// edit or delete a role, remove a user or an entity), which stay in effect for
// the cases after it, so that a fixture can show how access moves.
//
// [Matrix] prints an entity's access matrix, to keep as a golden file with
// [Golden]. Golden rewrites golden files when the test binary's -update flag
// is set or GATEHOUSE_UPDATE_GOLDEN=1; policytest does not define -update
// itself (a library flag would clash with the test's own), so a test package
// that wants "go test -update" declares it: see [Updating].
package policytest
