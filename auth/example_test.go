package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/model"
)

// users is a Directory with one entity user.
var users = auth.DirectoryFunc(func(_ context.Context, u model.UserID) (model.EntityID, model.PartnerID, error) {
	if u == "user-1" {
		return "entity-1", "partner-1", nil
	}
	return "", "", auth.ErrUnknownUser
})

// A partner gets a client, the client gets tokens, the middleware
// authenticates them, and a revoked token is refused.
func Example() {
	ctx := context.Background()
	svc, err := auth.New(ctx, auth.NewMemoryStore(), users)
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	creds, _ := svc.CreateClient(ctx, "partner-1", auth.WithAPIs("payable"))
	tok, _ := svc.IssueEntityUserToken(ctx, creds, "user-1")
	fmt.Println(tok.TokenType, tok.ExpiresIn)

	p, _ := svc.Authenticate(ctx, tok.AccessToken)
	fmt.Println(p.Kind, p.Subject(), p.EntityID, p.AllowsAPI("payable"), p.AllowsAPI("receivable"))

	_ = svc.Revoke(ctx, tok.AccessToken)
	_, err = svc.Authenticate(ctx, tok.AccessToken)
	fmt.Println(errors.Is(err, auth.ErrRevokedToken), errors.Is(err, auth.ErrInvalidToken))
	// Output:
	// Bearer 1800
	// entity_user user:user-1 entity-1 true false
	// true true
}

// The token endpoint speaks Monite's JSON and RFC 6749 forms.
func ExampleService_TokenHandler() {
	ctx := context.Background()
	svc, _ := auth.New(ctx, auth.NewMemoryStore(), users)
	defer svc.Close()
	creds, _ := svc.CreateClient(ctx, "partner-1")

	mux := http.NewServeMux()
	mux.Handle("POST /auth/token", svc.TokenHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	body, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "client_id": creds.ID, "client_secret": creds.Secret})
	res, _ := http.Post(srv.URL+"/auth/token", "application/json", strings.NewReader(string(body)))
	var ok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_ = json.NewDecoder(res.Body).Decode(&ok)
	res.Body.Close()
	fmt.Println(res.StatusCode, ok.TokenType, ok.ExpiresIn, ok.AccessToken != "")

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {creds.ID}, "client_secret": {"wrong"}}
	res, _ = http.PostForm(srv.URL+"/auth/token", form)
	var bad map[string]string
	_ = json.NewDecoder(res.Body).Decode(&bad)
	res.Body.Close()
	fmt.Println(res.StatusCode, bad["error"])
	// Output:
	// 200 Bearer 1800 true
	// 401 invalid_client
}

// Secrets are rotated with a cut-off for the old one.
func ExampleService_RotateClientSecret() {
	ctx := context.Background()
	svc, _ := auth.New(ctx, auth.NewMemoryStore(), nil)
	defer svc.Close()
	old, _ := svc.CreateClient(ctx, "partner-1")

	next, _ := svc.RotateClientSecret(ctx, old.ID, time.Time{}) // the old secret ends now
	_, errOld := svc.IssuePartnerToken(ctx, old)
	_, errNew := svc.IssuePartnerToken(ctx, next)
	fmt.Println(errors.Is(errOld, auth.ErrInvalidClient), errNew == nil, next.ID == old.ID)
	fmt.Println(strings.Contains(fmt.Sprint(next), next.Secret)) // the secret is never printed
	// Output:
	// true true true
	// false
}

// A leaked signing key is revoked: its tokens are refused at once, and a
// new key signs from then on.
func ExampleService_RevokeSigningKey() {
	ctx := context.Background()
	svc, _ := auth.New(ctx, auth.NewMemoryStore(), users)
	defer svc.Close()
	creds, _ := svc.CreateClient(ctx, "partner-1")
	leaked, _ := svc.IssuePartnerToken(ctx, creds)

	err := svc.RevokeSigningKey(ctx, leaked.Principal.KeyID)
	fmt.Println(err)
	_, err = svc.Authenticate(ctx, leaked.AccessToken)
	fmt.Println(errors.Is(err, auth.ErrRevokedToken))

	fresh, _ := svc.IssuePartnerToken(ctx, creds)
	_, err = svc.Authenticate(ctx, fresh.AccessToken)
	fmt.Println(fresh.Principal.KeyID != leaked.Principal.KeyID, err)
	// Output:
	// <nil>
	// true
	// true <nil>
}
