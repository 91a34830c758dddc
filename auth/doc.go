// Package auth issues, verifies and revokes Gatehouse's access tokens and
// manages the API clients of partners, in the way of Monite's /auth/token and
// /auth/revoke (OAuth 2.0 client credentials, plus the entity_user grant).
//
// # Pieces
//
// A partner has API clients ([Service.CreateClient]): a random client id and
// a 256-bit random secret, shown once and stored only as a SHA-256 (or
// HMAC-SHA-256 with [WithSecretPepper]) hash, compared in constant time. A
// secret can be rotated with a cut-off for the old one
// ([Service.RotateClientSecret]); a deleted client ([Service.DeleteClient])
// can no longer get tokens and the tokens it got are revoked. A client may be
// limited to some object types ([WithAPIs]); its tokens carry the list
// ([Principal.APIs]) and the middleware refuses requests outside it (its
// partner-only routes count as the object type "entity").
//
// [Service.TokenHandler] serves POST /auth/token: grant_type
// client_credentials gives a partner token, entity_user (with
// entity_user_id) a token for an entity user of one of the partner's
// entities, as the [Directory] says. JSON (Monite's ObtainTokenPayload) and
// form bodies are accepted, with the client in the body or in HTTP Basic, so
// golang.org/x/oauth2/clientcredentials works as is. Errors are RFC 6749 §5.2
// JSON ([WriteOAuthError], replaceable with [WithErrorWriter]); an unknown
// client id and a wrong secret get the same answer after the same work.
// Repeated failures for one client id are refused for a cool-down
// ([WithBruteForceLimit]).
//
// Tokens are JWTs (github.com/golang-jwt/jwt/v5) signed with HS256 or EdDSA
// ([WithSigningAlgorithm]); the header names the key (kid), and each key is
// pinned to its algorithm, so "none" and algorithm confusion are refused.
// Claims: iss, sub ("partner:<id>" or "user:<id>"), exp, iat, nbf, jti, kind,
// partner_id, entity_id, entity_user_id, client_id and apis. Keys rotate
// ([Service.RotateSigningKey]): one key signs, retired keys verify until
// their tokens have expired. A leaked key is revoked at once
// ([Service.RevokeSigningKey]): every token it signed is refused, on every
// replica within the revocation poll interval.
//
// [Service.Authenticate] is the middleware's hook: it verifies a token and
// returns its [Principal]. Verified tokens are cached (bounded, keyed by the
// token string, never past expiry); the revocation list is checked on every
// call, cached or not.
//
// [Service.RevokeHandler] serves POST /auth/revoke; [Service.Revoke] is the
// Go call. A revocation is written to the [Store] and each replica polls the
// store ([WithRevocationPoll], 200 ms by default), so a revoked token is
// refused by every replica within about the poll interval, until it would
// have expired; expired revocations are pruned. If a replica cannot read the
// store for longer than [WithMaxRevocationStaleness], Authenticate fails
// closed with [ErrUnavailable].
//
// # Storage
//
// [Store] has two implementations: [MemoryStore] and [GormStore] (SQLite,
// PostgreSQL, MySQL/MariaDB; tables gatehouse_clients,
// gatehouse_signing_keys, gatehouse_revoked_tokens, created by the explicit,
// idempotent [GormStore.Migrate]). Signing keys — the HS256 secret or the
// Ed25519 seed — are stored in clear unless [WithKeyEncryption] is given, in
// which case they are sealed with AES-256-GCM under a key kept outside the
// database.
//
// # Concurrency
//
// A [Service] is safe for concurrent use. It runs one goroutine, the poller,
// which [Service.Close] stops and waits for. Replicas sharing a store must
// share the issuer and, if used, the pepper and key-encryption key. They
// should share the token TTL too: revocations are kept for the longest
// TTL and leeway the package allows, whatever each replica's, but after
// [Service.RotateSigningKey] the old key verifies tokens only for the
// rotating replica's TTL, so a replica issuing longer-lived tokens sees
// them refused early (closed, never open).
package auth
