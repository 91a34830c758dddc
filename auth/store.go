package auth

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// Store persists clients, signing keys and revocations. Services that share
// a Store (replicas) share clients, keys and revocations. Implementations are
// safe for concurrent use; [NewMemoryStore] and [NewGormStore] are provided.
type Store interface {
	// CreateClient stores a new client; an existing id gives ErrConflict.
	CreateClient(ctx context.Context, c ClientRecord) error
	// Client returns the client with the given id, or ErrNotFound.
	Client(ctx context.Context, id string) (ClientRecord, error)
	// UpdateClientSecret replaces the secret hash of a client and keeps the
	// previous one valid until prevValidUntil; ErrNotFound if there is no such
	// client.
	UpdateClientSecret(ctx context.Context, id string, secretHash, prevHash []byte, prevValidUntil time.Time) error
	// DeleteClient removes a client; ErrNotFound if there is no such client.
	DeleteClient(ctx context.Context, id string) error

	// AddSigningKey stores a new key.
	AddSigningKey(ctx context.Context, k KeyRecord) error
	// RetireSigningKeys marks every key not yet retired that is older than
	// keep (created before it, or at the same time with a smaller id: see
	// KeyRecord.CreatedAt) as retired at retiredAt and verifying until
	// verifyUntil. keep and newer keys are left alone, so that of concurrent
	// rotations the newest key stays to sign whatever the order of the calls.
	// An unknown keep gives ErrNotFound.
	RetireSigningKeys(ctx context.Context, keep string, retiredAt, verifyUntil time.Time) error
	// SigningKeys returns every stored key (the rotation history).
	SigningKeys(ctx context.Context) ([]KeyRecord, error)

	// AddRevocation records a revocation. Recording the same ID twice is not
	// an error (the first record stays).
	AddRevocation(ctx context.Context, r Revocation) error
	// Revocations returns up to limit revocations with Seq > afterSeq that
	// expire after notExpiredAt, in increasing Seq order.
	Revocations(ctx context.Context, afterSeq int64, notExpiredAt time.Time, limit int) ([]Revocation, error)
	// PruneRevocations deletes revocations that expired before t and returns
	// how many.
	PruneRevocations(ctx context.Context, t time.Time) (int64, error)
}

// ClientRecord is a stored API client. The secret itself is never stored,
// only its hash.
type ClientRecord struct {
	ID             string
	PartnerID      model.PartnerID
	SecretHash     []byte
	PrevSecretHash []byte             // the secret before the last rotation, or nil
	PrevValidUntil time.Time          // cut-off of PrevSecretHash
	APIs           []model.ObjectType // nil: all object types
	CreatedAt      time.Time
}

// KeyRecord is a stored signing key.
type KeyRecord struct {
	ID        string // the kid
	Algorithm Algorithm
	// Private is the HS256 secret or the Ed25519 seed; sealed with AES-GCM
	// when Sealed (see WithKeyEncryption).
	Private []byte
	Sealed  bool
	Public  []byte // the Ed25519 public key; empty for HS256
	// CreatedAt orders keys, ties broken by ID (compared as bytes): the
	// newest key not retired signs.
	CreatedAt time.Time
	// RetiredAt is zero while the key may sign.
	RetiredAt time.Time
	// VerifyUntil is zero while the key is not retired; after it, tokens
	// signed with the key are refused.
	VerifyUntil time.Time
}

// Revocation is a revoked token (ID is its jti) or, for a deleted client, all
// tokens of a client (ID is "client:" + the client id).
type Revocation struct {
	Seq       int64 // assigned by the store, increasing
	ID        string
	PartnerID model.PartnerID
	ExpiresAt time.Time // when the entry is no longer needed
	RevokedAt time.Time
}

// MemoryStore is a [Store] in memory, for tests and single-process use.
// Several Services may share one MemoryStore as if they shared a database.
type MemoryStore struct {
	mu      sync.Mutex
	clients map[string]ClientRecord
	keys    map[string]KeyRecord
	revs    []Revocation
	revIDs  map[string]bool
	seq     int64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{clients: map[string]ClientRecord{}, keys: map[string]KeyRecord{}, revIDs: map[string]bool{}}
}

func cloneClient(c ClientRecord) ClientRecord {
	c.SecretHash = slices.Clone(c.SecretHash)
	c.PrevSecretHash = slices.Clone(c.PrevSecretHash)
	c.APIs = slices.Clone(c.APIs)
	return c
}

// CreateClient implements [Store].
func (m *MemoryStore) CreateClient(ctx context.Context, c ClientRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[c.ID]; ok {
		return fmt.Errorf("client %q: %w", c.ID, ErrConflict)
	}
	m.clients[c.ID] = cloneClient(c)
	return nil
}

// Client implements [Store].
func (m *MemoryStore) Client(ctx context.Context, id string) (ClientRecord, error) {
	if err := ctx.Err(); err != nil {
		return ClientRecord{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return ClientRecord{}, ErrNotFound
	}
	return cloneClient(c), nil
}

// UpdateClientSecret implements [Store].
func (m *MemoryStore) UpdateClientSecret(ctx context.Context, id string, secretHash, prevHash []byte, prevValidUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return ErrNotFound
	}
	c.SecretHash, c.PrevSecretHash, c.PrevValidUntil = slices.Clone(secretHash), slices.Clone(prevHash), prevValidUntil
	m.clients[id] = c
	return nil
}

// DeleteClient implements [Store].
func (m *MemoryStore) DeleteClient(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[id]; !ok {
		return ErrNotFound
	}
	delete(m.clients, id)
	return nil
}

// AddSigningKey implements [Store].
func (m *MemoryStore) AddSigningKey(ctx context.Context, k KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.ID]; ok {
		return fmt.Errorf("key %q: %w", k.ID, ErrConflict)
	}
	k.Private, k.Public = slices.Clone(k.Private), slices.Clone(k.Public)
	m.keys[k.ID] = k
	return nil
}

// RetireSigningKeys implements [Store].
func (m *MemoryStore) RetireSigningKeys(ctx context.Context, keep string, retiredAt, verifyUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kept, ok := m.keys[keep]
	if !ok {
		return fmt.Errorf("key %q: %w", keep, ErrNotFound)
	}
	for id, k := range m.keys {
		if k.RetiredAt.IsZero() && keyBefore(k.CreatedAt, id, kept.CreatedAt, keep) {
			k.RetiredAt, k.VerifyUntil = retiredAt, verifyUntil
			m.keys[id] = k
		}
	}
	return nil
}

// SigningKeys implements [Store].
func (m *MemoryStore) SigningKeys(ctx context.Context) ([]KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]KeyRecord, 0, len(m.keys))
	for _, k := range m.keys {
		k.Private, k.Public = slices.Clone(k.Private), slices.Clone(k.Public)
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// AddRevocation implements [Store].
func (m *MemoryStore) AddRevocation(ctx context.Context, r Revocation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revIDs[r.ID] {
		return nil
	}
	m.seq++
	r.Seq = m.seq
	m.revs = append(m.revs, r)
	m.revIDs[r.ID] = true
	return nil
}

// Revocations implements [Store].
func (m *MemoryStore) Revocations(ctx context.Context, afterSeq int64, notExpiredAt time.Time, limit int) ([]Revocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.revs), func(i int) bool { return m.revs[i].Seq > afterSeq })
	var out []Revocation
	for ; i < len(m.revs) && len(out) < limit; i++ {
		if m.revs[i].ExpiresAt.After(notExpiredAt) {
			out = append(out, m.revs[i])
		}
	}
	return out, nil
}

// PruneRevocations implements [Store].
func (m *MemoryStore) PruneRevocations(ctx context.Context, t time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.revs[:0]
	var n int64
	for _, r := range m.revs {
		if r.ExpiresAt.Before(t) {
			delete(m.revIDs, r.ID)
			n++
			continue
		}
		kept = append(kept, r)
	}
	clear(m.revs[len(kept):])
	m.revs = kept
	return n, nil
}
