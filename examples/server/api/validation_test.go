package api_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-authz/gatehouse/auth"
	"github.com/gatehouse-authz/gatehouse/examples/server/api"
)

// TestStoredText: every string the server stores is refused with 422 when
// it holds a NUL character or is not UTF-8 (PostgreSQL refuses both) or
// does not fit its column, on every database, where it used to fail with
// 500; text that fits is stored as given.
func TestStoredText(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		creds, pt := e.partner("partner-1")
		ent := newEntity(e, pt)
		clerk := e.id("POST", "/roles", pt, ent, role("Clerk", "payable.create=allowed"), 200)
		user := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": "clerk", "first_name": "Clerk", "role_id": clerk}, 200)
		ut := e.userToken(creds, user)

		const nul = "a\x00b"
		entity := func(fields map[string]any) map[string]any {
			body := map[string]any{"type": "organization", "email": "ap@example.com",
				"address": map[string]any{"city": "Berlin", "country": "DE", "line1": "Street 1", "postal_code": "10115"}, "organization": map[string]any{"legal_name": "Example GmbH"}}
			for k, v := range fields {
				body[k] = v
			}
			return body
		}
		email := func(n int) string { return strings.Repeat("a", n-len("@example.com")) + "@example.com" }
		for _, tc := range []struct {
			name, method, path string
			user               bool // an entity-user token, else the partner's
			body               any
			want               int
		}{
			{"user first_name NUL", "POST", "/entity_users", false, map[string]any{"login": "n1", "first_name": nul}, 422},
			{"user login NUL", "POST", "/entity_users", false, map[string]any{"login": nul, "first_name": "N"}, 422},
			{"user last_name NUL", "POST", "/entity_users", false, map[string]any{"login": "n2", "first_name": "N", "last_name": nul}, 422},
			{"user email NUL", "POST", "/entity_users", false, map[string]any{"login": "n3", "first_name": "N", "email": nul}, 422},
			{"user title NUL", "POST", "/entity_users", false, map[string]any{"login": "n4", "first_name": "N", "title": nul}, 422},
			{"user login empty", "POST", "/entity_users", false, map[string]any{"login": "", "first_name": "N"}, 422},
			{"user login 256", "POST", "/entity_users", false, map[string]any{"login": strings.Repeat("x", 256), "first_name": "N"}, 422},
			{"user login 255 two-byte characters", "POST", "/entity_users", false, map[string]any{"login": strings.Repeat("é", 255), "first_name": "N"}, 200},
			{"user first_name invalid UTF-8 (decoded as U+FFFD)", "POST", "/entity_users", false, `{"login":"n5","first_name":"a` + "\xff" + `"}`, 200},
			{"user update first_name NUL", "PATCH", "/entity_users/" + user, false, map[string]any{"first_name": nul}, 422},
			{"user update login 256", "PATCH", "/entity_users/" + user, false, map[string]any{"login": strings.Repeat("x", 256)}, 422},
			{"user update phone NUL", "PATCH", "/entity_users/" + user, false, map[string]any{"phone": nul}, 422},
			{"user update first_name empty", "PATCH", "/entity_users/" + user, false, map[string]any{"first_name": ""}, 422},

			{"payable description NUL", "POST", "/payables", true, map[string]any{"description": nul}, 422},
			{"payable document_id NUL", "POST", "/payables", true, map[string]any{"document_id": nul}, 422},
			{"payable description 256", "POST", "/payables", true, map[string]any{"description": strings.Repeat("d", 256)}, 422},
			{"payable description 255 two-byte characters", "POST", "/payables", true, map[string]any{"description": strings.Repeat("ü", 255)}, 200},
			{"payable description lone surrogate (decoded as U+FFFD)", "POST", "/payables", true, `{"description":"\ud800"}`, 200},

			{"entity email 256", "POST", "/entities", false, entity(map[string]any{"email": email(256)}), 422},
			{"entity email 255", "POST", "/entities", false, entity(map[string]any{"email": email(255)}), 201},
			{"entity phone NUL", "POST", "/entities", false, entity(map[string]any{"phone": nul}), 422},
			{"entity address value NUL", "POST", "/entities", false, entity(map[string]any{"address": map[string]any{"city": nul}}), 422},
			{"entity address key NUL", "POST", "/entities", false, entity(map[string]any{"address": map[string]any{nul: "x"}}), 422},
			{"entity organization nested NUL", "POST", "/entities", false, entity(map[string]any{"organization": map[string]any{"legal_name": "X", "tags": []any{1, nul}}}), 422},
			{"entity address invalid UTF-8", "POST", "/entities", false, `{"type":"organization","email":"a@b.c","address":{"city":"` + "\xff" + `"},"organization":{"legal_name":"X"}}`, 422},
			{"entity details too large", "POST", "/entities", false, `{"type":"organization","email":"a@b.c","address":{"line1":"` + strings.Repeat("<", 11000) + `"},"organization":{"legal_name":"X"}}`, 422},
			{"entity update email 306", "PATCH", "/entities/" + ent, false, map[string]any{"email": email(306)}, 422},
			{"entity update tax_id NUL", "PATCH", "/entities/" + ent, false, map[string]any{"tax_id": nul}, 422},
			{"entity update address invalid UTF-8", "PATCH", "/entities/" + ent, false, `{"address":{"city":"` + "\xff" + `"}}`, 422},
			{"entity update website", "PATCH", "/entities/" + ent, false, map[string]any{"website": "https://example.com/ü"}, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				token, header := pt, ent
				if tc.user {
					token, header = ut, ""
				}
				if strings.HasPrefix(tc.path, "/entities") {
					header = ""
				}
				status, body, err := e.send(tc.method, tc.path, token, header, tc.body)
				if err != nil || status != tc.want {
					t.Fatalf("%d %s (%v), want %d", status, body, err, tc.want)
				}
				if tc.want == 422 && message(body) == "" {
					t.Errorf("no Monite error message in %s", body)
				}
			})
		}

		// Text that fits is stored as given.
		login := strings.Repeat("é", 255)
		id := e.id("POST", "/entity_users", pt, ent, map[string]any{"login": login, "first_name": "Ä"}, 200)
		var got struct {
			Login string `json:"login"`
		}
		e.do("GET", "/entity_users/"+id, pt, ent, nil, 200, &got)
		if got.Login != login {
			t.Errorf("login stored as %q", got.Login)
		}
		var ents struct {
			Data []json.RawMessage `json:"data"`
		}
		e.do("GET", "/entities", pt, "", nil, 200, &ents)
		if len(ents.Data) != 2 { // ent and the one with a 255-character email
			t.Errorf("%d entities, want 2", len(ents.Data))
		}
	})
}

// TestEnsureClientRefusesWhatTokensRefuse: the bootstrap client's
// credentials are checked as the token endpoint checks them; credentials it
// would always refuse are an error at start-up, not a client that can never
// get a token (found in review). Good ones get a token.
func TestEnsureClientRefusesWhatTokensRefuse(t *testing.T) {
	e := newEnv(t, api.Config{DSN: filepath.Join(t.TempDir(), "boot.db")})
	ctx := context.Background()
	for _, creds := range []auth.ClientCredentials{
		{ID: "my client", Secret: "0123456789abcdef"},
		{ID: "", Secret: "0123456789abcdef"},
		{ID: "ok-client", Secret: "short"},
		{ID: "ok-client", Secret: strings.Repeat("s", auth.MaxSecretLen+1)},
	} {
		if err := e.srv.EnsureClient(ctx, "partner-1", creds); err == nil {
			t.Errorf("EnsureClient(%q, %d-byte secret) accepted", creds.ID, len(creds.Secret))
		}
	}
	good := auth.ClientCredentials{ID: "ok-client", Secret: strings.Repeat("s", auth.MaxSecretLen)}
	if err := e.srv.EnsureClient(ctx, "partner-1", good); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Tokens.IssuePartnerToken(ctx, good); err != nil {
		t.Fatalf("token for the bootstrap client: %v", err)
	}
}
