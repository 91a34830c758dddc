package store

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestSQLiteDSN(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string // parameters expected in the result
		path string
	}{
		{"/tmp/x.db", map[string]string{"_journal_mode": "WAL", "_busy_timeout": "5000", "_foreign_keys": "on", "_txlock": "immediate"}, "/tmp/x.db"},
		{"file:x.db?mode=rwc", map[string]string{"mode": "rwc", "_journal_mode": "WAL"}, "file:x.db"},
		{"x.db?_busy_timeout=100", map[string]string{"_busy_timeout": "100", "_txlock": "immediate"}, "x.db"},
		{"x.db?_timeout=100&_fk=0", map[string]string{"_timeout": "100", "_fk": "0", "_busy_timeout": "", "_foreign_keys": ""}, "x.db"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := sqliteDSN(tc.in)
			path, query, _ := strings.Cut(got, "?")
			if path != tc.path {
				t.Errorf("path %q, want %q", path, tc.path)
			}
			q, err := url.ParseQuery(query)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q (in %s)", k, q.Get(k), v, got)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, dsn string
		want      error
	}{
		{"empty", "", ErrUnsupported},
		{"unknown scheme", "sqlserver://sa:secret@host/db", ErrUnsupported},
		{"unreachable postgres", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), tc.dsn)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	for p, want := range map[string]bool{"gatehouse_": true, "a": true, "A1_": true, "": false, "1a": false, "_a": false, "a-b": false, "a b": false, "a;": false, strings.Repeat("a", 41): false} {
		if got := validPrefix(p); got != want {
			t.Errorf("validPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}
