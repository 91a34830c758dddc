package auth

import (
	"hash/maphash"
	"sync"
)

// tokenCache maps a verified token string to the principal it was verified
// as. It is split into shards, each a map bounded to its share of the
// capacity; a full shard drops expired entries first, then arbitrary ones.
// Entries are never returned past their expiry; revocation is checked by
// the caller on every hit.
//
// The key is the token itself, so a hit is an exact match (hashed with the
// maps' per-process random seeds), at the price of the cached tokens
// staying in memory until they expire or are evicted: tokens are never
// written anywhere else.
type tokenCache struct {
	shards [cacheShards]cacheShard
	per    int // capacity of a shard
	seed   maphash.Seed
}

const cacheShards = 32

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	p   Principal
	exp int64 // unix nanoseconds after which the entry is dead
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	c := &tokenCache{per: max(1, (size+cacheShards-1)/cacheShards), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	return c
}

func (c *tokenCache) shard(k string) *cacheShard {
	return &c.shards[maphash.String(c.seed, k)%cacheShards]
}

// get returns the live entry for k.
func (c *tokenCache) get(k string, now int64) (Principal, bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	e, ok := sh.m[k]
	sh.mu.RUnlock()
	if !ok || now >= e.exp {
		return Principal{}, false
	}
	return e.p, true
}

// put stores p under k until exp, making room if the shard is full.
func (c *tokenCache) put(k string, p Principal, exp, now int64) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= c.per {
		for key, e := range sh.m {
			if now >= e.exp {
				delete(sh.m, key)
			}
		}
		for key := range sh.m { // still full: drop an arbitrary entry
			if len(sh.m) < c.per {
				break
			}
			delete(sh.m, key)
		}
	}
	sh.m[k] = cacheEntry{p: p, exp: exp}
}

// remove drops k.
func (c *tokenCache) remove(k string) {
	sh := c.shard(k)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// len returns the number of entries (for tests).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
