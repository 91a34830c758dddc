package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-authz/gatehouse/examples/server/api"
)

// clock is the token service's clock; the story moves it forward to let a
// token expire without waiting.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// run plays the story and writes its transcript to out. It returns an error
// if the server cannot start or any answer differs from the expected one.
func run(ctx context.Context, out io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "gatehouse-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	clk := &clock{}
	srv, err := api.New(ctx, api.Config{DSN: filepath.Join(dir, "quickstart.db"), TokenTTL: 30 * time.Minute, Now: clk.Now})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Shutdown(context.Background())

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "Gatehouse quickstart: reference server on %s, SQLite in %s\n\n", base, dir)

	creds, err := srv.CreateClient(ctx, "acme-platform")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "partner acme-platform has API client %s (the secret is shown once, at creation)\n", creds.ID)

	c := &caller{ctx: ctx, base: base, out: out, http: &http.Client{Timeout: 10 * time.Second}}
	s := &story{caller: c}
	err = s.play(creds.ID, creds.Secret, clk)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d steps: %w", c.n, ctx.Err())
	}
	if err != nil {
		return err
	}
	if n := len(c.failures); n > 0 {
		return fmt.Errorf("%d of %d steps gave an unexpected answer:\n  %s", n, c.n, strings.Join(c.failures, "\n  "))
	}
	fmt.Fprintf(out, "\nall %d steps answered as expected\n", c.n)
	return nil
}

// story holds what the steps learn: tokens and ids.
type story struct {
	*caller
	entity                     string
	accountant, clerk, viewer  string
	alice, bob, carol          string
	partnerT, aliceT, bobT     string
	carolT                     string
	bobPay, carolPay, alicePay string
}

// play runs the steps in order. It stops early only when a step the later
// ones depend on failed.
func (s *story) play(clientID, secret string, clk *clock) error {
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	var obj struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	need := func(v *string, from string) error {
		*v = from
		if from == "" {
			return errors.New("a step the rest of the story depends on failed")
		}
		return nil
	}

	s.section("The partner sets up an entity")
	s.call("partner", "POST", "/auth/token", "", "", map[string]any{"grant_type": "client_credentials", "client_id": clientID, "client_secret": secret}, 200, &tok,
		"partner token (grant client_credentials)")
	if err := need(&s.partnerT, tok.AccessToken); err != nil {
		return err
	}
	s.call("partner", "POST", "/entities", s.partnerT, "", map[string]any{"type": "organization", "email": "ap@acme.example",
		"address":      map[string]any{"city": "Berlin", "country": "DE", "line1": "Unter den Linden 1", "postal_code": "10117"},
		"organization": map[string]any{"legal_name": "Acme GmbH"}}, 201, &obj, "entity created, owned by the partner")
	if err := need(&s.entity, obj.ID); err != nil {
		return err
	}
	s.call("partner", "POST", "/roles", s.partnerT, s.entity, role("Accountant", map[string]map[string]string{
		"payable":     {"create": "allowed", "read": "allowed", "update": "allowed", "approve": "allowed"},
		"role":        {"create": "allowed", "read": "allowed"},
		"entity_user": {"read": "allowed"},
	}), 200, &obj, "role Accountant: payables allowed, may create roles")
	if err := need(&s.accountant, obj.ID); err != nil {
		return err
	}
	s.call("partner", "POST", "/roles", s.partnerT, s.entity, role("Clerk", map[string]map[string]string{
		"payable": {"create": "allowed", "read": "allowed_for_own", "update": "allowed_for_own"},
	}), 200, &obj, "role Clerk: payables create; read and update allowed_for_own")
	if err := need(&s.clerk, obj.ID); err != nil {
		return err
	}
	s.call("partner", "PATCH", "/entities/"+s.entity+"/settings", s.partnerT, "", map[string]any{"default_role_id": s.clerk}, 200, nil,
		"Clerk is now the entity's default role")
	s.call("partner", "POST", "/entity_users", s.partnerT, s.entity, map[string]any{"login": "alice", "first_name": "Alice", "role_id": s.accountant}, 200, &obj,
		"alice, role Accountant")
	if err := need(&s.alice, obj.ID); err != nil {
		return err
	}
	s.call("partner", "POST", "/entity_users", s.partnerT, s.entity, map[string]any{"login": "bob", "first_name": "Bob"}, 200, &obj,
		"bob, no role: the default role (Clerk) applies")
	if err := need(&s.bob, obj.ID); err != nil {
		return err
	}
	s.call("partner", "POST", "/entity_users", s.partnerT, s.entity, map[string]any{"login": "carol", "first_name": "Carol"}, 200, &obj,
		"carol, no role: the default role (Clerk) applies")
	if err := need(&s.carol, obj.ID); err != nil {
		return err
	}
	for _, u := range []struct {
		name, id string
		dst      *string
	}{{"alice", s.alice, &s.aliceT}, {"bob", s.bob, &s.bobT}, {"carol", s.carol, &s.carolT}} {
		tok.AccessToken = ""
		s.call("partner", "POST", "/auth/token", "", "", map[string]any{"grant_type": "entity_user", "client_id": clientID, "client_secret": secret, "entity_user_id": u.id}, 200, &tok,
			"entity-user token for "+u.name+" (grant entity_user)")
		if err := need(u.dst, tok.AccessToken); err != nil {
			return err
		}
	}

	s.section("Entity users at work")
	var myRole struct {
		Name string `json:"name"`
	}
	s.call("bob", "GET", "/entity_users/my_role", s.bobT, "", nil, 200, &myRole, "bob's role comes from the entity's default")
	s.check(myRole.Name == "Clerk", "bob's role is %q, want Clerk", myRole.Name)
	for _, p := range []struct {
		who, token string
		dst        *string
	}{{"bob", s.bobT, &s.bobPay}, {"carol", s.carolT, &s.carolPay}, {"alice", s.aliceT, &s.alicePay}} {
		obj.ID = ""
		s.call(p.who, "POST", "/payables", p.token, "", map[string]any{"currency": "EUR", "total_amount": 12500, "document_id": "INV-" + p.who}, 200, &obj,
			"payable.create allowed: "+p.who+" is its creator")
		if err := need(p.dst, obj.ID); err != nil {
			return err
		}
	}
	list.Data = nil
	s.call("bob", "GET", "/payables", s.bobT, "", nil, 200, &list, "filtered to bob's own (payable.read allowed_for_own)")
	s.check(len(list.Data) == 1 && list.Data[0].ID == s.bobPay, "bob sees %d payables, want only his own", len(list.Data))
	s.note("bob sees %d of 3 payables", len(list.Data))
	list.Data = nil
	s.call("alice", "GET", "/payables", s.aliceT, "", nil, 200, &list, "alice sees all (payable.read allowed)")
	s.check(len(list.Data) == 3, "alice sees %d payables, want 3", len(list.Data))
	s.note("alice sees %d of 3 payables", len(list.Data))
	s.call("bob", "GET", "/payables/"+s.bobPay, s.bobT, "", nil, 200, nil, "his own payable")
	s.call("bob", "GET", "/payables/"+s.carolPay, s.bobT, "", nil, 403, nil, "carol's payable: allowed_for_own, not the creator")
	s.call("bob", "PATCH", "/payables/"+s.bobPay, s.bobT, "", map[string]any{"total_amount": 13000}, 200, nil, "updates his own payable")
	s.call("bob", "POST", "/payables/"+s.bobPay+"/approve_payment_operation", s.bobT, "", nil, 403, nil, "Clerk has no payable.approve")
	obj.Status = ""
	s.call("alice", "POST", "/payables/"+s.bobPay+"/approve_payment_operation", s.aliceT, "", nil, 200, &obj, "Accountant approves bob's payable")
	s.check(obj.Status == "waiting_to_be_paid", "status %q, want waiting_to_be_paid", obj.Status)
	s.call("bob", "GET", "/payables", s.bobT, s.entity+"-other", nil, 403, nil, "entity header naming another entity")

	s.section("Role management and escalation")
	s.call("bob", "POST", "/roles", s.bobT, "", role("Bob's", map[string]map[string]string{"payable": {"approve": "allowed"}}), 403, nil,
		"Clerk has no role.create")
	s.call("alice", "POST", "/roles", s.aliceT, "", role("Deleter", map[string]map[string]string{"payable": {"delete": "allowed"}}), 403, nil,
		"escalation: alice does not hold payable.delete")
	s.call("alice", "POST", "/roles", s.aliceT, "", role("Viewer", map[string]map[string]string{"payable": {"read": "allowed"}}), 200, &obj,
		"within what alice holds herself")
	if err := need(&s.viewer, obj.ID); err != nil {
		return err
	}
	s.call("alice", "POST", "/roles", s.aliceT, "", role("Viewer", map[string]map[string]string{"payable": {"read": "allowed"}}), 409, nil,
		"a role named Viewer exists already")
	s.call("alice", "POST", "/roles", s.aliceT, "", role("Bogus", map[string]map[string]string{"spaceship": {"read": "allowed"}}), 422, nil,
		"unknown object type")
	s.call("partner", "DELETE", "/roles/"+s.clerk, s.partnerT, s.entity, nil, 409, nil, "Clerk is the entity's default role")
	s.call("partner", "PATCH", "/entities/"+s.entity+"/settings", s.partnerT, "", map[string]any{"default_role_id": s.viewer}, 200, nil,
		"the default role becomes Viewer")
	list.Data = nil
	s.call("carol", "GET", "/payables", s.carolT, "", nil, 200, &list, "carol now reads all payables, at once")
	s.check(len(list.Data) == 3, "carol sees %d payables, want 3", len(list.Data))
	s.note("carol sees %d of 3 payables", len(list.Data))
	s.call("carol", "POST", "/payables", s.carolT, "", map[string]any{"currency": "EUR"}, 403, nil, "Viewer has no payable.create")

	s.section("Refusals")
	s.call("partner", "GET", "/payables", s.partnerT, "", nil, 400, nil, "partner token without x-monite-entity-id")
	s.call("partner", "GET", "/payables", s.partnerT, s.entity, nil, 200, nil, "with the header: the partner owns the entity")
	s.call("bob", "POST", "/entities", s.bobT, "", map[string]any{}, 403, nil, "creating entities is for partners")
	s.call("nobody", "GET", "/payables", "", s.entity, nil, 401, nil, "no token")
	s.call("partner", "POST", "/auth/revoke", "", "", map[string]any{"client_id": clientID, "client_secret": secret, "token": s.bobT}, 200, nil,
		"bob's token revoked")
	s.call("bob", "GET", "/payables", s.bobT, "", nil, 400, nil, "revoked token: Monite answers 400 (401 with problem JSON)")
	clk.Advance(31 * time.Minute)
	s.note("the clock moves 31 minutes forward (tokens live 30)")
	s.call("carol", "GET", "/payables", s.carolT, "", nil, 400, nil, "expired token: Monite answers 400 (401 with problem JSON)")
	return nil
}

// role builds a CreateRoleRequest.
func role(name string, perms map[string]map[string]string) map[string]any {
	var objects []map[string]any
	for obj, acts := range perms {
		var actions []map[string]string
		for a, p := range acts {
			actions = append(actions, map[string]string{"action_name": a, "permission": p})
		}
		objects = append(objects, map[string]any{"object_type": obj, "actions": actions})
	}
	return map[string]any{"name": name, "permissions": map[string]any{"objects": objects}}
}

// caller sends the story's requests and writes the transcript.
type caller struct {
	ctx      context.Context
	base     string
	out      io.Writer
	http     *http.Client
	n        int
	failures []string
}

// stopped reports whether the story was interrupted (Ctrl-C): the caller
// then sends no more requests and records no more failures, and run
// returns the context's error.
func (c *caller) stopped() bool { return c.ctx.Err() != nil }

func (c *caller) section(title string) {
	if !c.stopped() {
		fmt.Fprintf(c.out, "\n%s\n", title)
	}
}

func (c *caller) note(format string, args ...any) {
	if !c.stopped() {
		fmt.Fprintf(c.out, "        %s\n", fmt.Sprintf(format, args...))
	}
}

// check records a failure when ok is false.
func (c *caller) check(ok bool, format string, args ...any) {
	if !ok && !c.stopped() {
		msg := fmt.Sprintf(format, args...)
		c.failures = append(c.failures, msg)
		fmt.Fprintf(c.out, "        UNEXPECTED: %s\n", msg)
	}
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// call sends one request as who and prints one transcript line; when the
// status is want and dst is not nil, the JSON answer is decoded into it.
func (c *caller) call(who, method, path, token, entity string, body any, want int, dst any, why string) {
	if c.stopped() {
		return
	}
	c.n++
	status, answer, err := c.send(method, path, token, entity, body)
	if c.stopped() {
		c.n-- // interrupted in flight: not a step
		return
	}
	short := uuidRE.ReplaceAllStringFunc(path, func(id string) string { return id[:8] })
	mark := "ok"
	if err != nil || status != want {
		mark = fmt.Sprintf("UNEXPECTED, want %d", want)
		msg := fmt.Sprintf("step %d %s %s as %s: got %d, want %d", c.n, method, short, who, status, want)
		if err != nil {
			msg += ": " + err.Error()
		} else if len(answer) > 0 {
			msg += ": " + strings.TrimSpace(string(answer))
		}
		c.failures = append(c.failures, msg)
	}
	fmt.Fprintf(c.out, "%2d  %-7s %-6s %-46s %d  %s (%s)\n", c.n, who, method, short, status, why, mark)
	if dst != nil && err == nil && status == want {
		if err := json.Unmarshal(answer, dst); err != nil {
			c.failures = append(c.failures, fmt.Sprintf("step %d: bad JSON answer: %v", c.n, err))
		}
	}
}

// send makes one request and returns the status and body.
func (c *caller) send(method, path, token, entity string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if entity != "" {
		req.Header.Set(api.EntityHeader, entity)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
