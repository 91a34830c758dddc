package auth

import (
	"context"
	"strings"
	"sync"
	"time"
)

// clientRevocationPrefix marks a revocation of every token of a client (a
// deleted client), and keyRevocationPrefix of every token a signing key
// signed (a compromised key). Token ids are base64url and never contain
// ':'.
const (
	clientRevocationPrefix = "client:"
	keyRevocationPrefix    = "key:"
)

// revokedSet is the in-memory copy of the revocation list: token ids, client
// ids and key ids, each with the time after which the entry is useless.
type revokedSet struct {
	mu      sync.RWMutex
	tokens  map[string]int64
	clients map[string]int64
	keys    map[string]int64
}

func newRevokedSet() *revokedSet {
	return &revokedSet{tokens: map[string]int64{}, clients: map[string]int64{}, keys: map[string]int64{}}
}

// has reports whether p's token, client or signing key is revoked.
func (r *revokedSet) has(p *Principal) bool {
	r.mu.RLock()
	_, t := r.tokens[p.TokenID]
	_, c := r.clients[p.ClientID]
	_, k := r.keys[p.KeyID]
	r.mu.RUnlock()
	return t || c || k
}

// hasKey reports whether signing key kid is revoked.
func (r *revokedSet) hasKey(kid string) bool {
	r.mu.RLock()
	_, k := r.keys[kid]
	r.mu.RUnlock()
	return k
}

func (r *revokedSet) add(revs ...Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range revs {
		if id, ok := strings.CutPrefix(v.ID, clientRevocationPrefix); ok {
			r.clients[id] = v.ExpiresAt.UnixNano()
		} else if id, ok := strings.CutPrefix(v.ID, keyRevocationPrefix); ok {
			r.keys[id] = v.ExpiresAt.UnixNano()
		} else {
			r.tokens[v.ID] = v.ExpiresAt.UnixNano()
		}
	}
}

// prune forgets entries that expired before t.
func (r *revokedSet) prune(t time.Time) {
	n := t.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]int64{r.tokens, r.clients, r.keys} {
		for id, exp := range m {
			if exp < n {
				delete(m, id)
			}
		}
	}
}

// revocationSync follows the store's revocation table. Rows are read by
// increasing Seq. Since a row with a smaller Seq may become visible after one
// with a larger Seq (concurrent transactions commit out of order), each poll
// reads again from the highest Seq seen revocationCommitWindow ago: rows that
// commit within that window after their Seq was assigned are never missed.
// Only the poller goroutine (and New, before it starts) uses it.
type revocationSync struct {
	marks []seqMark // maximum Seq seen at each poll, oldest first
	base  int64     // read from here
}

type seqMark struct {
	at  time.Time // monotonic
	seq int64
}

const revocationPage = 1000

// sync reads new revocations into set. now is the token clock, used to skip
// expired rows.
func (rs *revocationSync) sync(ctx context.Context, st Store, set *revokedSet, now time.Time) error {
	from := rs.base
	maxSeq := from
	for {
		revs, err := st.Revocations(ctx, from, now, revocationPage)
		if err != nil {
			return err
		}
		set.add(revs...)
		if len(revs) > 0 {
			from = revs[len(revs)-1].Seq
			maxSeq = max(maxSeq, from)
		}
		if len(revs) < revocationPage {
			break
		}
	}
	if n := len(rs.marks); n > 0 {
		maxSeq = max(maxSeq, rs.marks[n-1].seq)
	}
	mono := time.Now()
	rs.marks = append(rs.marks, seqMark{mono, maxSeq})
	// Move base to the newest mark older than the commit window.
	i := 0
	for i+1 < len(rs.marks) && mono.Sub(rs.marks[i+1].at) >= revocationCommitWindow {
		i++
	}
	if mono.Sub(rs.marks[i].at) >= revocationCommitWindow {
		rs.base = rs.marks[i].seq
	}
	rs.marks = rs.marks[i:]
	return nil
}
