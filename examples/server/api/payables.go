package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
)

// Payable states used by this server (a subset of Monite's PayableStateEnum).
const (
	payableNew      = "new"
	payableApproved = "waiting_to_be_paid"
)

// payableRow is a payable: a small subset of Monite's, with the entity it
// belongs to and who created it (model.Subject.String(), the form
// middleware.FilterScope filters on).
type payableRow struct {
	ID          string `gorm:"primaryKey;size:64"`
	EntityID    string `gorm:"size:64;not null"`
	CreatedBy   string `gorm:"size:80;not null"`
	Status      string `gorm:"size:32;not null"`
	Currency    *string
	TotalAmount *int64
	Description *string
	DocumentID  *string
	DueDate     *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// payableRequest is the subset of Monite's PayableUploadWithDataSchema (and
// PayableUpdateSchema) this server supports; other fields are refused (422).
type payableRequest struct {
	Currency    *string `json:"currency"`
	TotalAmount *int64  `json:"total_amount"`
	Description *string `json:"description"`
	DocumentID  *string `json:"document_id"`
	DueDate     *string `json:"due_date"`
}

// payableResponse is the subset of Monite's PayableResponseSchema this
// server fills.
type payableResponse struct {
	ID                  string    `json:"id"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	EntityID            string    `json:"entity_id"`
	Status              string    `json:"status"`
	Currency            *string   `json:"currency,omitempty"`
	TotalAmount         *int64    `json:"total_amount,omitempty"`
	AmountDue           *int64    `json:"amount_due,omitempty"`
	Description         *string   `json:"description,omitempty"`
	DocumentID          *string   `json:"document_id,omitempty"`
	DueDate             *string   `json:"due_date,omitempty"`
	CreditNotes         []any     `json:"credit_notes"`
	PayableOrigin       string    `json:"payable_origin"`
	SourceOfPayableData string    `json:"source_of_payable_data"`
	WasCreatedByUserID  *string   `json:"was_created_by_user_id,omitempty"`
}

func toPayableResponse(p payableRow) payableResponse {
	out := payableResponse{ID: p.ID, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(), EntityID: p.EntityID,
		Status: p.Status, Currency: p.Currency, TotalAmount: p.TotalAmount, AmountDue: p.TotalAmount,
		Description: p.Description, DocumentID: p.DocumentID, DueDate: p.DueDate, CreditNotes: []any{},
		PayableOrigin: "upload", SourceOfPayableData: "user_specified"}
	if s, err := model.ParseSubject(p.CreatedBy); err == nil && s.Kind == model.KindUser {
		out.WasCreatedByUserID = &s.ID
	}
	return out
}

// apply checks the fields given in req and copies them to p.
func (req *payableRequest) apply(p *payableRow) error {
	if c := req.Currency; c != nil {
		if len(*c) != 3 || (*c)[0] < 'A' || (*c)[0] > 'Z' || (*c)[1] < 'A' || (*c)[1] > 'Z' || (*c)[2] < 'A' || (*c)[2] > 'Z' {
			return invalidf("currency must be a three-letter ISO 4217 code such as EUR")
		}
		p.Currency = c
	}
	if a := req.TotalAmount; a != nil {
		if *a < 0 {
			return invalidf("total_amount must not be negative")
		}
		p.TotalAmount = a
	}
	if err := checkText(textField{name: "description", value: req.Description, max: 255},
		textField{name: "document_id", value: req.DocumentID, max: 255}); err != nil {
		return err
	}
	if d := req.Description; d != nil {
		p.Description = d
	}
	if d := req.DocumentID; d != nil {
		p.DocumentID = d
	}
	if d := req.DueDate; d != nil {
		if _, err := time.Parse(time.DateOnly, *d); err != nil {
			return invalidf("due_date must be a date in the YYYY-MM-DD format")
		}
		p.DueDate = d
	}
	return nil
}

// createPayable serves POST /payables; the caller becomes the creator. An
// entity deleted before the payable's creation commits answers 404.
func (s *Server) createPayable(w http.ResponseWriter, r *http.Request) {
	subject, entity := caller(r)
	var req payableRequest
	if !s.decode(w, r, &req) {
		return
	}
	row := payableRow{ID: newID(), EntityID: string(entity), CreatedBy: subject.String(), Status: payableNew}
	if err := req.apply(&row); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	// Under the entity's row lock, which its deletion takes too: a payable
	// is never created in an entity being deleted.
	err := s.write(r.Context(), func(tx *gorm.DB) error {
		if _, err := s.lockEntity(tx, row.EntityID, "", lockShare); err != nil {
			return err
		}
		return tx.Table(s.t.payables).Create(&row).Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPayableResponse(row))
}

// listPayables serves GET /payables: the entity's payables, oldest first,
// only the caller's own when its role allows reading its own only.
func (s *Server) listPayables(w http.ResponseWriter, r *http.Request) {
	pg, err := parsePage(r)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var rows []payableRow
	if err := s.DB.WithContext(r.Context()).Table(s.t.payables).Scopes(middleware.FilterScope(r.Context(), middleware.Columns{})).
		Order("created_at, id").Offset(pg.Offset).Limit(pg.Limit + 1).Find(&rows).Error; err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	out := make([]payableResponse, len(rows))
	for i, row := range rows {
		out[i] = toPayableResponse(row)
	}
	writeJSON(w, http.StatusOK, makePage(pg, out))
}

// getPayable serves GET /payables/{payable_id}.
func (s *Server) getPayable(w http.ResponseWriter, r *http.Request) {
	row, err := s.loadPayable(r)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPayableResponse(row))
}

// updatePayable serves PATCH /payables/{payable_id}. Only a new payable
// can be edited (Monite's "Payable couldn't be updated due to current
// state"): once approved, it answers 409 and changes nothing.
func (s *Server) updatePayable(w http.ResponseWriter, r *http.Request) {
	row, err := s.loadPayable(r)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	var req payableRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := req.apply(&row); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	row, err = s.changeNewPayable(r, "updated", map[string]any{"currency": row.Currency, "total_amount": row.TotalAmount,
		"description": row.Description, "document_id": row.DocumentID, "due_date": row.DueDate, "updated_at": time.Now()})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPayableResponse(row))
}

// deletePayable serves DELETE /payables/{payable_id}.
func (s *Server) deletePayable(w http.ResponseWriter, r *http.Request) {
	_, entity := caller(r)
	var res *gorm.DB
	err := s.write(r.Context(), func(tx *gorm.DB) error {
		res = tx.Table(s.t.payables).Where("id = ? AND entity_id = ?", r.PathValue("payable_id"), string(entity)).Delete(&payableRow{})
		return res.Error
	})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	if res.RowsAffected == 0 {
		writeError(w, http.StatusNotFound, "payable not found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// approvePayable serves POST /payables/{payable_id}/approve_payment_operation:
// a new payable becomes waiting_to_be_paid; any other state answers 409.
func (s *Server) approvePayable(w http.ResponseWriter, r *http.Request) {
	row, err := s.changeNewPayable(r, "approved", map[string]any{"status": payableApproved, "updated_at": time.Now()})
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPayableResponse(row))
}

// changeNewPayable writes values to the payable of the path if it is still
// new, in one conditional UPDATE (so that no approval can come between a
// check and the write), and returns the payable as stored after. A payable
// in another state is left as it is: the error wraps errConflict (409) and
// says why, with done naming the change refused ("updated", "approved").
func (s *Server) changeNewPayable(r *http.Request, done string, values map[string]any) (payableRow, error) {
	_, entity := caller(r)
	var res *gorm.DB
	err := s.write(r.Context(), func(tx *gorm.DB) error {
		res = tx.Table(s.t.payables).
			Where("id = ? AND entity_id = ? AND status = ?", r.PathValue("payable_id"), string(entity), payableNew).
			Updates(values)
		return res.Error
	})
	if err != nil {
		return payableRow{}, err
	}
	row, err := s.loadPayable(r)
	// MySQL counts only the rows an UPDATE changed: 0 rows for a new
	// payable given its own values again is no conflict (a payable never
	// goes back to new).
	if err == nil && res.RowsAffected == 0 && row.Status != payableNew {
		err = fmt.Errorf("%w: a payable in state %s cannot be %s", errConflict, row.Status, done)
	}
	return row, err
}

// loadPayable reads the payable of the path in the request's entity.
func (s *Server) loadPayable(r *http.Request) (payableRow, error) {
	_, entity := caller(r)
	var row payableRow
	err := s.DB.WithContext(r.Context()).Table(s.t.payables).
		Where("id = ? AND entity_id = ?", r.PathValue("payable_id"), string(entity)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return row, fmt.Errorf("payable %w", errNotFound)
	}
	return row, err
}
