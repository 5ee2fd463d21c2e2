// Package authn holds the credentials of authstream: password hashing and
// policy, username normalisation, signing keys and their JWK form, access
// tokens (JWT issue and verify) and opaque refresh tokens. It knows nothing
// of storage: keys come in through KeySource and go out as PKCS#8 bytes for
// the caller to seal.
package authn
