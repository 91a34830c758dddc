package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// ClientCredentials are an API client's id and secret. The secret is shown
// once, when the client is created or its secret rotated: only its hash is
// stored. String, GoString and LogValue hide the secret.
type ClientCredentials struct {
	ID     string
	Secret string
}

// String returns the id and a redacted secret.
func (c ClientCredentials) String() string { return "client " + c.ID + " (secret redacted)" }

// GoString is like String, so that %#v does not print the secret either.
func (c ClientCredentials) GoString() string { return c.String() }

// LogValue keeps the secret out of slog output.
func (c ClientCredentials) LogValue() slog.Value { return slog.StringValue(c.ID) }

// ClientOption configures a client at creation.
type ClientOption func(*clientOptions)

type clientOptions struct {
	apis []model.ObjectType
}

// WithAPIs limits the client, and every token issued to it, to the given
// object types (Principal.APIs); without it the client may use all. At least
// one object type must be given.
func WithAPIs(apis ...model.ObjectType) ClientOption {
	return func(o *clientOptions) { o.apis = append(make([]model.ObjectType, 0, len(apis)), apis...) }
}

// secretPrefix makes Gatehouse secrets recognisable by secret scanners.
const secretPrefix = "ghcs_"

// newSecret returns a new client secret: 256 random bits.
func newSecret() string { return secretPrefix + randomToken(32) }

// newClientID returns a random UUID (version 4), the form of Monite's client
// ids.
func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// validateClientID accepts what model.ValidateID accepts.
func validateClientID(id string) error { return model.ValidateID("client id", id) }

// MaxSecretLen is the longest client secret the service looks at, in bytes
// (its own are 48): a longer one is refused as a wrong secret.
const MaxSecretLen = 512

// hashSecret returns SHA-256(secret), or HMAC-SHA-256(pepper, secret) with a
// pepper. A slow password hash is not needed: secrets are 256-bit random.
func (s *Service) hashSecret(secret string) []byte {
	if s.o.pepper != nil {
		m := hmac.New(sha256.New, s.o.pepper)
		m.Write([]byte(secret))
		return m.Sum(nil)
	}
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateClient creates an API client of partner and returns its credentials;
// the secret cannot be read again later.
func (s *Service) CreateClient(ctx context.Context, partner model.PartnerID, opts ...ClientOption) (ClientCredentials, error) {
	if err := ctx.Err(); err != nil {
		return ClientCredentials{}, err
	}
	if err := partner.Validate(); err != nil {
		return ClientCredentials{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	var co clientOptions
	for _, opt := range opts {
		opt(&co)
	}
	if co.apis != nil {
		if len(co.apis) == 0 {
			return ClientCredentials{}, fmt.Errorf("%w: WithAPIs needs at least one object type", ErrInvalidRequest)
		}
		for _, a := range co.apis {
			if !validAPIName(string(a)) {
				return ClientCredentials{}, fmt.Errorf("%w: object type %q", ErrInvalidRequest, a)
			}
		}
		slices.Sort(co.apis)
		co.apis = slices.Compact(co.apis)
	}
	creds := ClientCredentials{ID: newClientID(), Secret: newSecret()}
	rec := ClientRecord{ID: creds.ID, PartnerID: partner, SecretHash: s.hashSecret(creds.Secret), APIs: co.apis, CreatedAt: s.o.now()}
	if err := s.store.CreateClient(ctx, rec); err != nil {
		return ClientCredentials{}, fmt.Errorf("auth: create client: %w", err)
	}
	s.log.InfoContext(ctx, "created client", slog.String("client_id", creds.ID), slog.String("partner_id", string(partner)))
	return creds, nil
}

// RotateClientSecret gives the client a new secret and returns it. The old
// secret keeps working until oldValidUntil (a zero or past time ends it at
// once); tokens already issued are not affected.
func (s *Service) RotateClientSecret(ctx context.Context, clientID string, oldValidUntil time.Time) (ClientCredentials, error) {
	if err := ctx.Err(); err != nil {
		return ClientCredentials{}, err
	}
	c, err := s.store.Client(ctx, clientID)
	if err != nil {
		return ClientCredentials{}, fmt.Errorf("auth: rotate secret of %q: %w", clientID, err)
	}
	creds := ClientCredentials{ID: clientID, Secret: newSecret()}
	var prev []byte
	if oldValidUntil.After(s.o.now()) {
		prev = c.SecretHash
	} else {
		oldValidUntil = time.Time{}
	}
	if err := s.store.UpdateClientSecret(ctx, clientID, s.hashSecret(creds.Secret), prev, oldValidUntil); err != nil {
		return ClientCredentials{}, fmt.Errorf("auth: rotate secret of %q: %w", clientID, err)
	}
	s.log.InfoContext(ctx, "rotated client secret", slog.String("client_id", clientID), slog.Time("old_valid_until", oldValidUntil))
	return creds, nil
}

// DeleteClient deletes the client and revokes every token issued to it (on
// every replica within the poll interval). Errors wrap [ErrNotFound] for an
// unknown client.
func (s *Service) DeleteClient(ctx context.Context, clientID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.store.Client(ctx, clientID)
	if err != nil {
		return fmt.Errorf("auth: delete client %q: %w", clientID, err)
	}
	// Revoke first: if the deletion then fails, the client is merely
	// unusable. The revocation outlives every token the client may hold:
	// one issued now by any replica, whatever its TTL and leeway (up to the
	// package's limits), not only by this one.
	//
	// The id is the stored one, which tokens carry: on MySQL, whose default
	// collation ignores case, clientID may be spelt otherwise.
	r := Revocation{ID: clientRevocationPrefix + c.ID, PartnerID: c.PartnerID,
		ExpiresAt: s.o.now().Add(maxTTL + 2*maxLeeway)}
	if err := s.addRevocation(ctx, r); err != nil {
		return err
	}
	if err := s.store.DeleteClient(ctx, c.ID); err != nil {
		return fmt.Errorf("auth: delete client %q: %w", clientID, err)
	}
	return nil
}

// authenticateClient checks a client id and secret, with the brute-force
// limiter. An unknown id and a wrong secret take the same path and give the
// same error.
func (s *Service) authenticateClient(ctx context.Context, id, secret string) (ClientRecord, error) {
	if err := ctx.Err(); err != nil {
		return ClientRecord{}, err
	}
	if validateClientID(id) != nil || len(secret) > MaxSecretLen {
		// Not tracked by the limiter (not a possible id), refused alike.
		s.hashSecret(secret[:min(len(secret), MaxSecretLen)])
		return ClientRecord{}, ErrInvalidClient
	}
	now := s.o.now()
	// The limiter counts an id in lower case: MySQL's default collation
	// finds a client whatever the case of its id, and each spelling must
	// not bring five fresh attempts. (Ids are made in lower case.)
	key := strings.ToLower(id)
	if wait, ok := s.limiter.allow(key, now); !ok {
		return ClientRecord{}, &TooManyAttemptsError{RetryAfter: wait}
	}
	c, err := s.store.Client(ctx, id)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return ClientRecord{}, fmt.Errorf("auth: read client: %w", err)
	}
	cur, prev := s.dummy, s.dummy
	if found {
		cur = c.SecretHash
		if len(c.PrevSecretHash) > 0 && now.Before(c.PrevValidUntil) {
			prev = c.PrevSecretHash
		}
	}
	h := s.hashSecret(secret)
	okCur := subtle.ConstantTimeCompare(h, cur)
	okPrev := subtle.ConstantTimeCompare(h, prev)
	if !found || okCur|okPrev != 1 || secret == "" {
		s.limiter.failed(key, now)
		s.log.InfoContext(ctx, "client authentication failed", slog.String("client_id", id))
		return ClientRecord{}, ErrInvalidClient
	}
	s.limiter.succeeded(key)
	return c, nil
}

// recheckClient reads client c again right before a token is signed for it
// after a slow step (the directory): a client deleted or revoked meanwhile
// gets no token, since the token would outlive the client's revocation
// (which lasts the longest token lifetime the package allows from the
// deletion). It returns the client as stored now.
func (s *Service) recheckClient(ctx context.Context, c ClientRecord) (ClientRecord, error) {
	cur, err := s.store.Client(ctx, c.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return ClientRecord{}, fmt.Errorf("auth: read client: %w", err)
	}
	if err != nil || cur.PartnerID != c.PartnerID || s.revoked.has(&Principal{ClientID: c.ID}) {
		s.log.InfoContext(ctx, "client deleted while a token was being issued", slog.String("client_id", c.ID))
		return ClientRecord{}, ErrInvalidClient
	}
	return cur, nil
}
