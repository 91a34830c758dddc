# Gatehouse's decision rules in Rego, over data shaped for lookups:
#
#   data.entities[E] = {
#     "partner": P,                  # the partner that owns E
#     "default_role": R,             # "" when E has none
#     "users": {U: R or ""},         # members; "" = no role, the default applies
#     "roles": {R: {object: {action: "allowed" | "allowed_for_own"}}},
#   }
#
# input = {"kind": "user" | "partner", "id": ..., "sub": "user:U" | "partner:P",
#          "entity": E, "object": ..., "action": ..., "owner": "" | "user:U" | "partner:P"}
package gatehouse

default allow := false

# A partner may do everything inside the entities it owns.
allow if {
	input.kind == "partner"
	data.entities[input.entity].partner == input.id
}

# An entity user may do what its role (or the entity's default role) allows.
allow if perm == "allowed"

allow if {
	perm == "allowed_for_own"
	own
}

# The role the user reaches in the request's entity: its explicit role, or
# the default role when it is a member without one.
role := r if {
	input.kind == "user"
	r := data.entities[input.entity].users[input.id]
	r != ""
}

role := r if {
	input.kind == "user"
	data.entities[input.entity].users[input.id] == ""
	r := data.entities[input.entity].default_role
	r != ""
}

perm := data.entities[input.entity].roles[role][input.object][input.action]

# allowed_for_own covers lists (no owner), the user's own objects, and new
# objects.
own if input.owner == ""

own if input.owner == input.sub

own if input.action == "create"
