package main

import "testing"

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
		"gatehouse.db":                       "gatehouse.db",
		"postgres://app:hunter2@db:5432/app": "postgres://app:xxxxx@db:5432/app",
		"mysql://root:pw@tcp(db:3306)/x":     "(a DSN with credentials)",
	} {
		if got := redact(dsn); got != want {
			t.Errorf("redact(%q) = %q, want %q", dsn, got, want)
		}
	}
}
