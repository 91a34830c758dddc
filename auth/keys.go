package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithm is a JWT signing algorithm ("alg" header). Each key is pinned to
// one algorithm: a token is verified only with a key of its kid and only if
// its alg is that key's.
type Algorithm string

const (
	// HS256 is HMAC-SHA-256 with a 256-bit random secret shared by the
	// replicas through the store.
	HS256 Algorithm = "HS256"
	// EdDSA is Ed25519.
	EdDSA Algorithm = "EdDSA"
)

func (a Algorithm) method() jwt.SigningMethod {
	switch a {
	case HS256:
		return jwt.SigningMethodHS256
	case EdDSA:
		return jwt.SigningMethodEdDSA
	}
	return nil
}

// verifyKey is a key as the verifier uses it.
type verifyKey struct {
	kid         string
	alg         Algorithm
	verify      any // []byte for HS256, ed25519.PublicKey for EdDSA
	sign        any // []byte or ed25519.PrivateKey
	createdAt   time.Time
	verifyUntil time.Time // zero: not retired
}

// keyset is an immutable snapshot of the usable keys.
type keyset struct {
	byKID   map[string]*verifyKey
	signing *verifyKey
	parser  *jwt.Parser
	now     func() time.Time // the token clock, for the keys' verify-until times
}

// keyBefore reports whether the key created at ta with id a is older than
// the one created at tb with id b. Keys are ordered by creation time, then
// by id: the newest key not retired signs, and a rotation retires only the
// keys older than its own.
func keyBefore(ta time.Time, a string, tb time.Time, b string) bool {
	return ta.Before(tb) || ta.Equal(tb) && a < b
}

// newKID returns a random key id.
func newKID() string { return "k" + randomToken(12) }

// randomToken returns n random bytes, base64url-encoded without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// generateKey makes a new key record of algorithm alg, sealed under kek when
// kek is not nil.
func generateKey(alg Algorithm, now time.Time, kek []byte) (KeyRecord, error) {
	k := KeyRecord{ID: newKID(), Algorithm: alg, CreatedAt: now}
	switch alg {
	case HS256:
		k.Private = make([]byte, 32)
		_, _ = rand.Read(k.Private)
	case EdDSA:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return KeyRecord{}, err
		}
		k.Private, k.Public = priv.Seed(), []byte(pub)
	default:
		return KeyRecord{}, fmt.Errorf("%w: algorithm %q", ErrInvalidRequest, alg)
	}
	if kek != nil {
		sealed, err := seal(kek, k.ID, k.Private)
		if err != nil {
			return KeyRecord{}, err
		}
		k.Private, k.Sealed = sealed, true
	}
	return k, nil
}

// decodeKey turns a stored record into a usable key.
func decodeKey(r KeyRecord, kek []byte) (*verifyKey, error) {
	priv := r.Private
	if r.Sealed {
		if kek == nil {
			return nil, fmt.Errorf("key %s is encrypted at rest and no key-encryption key is configured", r.ID)
		}
		var err error
		if priv, err = unseal(kek, r.ID, priv); err != nil {
			return nil, fmt.Errorf("key %s: %w", r.ID, err)
		}
	}
	k := &verifyKey{kid: r.ID, alg: r.Algorithm, createdAt: r.CreatedAt, verifyUntil: r.VerifyUntil}
	switch r.Algorithm {
	case HS256:
		if len(priv) < 32 {
			return nil, fmt.Errorf("key %s: HS256 secret shorter than 32 bytes", r.ID)
		}
		k.sign, k.verify = priv, priv
	case EdDSA:
		if len(priv) != ed25519.SeedSize {
			return nil, fmt.Errorf("key %s: bad Ed25519 seed", r.ID)
		}
		sk := ed25519.NewKeyFromSeed(priv)
		k.sign, k.verify = sk, sk.Public().(ed25519.PublicKey)
	default:
		return nil, fmt.Errorf("key %s: unsupported algorithm %q", r.ID, r.Algorithm)
	}
	return k, nil
}

// buildKeyset decodes the records into a keyset: keys past their verify-until
// time are left out; the newest key not retired signs.
func buildKeyset(recs []KeyRecord, o *options) (*keyset, error) {
	kek, now := o.kek, o.now()
	ks := &keyset{byKID: make(map[string]*verifyKey, len(recs)), now: o.now}
	algs := map[string]bool{}
	for _, r := range recs {
		if !r.VerifyUntil.IsZero() && !now.Before(r.VerifyUntil) {
			continue
		}
		k, err := decodeKey(r, kek)
		if err != nil {
			return nil, err
		}
		ks.byKID[k.kid] = k
		algs[string(k.alg)] = true
		if r.RetiredAt.IsZero() && (ks.signing == nil || keyBefore(ks.signing.createdAt, ks.signing.kid, k.createdAt, k.kid)) {
			ks.signing = k
		}
	}
	methods := make([]string, 0, len(algs))
	for a := range algs {
		methods = append(methods, a)
	}
	ks.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(o.issuer),
		jwt.WithLeeway(o.leeway),
		jwt.WithTimeFunc(o.now),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	return ks, nil
}

// keyFunc returns the verification key of the token's kid, refusing a token
// whose alg is not the key's own (algorithm confusion), and a key past its
// verify-until time (the keyset may be older than that time when reloads
// fail).
func (ks *keyset) keyFunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID // no key of a store has it: no reload can help
	}
	k := ks.byKID[kid]
	if k == nil {
		return nil, errUnknownKID
	}
	if t.Method == nil || t.Method.Alg() != string(k.alg) {
		return nil, errors.New("algorithm does not match the key")
	}
	if !k.verifyUntil.IsZero() && !ks.now().Before(k.verifyUntil) {
		return nil, errKeyPastCutoff
	}
	return k.verify, nil
}

var (
	errUnknownKID    = errors.New("unknown key id")
	errNoKID         = errors.New("no key id")
	errKeyPastCutoff = errors.New("the key was retired and its tokens have expired")
)

func aead(kek []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal encrypts plain with AES-256-GCM, binding it to kid; the random nonce
// is prepended.
func seal(kek []byte, kid string, plain []byte) ([]byte, error) {
	g, err := aead(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plain)+g.Overhead())
	_, _ = rand.Read(nonce)
	return g.Seal(nonce, nonce, plain, []byte(kid)), nil
}

func unseal(kek []byte, kid string, sealed []byte) ([]byte, error) {
	g, err := aead(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errors.New("sealed key too short")
	}
	plain, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(kid))
	if err != nil {
		return nil, errors.New("cannot decrypt key material (wrong key-encryption key?)")
	}
	return plain, nil
}
