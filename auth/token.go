package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the tokens Authenticate looks at; ours are far shorter.
const maxTokenLen = 4096

// Token is an issued access token.
type Token struct {
	AccessToken string    // the JWT
	TokenType   string    // "Bearer"
	ExpiresIn   int       // seconds
	ExpiresAt   time.Time // exp
	Principal   Principal // who the token speaks for
}

// claims are the JWT claims of a Gatehouse token.
type claims struct {
	jwt.RegisteredClaims
	Kind         string `json:"kind"`
	PartnerID    string `json:"partner_id"`
	EntityID     string `json:"entity_id,omitempty"`
	EntityUserID string `json:"entity_user_id,omitempty"`
	ClientID     string `json:"client_id"`
	// APIs is absent for a client without restriction (all object types);
	// an empty list (none) is written as []. A pointer, since omitempty on
	// a slice would drop the empty list, which would then read as all.
	APIs *[]string `json:"apis,omitempty"`
}

// sign issues a token for p (Kind, ids, ClientID and APIs set) with the
// current signing key. A signing key revoked meanwhile (on another
// replica, which made a new one) is never used: the keys are reloaded
// first, and if the store still has no other, no token is issued.
func (s *Service) sign(ctx context.Context, p Principal) (Token, error) {
	ks := s.keys.Load()
	if ks != nil && ks.signing != nil && s.revoked.hasKey(ks.signing.kid) {
		if err := s.loadKeys(ctx); err != nil {
			return Token{}, err
		}
		if ks = s.keys.Load(); ks.signing != nil && s.revoked.hasKey(ks.signing.kid) {
			return Token{}, fmt.Errorf("%w: the signing key %s is revoked and the store holds no other", ErrUnavailable, ks.signing.kid)
		}
	}
	if ks == nil || ks.signing == nil {
		return Token{}, errors.New("no signing key")
	}
	now := s.o.now()
	exp := now.Add(s.o.ttl)
	p.TokenID = randomToken(16)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.o.issuer,
			Subject:   p.Subject().String(),
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        p.TokenID,
		},
		Kind:         p.Kind.String(),
		PartnerID:    string(p.PartnerID),
		EntityID:     string(p.EntityID),
		EntityUserID: string(p.UserID),
		ClientID:     p.ClientID,
	}
	if p.APIs != nil {
		apis := make([]string, len(p.APIs))
		for i, a := range p.APIs {
			apis[i] = string(a)
		}
		c.APIs = &apis
	}
	t := jwt.NewWithClaims(ks.signing.alg.method(), &c)
	t.Header["kid"] = ks.signing.kid
	str, err := t.SignedString(ks.signing.sign)
	if err != nil {
		return Token{}, err
	}
	p.ExpiresAt, p.KeyID = c.ExpiresAt.Time, ks.signing.kid
	return Token{AccessToken: str, TokenType: "Bearer", ExpiresIn: int(s.o.ttl / time.Second), ExpiresAt: p.ExpiresAt, Principal: p}, nil
}

// parse verifies token against the keyset and returns its principal and the
// key that signed it. Errors wrap ErrInvalidToken or ErrExpiredToken; when
// the error is ErrExpiredToken the signature was good and the principal is
// returned too.
func parse(ks *keyset, token string) (Principal, *verifyKey, error) {
	var c claims
	t, err := ks.parser.ParseWithClaims(token, &c, ks.keyFunc)
	expired := err != nil && errors.Is(err, jwt.ErrTokenExpired) && t != nil && t.Signature != nil && onlyExpired(err)
	if err != nil && !expired {
		if errors.Is(err, errUnknownKID) {
			return Principal{}, nil, fmt.Errorf("%w: %w", ErrInvalidToken, errUnknownKID)
		}
		return Principal{}, nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	kid, _ := t.Header["kid"].(string)
	k := ks.byKID[kid]
	p, err := c.principal()
	if err != nil || k == nil {
		return Principal{}, nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	p.KeyID = kid
	if expired {
		return p, k, ErrExpiredToken
	}
	return p, k, nil
}

// onlyExpired reports whether err is a claims error about expiry alone (the
// signature having been verified): an expired token that is also not yet
// valid or from another issuer is simply invalid.
func onlyExpired(err error) bool {
	for _, other := range []error{jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable, jwt.ErrTokenMalformed,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenRequiredClaimMissing} {
		if errors.Is(err, other) {
			return false
		}
	}
	return errors.Is(err, jwt.ErrTokenInvalidClaims)
}

// principal checks the Gatehouse claims and builds the principal.
func (c *claims) principal() (Principal, error) {
	p := Principal{
		Kind:      parseKind(c.Kind),
		PartnerID: model.PartnerID(c.PartnerID),
		EntityID:  model.EntityID(c.EntityID),
		UserID:    model.UserID(c.EntityUserID),
		ClientID:  c.ClientID,
		TokenID:   c.ID,
	}
	if c.ExpiresAt == nil || c.IssuedAt == nil || c.NotBefore == nil {
		return Principal{}, errors.New("missing exp, iat or nbf")
	}
	p.ExpiresAt = c.ExpiresAt.Time
	if c.ID == "" || len(c.ID) > 128 {
		return Principal{}, errors.New("bad jti")
	}
	if err := validateClientID(c.ClientID); err != nil {
		return Principal{}, err
	}
	if err := p.PartnerID.Validate(); err != nil {
		return Principal{}, err
	}
	switch p.Kind {
	case KindPartner:
		if p.EntityID != "" || p.UserID != "" {
			return Principal{}, errors.New("partner token names an entity user")
		}
	case KindEntityUser:
		if err := p.EntityID.Validate(); err != nil {
			return Principal{}, err
		}
		if err := p.UserID.Validate(); err != nil {
			return Principal{}, err
		}
	default:
		return Principal{}, errors.New("unknown token kind")
	}
	if c.Subject != p.Subject().String() {
		return Principal{}, errors.New("sub does not match the token's subject")
	}
	if c.APIs != nil {
		p.APIs = make([]model.ObjectType, len(*c.APIs))
		for i, a := range *c.APIs {
			if !validAPIName(a) {
				return Principal{}, errors.New("bad api name")
			}
			p.APIs[i] = model.ObjectType(a)
		}
	}
	return p, nil
}

// validAPIName reports whether s can be an object type: 1 to 64 of [a-z0-9_].
func validAPIName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
