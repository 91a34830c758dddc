// Package policy is Gatehouse's policy engine: it owns the roles, entities,
// entity users and default roles of a multi-tenant platform and decides, for
// every request, whether a subject may do an action on an object type inside
// an entity.
//
// # Decisions
//
// [Engine.Decide] answers a [Request] with a [Decision]: allowed or not, the
// list [model.Scope] (all, own, none), the role that decided and whether it
// was the entity's default role, and a [Reason]. [Engine.Scope] answers list
// endpoints, [Engine.DecideAll] a batch, and [Engine.Explain] says why in
// words. Decisions follow the Casbin model of package model exactly (a
// differential test compares them with casbin.Enforce), but they are read
// from a compiled index: a few map lookups, no locks, no allocations,
// whatever the number of rules. Any error denies.
//
// # Changes
//
// The management methods (entities, roles, entity users, default roles)
// validate their input, turn the change into Casbin rules to remove and add,
// commit them to the [Store] in one step, and only then publish them to the
// index, so a failed write changes nothing and a decision made after a call
// returns sees its change. With no store, the policies live in memory.
// [WithAdapter] stores them through any Casbin persist.Adapter; package store
// provides a transactional GORM store.
//
// # Concurrency
//
// An Engine is safe for concurrent use. Decisions never block; changes are
// serialised by one mutex. With a [LockingStore] (package store's is one),
// several engines share one store: every management call first takes the
// store's change lock, which brings the engine up to date with the other
// engines' changes, and only then the engine's mutex, so it validates
// against the current policy and commits under the same lock.
package policy
