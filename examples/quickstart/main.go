// Command quickstart runs Gatehouse's whole story over real HTTP, with
// nothing else installed: it starts the reference server (package
// examples/server/api) on a loopback port with an embedded SQLite file in a
// temporary directory, and plays a partner and three entity users against it,
// as in Monite's server-side guide:
//
//   - the partner gets a token, creates an entity and two roles (one with
//     allowed_for_own), makes one of them the entity's default role and
//     creates entity users with and without a role;
//   - the users get tokens and make requests that are allowed, denied (403),
//     filtered to their own payables, or refused for escalation;
//   - requests without the entity header, with a revoked token and with an
//     expired token are refused.
//
// It prints one line per step (who, request, status, why) and exits with
// status 1 if any answer differs from the expected one. The temporary
// directory is removed at exit.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}
