package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

var errNoPgx = errors.New("the connection is not a pgx connection")

// listenLoop wakes the watcher on PostgreSQL notifications from commits.
// When the connection fails it catches up and listens again, with backoff.
func (w *Watcher) listenLoop() {
	defer w.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		err := w.listenOnce(w.ctx)
		if w.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNoPgx) {
			w.st.log.WarnContext(w.ctx, "gatehouse: LISTEN/NOTIFY unavailable, polling only", "err", err)
			return
		}
		w.st.log.WarnContext(w.ctx, "gatehouse: listening for changes failed, retrying", "err", err, "backoff", backoff)
		w.kick() // notifications may have been missed
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// feedOID is the SQL of the change feed's oid (as text) on PostgreSQL, the
// table's name its one parameter: what a notification's payload names.
const feedOID = "CAST(CAST(CAST(? AS regclass) AS oid) AS text)"

// listenOnce holds one pool connection in LISTEN until an error or ctx ends.
// After a poll interval without notifications it pings the connection
// (bounded by the read timeout), so that a connection that silently
// stopped answering is noticed. The connection is then discarded rather
// than returned to the pool in LISTEN state.
func (w *Watcher) listenOnce(ctx context.Context) error {
	sqlDB, err := w.st.db.DB()
	if err != nil {
		return err
	}
	cctx, cancel := w.readCtx(ctx)
	conn, err := sqlDB.Conn(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return fmt.Errorf("%w: %T", errNoPgx, dc)
		}
		c := pc.Conn()
		lctx, cancel := w.readCtx(ctx)
		_, err := c.Exec(lctx, "LISTEN "+pgx.Identifier{w.st.channel}.Sanitize())
		cancel()
		if err != nil {
			return fmt.Errorf("%w: LISTEN: %w", driver.ErrBadConn, err)
		}
		// Which feed is ours: the changes table as this connection's
		// search_path resolves it, as the statements that write it do.
		// It is read again when a notification names another: the tables
		// may have been dropped and made again (a restore), with a new oid.
		// A new oid, here or on a later connection, makes the next sync
		// reload: the new feed's revisions do not continue the old one's.
		var feed string
		readFeed := func() error {
			qctx, cancel := w.readCtx(ctx)
			defer cancel()
			if err := c.QueryRow(qctx, "SELECT "+strings.ReplaceAll(feedOID, "?", "$1"), w.st.changes).Scan(&feed); err != nil {
				return fmt.Errorf("%w: reading the change feed's oid: %w", driver.ErrBadConn, err)
			}
			if prev, _ := w.feed.Swap(feed).(string); prev != "" && prev != feed {
				w.remade.Store(true)
			}
			return nil
		}
		if err := readFeed(); err != nil {
			return err
		}
		w.listening.Store(true)
		defer w.listening.Store(false)
		w.kick() // catch up on what happened before LISTEN took effect
		for {
			wctx, cancel := context.WithTimeout(ctx, w.poll)
			n, err := c.WaitForNotification(wctx)
			cancel()
			if err != nil && ctx.Err() == nil && wctx.Err() != nil {
				// No notification for a poll interval: check that the
				// connection still answers (a silent one would leave the
				// replica without wake-ups, and Listening true).
				pctx, cancel := w.readCtx(ctx)
				err = c.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			if err != nil {
				return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
			}
			// The payload is the feed and the committed revision: from
			// now on the replica knows it is behind until it applied it.
			// Another deployment's notification (another schema's tables
			// of the same prefix) is not ours: its revisions would make
			// the replica behind for good. (A payload of a revision alone,
			// from a replica of an earlier version, is taken as ours.)
			payload := n.Payload
			if id, rev, ok := strings.Cut(payload, ":"); ok {
				if id != feed {
					if err := readFeed(); err != nil {
						return err
					}
					if id != feed {
						continue
					}
				}
				payload = rev
			}
			if rev, err := strconv.ParseInt(payload, 10, 64); err == nil && rev > 0 {
				w.st.noteKnown(rev)
			}
			w.kick()
		}
	})
}
