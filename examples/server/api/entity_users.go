package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// userRow is an entity user's details; the engine holds its entity and role.
type userRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	EntityID  string `gorm:"size:64;not null"`
	Login     string `gorm:"size:255;not null"`
	FirstName string `gorm:"size:255;not null"`
	LastName  *string
	Email     *string
	Phone     *string
	Title     *string
	CreatedBy string `gorm:"size:80;not null"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// createUserRequest is Monite's CreateEntityUserRequest. Without role_id the
// user gets the entity's default role.
type createUserRequest struct {
	Login     string  `json:"login"`
	FirstName string  `json:"first_name"`
	LastName  *string `json:"last_name"`
	Email     *string `json:"email"`
	Phone     *string `json:"phone"`
	Title     *string `json:"title"`
	RoleID    *string `json:"role_id"`
}

// updateUserRequest is Monite's UpdateEntityUserRequest. Fields left out are
// not changed; "role_id": null takes the user's role away (the entity's
// default role then applies).
type updateUserRequest struct {
	Login     *string         `json:"login"`
	FirstName *string         `json:"first_name"`
	LastName  *string         `json:"last_name"`
	Email     *string         `json:"email"`
	Phone     *string         `json:"phone"`
	Title     *string         `json:"title"`
	RoleID    json.RawMessage `json:"role_id"`
}

// userResponse is Monite's EntityUserResponse. role_id is null for a user
// without a role of its own (the entity's default role applies).
type userResponse struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Login     string    `json:"login"`
	FirstName string    `json:"first_name"`
	LastName  *string   `json:"last_name"`
	Email     *string   `json:"email"`
	Phone     *string   `json:"phone"`
	RoleID    *string   `json:"role_id"`
	Status    string    `json:"status"`
}

func toUserResponse(row userRow, role model.RoleID) userResponse {
	return userResponse{ID: row.ID, CreatedAt: row.CreatedAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(), Login: row.Login,
		FirstName: row.FirstName, LastName: row.LastName, Email: row.Email, Phone: row.Phone,
		RoleID: optional(string(role)), Status: "active"}
}

// createUser serves POST /entity_users. An entity user may only give the
// new user a role that grants no more than it holds itself (without
// role_id, the entity's default role, which then applies): checked early,
// then by the engine under its change lock (guardedWrite).
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	var req createUserRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := checkUserText(&req.Login, &req.FirstName, req.LastName, req.Email, req.Phone, req.Title); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var role model.RoleID
	if req.RoleID != nil {
		role = model.RoleID(*req.RoleID)
	}
	if err := s.checkApplies(r.Context(), subject, entity, role); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	row := userRow{ID: newID(), EntityID: string(entity), Login: req.Login, FirstName: req.FirstName, LastName: req.LastName,
		Email: req.Email, Phone: req.Phone, Title: req.Title, CreatedBy: subject.String()}
	err := s.guardedWrite(r.Context(), subject, func(ctx context.Context, tx *gorm.DB) error {
		if _, err := s.Engine.AddUser(ctx, entity, model.UserID(row.ID), role); err != nil {
			return err
		}
		return tx.Table(s.t.users).Create(&row).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(row, role))
}

// checkUserText checks the text fields of a user given in a request (nil:
// not given): login and first_name must not be empty and fit their
// columns (checkText).
func checkUserText(login, firstName, lastName, email, phone, title *string) error {
	return checkText(textField{name: "login", value: login, max: 255, required: true},
		textField{name: "first_name", value: firstName, max: 255, required: true},
		textField{name: "last_name", value: lastName}, textField{name: "email", value: email},
		textField{name: "phone", value: phone}, textField{name: "title", value: title})
}

// listUsers serves GET /entity_users (only those the caller created with
// allowed_for_own).
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	_, entity := caller(r)
	pg, err := parsePage(r)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var rows []userRow
	if err := s.DB.WithContext(r.Context()).Table(s.t.users).Scopes(middleware.FilterScope(r.Context(), middleware.Columns{})).
		Order("created_at, id").Offset(pg.Offset).Limit(pg.Limit + 1).Find(&rows).Error; err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	users, err := s.Engine.ListUsers(r.Context(), entity)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	roles := make(map[model.UserID]model.RoleID, len(users))
	for _, u := range users {
		roles[u.ID] = u.Role
	}
	out := make([]userResponse, len(rows))
	for i, row := range rows {
		out[i] = toUserResponse(row, roles[model.UserID(row.ID)])
	}
	writeJSON(w, http.StatusOK, makePage(pg, out))
}

// getUser serves GET /entity_users/{entity_user_id}.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	_, entity := caller(r)
	row, user, err := s.loadUser(r.Context(), entity, r.PathValue("entity_user_id"))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(row, user.Role))
}

// updateUser serves PATCH /entity_users/{entity_user_id}. Any change obeys
// the escalation rule for the role that applies to the user now (for a
// user without a role of its own, the entity's default role), as removing
// the user does; changing the role, for the one that will apply too:
// checked early, then under the change lock: the handler takes it and
// checks the role that applies again (holdAndRecheck), so that the user
// cannot be promoted between the check and the write, and the engine
// checks a change of the role (guardedWrite).
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	row, user, err := s.loadUser(r.Context(), entity, r.PathValue("entity_user_id"))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var req updateUserRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := checkUserText(req.Login, req.FirstName, req.LastName, req.Email, req.Phone, req.Title); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	changeRole := len(req.RoleID) > 0
	var role model.RoleID
	if present(req.RoleID) {
		var id string
		if json.Unmarshal(req.RoleID, &id) != nil || id == "" {
			s.writeEngineError(w, r, invalidf("role_id must be a role id or null"))
			return
		}
		role = model.RoleID(id)
	}
	// Any change of a user, not only of its role, needs the role that
	// applies to it now: an entity user may not change the login or the
	// email of a user who holds more than it does (and take over its
	// account). A change of the role also needs the new one.
	err = s.checkApplies(r.Context(), subject, entity, user.Role)
	if err == nil && changeRole && role != user.Role {
		err = s.checkApplies(r.Context(), subject, entity, role)
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	updated := user
	err = s.guardedWrite(r.Context(), subject, func(ctx context.Context, tx *gorm.DB) error {
		// Hold the lock and check the role that applies now first, even
		// for a change of the role: one that repeats the current role
		// makes no change, and the engine then checks nothing.
		var err error
		if updated, err = s.holdAndRecheck(ctx, subject, entity, user.ID); err != nil {
			return err
		}
		if changeRole {
			if updated, err = s.Engine.SetUserRole(ctx, entity, user.ID, role); err != nil {
				return err
			}
		}
		// The row as it is now, under the lock (every change of a user
		// takes it): a concurrent PATCH of other fields is kept, not
		// overwritten with what was read before.
		if row, err = s.userRow(tx, entity, row.ID); err != nil {
			return err
		}
		for _, p := range []struct{ dst, src *string }{{&row.Login, req.Login}, {&row.FirstName, req.FirstName}} {
			if p.src != nil {
				*p.dst = *p.src
			}
		}
		for _, p := range []struct{ dst, src **string }{{&row.LastName, &req.LastName}, {&row.Email, &req.Email}, {&row.Phone, &req.Phone}, {&row.Title, &req.Title}} {
			if *p.src != nil {
				*p.dst = *p.src
			}
		}
		row.UpdatedAt = time.Now()
		return tx.Table(s.t.users).Where("id = ?", row.ID).Select("*").Omit("created_at", "created_by", "entity_id").Updates(&row).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(row, updated.Role))
}

// deleteUser serves DELETE /entity_users/{entity_user_id}. The role that
// applies to the user must not grant more than the caller holds: checked
// early, then by the engine under its change lock (guardedWrite).
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	_, user, err := s.loadUser(r.Context(), entity, r.PathValue("entity_user_id"))
	if err == nil {
		err = s.checkApplies(r.Context(), subject, entity, user.Role)
	}
	if err == nil {
		err = s.guardedWrite(r.Context(), subject, func(ctx context.Context, tx *gorm.DB) error {
			if err := s.Engine.RemoveUser(ctx, entity, user.ID); err != nil {
				return err
			}
			return tx.Table(s.t.users).Where("id = ?", string(user.ID)).Delete(&userRow{}).Error
		})
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// me serves GET /entity_users/me: the calling entity user.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p, ok := s.entityUser(w, r)
	if !ok {
		return
	}
	row, user, err := s.loadUser(r.Context(), p.EntityID, string(p.UserID))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toUserResponse(row, user.Role))
}

// myRole serves GET /entity_users/my_role: the role that applies to the
// calling entity user, its own or else the entity's default role.
func (s *Server) myRole(w http.ResponseWriter, r *http.Request) {
	p, ok := s.entityUser(w, r)
	if !ok {
		return
	}
	user, err := s.Engine.GetUser(r.Context(), p.EntityID, p.UserID)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	role := user.Role
	if role == "" {
		e, err := s.Engine.GetEntity(r.Context(), p.EntityID)
		if err != nil {
			s.writeEngineError(w, r, err)
			return
		}
		role = e.DefaultRole
	}
	if role == "" {
		writeError(w, http.StatusNotFound, "the user has no role and the entity no default role")
		return
	}
	got, err := s.Engine.GetRole(r.Context(), p.EntityID, role)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRoleResponse(got))
}

// entityUser returns the principal of an entity-user token; other callers
// get 403.
func (s *Server) entityUser(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	if p.Kind != auth.KindEntityUser {
		writeError(w, http.StatusForbidden, "this operation needs an entity-user token")
		return p, false
	}
	return p, true
}

// loadUser reads a user of entity: its details and its membership.
func (s *Server) loadUser(ctx context.Context, entity model.EntityID, id string) (userRow, policy.User, error) {
	row, err := s.userRow(s.DB.WithContext(ctx), entity, id)
	if err != nil {
		return row, policy.User{}, err
	}
	user, err := s.Engine.GetUser(ctx, entity, model.UserID(id))
	return row, user, err
}

// userRow reads the row of user id of entity through db.
func (s *Server) userRow(db *gorm.DB, entity model.EntityID, id string) (userRow, error) {
	var row userRow
	err := db.Table(s.t.users).Where("id = ? AND entity_id = ?", id, string(entity)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return row, fmt.Errorf("entity user %w", errNotFound)
	}
	return row, err
}

// holdAndRecheck takes the store's change lock for the rest of the
// transaction of ctx (store.Store.HoldChangeLock: no replica changes a
// policy until it ends), then checks again, on policies now current, that
// subject holds the role that applies to user, and returns the user as the
// engine holds it. Every change of a user uses it (found in review: with
// the early check only, a user promoted in between could have its login
// and email rewritten by a caller who holds less).
func (s *Server) holdAndRecheck(ctx context.Context, subject model.Subject, entity model.EntityID, user model.UserID) (policy.User, error) {
	if err := s.store.HoldChangeLock(ctx, s.Engine); err != nil {
		return policy.User{}, err
	}
	u, err := s.Engine.GetUser(ctx, entity, user)
	if err != nil {
		return policy.User{}, err
	}
	if err := s.checkApplies(ctx, subject, entity, u.Role); err != nil {
		return policy.User{}, err
	}
	return u, nil
}

// checkApplies applies the escalation rule to the role that applies to a
// user given role, whether it is assigned or taken away: role itself or,
// when it is empty, the entity's default role (none is fine). The engine
// checks the same under policy.WithGrantor (AddUser, SetUserRole,
// RemoveUser); this is the early check.
func (s *Server) checkApplies(ctx context.Context, subject model.Subject, entity model.EntityID, role model.RoleID) error {
	if role == "" {
		e, err := s.Engine.GetEntity(ctx, entity)
		if err != nil {
			return err
		}
		if role = e.DefaultRole; role == "" {
			return nil
		}
	}
	return s.Engine.CheckAssign(subject, entity, role)
}
