package store

import (
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gatehouse-authz/gatehouse/policy"
)

// faultProxy is a TCP proxy on the loopback interface in front of a
// database server, for fault tests: it forwards everything until told to
// lose a COMMIT's answer, or to stall.
type faultProxy struct {
	ln     net.Listener
	target string
	done   chan struct{} // closed when the test ends
	// stall: while set, nothing is forwarded either way and nothing is
	// closed (a network that silently drops every packet).
	stall atomic.Bool
	// dropCommit: the next client packet that holds "commit" (in any
	// case) is forwarded, the server's answer is not, and both sides of
	// that connection are closed dropDelay later (the server commits
	// meanwhile): the client cannot tell whether the COMMIT took effect.
	dropCommit atomic.Bool
	fired      chan struct{} // closed when a COMMIT was dropped
	fireOnce   sync.Once

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

const dropDelay = 300 * time.Millisecond

var loopbackAddr = regexp.MustCompile(`(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+`)

// proxied returns a backend like b whose connections go through a new
// faultProxy, and the proxy. Only a loopback server is proxied: the test
// is skipped for any other.
func proxied(t *testing.T, b backend) (backend, *faultProxy) {
	t.Helper()
	dsn := dsnOf(t, b)
	target := loopbackAddr.FindString(dsn)
	if target == "" {
		t.Skipf("%s: the DSN names no loopback host:port to proxy", b.name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, done: make(chan struct{}), fired: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(p.done)
		p.mu.Lock()
		p.closed = true
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, s) {
				return
			}
			lost := new(atomic.Bool) // the server's answers are not relayed
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(c, s, true, lost) }()
			go func() { defer wg.Done(); p.pipe(s, c, false, lost) }()
		}
	}()
	pdsn := strings.Replace(dsn, target, ln.Addr().String(), 1)
	return backend{b.name, func(t testing.TB) *gorm.DB { return openDSN(t, pdsn) }}, p
}

// proxiedReplicas is twoReplicas with replica A's connections going
// through a new faultProxy.
func proxiedReplicas(t *testing.T, b backend) (p *faultProxy, stA, stB *Store, engA, engB *policy.Engine) {
	t.Helper()
	pb, p := proxied(t, b)
	prefix := newPrefix()
	stA = newStore(t, pb, pb.open(t), prefix)
	stB = newStore(t, b, b.open(t), prefix)
	return p, stA, stB, newEngine(t, stA), newEngine(t, stB)
}

func (p *faultProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// commitStmt matches a COMMIT statement, and not the "read committed" of
// a BEGIN that sets the isolation level.
var commitStmt = regexp.MustCompile(`(?i)\bcommit\b`)

// pipe copies src to dst; fromClient tells the direction.
func (p *faultProxy) pipe(src, dst net.Conn, fromClient bool, lost *atomic.Bool) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		for p.stall.Load() {
			select {
			case <-p.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		if !fromClient && lost.Load() {
			n = 0 // held back until the client side closes the connection
		}
		if n > 0 {
			drop := fromClient && commitStmt.Match(buf[:n]) && p.dropCommit.CompareAndSwap(true, false)
			if drop {
				lost.Store(true)
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
			if drop {
				p.fireOnce.Do(func() { close(p.fired) })
				time.Sleep(dropDelay)
				return
			}
		}
		if err != nil {
			return
		}
	}
}
