package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun plays the whole quickstart story and checks its transcript.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"partner POST   /auth/token",
		"bob sees 1 of 3 payables",
		"alice sees 3 of 3 payables",
		"carol sees 3 of 3 payables",
		"403  escalation: alice does not hold payable.delete (ok)",
		"400  partner token without x-monite-entity-id (ok)",
		"400  revoked token",
		"400  expired token",
		"steps answered as expected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "UNEXPECTED") {
		t.Errorf("transcript has unexpected answers:\n%s", out.String())
	}
}
