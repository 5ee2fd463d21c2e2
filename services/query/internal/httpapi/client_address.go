package httpapi

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The client address of a request, which the login rate limits count per
// address and sign-in events record. Behind a reverse proxy the TCP peer is
// the proxy, so the address is taken from the headers the proxies write
// (RFC 7239 Forwarded "for=", or X-Forwarded-For), but only when the peer is
// a proxy the operator trusts (AUTH_TRUSTED_PROXIES): anybody else can write
// those headers too.

// clientAddress returns the address of the client that sent r: the TCP
// peer's, or, when the peer is in trusted, the rightmost address of the
// proxies' chain that is not itself a trusted proxy. A chain that cannot
// be read (a malformed header, an unknown or obfuscated hop before any
// untrusted address, Forwarded and X-Forwarded-For naming different
// clients) gives the peer's address: the request then counts against its
// proxy, never against an address a client made up. IPv4 addresses mapped
// into IPv6 are given as IPv4.
func clientAddress(r *http.Request, trusted []netip.Prefix) string {
	addr, ok := peerAddress(r.RemoteAddr)
	if !ok {
		// Not an IP peer (a test, a Unix socket): its name is all there is.
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host
		}
		return r.RemoteAddr
	}
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	if client, ok := forwardedClient(r.Header, trusted); ok {
		return client.String()
	}
	return addr.String()
}

// peerAddress reads the address of a request's RemoteAddr (host:port, or a
// bare address).
func peerAddress(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// isTrusted reports whether a is in one of the trusted prefixes.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedClient returns the client the proxies' headers name: walking
// each chain from the right (the hop the nearest proxy recorded), the first
// address that is not a trusted proxy, or the leftmost when every hop is
// trusted. When both Forwarded and X-Forwarded-For are present they must
// name the same client: a proxy writes one of them, and the other may be
// the client's own.
func forwardedClient(h http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	var clients []netip.Addr
	for _, hdr := range []struct {
		name  string
		parse func([]string) ([]netip.Addr, error)
	}{{"Forwarded", parseForwarded}, {"X-Forwarded-For", parseXForwardedFor}} {
		v := h.Values(hdr.name)
		if len(v) == 0 {
			continue
		}
		chain, err := hdr.parse(v)
		if err != nil {
			return netip.Addr{}, false
		}
		c, ok := rightmostUntrusted(chain, trusted)
		if !ok {
			return netip.Addr{}, false
		}
		clients = append(clients, c)
	}
	switch {
	case len(clients) == 0:
		return netip.Addr{}, false
	case len(clients) == 2 && clients[0] != clients[1]:
		return netip.Addr{}, false
	}
	return clients[0], true
}

// rightmostUntrusted walks chain from the right and returns the first
// address not in trusted, or the leftmost when all are. A hop whose address
// is unknown (invalid Addr) before that is a dead end.
func rightmostUntrusted(chain []netip.Addr, trusted []netip.Prefix) (netip.Addr, bool) {
	for i := len(chain) - 1; i >= 0; i-- {
		a := chain[i]
		if !a.IsValid() {
			return netip.Addr{}, false
		}
		if !isTrusted(a, trusted) || i == 0 {
			return a, true
		}
	}
	return netip.Addr{}, false
}

var errMalformed = errors.New("malformed forwarding header")

// parseXForwardedFor reads X-Forwarded-For lines: comma-separated
// addresses, oldest hop first, each an IPv4 or IPv6 address, optionally
// bracketed (IPv6) or with a port.
func parseXForwardedFor(values []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				return nil, errMalformed
			}
			a, ok := parseHost(item)
			if !ok {
				return nil, errMalformed
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// parseForwarded reads Forwarded lines (RFC 7239 section 4): elements
// separated by commas, oldest hop first, each of name=value pairs
// separated by semicolons, values tokens or quoted strings. Each element
// gives its for= node: an address, or the invalid Addr for "unknown", an
// obfuscated identifier or an element without for=.
func parseForwarded(values []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, v := range values {
		s := v
		for {
			s = strings.TrimLeft(s, " \t")
			if s == "" {
				break
			}
			node, rest, err := parseForwardedElement(s)
			if err != nil {
				return nil, err
			}
			out = append(out, node)
			s = strings.TrimLeft(rest, " \t")
			if s == "" {
				break
			}
			if s[0] != ',' {
				return nil, errMalformed
			}
			s = s[1:]
		}
	}
	return out, nil
}

// parseForwardedElement reads one element from the start of s and returns
// its for= node and what follows it (a comma, or nothing).
func parseForwardedElement(s string) (netip.Addr, string, error) {
	var (
		node   netip.Addr
		hasFor bool
	)
	for {
		s = strings.TrimLeft(s, " \t")
		name, rest := token(s)
		if name == "" || !strings.HasPrefix(rest, "=") {
			return netip.Addr{}, "", errMalformed
		}
		value, rest, err := tokenOrQuoted(rest[1:])
		if err != nil {
			return netip.Addr{}, "", err
		}
		if strings.EqualFold(name, "for") {
			if hasFor {
				return netip.Addr{}, "", errMalformed
			}
			hasFor = true
			if node, err = parseNode(value); err != nil {
				return netip.Addr{}, "", err
			}
		}
		s = strings.TrimLeft(rest, " \t")
		if s == "" || s[0] == ',' {
			return node, s, nil
		}
		if s[0] != ';' {
			return netip.Addr{}, "", errMalformed
		}
		s = s[1:]
	}
}

// parseNode reads a for= node (RFC 7239 section 6): an IPv4 address or a
// bracketed IPv6 address, each with an optional port; "unknown" and
// obfuscated identifiers ("_" followed by letters, digits, ".", "_" or "-")
// give the invalid Addr.
func parseNode(v string) (netip.Addr, error) {
	if strings.EqualFold(v, "unknown") || strings.HasPrefix(v, "_") {
		return netip.Addr{}, nil
	}
	host := v
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}, errMalformed
		}
		host = v[1:end]
		if port := v[end+1:]; port != "" && !isPort(port) {
			return netip.Addr{}, errMalformed
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, errMalformed
		}
		return a.Unmap().WithZone(""), nil
	}
	if i := strings.IndexByte(v, ':'); i >= 0 {
		host = v[:i]
		if !isPort(v[i:]) {
			return netip.Addr{}, errMalformed
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errMalformed
	}
	return a, nil
}

// parseHost reads an address as X-Forwarded-For writers give it: bare,
// bracketed (IPv6), or with a port.
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// isPort reports whether s is ":" followed by 1 to 5 digits.
func isPort(s string) bool {
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// token splits the RFC 9110 token at the start of s from the rest.
func token(s string) (string, string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// tokenOrQuoted reads a token or a quoted string (with its backslash
// escapes undone) from the start of s.
func tokenOrQuoted(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		v, rest := token(s)
		if v == "" {
			return "", "", errMalformed
		}
		return v, rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", errMalformed
			}
			i++
			b.WriteByte(s[i])
		default:
			if c < 0x20 && c != '\t' || c == 0x7f {
				return "", "", errMalformed
			}
			b.WriteByte(c)
		}
	}
	return "", "", errMalformed
}
