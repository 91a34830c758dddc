package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-authz/gatehouse/internal/dbwrite"
	"github.com/gatehouse-authz/gatehouse/model"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GormStore is a [Store] on a SQL database through GORM: SQLite, PostgreSQL
// or MySQL/MariaDB. It uses three tables, by default gatehouse_clients,
// gatehouse_signing_keys and gatehouse_revoked_tokens, created by
// [GormStore.Migrate]. Times are stored as BIGINT Unix nanoseconds (UTC), so
// that no driver's time-zone or precision handling gets in the way; secret
// hashes and key material as base64 text.
type GormStore struct {
	db                    *gorm.DB
	clients, keys, revoks string
}

var _ Store = (*GormStore)(nil)

// GormOption configures a [GormStore].
type GormOption func(*GormStore)

// WithTablePrefix sets the prefix of the table and index names (default
// "gatehouse_"): lowercase letters, digits and underscores, at most 32
// bytes. (PostgreSQL folds the unquoted names of Migrate's SQL to lower
// case, while GORM quotes them: a capital letter would name two tables.)
func WithTablePrefix(prefix string) GormOption {
	return func(g *GormStore) {
		g.clients, g.keys, g.revoks = prefix+"clients", prefix+"signing_keys", prefix+"revoked_tokens"
	}
}

// NewGormStore returns a store on db. It does not touch the schema: call
// [GormStore.Migrate] once (it is idempotent).
func NewGormStore(db *gorm.DB, opts ...GormOption) (*GormStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil *gorm.DB", ErrInvalidRequest)
	}
	g := &GormStore{db: db}
	WithTablePrefix("gatehouse_")(g)
	for _, opt := range opts {
		opt(g)
	}
	prefix := g.clients[:len(g.clients)-len("clients")]
	if len(prefix) > 32 {
		return nil, fmt.Errorf("%w: table prefix longer than 32 bytes", ErrInvalidRequest)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return nil, fmt.Errorf("%w: table prefix %q", ErrInvalidRequest, prefix)
		}
	}
	switch db.Dialector.Name() {
	case "sqlite", "postgres", "mysql":
	default:
		return nil, fmt.Errorf("%w: unsupported database %q", ErrInvalidRequest, db.Dialector.Name())
	}
	return g, nil
}

// Migrate creates the tables and indexes if they do not exist. It is
// idempotent and safe to run from several processes at once.
func (g *GormStore) Migrate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db := g.db.WithContext(ctx)
	var autoPK string
	switch db.Dialector.Name() {
	case "sqlite":
		autoPK = "INTEGER PRIMARY KEY AUTOINCREMENT"
	case "postgres":
		autoPK = "BIGSERIAL PRIMARY KEY"
	default:
		autoPK = "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + g.clients + ` (
			id VARCHAR(64) NOT NULL PRIMARY KEY,
			partner_id VARCHAR(64) NOT NULL,
			secret_hash VARCHAR(128) NOT NULL,
			prev_secret_hash VARCHAR(128) NOT NULL DEFAULT '',
			prev_valid_until BIGINT NOT NULL DEFAULT 0,
			apis TEXT NULL,
			created_at BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + g.keys + ` (
			kid VARCHAR(64) NOT NULL PRIMARY KEY,
			algorithm VARCHAR(16) NOT NULL,
			private_key TEXT NOT NULL,
			sealed SMALLINT NOT NULL DEFAULT 0,
			public_key TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			retired_at BIGINT NOT NULL DEFAULT 0,
			verify_until BIGINT NOT NULL DEFAULT 0)`,
		`CREATE TABLE IF NOT EXISTS ` + g.revoks + ` (
			seq ` + autoPK + `,
			jti VARCHAR(128) NOT NULL UNIQUE,
			partner_id VARCHAR(64) NOT NULL DEFAULT '',
			expires_at BIGINT NOT NULL,
			revoked_at BIGINT NOT NULL)`,
	}
	for i, s := range stmts {
		// Concurrent CREATE TABLE IF NOT EXISTS can still fail on PostgreSQL
		// (a race on its catalog): the table then exists, made by the other.
		table := []string{g.clients, g.keys, g.revoks}[i]
		if err := db.Exec(s).Error; err != nil && !db.Migrator().HasTable(table) {
			return fmt.Errorf("auth: migrate: %w", err)
		}
	}
	for _, ix := range []struct{ table, name, column string }{
		{g.clients, g.clients + "_partner", "partner_id"},
		{g.revoks, g.revoks + "_expires", "expires_at"},
	} {
		if db.Migrator().HasIndex(ix.table, ix.name) {
			continue
		}
		err := db.Exec("CREATE INDEX " + ix.name + " ON " + ix.table + " (" + ix.column + ")").Error
		if err != nil && !db.Migrator().HasIndex(ix.table, ix.name) { // another process may have won
			return fmt.Errorf("auth: migrate: %w", err)
		}
	}
	return nil
}

// DropTables drops the store's tables (for tests and uninstalling).
func (g *GormStore) DropTables(ctx context.Context) error {
	return g.db.WithContext(ctx).Migrator().DropTable(g.clients, g.keys, g.revoks)
}

type clientRow struct {
	ID             string  `gorm:"column:id;primaryKey"`
	PartnerID      string  `gorm:"column:partner_id"`
	SecretHash     string  `gorm:"column:secret_hash"`
	PrevSecretHash string  `gorm:"column:prev_secret_hash"`
	PrevValidUntil int64   `gorm:"column:prev_valid_until"`
	APIs           *string `gorm:"column:apis"`
	CreatedAt      int64   `gorm:"column:created_at;autoCreateTime:false"`
}

type keyRow struct {
	KID         string `gorm:"column:kid;primaryKey"`
	Algorithm   string `gorm:"column:algorithm"`
	PrivateKey  string `gorm:"column:private_key"`
	Sealed      int16  `gorm:"column:sealed"`
	PublicKey   string `gorm:"column:public_key"`
	CreatedAt   int64  `gorm:"column:created_at;autoCreateTime:false"`
	RetiredAt   int64  `gorm:"column:retired_at"`
	VerifyUntil int64  `gorm:"column:verify_until"`
}

type revocationRow struct {
	Seq       int64  `gorm:"column:seq;primaryKey;autoIncrement"`
	JTI       string `gorm:"column:jti"`
	PartnerID string `gorm:"column:partner_id"`
	ExpiresAt int64  `gorm:"column:expires_at"`
	RevokedAt int64  `gorm:"column:revoked_at"`
}

var b64 = base64.StdEncoding

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func decodeB64(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return b64.DecodeString(s)
}

// CreateClient implements [Store].
func (g *GormStore) CreateClient(ctx context.Context, c ClientRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	row := clientRow{ID: c.ID, PartnerID: string(c.PartnerID), SecretHash: b64.EncodeToString(c.SecretHash),
		PrevSecretHash: b64.EncodeToString(c.PrevSecretHash), PrevValidUntil: nanos(c.PrevValidUntil), CreatedAt: nanos(c.CreatedAt)}
	if c.APIs != nil {
		b, err := json.Marshal(c.APIs)
		if err != nil {
			return err
		}
		s := string(b)
		row.APIs = &s
	}
	n, err := g.change(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Table(g.clients).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("client %q: %w", c.ID, ErrConflict)
	}
	return err
}

// Client implements [Store].
func (g *GormStore) Client(ctx context.Context, id string) (ClientRecord, error) {
	if err := ctx.Err(); err != nil {
		return ClientRecord{}, err
	}
	var rows []clientRow
	if err := g.db.WithContext(ctx).Table(g.clients).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return ClientRecord{}, err
	}
	if len(rows) == 0 {
		return ClientRecord{}, ErrNotFound
	}
	r := rows[0]
	c := ClientRecord{ID: r.ID, PartnerID: model.PartnerID(r.PartnerID), PrevValidUntil: fromNanos(r.PrevValidUntil), CreatedAt: fromNanos(r.CreatedAt)}
	var err error
	if c.SecretHash, err = decodeB64(r.SecretHash); err != nil {
		return ClientRecord{}, fmt.Errorf("client %q: secret hash: %w", id, err)
	}
	if c.PrevSecretHash, err = decodeB64(r.PrevSecretHash); err != nil {
		return ClientRecord{}, fmt.Errorf("client %q: previous secret hash: %w", id, err)
	}
	if r.APIs != nil {
		if err := json.Unmarshal([]byte(*r.APIs), &c.APIs); err != nil || c.APIs == nil {
			return ClientRecord{}, fmt.Errorf("client %q: apis: bad JSON", id)
		}
	}
	return c, nil
}

// UpdateClientSecret implements [Store].
func (g *GormStore) UpdateClientSecret(ctx context.Context, id string, secretHash, prevHash []byte, prevValidUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := g.change(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Table(g.clients).Where("id = ?", id).Updates(map[string]any{
			"secret_hash": b64.EncodeToString(secretHash), "prev_secret_hash": b64.EncodeToString(prevHash),
			"prev_valid_until": nanos(prevValidUntil),
		})
	})
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return err
}

// DeleteClient implements [Store].
func (g *GormStore) DeleteClient(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := g.change(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Table(g.clients).Where("id = ?", id).Delete(&clientRow{})
	})
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	return err
}

// AddSigningKey implements [Store].
func (g *GormStore) AddSigningKey(ctx context.Context, k KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	row := keyRow{KID: k.ID, Algorithm: string(k.Algorithm), PrivateKey: b64.EncodeToString(k.Private),
		PublicKey: b64.EncodeToString(k.Public), CreatedAt: nanos(k.CreatedAt), RetiredAt: nanos(k.RetiredAt), VerifyUntil: nanos(k.VerifyUntil)}
	if k.Sealed {
		row.Sealed = 1
	}
	return g.db.WithContext(ctx).Table(g.keys).Create(&row).Error
}

// RetireSigningKeys implements [Store].
func (g *GormStore) RetireSigningKeys(ctx context.Context, keep string, retiredAt, verifyUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db := g.db.WithContext(ctx)
	// Which keys are older is decided here, as buildKeyset decides which key
	// signs: SQL would compare the ids under the column's collation.
	var rows []keyRow
	if err := db.Table(g.keys).Select("kid", "created_at").Where("retired_at = 0 OR kid = ?", keep).Find(&rows).Error; err != nil {
		return err
	}
	i := slices.IndexFunc(rows, func(r keyRow) bool { return r.KID == keep })
	if i < 0 {
		return fmt.Errorf("key %q: %w", keep, ErrNotFound)
	}
	var older []string
	for _, r := range rows {
		if keyBefore(fromNanos(r.CreatedAt), r.KID, fromNanos(rows[i].CreatedAt), keep) {
			older = append(older, r.KID)
		}
	}
	if len(older) == 0 {
		return nil
	}
	_, err := g.change(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Table(g.keys).Where("retired_at = 0 AND kid IN ?", older).
			Updates(map[string]any{"retired_at": nanos(retiredAt), "verify_until": nanos(verifyUntil)})
	})
	return err
}

// SigningKeys implements [Store].
func (g *GormStore) SigningKeys(ctx context.Context) ([]KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows []keyRow
	if err := g.db.WithContext(ctx).Table(g.keys).Order("kid").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]KeyRecord, 0, len(rows))
	for _, r := range rows {
		k := KeyRecord{ID: r.KID, Algorithm: Algorithm(r.Algorithm), Sealed: r.Sealed != 0,
			CreatedAt: fromNanos(r.CreatedAt), RetiredAt: fromNanos(r.RetiredAt), VerifyUntil: fromNanos(r.VerifyUntil)}
		var err error
		if k.Private, err = decodeB64(r.PrivateKey); err != nil {
			return nil, fmt.Errorf("key %q: %w", r.KID, err)
		}
		if k.Public, err = decodeB64(r.PublicKey); err != nil {
			return nil, fmt.Errorf("key %q: %w", r.KID, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// AddRevocation implements [Store].
func (g *GormStore) AddRevocation(ctx context.Context, r Revocation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	row := revocationRow{JTI: r.ID, PartnerID: string(r.PartnerID), ExpiresAt: nanos(r.ExpiresAt), RevokedAt: nanos(r.RevokedAt)}
	_, err := g.change(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Table(g.revoks).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "jti"}}, DoNothing: true}).Create(&row)
	})
	return err
}

// Revocations implements [Store].
func (g *GormStore) Revocations(ctx context.Context, afterSeq int64, notExpiredAt time.Time, limit int) ([]Revocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows []revocationRow
	err := g.db.WithContext(ctx).Table(g.revoks).Where("seq > ? AND expires_at > ?", afterSeq, nanos(notExpiredAt)).
		Order("seq").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]Revocation, len(rows))
	for i, r := range rows {
		out[i] = Revocation{Seq: r.Seq, ID: r.JTI, PartnerID: model.PartnerID(r.PartnerID), ExpiresAt: fromNanos(r.ExpiresAt), RevokedAt: fromNanos(r.RevokedAt)}
	}
	return out, nil
}

// PruneRevocations implements [Store].
func (g *GormStore) PruneRevocations(ctx context.Context, t time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return g.change(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Table(g.revoks).Where("expires_at < ?", nanos(t)).Delete(&revocationRow{})
	})
}

// change runs stmt, an UPDATE, a DELETE or an INSERT that may conflict,
// and returns the rows it affected, at the isolation the store's writes
// need (see package internal/dbwrite): under a PostgreSQL default of
// REPEATABLE READ, concurrent key or secret rotations failed half way, and
// a token revoked on two replicas at once failed on one.
func (g *GormStore) change(ctx context.Context, stmt func(db *gorm.DB) *gorm.DB) (int64, error) {
	return dbwrite.Exec(g.db.WithContext(ctx), stmt)
}
