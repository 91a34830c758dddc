package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/model"
)

// AuditRecord is one committed change: who made it, when, and what it
// removed (before) and added (after).
type AuditRecord struct {
	Revision int64
	At       time.Time // when it was committed (UTC, microseconds)
	Op       string    // e.g. "role.create"; "casbin.update" for Watcher.Update
	Entity   model.EntityID
	Actor    string       // from policy.WithActor; "" when unknown
	Removed  []model.Rule // the rules before the change
	Added    []model.Rule // the rules after the change
}

// AuditFilter selects audit records. Zero fields select everything.
type AuditFilter struct {
	Entity        model.EntityID // only changes about this entity
	Since, Until  time.Time      // At >= Since, At < Until
	AfterRevision int64          // only revisions above this (for paging)
	Limit         int            // at most this many records (0: no limit)
	Newest        bool           // newest first (default: oldest first)
}

// Audit returns the recorded changes that match f, in revision order
// (reversed with f.Newest). Records deleted by [Store.Prune] are gone.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows []changeRow
	err := s.committed(ctx, func(db *gorm.DB) error {
		return s.auditQuery(db, f).Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading the audit trail: %w", err)
	}
	out := make([]AuditRecord, 0, len(rows))
	for _, r := range rows {
		rm, err := decodeRules(r.Removed)
		if err != nil {
			return nil, fmt.Errorf("store: audit record %d: %w", r.Revision, err)
		}
		add, err := decodeRules(r.Added)
		if err != nil {
			return nil, fmt.Errorf("store: audit record %d: %w", r.Revision, err)
		}
		out = append(out, AuditRecord{
			Revision: r.Revision, At: time.UnixMicro(r.At).UTC(), Op: r.Op,
			Entity: model.EntityID(r.Entity), Actor: r.Actor, Removed: rm, Added: add,
		})
	}
	return out, nil
}

// auditQuery is the query of f's records through db.
func (s *Store) auditQuery(db *gorm.DB, f AuditFilter) *gorm.DB {
	q := db.Table(s.changes)
	if f.Entity != "" {
		q = q.Where("entity = ?", string(f.Entity))
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UnixMicro())
	}
	if f.AfterRevision > 0 {
		q = q.Where("revision > ?", f.AfterRevision)
	}
	if f.Newest {
		q = q.Order("revision DESC")
	} else {
		q = q.Order("revision")
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	return q
}
