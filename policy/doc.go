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
// # Decision rules
//
// A request is (subject, entity, object type, action, owner), the owner
// being the subject that created the object, or none for a list or an
// unknown creator. In order:
//
//  1. An object type or action outside the catalog denies, with an error.
//  2. An unknown entity denies.
//  3. A partner may do everything inside the entities it owns, and nothing
//     in any other.
//  4. An entity user must be a member of the entity. Its role is its own
//     role there, or else the entity's default role as it is at the time
//     of the decision (changing the default moves every member without a
//     role at once); with neither, it is denied. The role's permission for
//     (object type, action) is not_allowed unless set: allowed allows with
//     scope all; allowed_for_own gives scope own and allows when the owner
//     is the user, when the action is create (the new object is the
//     user's) and for a list (the caller filters by creator); otherwise it
//     denies.
//  5. Any error while deciding denies.
//
// The engine writes one owner, at most one default role and one role link
// per member. A store may hold more, written by other tools: a member
// linked to several roles (or to a role and also without one), several
// default roles, several owners. Casbin takes their union, and so does the
// engine: a member gets the best permission among the roles it reaches,
// and every owner acts as the entity's partner. SetUserRole, RemoveUser,
// SetDefaultRole and RemoveEntity replace or remove every such link.
//
// Ids of different kinds never meet: a user id equal to a role or partner
// id grants nothing through it. [Engine.Scope] agrees with Decide for every
// owner.
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
