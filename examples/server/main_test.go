package main

import (
	"strings"
	"testing"
)

func TestSharedDatabase(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want bool
	}{
		{"gatehouse.db", false},
		{"file:gatehouse.db?cache=shared", false},
		{"/var/lib/postgres.db", false},
		{"postgres://app@127.0.0.1:5432/app", true},
		{"postgresql://app@127.0.0.1/app", true},
		{"POSTGRES://app@127.0.0.1/app", true},
		{"mysql://root@tcp(127.0.0.1:3306)/test", true},
	} {
		if got := sharedDatabase(tc.dsn); got != tc.want {
			t.Errorf("sharedDatabase(%q) = %v, want %v", tc.dsn, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for dsn, want := range map[string]string{
		"gatehouse.db":                                       "gatehouse.db",
		"postgres://app:hunter2@db:5432/app":                 "postgres://db:5432/app",
		"mysql://root:hunter2@tcp(db:3306)/x?parseTime=true": "mysql://tcp(db:3306)/x",
		// Found in review: passwords in the query were logged.
		"postgres://db.internal:5432/app?user=app&password=hunter2":  "postgres://db.internal:5432/app",
		"postgres://app@db.internal:5432/app?password=hunter2":       "postgres://db.internal:5432/app",
		"postgres://app:pw@db.internal:5432/app?sslpassword=hunter2": "postgres://db.internal:5432/app",
		"postgres://app:hun@ter2@db:5432/app":                        "postgres://db:5432/app",
		"file:g.db?_auth&_auth_user=admin&_auth_pass=hunter2":        "file:g.db",
		"host=db user=app password=hunter2 dbname=app":               "(a DSN with credentials)",
	} {
		got := redact(dsn)
		if got != want {
			t.Errorf("redact(%q) = %q, want %q", dsn, got, want)
		}
		if strings.Contains(got, "hunter2") || strings.Contains(got, "ter2") {
			t.Errorf("redact(%q) = %q shows the password", dsn, got)
		}
	}
}
