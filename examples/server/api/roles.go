package api

import (
	"context"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// roleRow records who created a role (the engine holds the role itself), so
// that allowed_for_own works on roles too.
type roleRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	EntityID  string `gorm:"size:64;not null"`
	CreatedBy string `gorm:"size:80;not null"`
}

// createRoleRequest is Monite's CreateRoleRequest.
type createRoleRequest struct {
	Name        string      `json:"name"`
	Permissions *bizObjects `json:"permissions"`
}

// updateRoleRequest is Monite's UpdateRoleRequest: fields left out (or
// null) are not changed.
type updateRoleRequest struct {
	Name        *string     `json:"name"`
	Permissions *bizObjects `json:"permissions"`
}

// roleResponse is Monite's RoleResponse.
type roleResponse struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Permissions bizObjects `json:"permissions"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func toRoleResponse(r policy.Role) roleResponse {
	return roleResponse{ID: string(r.ID), Name: r.Name, Permissions: fromPermissions(r.Permissions),
		Status: "active", CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// createRole serves POST /roles. Beyond role.create, an entity user may only
// create a role that grants no more than it holds itself (403 otherwise):
// checked early, then by the engine under its change lock (guardedWrite).
func (s *Server) createRole(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	var req createRoleRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.Name == "" || req.Permissions == nil {
		s.writeEngineError(w, r, invalidf("name and permissions are required"))
		return
	}
	perms, err := toPermissions(s.Engine.Catalog(), req.Permissions)
	if err == nil {
		err = s.Engine.CheckGrant(subject, entity, perms)
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var role policy.Role
	err = s.guardedWrite(r.Context(), subject, func(ctx context.Context, tx *gorm.DB) error {
		var err error
		if role, err = s.Engine.CreateRole(ctx, entity, policy.RoleSpec{Name: req.Name, Permissions: perms}); err != nil {
			return err
		}
		return tx.Table(s.t.roles).Create(&roleRow{ID: string(role.ID), EntityID: string(entity), CreatedBy: subject.String()}).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleResponse(role))
}

// listRoles serves GET /roles: the entity's roles, oldest first (only the
// caller's own with allowed_for_own).
func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) {
	_, entity := caller(r)
	pg, err := parsePage(r)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	roles, err := s.Engine.ListRoles(r.Context(), entity)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var own map[string]bool
	if scope, _ := middleware.ScopeFromContext(r.Context()); scope != model.ScopeAll {
		var ids []string
		if err := s.DB.WithContext(r.Context()).Table(s.t.roles).
			Scopes(middleware.FilterScope(r.Context(), middleware.Columns{})).Pluck("id", &ids).Error; err != nil {
			s.writeEngineError(w, r, err)
			return
		}
		own = map[string]bool{}
		for _, id := range ids {
			own[id] = true
		}
	}
	out := make([]roleResponse, 0, len(roles))
	for _, role := range roles {
		if own == nil || own[string(role.ID)] {
			out = append(out, toRoleResponse(role))
		}
	}
	writeJSON(w, http.StatusOK, pageOf(pg, out))
}

// getRole serves GET /roles/{role_id}.
func (s *Server) getRole(w http.ResponseWriter, r *http.Request) {
	_, entity := caller(r)
	role, err := s.Engine.GetRole(r.Context(), entity, model.RoleID(r.PathValue("role_id")))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleResponse(role))
}

// updateRole serves PATCH /roles/{role_id}. An entity user may only change a
// role that grants no more than it holds, into one that grants no more:
// checked early, then by the engine under its change lock (guardedWrite).
func (s *Server) updateRole(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	id := model.RoleID(r.PathValue("role_id"))
	var req updateRoleRequest
	if !s.decode(w, r, &req) {
		return
	}
	var u policy.RoleUpdate
	u.Name = req.Name
	var err error
	if req.Permissions != nil {
		u.Permissions, err = toPermissions(s.Engine.Catalog(), req.Permissions)
	}
	if err == nil {
		err = s.checkRole(r.Context(), subject, entity, id)
	}
	if err == nil && u.Permissions != nil {
		err = s.Engine.CheckGrant(subject, entity, u.Permissions)
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var role policy.Role
	err = s.guardedWrite(r.Context(), subject, func(ctx context.Context, _ *gorm.DB) error {
		var err error
		role, err = s.Engine.UpdateRole(ctx, entity, id, u) // the role as the update makes it
		return err
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleResponse(role))
}

// deleteRole serves DELETE /roles/{role_id}: 409 while a user holds the role
// or it is the entity's default role. The caller must hold what the role
// grants: checked early, then by the engine under its change lock
// (guardedWrite).
func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	id := model.RoleID(r.PathValue("role_id"))
	err := s.checkRole(r.Context(), subject, entity, id)
	if err == nil {
		err = s.guardedWrite(r.Context(), subject, func(ctx context.Context, tx *gorm.DB) error {
			if err := s.Engine.DeleteRole(ctx, entity, id); err != nil {
				return err
			}
			return tx.Table(s.t.roles).Where("id = ? AND entity_id = ?", string(id), string(entity)).Delete(&roleRow{}).Error
		})
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkRole reports whether subject may change or delete role id: it must
// hold at least what the role grants (the escalation rule). The engine
// checks the same under policy.WithGrantor (UpdateRole, DeleteRole); this
// is the early check.
func (s *Server) checkRole(ctx context.Context, subject model.Subject, entity model.EntityID, id model.RoleID) error {
	role, err := s.Engine.GetRole(ctx, entity, id)
	if err != nil {
		return err
	}
	return s.Engine.CheckGrant(subject, entity, role.Permissions)
}
