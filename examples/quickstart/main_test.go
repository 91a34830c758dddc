package main

import (
	"bytes"
	"context"
	"errors"
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

// cancelAfter cancels when the transcript has n step lines.
type cancelAfter struct {
	bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "(ok)") {
		if w.n--; w.n == 0 {
			w.cancel()
		}
	}
	return w.Buffer.Write(p)
}

// TestInterrupt: once the context is cancelled (Ctrl-C), the story sends no
// more requests, reports no failures, and run says it was interrupted.
func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := &cancelAfter{n: 2, cancel: cancel}
	err := run(ctx, out)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted after 2 steps") {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if s := out.String(); strings.Contains(s, " 3  ") || strings.Contains(s, "UNEXPECTED") {
		t.Errorf("the story went on after the interrupt:\n%s", s)
	}
}
