// Package securitytest is the security and reliability suite of the
// platform (DESIGN section 10, invariants 3, 4 and 5). Its tests run the
// all-in-one process in-process, as an attacker and an auditor would see
// it, and check that:
//
//   - no secret (password, bcrypt hash, refresh or access token, signing
//     key, key-encryption key) appears in logs, events, the key bucket,
//     metrics or answers other than the one that issued it;
//   - no operation of docs/openapi.yaml lets a token of one tenant read or
//     change another tenant;
//   - every oversized, slow or malformed input gets a 4xx and changes
//     nothing, and password attempts are rate-limited.
//
// The package holds tests only; docs/security.md describes what they
// guard. Its tests run one after the other: each starts a whole platform,
// whose projector and services hold about twenty PostgreSQL connections.
package securitytest
