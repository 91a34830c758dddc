// Package opabench benchmarks Open Policy Agent, embedded as a Go library
// (github.com/open-policy-agent/opa/v1/rego), on the data and requests of
// package benchmarks, so that its report can set OPA beside Gatehouse and
// Casbin. It is a nested module (its own go.mod, with Gatehouse replaced by
// ../..) so that Gatehouse's go.mod never carries OPA.
//
// The policy (policy.rego) is Gatehouse's decision rules written for
// data-driven lookups, as an OPA user would: the entity's partner for
// partners; for users data.entities[e].users[u] (the role, or "" for the
// entity's default role), then data.entities[e].roles[role][object][action],
// with allowed_for_own allowing lists, the user's own objects and creates.
// The data sit in OPA's in-memory store (inmem.NewFromObject); the query
// data.gatehouse.allow is prepared once (rego.PrepareForEval) and each
// request is evaluated with an input parsed ahead of time
// (rego.EvalParsedInput), which leaves input conversion out of the timing.
//
//	cd benchmarks/opa && go test -run '^$' -bench . -benchmem
//
// Sizes come from GATEHOUSE_BENCH_SIZES and GATEHOUSE_BENCH_FULL as in
// package benchmarks. TestAgreesWithGatehouse checks OPA's answers against
// Gatehouse's Decide on every generated request at 1,000 and 10,000 rules.
package opabench
