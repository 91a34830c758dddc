package api

import (
	"github.com/gatehouse-authz/gatehouse/model"
)

// bizObjects is Monite's BizObjectsSchema: a role's permissions, e.g.
// {"objects":[{"object_type":"payable","actions":[{"action_name":"read","permission":"allowed"}]}]}.
type bizObjects struct {
	Objects []objectPermissions `json:"objects"`
}

// objectPermissions is Monite's RootSchema: the actions of one object type.
type objectPermissions struct {
	ObjectType string             `json:"object_type"`
	Actions    []actionPermission `json:"actions"`
}

// actionPermission is Monite's ActionSchema.
type actionPermission struct {
	ActionName string `json:"action_name"`
	Permission string `json:"permission"`
}

// toPermissions checks b against the catalog and converts it. Object types
// and actions must be in the catalog, each named once, with an explicit
// permission (not_allowed, allowed or allowed_for_own); errors are
// fieldErrors (422).
func toPermissions(c *model.Catalog, b *bizObjects) (model.Permissions, error) {
	ps := model.Permissions{}
	seen := map[model.Key]bool{}
	for i, o := range b.Objects {
		obj := model.ObjectType(o.ObjectType)
		if !c.HasObject(obj) {
			return nil, invalidf("permissions.objects[%d]: unknown object type %q", i, o.ObjectType)
		}
		for j, a := range o.Actions {
			k := model.Key{Object: obj, Action: model.Action(a.ActionName)}
			if a.ActionName == "" {
				return nil, invalidf("permissions.objects[%d].actions[%d]: action_name is required", i, j)
			}
			if err := c.Check(k.Object, k.Action); err != nil {
				return nil, invalidf("permissions.objects[%d].actions[%d]: unknown action %q for object type %q", i, j, a.ActionName, o.ObjectType)
			}
			if seen[k] {
				return nil, invalidf("permissions: %s is given twice", k)
			}
			seen[k] = true
			p, err := model.ParsePermission(a.Permission)
			if err != nil {
				return nil, invalidf("permissions.objects[%d].actions[%d]: permission must be not_allowed, allowed or allowed_for_own, not %q", i, j, a.Permission)
			}
			if p != model.NotAllowed {
				ps[k] = p
			}
		}
	}
	return ps, nil
}

// fromPermissions converts a role's permissions to Monite's shape: the object
// types it grants something on, with the actions it grants.
func fromPermissions(ps model.Permissions) bizObjects {
	out := bizObjects{Objects: []objectPermissions{}}
	for _, g := range ps.Grants() {
		n := len(out.Objects)
		if n == 0 || out.Objects[n-1].ObjectType != string(g.Object) {
			out.Objects = append(out.Objects, objectPermissions{ObjectType: string(g.Object)})
			n++
		}
		out.Objects[n-1].Actions = append(out.Objects[n-1].Actions,
			actionPermission{ActionName: string(g.Action), Permission: g.Permission.String()})
	}
	return out
}
