package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The token endpoint works with the standard Go OAuth 2.0 client, unchanged.
func TestOAuth2ClientCredentials(t *testing.T) {
	f := newFixture(t)
	c := f.client("partner-a")
	mux := http.NewServeMux()
	mux.Handle("/auth/token", f.svc.TokenHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())

	for name, style := range map[string]oauth2.AuthStyle{"in params": oauth2.AuthStyleInParams, "in header": oauth2.AuthStyleInHeader} {
		t.Run(name, func(t *testing.T) {
			cfg := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: srv.URL + "/auth/token", AuthStyle: style}
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Until(tok.Expiry); tok.TokenType != "Bearer" || tok.Extra("expires_in") != float64(1800) || d < 29*time.Minute || d > 30*time.Minute {
				t.Fatalf("token %+v", tok)
			}
			p, err := f.svc.Authenticate(ctx, tok.AccessToken)
			if err != nil || p.Kind != KindPartner || p.ClientID != c.ID {
				t.Fatalf("principal %+v, %v", p, err)
			}

			bad := cfg
			bad.ClientSecret = "wrong"
			_, err = bad.Token(ctx)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != CodeInvalidClient || re.Response.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong secret: %v", err)
			}
		})
	}
}
