package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/middleware"
	"github.com/gatehouse-authz/gatehouse/model"
	"github.com/gatehouse-authz/gatehouse/policy"
)

// Authenticators and deciders of other kinds than pointers, to check that
// their typed nils are refused too.
type funcAuth func(ctx context.Context, token string) (auth.Principal, error)

func (f funcAuth) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	return f(ctx, token)
}

type mapAuth map[string]auth.Principal

func (m mapAuth) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	if p, ok := m[token]; ok {
		return p, nil
	}
	return auth.Principal{}, auth.ErrInvalidToken
}

type chanDecider chan struct{}

func (chanDecider) Decide(*policy.Request) policy.Decision { return policy.Decision{} }
func (chanDecider) OwnsEntity(context.Context, model.PartnerID, model.EntityID) (bool, error) {
	return false, errors.New("no entity")
}

// valueDecider is a non-nilable kind: its zero value is usable.
type valueDecider struct{}

func (valueDecider) Decide(*policy.Request) policy.Decision { return policy.Decision{} }
func (valueDecider) OwnsEntity(context.Context, model.PartnerID, model.EntityID) (bool, error) {
	return false, errors.New("no entity")
}

func TestNewNilDependencies(t *testing.T) {
	wd := newWorld(t)
	var (
		nilService *auth.Service
		nilFake    *fakeAuth
		nilFunc    funcAuth
		nilMap     mapAuth
		nilEngine  *policy.Engine
		nilChan    chanDecider
	)
	for _, tc := range []struct {
		name   string
		authn  middleware.Authenticator
		engine middleware.Decider
		ok     bool
	}{
		{"both set", wd.auth, wd.eng, true},
		{"non-pointer engine", wd.auth, valueDecider{}, true},
		{"empty map authenticator", mapAuth{}, wd.eng, true},
		{"no authenticator", nil, wd.eng, false},
		{"no engine", wd.auth, nil, false},
		{"neither", nil, nil, false},
		{"typed-nil *policy.Engine", wd.auth, nilEngine, false},
		{"typed-nil *auth.Service", nilService, wd.eng, false},
		{"typed-nil pointer authenticator", nilFake, wd.eng, false},
		{"typed-nil func authenticator", nilFunc, wd.eng, false},
		{"typed-nil map authenticator", nilMap, wd.eng, false},
		{"typed-nil chan decider", wd.auth, nilChan, false},
		{"both typed nil", nilService, nilEngine, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("New panicked: %v", r)
				}
			}()
			mw, err := middleware.New(middleware.Config{Authenticator: tc.authn, Engine: tc.engine})
			if tc.ok {
				if err != nil || mw == nil {
					t.Fatalf("New = %v, %v; want a middleware", mw, err)
				}
				return
			}
			if !errors.Is(err, middleware.ErrConfig) {
				t.Fatalf("New error = %v, want one wrapping ErrConfig", err)
			}
			if mw != nil {
				t.Errorf("New returned a middleware with error %v", err)
			}
		})
	}
}
