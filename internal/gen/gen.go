// Package gen generates realistic policy data for benchmarks and load tests:
// entities with 3 to 10 roles of 20 to 130 permissions each (a quarter of
// them allowed_for_own), 10 to 200 users per entity of whom a share has no
// role (the entity's default role applies), and partners owning 1 to 20
// entities each. Generation is deterministic for a seed and streams its
// rules, so a million-rule data set is never held whole.
package gen

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Dataset is a generated policy of about Target permission ("p") rules.
type Dataset struct {
	Seed    uint64
	Target  int // permission rules wanted
	Catalog *model.Catalog

	// UUIDs makes every id a UUID (36 bytes, as Monite's ids) instead of a
	// short readable one ("ent-000042", "user-000042-007").
	UUIDs bool

	// Filled by New and NewUUID.
	Entities []EntityPlan
	PRules   int // permission rules generated
}

// EntityPlan is the shape of one generated entity.
type EntityPlan struct {
	ID      model.EntityID
	Partner model.PartnerID
	Roles   int
	Users   int
}

// New plans a dataset of about target permission rules over catalog c.
func New(seed uint64, target int, c *model.Catalog) *Dataset {
	return plan(&Dataset{Seed: seed, Target: target, Catalog: c})
}

// NewUUID is New with UUIDs for ids.
func NewUUID(seed uint64, target int, c *model.Catalog) *Dataset {
	return plan(&Dataset{Seed: seed, Target: target, Catalog: c, UUIDs: true})
}

// uuid formats kind and the numbers a and b as a UUID: deterministic, and
// distinct for distinct (kind, a, b).
func uuid(kind, a, b int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(a)*2654435761, kind, b>>12&0xfff, b&0xfff, uint64(a)<<16|uint64(b>>24&0xffff))
}

func plan(d *Dataset) *Dataset {
	seed, target := d.Seed, d.Target
	rng := rand.New(rand.NewPCG(seed, 1))
	partner := 0
	left := 0
	for d.PRules < target {
		if left == 0 {
			partner++
			left = 1 + rng.IntN(20)
		}
		left--
		e := EntityPlan{ID: d.entityID(len(d.Entities)), Partner: d.partnerID(partner),
			Roles: 3 + rng.IntN(8), Users: 10 + rng.IntN(191)}
		d.Entities = append(d.Entities, e)
		d.PRules += d.permsOf(len(d.Entities)-1, e.Roles, nil)
	}
	return d
}

func (d *Dataset) entityID(e int) model.EntityID {
	if d.UUIDs {
		return model.EntityID(uuid(1, e, 0))
	}
	return model.EntityID(fmt.Sprintf("ent-%06d", e))
}

func (d *Dataset) partnerID(p int) model.PartnerID {
	if d.UUIDs {
		return model.PartnerID(uuid(2, p, 0))
	}
	return model.PartnerID(fmt.Sprintf("partner-%05d", p))
}

func (d *Dataset) roleID(e, r int) model.RoleID {
	if d.UUIDs {
		return model.RoleID(uuid(3, e, r))
	}
	return model.RoleID(fmt.Sprintf("role-%06d-%02d", e, r))
}

// UserID returns the id of user u of entity e.
func (d *Dataset) UserID(e, u int) model.UserID {
	if d.UUIDs {
		return model.UserID(uuid(4, e, u))
	}
	return model.UserID(fmt.Sprintf("user-%06d-%03d", e, u))
}

// permsOf generates (or counts, with fn nil) the permission rules of entity
// e's roles.
func (d *Dataset) permsOf(e, roles int, fn func(model.Rule) error) int {
	rng := rand.New(rand.NewPCG(d.Seed, uint64(e)+2))
	n := 0
	keys := d.Catalog.Len()
	for r := range roles {
		k := 20 + rng.IntN(111)
		if k > keys {
			k = keys
		}
		for _, slot := range rng.Perm(keys)[:k] {
			p := model.Allowed
			if rng.IntN(4) == 0 {
				p = model.AllowedForOwn
			}
			n++
			if fn != nil {
				if err := fn(rules.Permission(d.Entities[e].ID, d.roleID(e, r), d.Catalog.Key(slot), p)); err != nil {
					return n
				}
			}
		}
	}
	return n
}

// Each calls fn for every rule of the dataset: ownership, role declarations,
// permissions, default roles and memberships. A fifth of the users have no
// role.
func (d *Dataset) Each(fn func(model.Rule) error) error {
	var ferr error
	call := func(r model.Rule) error {
		if ferr == nil {
			ferr = fn(r)
		}
		return ferr
	}
	for i, e := range d.Entities {
		call(rules.Owner(e.Partner, e.ID))
		for r := range e.Roles {
			call(rules.RoleDecl(e.ID, d.roleID(i, r), fmt.Sprintf("Role %d", r), 1700000000000, 1700000000000))
		}
		d.permsOf(i, e.Roles, call)
		call(rules.DefaultRole(e.ID, d.roleID(i, 0)))
		for u := range e.Users {
			var role model.RoleID
			if u%5 != 0 {
				role = d.roleID(i, u%e.Roles)
			}
			call(rules.Member(e.ID, d.UserID(i, u), role))
		}
		if ferr != nil {
			return ferr
		}
	}
	return nil
}

// Load implements policy.Store's Load, so an engine can be built from the
// dataset without a database.
func (d *Dataset) Load(ctx context.Context, fn func(model.Rule) error) error {
	return d.Each(func(r model.Rule) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(r)
	})
}

// Commit implements policy.Store; changes made to a dataset-backed engine
// are kept in memory only.
func (d *Dataset) Commit(context.Context, *policy.Change) error { return nil }

// Requests returns n random requests over the dataset: mostly entity users
// in their own entity (allowed and denied mixed), some partners in their own
// and other entities, some users in foreign entities, owners of all kinds.
// Every entity is as likely as any other.
func (d *Dataset) Requests(seed uint64, n int) []policy.Request {
	rng := rand.New(rand.NewPCG(seed, 99))
	return d.requests(rng, n, func() int { return rng.IntN(len(d.Entities)) })
}

// ActiveRequests is Requests over a set of active entities, drawn at random
// once: callers and objects of the other entities never appear. With the
// whole dataset at most active entities, it is every entity. It models a
// platform where the tenants of the moment are a small share of all the
// tenants it holds.
func (d *Dataset) ActiveRequests(seed uint64, n, active int) []policy.Request {
	rng := rand.New(rand.NewPCG(seed, 98))
	set := rng.Perm(len(d.Entities))[:min(active, len(d.Entities))]
	return d.requests(rng, n, func() int { return set[rng.IntN(len(set))] })
}

// requests draws n requests, each entity index from pick.
func (d *Dataset) requests(rng *rand.Rand, n int, pick func() int) []policy.Request {
	out := make([]policy.Request, n)
	for i := range out {
		ei := pick()
		e := d.Entities[ei]
		k := d.Catalog.Key(rng.IntN(d.Catalog.Len()))
		r := policy.Request{Entity: e.ID, Object: k.Object, Action: k.Action}
		switch x := rng.IntN(20); {
		case x == 0:
			r.Subject = model.Partner(e.Partner)
		case x == 1:
			r.Subject = model.Partner(d.Entities[pick()].Partner)
		case x == 2:
			o := pick()
			r.Subject = model.User(d.UserID(o, rng.IntN(d.Entities[o].Users)))
		default:
			r.Subject = model.User(d.UserID(ei, rng.IntN(e.Users)))
		}
		switch rng.IntN(3) {
		case 0:
			r.Owner = r.Subject
		case 1:
			r.Owner = model.User(d.UserID(ei, rng.IntN(e.Users)))
		}
		out[i] = r
	}
	return out
}
