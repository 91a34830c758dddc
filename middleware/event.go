package middleware

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse-authz/gatehouse/model"
)

// DecisionEvent describes one authorization decision of a guard. It holds
// identifiers only: never a token or a secret.
type DecisionEvent struct {
	Subject    model.Subject    // who asked
	ClientID   string           // the API client the token was issued to
	Entity     model.EntityID   // "" when the entity was not resolved
	Object     model.ObjectType // "" for partner-only operations
	Action     model.Action
	Owner      model.Subject // the object's creator, when an owner lookup ran
	Allowed    bool
	Status     int         // 200 when allowed, else the status of the refusal
	Scope      model.Scope // what a list may return (all or own) when allowed
	Role       model.RoleID
	ViaDefault bool   // Role is the entity's default role
	Reason     string // why, in a few words (the engine's reason when it decided)
	Latency    time.Duration
}

// DecisionHook receives decision events (see Config.OnDecision).
type DecisionHook func(ctx context.Context, ev DecisionEvent)

// SlogHook returns a hook that logs each decision to l: allowed ones at
// Debug level, refusals at Info level, with the event's fields as
// attributes.
func SlogHook(l *slog.Logger) DecisionHook {
	return func(ctx context.Context, ev DecisionEvent) {
		level := slog.LevelInfo
		if ev.Allowed {
			level = slog.LevelDebug
		}
		if !l.Enabled(ctx, level) {
			return
		}
		l.LogAttrs(ctx, level, "gatehouse: decision",
			slog.String("subject", ev.Subject.String()),
			slog.String("client_id", ev.ClientID),
			slog.String("entity", string(ev.Entity)),
			slog.String("object", string(ev.Object)),
			slog.String("action", string(ev.Action)),
			slog.String("owner", ev.Owner.String()),
			slog.Bool("allowed", ev.Allowed),
			slog.Int("status", ev.Status),
			slog.String("scope", ev.Scope.String()),
			slog.String("role", string(ev.Role)),
			slog.Bool("via_default", ev.ViaDefault),
			slog.String("reason", ev.Reason),
			slog.Duration("latency", ev.Latency),
		)
	}
}
