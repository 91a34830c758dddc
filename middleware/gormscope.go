package middleware

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Columns names the columns [FilterScope] filters on. Empty names take the
// defaults "entity_id" and "created_by". Names may be qualified
// ("payables.entity_id"); they are quoted by GORM, never spliced into SQL.
type Columns struct {
	Entity string // the entity the row belongs to
	Owner  string // the row's creator, stored as model.Subject.String() ("user:u1", "partner:p1")
}

// FilterScope returns a GORM scope that restricts a query to the rows the
// request may list, from the decision in ctx:
//
//   - scope all: entity = the request's entity;
//   - scope own: entity = the request's entity AND owner = the subject
//     (as model.Subject.String(), the form creators must be stored in);
//   - no decision, no entity or scope none: no rows at all (1 = 0).
//
// Use it as db.Scopes(middleware.FilterScope(ctx, cols)).
func FilterScope(ctx context.Context, cols Columns) func(*gorm.DB) *gorm.DB {
	if cols.Entity == "" {
		cols.Entity = "entity_id"
	}
	if cols.Owner == "" {
		cols.Owner = "created_by"
	}
	st := stateFrom(ctx)
	return func(db *gorm.DB) *gorm.DB {
		if st == nil || !st.hasEntity || !st.hasScope || st.entity == "" {
			return db.Where("1 = 0")
		}
		inEntity := clause.Eq{Column: clause.Column{Name: cols.Entity}, Value: string(st.entity)}
		switch st.scope {
		case model.ScopeAll:
			return db.Where(inEntity)
		case model.ScopeOwn:
			if sub := st.p.Subject(); sub.Kind != model.NoSubject {
				return db.Where(inEntity).Where(clause.Eq{Column: clause.Column{Name: cols.Owner}, Value: sub.String()})
			}
		}
		return db.Where("1 = 0")
	}
}
