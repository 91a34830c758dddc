package auth

import (
	"context"
	"testing"
)

func benchService(b *testing.B, opts ...Option) (*Service, ClientCredentials) {
	b.Helper()
	ctx := context.Background()
	s, err := New(ctx, NewMemoryStore(), defaultDir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	c, err := s.CreateClient(ctx, "partner-a", WithAPIs("payable", "receivable"))
	if err != nil {
		b.Fatal(err)
	}
	return s, c
}

// BenchmarkIssuePartnerToken: client authentication (memory store) and
// signing.
func BenchmarkIssuePartnerToken(b *testing.B) {
	for _, alg := range []Algorithm{HS256, EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			s, c := benchService(b, WithSigningAlgorithm(alg))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.IssuePartnerToken(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthenticateUncached: full verification of every call.
func BenchmarkAuthenticateUncached(b *testing.B) {
	for _, alg := range []Algorithm{HS256, EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			s, c := benchService(b, WithSigningAlgorithm(alg), WithCacheSize(0))
			ctx := context.Background()
			tok, _ := s.IssuePartnerToken(ctx, c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthenticateCached: the hot path of a token seen before, serially
// and from all CPUs.
func BenchmarkAuthenticateCached(b *testing.B) {
	s, c := benchService(b)
	ctx := context.Background()
	tok, _ := s.IssuePartnerToken(ctx, c)
	if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Authenticate(ctx, tok.AccessToken); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
