package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// entityRow is an entity's details; the engine holds its partner and default
// role.
type entityRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	PartnerID string `gorm:"size:64;not null"`
	Type      string `gorm:"size:16;not null"`
	Email     string `gorm:"size:255;not null"`
	Details   string `gorm:"type:text;not null"` // entityFields as JSON
	CreatedAt time.Time
	UpdatedAt time.Time
}

// entityFields are the fields of Monite's CreateEntityRequest and
// UpdateEntityRequest besides type. Nested objects are kept as given.
type entityFields struct {
	Email                 *string         `json:"email,omitempty"`
	Address               json.RawMessage `json:"address,omitempty"`
	Organization          json.RawMessage `json:"organization,omitempty"`
	Individual            json.RawMessage `json:"individual,omitempty"`
	Phone                 *string         `json:"phone,omitempty"`
	RegistrationAuthority *string         `json:"registration_authority,omitempty"`
	RegistrationNumber    *string         `json:"registration_number,omitempty"`
	TaxID                 *string         `json:"tax_id,omitempty"`
	Website               *string         `json:"website,omitempty"`
}

// createEntityRequest is Monite's CreateEntityRequest.
type createEntityRequest struct {
	Type string `json:"type"`
	entityFields
}

// entityResponse is Monite's EntityResponse, plus default_role_id.
type entityResponse struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	entityFields
	// DefaultRoleID is the role of the entity's users without a role of
	// their own (an addition to Monite's schema).
	DefaultRoleID *string `json:"default_role_id"`
}

// settingsRequest is the part of Monite's entity settings this server
// supports: the entity's default role (an addition to Monite's schema).
// An absent field changes nothing, null clears the default role.
type settingsRequest struct {
	DefaultRoleID json.RawMessage `json:"default_role_id"`
}

// settingsResponse answers PATCH /entities/{entity_id}/settings.
type settingsResponse struct {
	DefaultRoleID *string `json:"default_role_id"`
}

// present reports whether a raw JSON member was given and is not null.
func present(m json.RawMessage) bool {
	return len(m) > 0 && !bytes.Equal(m, []byte("null"))
}

// maxDetails bounds an entity's details as JSON, in bytes: the size of
// their column on MySQL (TEXT).
const maxDetails = 65535

// validate checks the fields of an entity of type typ.
func (f *entityFields) validate(typ string) error {
	if err := checkText(textField{name: "email", value: f.Email, max: 255, required: true},
		textField{name: "phone", value: f.Phone}, textField{name: "registration_authority", value: f.RegistrationAuthority},
		textField{name: "registration_number", value: f.RegistrationNumber}, textField{name: "tax_id", value: f.TaxID},
		textField{name: "website", value: f.Website}); err != nil {
		return err
	}
	for _, o := range []struct {
		name string
		raw  json.RawMessage
	}{{"address", f.Address}, {"organization", f.Organization}, {"individual", f.Individual}} {
		if err := checkJSONText(o.name, o.raw); err != nil {
			return err
		}
	}
	if f.Email == nil || !strings.Contains(*f.Email, "@") {
		return invalidf("email must be an email address")
	}
	if !present(f.Address) || f.Address[0] != '{' {
		return invalidf("address must be an object")
	}
	switch typ {
	case "organization":
		if !present(f.Organization) || f.Organization[0] != '{' || present(f.Individual) {
			return invalidf("an organization needs an organization object and no individual")
		}
	case "individual":
		if !present(f.Individual) || f.Individual[0] != '{' || present(f.Organization) {
			return invalidf("an individual needs an individual object and no organization")
		}
	default:
		return invalidf("type must be organization or individual")
	}
	return nil
}

// details returns the fields as stored: JSON, at most maxDetails bytes.
func (f *entityFields) details() (string, error) {
	b, err := json.Marshal(f)
	if err == nil && len(b) > maxDetails {
		err = invalidf("the entity's fields must take at most %d bytes as JSON", maxDetails)
	}
	return string(b), err
}

// merge applies the fields given in u.
func (f *entityFields) merge(u entityFields) {
	if u.Email != nil {
		f.Email = u.Email
	}
	for _, p := range []struct{ dst, src *json.RawMessage }{{&f.Address, &u.Address}, {&f.Organization, &u.Organization}, {&f.Individual, &u.Individual}} {
		if present(*p.src) {
			*p.dst = *p.src
		}
	}
	for _, p := range []struct{ dst, src **string }{{&f.Phone, &u.Phone}, {&f.RegistrationAuthority, &u.RegistrationAuthority}, {&f.RegistrationNumber, &u.RegistrationNumber}, {&f.TaxID, &u.TaxID}, {&f.Website, &u.Website}} {
		if *p.src != nil {
			*p.dst = *p.src
		}
	}
}

// createEntity serves POST /entities: a partner creates an entity it owns.
func (s *Server) createEntity(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	var req createEntityRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := req.validate(req.Type); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	details, err := req.details()
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	row := entityRow{ID: newID(), PartnerID: string(p.PartnerID), Type: req.Type, Email: *req.Email, Details: details}
	err = s.store.InTransaction(r.Context(), func(ctx context.Context, tx *gorm.DB) error {
		if _, err := s.Engine.CreateEntity(ctx, p.PartnerID, model.EntityID(row.ID)); err != nil {
			return err
		}
		return tx.Table(s.t.entities).Create(&row).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.entityResponse(r.Context(), row))
}

// listEntities serves GET /entities: the partner's entities, oldest first.
func (s *Server) listEntities(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	pg, err := parsePage(r)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var rows []entityRow
	if err := s.DB.WithContext(r.Context()).Table(s.t.entities).Where("partner_id = ?", string(p.PartnerID)).
		Order("created_at, id").Offset(pg.Offset).Limit(pg.Limit + 1).Find(&rows).Error; err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	out := make([]entityResponse, len(rows))
	for i, row := range rows {
		out[i] = s.entityResponse(r.Context(), row)
	}
	writeJSON(w, http.StatusOK, makePage(pg, out))
}

// getEntity serves GET /entities/{entity_id}.
func (s *Server) getEntity(w http.ResponseWriter, r *http.Request) {
	row, ok := s.partnerEntity(w, r)
	if ok {
		writeJSON(w, http.StatusOK, s.entityResponse(r.Context(), row))
	}
}

// updateEntity serves PATCH /entities/{entity_id} (Monite's
// UpdateEntityRequest: the fields given replace the stored ones). The
// entity's row is read again and changed under its lock (lockEntity), so
// that an entity deleted meanwhile answers 404 and two updates do not
// overwrite each other's fields.
func (s *Server) updateEntity(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.partnerEntity(w, r); !ok {
		return
	}
	var u entityFields
	if !s.decode(w, r, &u) {
		return
	}
	p, _ := middleware.PrincipalFromContext(r.Context())
	var row entityRow
	err := s.write(r.Context(), func(tx *gorm.DB) error {
		var err error
		if row, err = s.lockEntity(tx, r.PathValue("entity_id"), p.PartnerID, lockUpdate); err != nil {
			return err
		}
		var f entityFields
		_ = json.Unmarshal([]byte(row.Details), &f)
		f.merge(u)
		if err := f.validate(row.Type); err != nil {
			return err
		}
		if row.Details, err = f.details(); err != nil {
			return err
		}
		row.Email, row.UpdatedAt = *f.Email, time.Now()
		return tx.Table(s.t.entities).Where("id = ?", row.ID).
			Updates(map[string]any{"email": row.Email, "details": row.Details, "updated_at": row.UpdatedAt}).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.entityResponse(r.Context(), row))
}

// updateEntitySettings serves PATCH /entities/{entity_id}/settings: it sets
// or clears (null) the entity's default role. Like every role the server
// assigns, it is assigned with the caller as the grantor
// (policy.WithGrantor): the engine checks the escalation rule under its
// change lock, which a partner owning the entity (partnerEntity) always
// passes.
func (s *Server) updateEntitySettings(w http.ResponseWriter, r *http.Request) {
	row, ok := s.partnerEntity(w, r)
	if !ok {
		return
	}
	var req settingsRequest
	if !s.decode(w, r, &req) {
		return
	}
	entity := model.EntityID(row.ID)
	if len(req.DefaultRoleID) > 0 {
		var role string
		if present(req.DefaultRoleID) {
			if err := json.Unmarshal(req.DefaultRoleID, &role); err != nil || role == "" {
				s.writeEngineError(w, r, invalidf("default_role_id must be a role id or null"))
				return
			}
		}
		p, _ := middleware.PrincipalFromContext(r.Context())
		if err := s.Engine.SetDefaultRole(policy.WithGrantor(r.Context(), p.Subject()), entity, model.RoleID(role)); err != nil {
			s.writeEngineError(w, r, err)
			return
		}
	}
	e, err := s.Engine.GetEntity(r.Context(), entity)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, settingsResponse{DefaultRoleID: optional(string(e.DefaultRole))})
}

// deleteEntity serves DELETE /entities/{entity_id} (partner tokens only):
// it removes the entity from the engine, which removes its roles, users and
// default role with it (policy.Engine.RemoveEntity), and deletes the
// server's rows of the entity (details, users, role creators, payables), all
// in one transaction. That transaction first locks the entity's row
// (lockEntity), which the writes that need the entity (a payable's
// creation, the entity's update) lock too: none of them can come between
// the deletion of the entity's rows and its commit, so none is left
// behind. Its users' tokens are refused from then on: 403 on the guarded
// routes (the entity they name no longer exists), 404 from GET
// /entity_users/me (the user no longer exists).
func (s *Server) deleteEntity(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	err := s.store.InTransaction(r.Context(), func(ctx context.Context, tx *gorm.DB) error {
		// The only read of the row: locked, and limited to the calling
		// partner's entities (another partner's entity looks missing: 404).
		row, err := s.lockEntity(tx, r.PathValue("entity_id"), p.PartnerID, lockUpdate)
		if err != nil {
			return err
		}
		if err := s.Engine.RemoveEntity(ctx, model.EntityID(row.ID)); err != nil {
			return err
		}
		for _, t := range []struct {
			name string
			row  any
		}{{s.t.payables, &payableRow{}}, {s.t.users, &userRow{}}, {s.t.roles, &roleRow{}}} {
			if err := tx.Table(t.name).Where("entity_id = ?", row.ID).Delete(t.row).Error; err != nil {
				return err
			}
		}
		return tx.Table(s.t.entities).Where("id = ?", row.ID).Delete(&entityRow{}).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// partnerEntity loads the entity of the path if the calling partner owns
// it; otherwise it answers 404 (another partner's entity looks missing).
func (s *Server) partnerEntity(w http.ResponseWriter, r *http.Request) (entityRow, bool) {
	p, _ := middleware.PrincipalFromContext(r.Context())
	row, err := s.lockEntity(s.DB.WithContext(r.Context()), r.PathValue("entity_id"), p.PartnerID, "")
	if err != nil {
		s.writeEngineError(w, r, err)
		return row, false
	}
	return row, true
}

// Strengths of lockEntity's row lock.
const (
	lockUpdate = clause.LockingStrengthUpdate // a change of the entity itself
	lockShare  = clause.LockingStrengthShare  // a write that needs the entity to exist
)

// lockEntity reads the row of entity id through db (only if partner owns
// it, unless partner is empty) and, with a strength, locks it until db's
// transaction ends: lockUpdate (FOR UPDATE) for a change of the entity
// itself (its update, its deletion), lockShare (PostgreSQL FOR SHARE,
// MySQL LOCK IN SHARE MODE) for a write that needs the entity to exist (a
// payable's creation). Such a write and the entity's deletion take turns:
// one that waited for the deletion finds no entity (a locking read sees
// the latest commit, under MySQL's repeatable read too). SQLite has no row
// locks; there every write transaction takes the database's write lock
// when it begins (store.Open's immediate transactions), which serialises
// them all the same. A missing entity wraps errNotFound (404).
func (s *Server) lockEntity(db *gorm.DB, id string, partner model.PartnerID, strength string) (entityRow, error) {
	q := db.Table(s.t.entities).Where("id = ?", id)
	if partner != "" {
		q = q.Where("partner_id = ?", string(partner))
	}
	if strength != "" {
		q = q.Clauses(clause.Locking{Strength: strength})
	}
	var row entityRow
	err := q.Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return row, fmt.Errorf("entity %w", errNotFound)
	}
	return row, err
}

// entityResponse builds the answer for an entity.
func (s *Server) entityResponse(ctx context.Context, row entityRow) entityResponse {
	out := entityResponse{ID: row.ID, CreatedAt: row.CreatedAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(), Type: row.Type, Status: "active"}
	_ = json.Unmarshal([]byte(row.Details), &out.entityFields)
	if e, err := s.Engine.GetEntity(ctx, model.EntityID(row.ID)); err == nil {
		out.DefaultRoleID = optional(string(e.DefaultRole))
	}
	return out
}

// optional returns nil for "", else a pointer to s.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
