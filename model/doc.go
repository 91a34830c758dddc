// Package model holds Gatehouse's vocabulary and its Casbin model.
//
// The vocabulary is typed: partners, entities, entity users and roles have
// their own identifier types ([PartnerID], [EntityID], [UserID], [RoleID]); a
// request is made by a [Subject] (a partner or an entity user) on an
// [ObjectType] with an [Action]; a role grants each (object type, action) one
// [Permission]: [NotAllowed] (the default), [AllowedForOwn] or [Allowed].
// A [Catalog] says which actions each object type has; [DefaultCatalog] is
// Monite's.
//
// The Casbin model ([Text], [NewCasbinModel]) is the specification of the
// decision rules and of the persistence format. It is a plain RBAC-with-domains
// model in which every identifier carries its kind as a prefix ("user:",
// "role:", "partner:", "entity:", "default:"), so that identifiers of
// different kinds never meet inside a rule. The entity's default role is a
// role link from the marker "default:<entity>" to the role, which a user
// without an explicit role is linked to: changing that one link moves every
// such user at decision time. See gatehouse.conf for the rules, commented.
//
// Everything in this package is immutable after construction and safe for
// concurrent use.
package model
