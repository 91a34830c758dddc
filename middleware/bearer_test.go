package middleware

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJwMSJ9.c2lnbmF0dXJl-_~+/"
	tests := []struct {
		name   string
		header []string // nil: no header
		token  string
		code   Code
	}{
		{name: "none", code: CodeMissingToken},
		{name: "empty", header: []string{""}, code: CodeMissingToken},
		{name: "jwt", header: []string{"Bearer " + jwt}, token: jwt},
		{name: "scheme in any case", header: []string{"bEaReR abc"}, token: "abc"},
		{name: "padding", header: []string{"Bearer abc=="}, token: "abc=="},
		{name: "extra spaces", header: []string{"Bearer    abc"}, token: "abc"},
		{name: "only padding", header: []string{"Bearer =="}, code: CodeInvalidToken},
		{name: "char after padding", header: []string{"Bearer ab=c"}, code: CodeInvalidToken},
		{name: "no token", header: []string{"Bearer "}, code: CodeInvalidToken},
		{name: "no space", header: []string{"Bearerabc"}, code: CodeMissingToken}, // a scheme "Bearerabc"
		{name: "basic", header: []string{"Basic dXNlcjpwYXNz"}, code: CodeMissingToken},
		{name: "bearer alone", header: []string{"Bearer"}, code: CodeInvalidToken},
		{name: "lowercase scheme", header: []string{"bearer abc"}, token: "abc"},
		{name: "comma", header: []string{"Bearer a,b"}, code: CodeInvalidToken},
		{name: "trailing space", header: []string{"Bearer abc "}, code: CodeInvalidToken},
		{name: "control byte", header: []string{"Bearer ab\x00c"}, code: CodeInvalidToken},
		{name: "non-ASCII", header: []string{"Bearer abcé"}, code: CodeInvalidToken},
		{name: "two headers", header: []string{"Bearer a", "Bearer b"}, code: CodeInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != nil {
				h["Authorization"] = tc.header
			}
			tok, code := bearerToken(h)
			if tok != tc.token || code != tc.code {
				t.Errorf("bearerToken(%q) = %q, %q; want %q, %q", tc.header, tok, code, tc.token, tc.code)
			}
		})
	}
}

var token68RE = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// FuzzToken68 checks token68 against the RFC 7235 grammar as a regular
// expression, and that bearerToken never panics.
func FuzzToken68(f *testing.F) {
	for _, s := range []string{"", "abc", "a=", "=", "a=b", "eyJ.eyJ.sig", "a b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := token68(s), token68RE.MatchString(s); got != want {
			t.Fatalf("token68(%q) = %v, want %v", s, got, want)
		}
		tok, code := bearerToken(http.Header{"Authorization": {"Bearer " + s}})
		if (code == "") != (tok != "") || code == "" && !strings.HasSuffix(s, tok) {
			t.Fatalf("bearerToken(%q) = %q, %q", s, tok, code)
		}
	})
}

func BenchmarkBearerToken(b *testing.B) {
	h := http.Header{"Authorization": {"Bearer " + strings.Repeat("eyJhbGciOiJFZERTQSJ9", 20)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, code := bearerToken(h); code != "" {
			b.Fatal(code)
		}
	}
}
