package domain

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/authstream/authstream/libs/events"
)

// Bounds of a client's configuration (events.ClientConfig).
const (
	// MaxClientNameLen is the longest client name, in characters.
	MaxClientNameLen = 100
	// MaxClientURIs is the most redirect URIs, and the most post-logout
	// redirect URIs, a client holds.
	MaxClientURIs = 20
	// MaxClientURILen is the longest redirect URI, in bytes.
	MaxClientURILen = 2048
)

// The grant types a client may hold, in their canonical order.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
)

// The scopes a client may hold, in their canonical order.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// DefaultIDTokenAlg is the algorithm of a client's ID tokens when it names
// none: RS256, which OpenID Connect makes mandatory.
const DefaultIDTokenAlg = "RS256"

var (
	grantTypes  = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantPassword}
	scopes      = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}
	idTokenAlgs = []string{"RS256", "EdDSA", "ES256"}
	// loopbackHosts are the hosts a redirect URI may name over plain http
	// (RFC 8252 section 7.3, RFC 9700 section 2.1).
	loopbackHosts = []string{"127.0.0.1", "::1", "localhost"}
)

// NormalizeClientConfig returns the configuration a client registered or
// updated with cfg holds: cfg checked against every rule, its lists without
// duplicates (grant types and scopes in their canonical order, URIs in the
// order given) and its omissions filled in. A nil list is omitted: the
// scopes default to openid, profile, email and offline_access, the grant
// types to authorization_code (and refresh_token when offline_access is
// among the scopes), the URI lists to none; an empty algorithm is
// DefaultIDTokenAlg. An empty type is refused here; Update fills it in
// from the client. Every error matches ErrInvalidClientConfig and names
// the member and the rule.
func NormalizeClientConfig(cfg events.ClientConfig) (events.ClientConfig, error) {
	out := events.ClientConfig{Name: cfg.Name, Type: cfg.Type, IDTokenSignedResponseAlg: cfg.IDTokenSignedResponseAlg}
	if cfg.Name == "" {
		return out, invalidClient("name is required (1 to %d characters)", MaxClientNameLen)
	}
	if problem := checkText(cfg.Name, MaxClientNameLen, false); problem != "" {
		return out, invalidClient("name %s", problem)
	}
	public := cfg.Type == events.ClientPublic
	if !public && cfg.Type != events.ClientConfidential {
		return out, invalidClient("type must be %q or %q, got %q", events.ClientPublic, events.ClientConfidential, cfg.Type)
	}
	var err error
	if out.RedirectURIs, err = clientURIs("redirect_uris", cfg.RedirectURIs, public); err != nil {
		return out, err
	}
	if out.PostLogoutRedirectURIs, err = clientURIs("post_logout_redirect_uris", cfg.PostLogoutRedirectURIs, public); err != nil {
		return out, err
	}
	out.Scopes = slices.Clone(scopes)
	if cfg.Scopes != nil {
		if out.Scopes, err = canonicalSet("scopes", cfg.Scopes, scopes); err != nil {
			return out, err
		}
	}
	out.GrantTypes = []string{GrantAuthorizationCode}
	if slices.Contains(out.Scopes, ScopeOfflineAccess) {
		out.GrantTypes = append(out.GrantTypes, GrantRefreshToken)
	}
	if cfg.GrantTypes != nil {
		if out.GrantTypes, err = canonicalSet("grant_types", cfg.GrantTypes, grantTypes); err != nil {
			return out, err
		}
	}
	if err := checkGrants(out, public); err != nil {
		return out, err
	}
	if out.IDTokenSignedResponseAlg == "" {
		out.IDTokenSignedResponseAlg = DefaultIDTokenAlg
	}
	if !slices.Contains(idTokenAlgs, out.IDTokenSignedResponseAlg) {
		return out, invalidClient("id_token_signed_response_alg must be RS256, EdDSA or ES256, got %q", out.IDTokenSignedResponseAlg)
	}
	return out, nil
}

// checkGrants checks the grant types of a configuration against each
// other, its type and its redirect URIs.
func checkGrants(cfg events.ClientConfig, public bool) error {
	has := func(g string) bool { return slices.Contains(cfg.GrantTypes, g) }
	switch {
	case len(cfg.GrantTypes) == 0:
		return invalidClient("grant_types must hold at least one grant type")
	case public && has(GrantClientCredentials):
		return invalidClient("grant_types: client_credentials is only for confidential clients (a public client cannot keep the secret it needs)")
	case has(GrantAuthorizationCode) && len(cfg.RedirectURIs) == 0:
		return invalidClient("grant_types: authorization_code needs at least one redirect URI in redirect_uris")
	case has(GrantRefreshToken) && !has(GrantAuthorizationCode) && !has(GrantPassword):
		return invalidClient("grant_types: refresh_token needs authorization_code or password, which issue the refresh tokens")
	}
	return nil
}

// canonicalSet returns the members of given, each of which must be one of
// known, without duplicates and in the order of known.
func canonicalSet(field string, given, known []string) ([]string, error) {
	for _, v := range given {
		if !slices.Contains(known, v) {
			return nil, invalidClient("%s holds %q; allowed: %s", field, v, strings.Join(known, ", "))
		}
	}
	out := []string{}
	for _, v := range known {
		if slices.Contains(given, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// clientURIs checks a list of redirect URIs and returns it without
// duplicates, in the order given (an empty list for nil).
func clientURIs(field string, given []string, public bool) ([]string, error) {
	out := []string{}
	for i, raw := range given {
		if err := checkClientURI(raw, public); err != nil {
			return nil, invalidClient("%s[%d] %q %s", field, i, truncate(raw, 100), err)
		}
		if !slices.Contains(out, raw) {
			out = append(out, raw)
		}
	}
	if len(out) > MaxClientURIs {
		return nil, invalidClient("%s holds %d URIs; at most %d", field, len(out), MaxClientURIs)
	}
	return out, nil
}

// checkClientURI says what is wrong with a redirect URI, or nil: it must be
// absolute, without fragment, wildcard, user information, white space or
// control characters, and use https, http on a loopback host, or (public
// clients only, for native apps) a private-use scheme with a dot (RFC 8252
// section 7.1, RFC 9700 section 2.1). It is compared as an exact string,
// so nothing is normalised.
func checkClientURI(raw string, public bool) error {
	switch {
	case raw == "":
		return fmt.Errorf("is empty")
	case len(raw) > MaxClientURILen:
		return fmt.Errorf("is longer than %d bytes", MaxClientURILen)
	case !utf8.ValidString(raw) || strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("holds white space or control characters")
	case strings.Contains(raw, "*"):
		return fmt.Errorf("holds a wildcard (*): redirect URIs are matched exactly")
	case strings.Contains(raw, "#"):
		return fmt.Errorf("holds a fragment (#), which a redirect URI must not")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URI")
	case !u.IsAbs():
		return fmt.Errorf("is not an absolute URI")
	case u.User != nil:
		return fmt.Errorf("holds user information (user@), which a redirect URI must not")
	}
	switch u.Scheme {
	case "https":
		if u.Hostname() == "" {
			return fmt.Errorf("has no host")
		}
	case "http":
		if !slices.Contains(loopbackHosts, u.Hostname()) {
			return fmt.Errorf("uses http, which is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("uses scheme %q; use https, http on a loopback host, or for a public (native) client a private-use scheme with a dot such as com.example.app", u.Scheme)
		}
		if !public {
			return fmt.Errorf("uses the private-use scheme %q, which only public (native) clients may", u.Scheme)
		}
	}
	return nil
}

// truncate shortens s to at most n bytes for a message, on a rune
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func invalidClient(format string, args ...any) error {
	return detail(ErrInvalidClientConfig, format, args...)
}
