package policy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-authz/gatehouse/internal/index"
	"github.com/gatehouse-authz/gatehouse/internal/rules"
	"github.com/gatehouse-authz/gatehouse/model"
)

// Entity is a tenant: owned by one partner, with an optional default role.
//
// The engine writes one owner and at most one default role per entity.
// Rules written by other tools may give an entity several: decisions then
// take all of them into account (as Casbin does), and Partner and
// DefaultRole are the first of them by id and by link order.
type Entity struct {
	ID          model.EntityID
	Partner     model.PartnerID
	DefaultRole model.RoleID // "" when the entity has none
}

// Role is a named set of permissions inside one entity.
type Role struct {
	ID          model.RoleID
	Entity      model.EntityID
	Name        string
	Permissions model.Permissions // only the pairs that are not not_allowed
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// User is an entity user: a member of one entity, with a role or without
// one (then the entity's default role applies).
//
// The engine links a member to one role or to none. Rules written by other
// tools may link it several times: decisions then take the best of the
// roles it reaches (as Casbin does), Role is its first link's, and
// [Engine.SetUserRole] and [Engine.RemoveUser] replace or remove every
// link.
type User struct {
	ID     model.UserID
	Entity model.EntityID
	Role   model.RoleID // "" when the user has no explicit role
}

// RoleSpec describes a role to create.
type RoleSpec struct {
	ID          model.RoleID // optional: generated when empty
	Name        string       // 1 to MaxNameLen bytes, unique in the entity
	Permissions model.Permissions
}

// RoleUpdate describes a change to a role. Nil fields are left alone.
type RoleUpdate struct {
	Name        *string
	Permissions model.Permissions // replaces all permissions when not nil
}

// MaxNameLen is the longest role name, in bytes.
const MaxNameLen = 100

func invalid(err error) error { return fmt.Errorf("%w: %w", ErrInvalid, err) }

func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: role name is empty", ErrInvalid)
	}
	if why := badText(name, MaxNameLen); why != "" {
		return fmt.Errorf("%w: role name %s", ErrInvalid, why)
	}
	return nil
}

// badText says what is wrong with s as text the stores keep (at most max
// bytes of UTF-8 without control characters), or "" when nothing is.
func badText(s string, max int) string {
	switch {
	case len(s) > max:
		return fmt.Sprintf("is longer than %d bytes", max)
	case !utf8.ValidString(s):
		return "is not UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "has a control character"
	}
	return ""
}

// entity returns the snapshot of an existing (partner-owned) entity: as
// the earlier changes made with ctx leave it, under [WithDeferredApply].
func (e *Engine) entity(ctx context.Context, id model.EntityID) (*index.Entity, error) {
	if err := id.Validate(); err != nil {
		return nil, invalid(err)
	}
	en := e.snapshot(ctx, id)
	if en == nil || len(en.Owners) == 0 {
		return nil, fmt.Errorf("%w: entity %q", ErrNotFound, id)
	}
	return en, nil
}

// snapshot returns entity id's snapshot, or nil: the index's, or under
// [WithDeferredApply] the one the context's unpublished changes make.
func (e *Engine) snapshot(ctx context.Context, id model.EntityID) *index.Entity {
	ix := e.ix.Load()
	if d := deferredOf(ctx); d != nil {
		if en, changed := d.view(ix, id); changed {
			return en
		}
	}
	return ix.Entity(id)
}

// idTaken reports whether an entity holds an id as ctx sees it (see
// [Engine.snapshot]): one of those the index lists for it (published) or
// one whose facts logged by ctx's unpublished changes name it (logged).
// has says whether an entity holds the id.
func (e *Engine) idTaken(ctx context.Context, published, logged []model.EntityID, has func(*index.Entity) bool) bool {
	seen := make(map[model.EntityID]bool, len(published)+len(logged))
	for _, id := range slices.Concat(published, logged) {
		if seen[id] {
			continue
		}
		seen[id] = true
		if en := e.snapshot(ctx, id); en != nil && has(en) {
			return true
		}
	}
	return false
}

// declaredRole returns role id of en, if it exists.
func declaredRole(en *index.Entity, id model.RoleID) (*index.Role, error) {
	if err := id.Validate(); err != nil {
		return nil, invalid(err)
	}
	r := en.Role(id)
	if r == nil || !r.Declared {
		return nil, fmt.Errorf("%w: role %q in entity %q", ErrNotFound, id, en.ID)
	}
	return r, nil
}

func (e *Engine) toRole(en *index.Entity, r *index.Role) Role {
	ps := model.Permissions{}
	for slot := 0; slot < e.cat.Len(); slot++ {
		if p := r.Perm(slot); p != model.NotAllowed {
			ps[e.cat.Key(slot)] = p
		}
	}
	return Role{ID: r.ID, Entity: en.ID, Name: r.Name, Permissions: ps,
		CreatedAt: time.UnixMilli(r.Created).UTC(), UpdatedAt: time.UnixMilli(r.Updated).UTC()}
}

func toEntity(en *index.Entity) Entity {
	out := Entity{ID: en.ID, Partner: en.Partner()}
	if i := en.Default(); i != index.NoRole {
		out.DefaultRole = en.Roles[i].ID
	}
	return out
}

func toUser(en *index.Entity, u model.UserID, i int32) User {
	return User{ID: u, Entity: en.ID, Role: linkRole(en, i)}
}

// CreateEntity creates entity id, owned by partner.
func (e *Engine) CreateEntity(ctx context.Context, partner model.PartnerID, id model.EntityID) (Entity, error) {
	if err := partner.Validate(); err != nil {
		return Entity{}, invalid(err)
	}
	if err := id.Validate(); err != nil {
		return Entity{}, invalid(err)
	}
	c, done, err := e.begin(ctx, "entity.create")
	if err != nil {
		return Entity{}, err
	}
	defer done()
	if err := guardEntity(ctx, id, partner); err != nil {
		return Entity{}, err
	}
	if e.snapshot(ctx, id) != nil {
		return Entity{}, fmt.Errorf("%w: entity %q exists", ErrConflict, id)
	}
	ch := &Change{Op: "entity.create", Entity: id, Add: []model.Rule{rules.Owner(partner, id)}}
	if err := e.commit(ctx, c, ch); err != nil {
		return Entity{}, err
	}
	return Entity{ID: id, Partner: partner}, nil
}

// GetEntity returns entity id.
func (e *Engine) GetEntity(ctx context.Context, id model.EntityID) (Entity, error) {
	en, err := e.entity(ctx, id)
	if err != nil {
		return Entity{}, err
	}
	return toEntity(en), nil
}

// OwnsEntity reports whether partner owns entity id and may so act in it
// as its partner: the entity's partner or, for an entity that rules
// written by other tools give several owners, any of them, as
// [Engine.Decide] decides. An unknown entity is [ErrNotFound].
func (e *Engine) OwnsEntity(ctx context.Context, partner model.PartnerID, id model.EntityID) (bool, error) {
	en, err := e.entity(ctx, id)
	if err != nil {
		return false, err
	}
	return en.OwnedBy(partner), nil
}

// ListEntities returns the entities of partner, sorted by id.
func (e *Engine) ListEntities(ctx context.Context, partner model.PartnerID) ([]Entity, error) {
	if err := partner.Validate(); err != nil {
		return nil, invalid(err)
	}
	var out []Entity
	e.ix.Load().Entities(func(en *index.Entity) bool {
		if en.OwnedBy(partner) {
			out = append(out, toEntity(en))
		}
		return ctx.Err() == nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, ctx.Err()
}

// RemoveEntity removes entity id with its roles, members and default role.
func (e *Engine) RemoveEntity(ctx context.Context, id model.EntityID) error {
	c, done, err := e.begin(ctx, "entity.remove")
	if err != nil {
		return err
	}
	defer done()
	en, err := e.entity(ctx, id)
	if err != nil {
		return err
	}
	if err := guardEntity(ctx, id, en.Owners...); err != nil {
		return err
	}
	return e.commit(ctx, c, &Change{Op: "entity.remove", Entity: id, Remove: entityRules(e.cat, en)})
}

// SetDefaultRole makes role the default role of entity: the role of every
// member without an explicit role, from the next decision on. An empty role
// clears the default.
func (e *Engine) SetDefaultRole(ctx context.Context, entity model.EntityID, role model.RoleID) error {
	c, done, err := e.begin(ctx, "entity.default_role")
	if err != nil {
		return err
	}
	defer done()
	en, err := e.entity(ctx, entity)
	if err != nil {
		return err
	}
	ch := &Change{Op: "entity.default_role", Entity: entity}
	kept := false // role is a default already
	for _, i := range en.Defaults {
		old := en.Roles[i].ID
		if old == role {
			kept = true
			continue
		}
		if err := e.guardTakeAway(ctx, en, old); err != nil {
			return err // a grantor moves only members whose role it holds
		}
		ch.Remove = append(ch.Remove, rules.DefaultRole(entity, old))
	}
	if role != "" && !kept {
		if _, err := declaredRole(en, role); err != nil {
			return err
		}
		if err := e.guardAssign(ctx, en, role); err != nil {
			return err
		}
		ch.Add = append(ch.Add, rules.DefaultRole(entity, role))
	}
	if len(ch.Remove)+len(ch.Add) == 0 {
		return nil
	}
	return e.commit(ctx, c, ch)
}

// CreateRole creates a role in entity. Its name must be unique in the entity
// and its permissions in the catalog.
func (e *Engine) CreateRole(ctx context.Context, entity model.EntityID, spec RoleSpec) (Role, error) {
	if err := validateName(spec.Name); err != nil {
		return Role{}, err
	}
	if err := spec.Permissions.Validate(e.cat); err != nil {
		return Role{}, invalid(err)
	}
	if spec.ID == "" {
		spec.ID = model.RoleID(e.newID())
	}
	if err := spec.ID.Validate(); err != nil {
		return Role{}, invalid(err)
	}
	c, done, err := e.begin(ctx, "role.create")
	if err != nil {
		return Role{}, err
	}
	defer done()
	en, err := e.entity(ctx, entity)
	if err != nil {
		return Role{}, err
	}
	if e.idTaken(ctx, e.ix.Load().RoleEntities(spec.ID), deferredOf(ctx).roleEntities(spec.ID), func(en *index.Entity) bool { return en.Role(spec.ID) != nil }) {
		return Role{}, fmt.Errorf("%w: role id %q exists", ErrConflict, spec.ID)
	}
	if err := nameFree(en, spec.Name, ""); err != nil {
		return Role{}, err
	}
	if err := e.guardGrant(ctx, entity, spec.Permissions); err != nil {
		return Role{}, err
	}
	now := e.now().UnixMilli()
	ch := &Change{Op: "role.create", Entity: entity, Add: []model.Rule{rules.RoleDecl(entity, spec.ID, spec.Name, now, now)}}
	for _, g := range spec.Permissions.Grants() {
		ch.Add = append(ch.Add, rules.Permission(entity, spec.ID, model.Key{Object: g.Object, Action: g.Action}, g.Permission))
	}
	if err := e.commit(ctx, c, ch); err != nil {
		return Role{}, err
	}
	return Role{ID: spec.ID, Entity: entity, Name: spec.Name, Permissions: spec.Permissions.Clone(),
		CreatedAt: time.UnixMilli(now).UTC(), UpdatedAt: time.UnixMilli(now).UTC()}, nil
}

func nameFree(en *index.Entity, name string, except model.RoleID) error {
	for _, r := range en.Roles {
		if r != nil && r.Declared && r.Name == name && r.ID != except {
			return fmt.Errorf("%w: entity %q has a role named %q", ErrConflict, en.ID, name)
		}
	}
	return nil
}

// GetRole returns role id of entity.
func (e *Engine) GetRole(ctx context.Context, entity model.EntityID, id model.RoleID) (Role, error) {
	en, err := e.entity(ctx, entity)
	if err != nil {
		return Role{}, err
	}
	r, err := declaredRole(en, id)
	if err != nil {
		return Role{}, err
	}
	return e.toRole(en, r), nil
}

// ListRoles returns the roles of entity, oldest first (then by id).
func (e *Engine) ListRoles(ctx context.Context, entity model.EntityID) ([]Role, error) {
	en, err := e.entity(ctx, entity)
	if err != nil {
		return nil, err
	}
	var out []Role
	for _, r := range en.Roles {
		if r != nil && r.Declared {
			out = append(out, e.toRole(en, r))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// UpdateRole renames a role and/or replaces its permissions. Members holding
// it (or reaching it as the default role) see the change from the next
// decision on.
func (e *Engine) UpdateRole(ctx context.Context, entity model.EntityID, id model.RoleID, u RoleUpdate) (Role, error) {
	if u.Name != nil {
		if err := validateName(*u.Name); err != nil {
			return Role{}, err
		}
	}
	if err := u.Permissions.Validate(e.cat); err != nil {
		return Role{}, invalid(err)
	}
	c, done, err := e.begin(ctx, "role.update")
	if err != nil {
		return Role{}, err
	}
	defer done()
	en, err := e.entity(ctx, entity)
	if err != nil {
		return Role{}, err
	}
	r, err := declaredRole(en, id)
	if err != nil {
		return Role{}, err
	}
	out := e.toRole(en, r) // as it is; made the result below
	if err := e.guardGrant(ctx, entity, out.Permissions); err != nil {
		return Role{}, err // a grantor changes only roles it could have made
	}
	name := r.Name
	if u.Name != nil {
		if err := nameFree(en, *u.Name, id); err != nil {
			return Role{}, err
		}
		name = *u.Name
	}
	if u.Permissions != nil {
		if err := e.guardGrant(ctx, entity, u.Permissions); err != nil {
			return Role{}, err
		}
	}
	now := e.now().UnixMilli()
	ch := &Change{Op: "role.update", Entity: entity,
		Remove: []model.Rule{rules.RoleDecl(entity, id, r.Name, r.Created, r.Updated)},
		Add:    []model.Rule{rules.RoleDecl(entity, id, name, r.Created, now)}}
	if u.Permissions != nil {
		for slot := 0; slot < e.cat.Len(); slot++ {
			k := e.cat.Key(slot)
			want := u.Permissions[k]
			have := r.Grants(slot)
			if len(have) == 1 && have[0] == want {
				continue
			}
			for _, p := range have {
				ch.Remove = append(ch.Remove, rules.Permission(entity, id, k, p))
			}
			if want != model.NotAllowed {
				ch.Add = append(ch.Add, rules.Permission(entity, id, k, want))
			}
		}
	}
	// The result is made from the change, not read back from the index,
	// which does not hold it yet under WithDeferredApply.
	out.Name, out.UpdatedAt = name, time.UnixMilli(now).UTC()
	if u.Permissions != nil {
		out.Permissions = u.Permissions.Clone()
	}
	if err := e.commit(ctx, c, ch); err != nil {
		return Role{}, err
	}
	return out, nil
}

// DeleteRole deletes a role. It is refused (ErrConflict) while a member holds
// it or while it is the entity's default role.
func (e *Engine) DeleteRole(ctx context.Context, entity model.EntityID, id model.RoleID) error {
	c, done, err := e.begin(ctx, "role.delete")
	if err != nil {
		return err
	}
	defer done()
	en, err := e.entity(ctx, entity)
	if err != nil {
		return err
	}
	r, err := declaredRole(en, id)
	if err != nil {
		return err
	}
	if err := e.guardRole(ctx, en, r); err != nil {
		return err
	}
	i := en.RoleIdx[id]
	if en.IsDefault(i) {
		return fmt.Errorf("%w: role %q is the default role of entity %q", ErrConflict, id, entity)
	}
	if u, held := en.HolderOf(i); held {
		return fmt.Errorf("%w: role %q is held by user %q", ErrConflict, id, u)
	}
	return e.commit(ctx, c, &Change{Op: "role.delete", Entity: entity, Remove: roleRules(e.cat, entity, r)})
}

// AddUser adds user to entity with role, or without a role (the entity's
// default role then applies) when role is empty. A user id is unique across
// entities.
func (e *Engine) AddUser(ctx context.Context, entity model.EntityID, user model.UserID, role model.RoleID) (User, error) {
	if err := user.Validate(); err != nil {
		return User{}, invalid(err)
	}
	c, done, err := e.begin(ctx, "user.add")
	if err != nil {
		return User{}, err
	}
	defer done()
	en, err := e.entity(ctx, entity)
	if err != nil {
		return User{}, err
	}
	if e.idTaken(ctx, e.ix.Load().UserEntities(user), deferredOf(ctx).userEntities(user), func(en *index.Entity) bool { _, ok := en.Users[user]; return ok }) {
		return User{}, fmt.Errorf("%w: user %q exists", ErrConflict, user)
	}
	if role != "" {
		if _, err := declaredRole(en, role); err != nil {
			return User{}, err
		}
	}
	if err := e.guardAssign(ctx, en, role); err != nil {
		return User{}, err
	}
	if err := e.commit(ctx, c, &Change{Op: "user.add", Entity: entity, Add: []model.Rule{rules.Member(entity, user, role)}}); err != nil {
		return User{}, err
	}
	return User{ID: user, Entity: entity, Role: role}, nil
}

// memberOf returns the snapshot of entity and the role index of user in it.
func (e *Engine) memberOf(ctx context.Context, entity model.EntityID, user model.UserID) (*index.Entity, int32, error) {
	en, err := e.entity(ctx, entity)
	if err != nil {
		return nil, 0, err
	}
	i, err := member(en, user)
	return en, i, err
}

// member returns the role index of user in en.
func member(en *index.Entity, user model.UserID) (int32, error) {
	if err := user.Validate(); err != nil {
		return 0, invalid(err)
	}
	i, ok := en.Users[user]
	if !ok {
		return 0, fmt.Errorf("%w: user %q in entity %q", ErrNotFound, user, en.ID)
	}
	return i, nil
}

// SetUserRole gives user a role of its entity, or takes its role away (the
// default role then applies) when role is empty.
func (e *Engine) SetUserRole(ctx context.Context, entity model.EntityID, user model.UserID, role model.RoleID) (User, error) {
	c, done, err := e.begin(ctx, "user.role")
	if err != nil {
		return User{}, err
	}
	defer done()
	en, i, err := e.memberOf(ctx, entity, user)
	if err != nil {
		return User{}, err
	}
	if role != "" {
		if _, err := declaredRole(en, role); err != nil {
			return User{}, err
		}
	}
	links := en.Links(user)
	if cur := toUser(en, user, i); len(links) == 1 && cur.Role == role {
		return cur, nil
	}
	ch := &Change{Op: "user.role", Entity: entity}
	kept := false // role is one of several links (rules made elsewhere)
	for _, l := range links {
		old := linkRole(en, l)
		if old == role {
			kept = true
			continue
		}
		if err := e.guardTakeAway(ctx, en, old); err != nil {
			return User{}, err // a grantor moves only users whose role it holds
		}
		ch.Remove = append(ch.Remove, rules.Member(entity, user, old))
	}
	if !kept {
		if err := e.guardAssign(ctx, en, role); err != nil {
			return User{}, err
		}
		ch.Add = []model.Rule{rules.Member(entity, user, role)}
	}
	if err := e.commit(ctx, c, ch); err != nil {
		return User{}, err
	}
	return User{ID: user, Entity: entity, Role: role}, nil
}

// RemoveUser removes user from entity.
func (e *Engine) RemoveUser(ctx context.Context, entity model.EntityID, user model.UserID) error {
	c, done, err := e.begin(ctx, "user.remove")
	if err != nil {
		return err
	}
	defer done()
	en, _, err := e.memberOf(ctx, entity, user)
	if err != nil {
		return err
	}
	ch := &Change{Op: "user.remove", Entity: entity}
	for _, l := range en.Links(user) {
		role := linkRole(en, l)
		if err := e.guardTakeAway(ctx, en, role); err != nil {
			return err
		}
		ch.Remove = append(ch.Remove, rules.Member(entity, user, role))
	}
	return e.commit(ctx, c, ch)
}

// GetUser returns user of entity.
func (e *Engine) GetUser(ctx context.Context, entity model.EntityID, user model.UserID) (User, error) {
	en, i, err := e.memberOf(ctx, entity, user)
	if err != nil {
		return User{}, err
	}
	return toUser(en, user, i), nil
}

// ListUsers returns the members of entity, sorted by id.
func (e *Engine) ListUsers(ctx context.Context, entity model.EntityID) ([]User, error) {
	en, err := e.entity(ctx, entity)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(en.Users))
	for u, i := range en.Users {
		out = append(out, toUser(en, u, i))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// LookupEntityUser returns the entity user belongs to and that entity's
// partner (the token service asks it before it issues an entity-user token).
// For a user that does not exist, or whose entity has no partner, the error
// wraps both [ErrNotFound] and [model.ErrUnknownUser] (which the auth
// package's ErrUnknownUser is).
func (e *Engine) LookupEntityUser(ctx context.Context, user model.UserID) (model.EntityID, model.PartnerID, error) {
	if err := user.Validate(); err != nil {
		return "", "", invalid(err)
	}
	ix := e.ix.Load()
	ent, ok := ix.UserEntity(user)
	var en *index.Entity
	if ok {
		en = ix.Entity(ent)
	}
	if en == nil || len(en.Owners) == 0 {
		return "", "", fmt.Errorf("%w: %w %q", ErrNotFound, model.ErrUnknownUser, user)
	}
	if _, ok := en.Users[user]; !ok {
		return "", "", fmt.Errorf("%w: %w %q", ErrNotFound, model.ErrUnknownUser, user)
	}
	return ent, en.Partner(), nil
}

// EffectiveRole returns the role that decides for user in entity: its own
// role, or the entity's default role (viaDefault) when it has none. The role
// is empty when neither exists.
func (e *Engine) EffectiveRole(ctx context.Context, entity model.EntityID, user model.UserID) (role model.RoleID, viaDefault bool, err error) {
	en, _, err := e.memberOf(ctx, entity, user)
	if err != nil {
		return "", false, err
	}
	r, viaDefault, _ := en.UserRole(user)
	if r == nil {
		return "", viaDefault, nil
	}
	return r.ID, viaDefault, nil
}
