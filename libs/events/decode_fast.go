package events

import (
	"encoding/base64"
	"reflect"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeFast decodes data, without reflection, as a payload of type t
// when t is one of the payloads a replay meets most and data is inside
// the subset of JSON it reads; ok is false otherwise. A rebuild decodes
// every payload of the log, and encoding/json by reflection, with
// Personal's own UnmarshalJSON nested in it, was most of that cost and
// garbage. It is chosen by the payload struct, so a registry that gives a
// type name another payload never uses it.
//
// The subset is strict: one object, each member named exactly as its
// field's tag and present at most once, no null, nothing else around it.
// For anything outside it decodeFast reports false and Decode hands the
// data to encoding/json, so a payload decodes to the same value, or fails
// with the same error, either way (FuzzDecodeFast compares the two).
//
// The decoders are chosen by a switch rather than looked up in a map of
// functions: a call through a function value would move the lexer to the
// heap, one allocation per event.
func decodeFast(t reflect.Type, data []byte) (v any, ok bool) {
	l := fastLexer{b: data}
	switch t {
	case typeUserRegistered:
		v, ok = decodeUserRegistered(&l)
	case typeUserRoleAssigned:
		v, ok = decodeUserRoleAssigned(&l)
	case typeUserRoleUnassigned:
		v, ok = decodeUserRoleUnassigned(&l)
	case typeRoleDefined:
		v, ok = decodeRoleDefined(&l)
	case typeRoleDeleted:
		v, ok = decodeEmpty[RoleDeleted](&l)
	case typeUserEnabled:
		v, ok = decodeEmpty[UserEnabled](&l)
	case typeTenantEnabled:
		v, ok = decodeEmpty[TenantEnabled](&l)
	case typeUserDisabled:
		v, ok = decodeUserDisabled(&l)
	case typeTenantDisabled:
		v, ok = decodeTenantDisabled(&l)
	case typeUserDeleted:
		v, ok = decodeUserDeleted(&l)
	case typeUserErased:
		v, ok = decodeUserErased(&l)
	case typeUserPasswordChanged:
		v, ok = decodeUserPasswordChanged(&l)
	case typeUserPasswordRehashed:
		v, ok = decodeUserPasswordRehashed(&l)
	case typeUserProfileUpdated:
		v, ok = decodeUserProfileUpdated(&l)
	case typeUserEmailVerified:
		v, ok = decodeUserEmailVerified(&l)
	case typeTenantCreated:
		v, ok = decodeTenantCreated(&l)
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	l.space()
	return v, l.pos == len(l.b)
}

// The payloads decodeFast knows.
var (
	typeUserRegistered       = reflect.TypeFor[UserRegistered]()
	typeUserRoleAssigned     = reflect.TypeFor[UserRoleAssigned]()
	typeUserRoleUnassigned   = reflect.TypeFor[UserRoleUnassigned]()
	typeRoleDefined          = reflect.TypeFor[RoleDefined]()
	typeRoleDeleted          = reflect.TypeFor[RoleDeleted]()
	typeUserEnabled          = reflect.TypeFor[UserEnabled]()
	typeTenantEnabled        = reflect.TypeFor[TenantEnabled]()
	typeUserDisabled         = reflect.TypeFor[UserDisabled]()
	typeTenantDisabled       = reflect.TypeFor[TenantDisabled]()
	typeUserDeleted          = reflect.TypeFor[UserDeleted]()
	typeUserErased           = reflect.TypeFor[UserErased]()
	typeUserPasswordChanged  = reflect.TypeFor[UserPasswordChanged]()
	typeUserPasswordRehashed = reflect.TypeFor[UserPasswordRehashed]()
	typeUserProfileUpdated   = reflect.TypeFor[UserProfileUpdated]()
	typeUserEmailVerified    = reflect.TypeFor[UserEmailVerified]()
	typeTenantCreated        = reflect.TypeFor[TenantCreated]()
)

// fastTypes lists the payloads decodeFast knows, for its tests.
var fastTypes = []reflect.Type{
	typeUserRegistered, typeUserRoleAssigned, typeUserRoleUnassigned, typeRoleDefined, typeRoleDeleted,
	typeUserEnabled, typeTenantEnabled, typeUserDisabled, typeTenantDisabled, typeUserDeleted, typeUserErased,
	typeUserPasswordChanged, typeUserPasswordRehashed, typeUserProfileUpdated, typeUserEmailVerified, typeTenantCreated,
}

// fastLexer reads the subset of JSON the fast decoders accept. Every
// method reports false, leaving pos anywhere, for input outside it.
type fastLexer struct {
	b   []byte
	pos int
}

func (l *fastLexer) space() {
	for l.pos < len(l.b) {
		switch l.b[l.pos] {
		case ' ', '\t', '\r', '\n':
			l.pos++
		default:
			return
		}
	}
}

// eat consumes c, after white space, when it comes next.
func (l *fastLexer) eat(c byte) bool {
	l.space()
	if l.pos < len(l.b) && l.b[l.pos] == c {
		l.pos++
		return true
	}
	return false
}

// object reads an object, calling member with each key when the lexer
// stands at the key's value; member reads the value and reports false to
// give up. seen guards against a member given twice: member returns the
// bit of its field, and 0 for an unknown name.
func (l *fastLexer) object(member func(key []byte) uint32) bool {
	if !l.eat('{') {
		return false
	}
	if l.eat('}') {
		return true
	}
	var seen uint32
	for {
		l.space()
		key, ok := l.span()
		if !ok || !l.eat(':') {
			return false
		}
		l.space()
		bit := member(key)
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if l.eat(',') {
			continue
		}
		return l.eat('}')
	}
}

// span reads a string and returns its bytes, valid UTF-8: a part of the
// input when the string has no escapes, else a copy with the escapes
// decoded as encoding/json decodes them (an escaped surrogate that is not
// half of a pair, which encoding/json replaces, is refused).
func (l *fastLexer) span() ([]byte, bool) {
	if l.pos >= len(l.b) || l.b[l.pos] != '"' {
		return nil, false
	}
	start := l.pos + 1
	ascii := true
	for i := start; i < len(l.b); i++ {
		switch c := l.b[i]; {
		case c == '"':
			l.pos = i + 1
			s := l.b[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false // encoding/json replaces the bad bytes
			}
			return s, true
		case c == '\\':
			return l.unescape(append([]byte(nil), l.b[start:i]...), i)
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// unescape reads the rest of a string from the escape at i on, appending
// to out what the string holds.
func (l *fastLexer) unescape(out []byte, i int) ([]byte, bool) {
	for i < len(l.b) {
		c := l.b[i]
		switch {
		case c == '"':
			l.pos = i + 1
			return out, utf8.Valid(out)
		case c < 0x20:
			return nil, false
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(l.b) {
			return nil, false
		}
		switch e := l.b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := checkedHex4(l.b[i+2:])
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				if len(l.b) < i+12 || l.b[i+6] != '\\' || l.b[i+7] != 'u' {
					return nil, false
				}
				low, ok := checkedHex4(l.b[i+8:])
				if r = utf16.DecodeRune(r, low); !ok || r == utf8.RuneError {
					return nil, false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return nil, false
		}
		i += 2
	}
	return nil, false
}

// checkedHex4 reads the four hex digits of a \u escape.
func checkedHex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (l *fastLexer) str(dst *string) bool {
	s, ok := l.span()
	*dst = string(s)
	return ok
}

// bytes reads a base64 string as encoding/json does for a []byte: never
// nil, empty for "".
func (l *fastLexer) bytes(dst *[]byte) bool {
	s, ok := l.span()
	if !ok {
		return false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return false
	}
	*dst = b[:n]
	return true
}

func (l *fastLexer) boolean(dst *bool) bool {
	rest := l.b[l.pos:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*dst, l.pos = true, l.pos+4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*dst, l.pos = false, l.pos+5
	default:
		return false
	}
	return true
}

// strings reads an array of strings as encoding/json does into a nil
// slice: never nil, empty for [].
func (l *fastLexer) strings(dst *[]string) bool {
	if !l.eat('[') {
		return false
	}
	out := []string{}
	if !l.eat(']') {
		for {
			l.space()
			var s string
			if !l.str(&s) {
				return false
			}
			out = append(out, s)
			if l.eat(',') {
				continue
			}
			if !l.eat(']') {
				return false
			}
			break
		}
	}
	*dst = out
	return true
}

// personal reads a Personal in either form Personal.UnmarshalJSON reads.
func (l *fastLexer) personal(dst *Personal) bool {
	if l.pos < len(l.b) && l.b[l.pos] == '"' {
		var s string
		if !l.str(&s) {
			return false
		}
		*dst = LegacyPersonal(s)
		return true
	}
	var p Personal
	ok := l.object(func(key []byte) uint32 {
		switch string(key) {
		case "nonce":
			return bit(1, l.bytes(&p.Nonce))
		case "ciphertext":
			return bit(2, l.bytes(&p.Ciphertext))
		}
		return 0
	})
	*dst = p
	return ok
}

func (l *fastLexer) sealed(dst *Sealed) bool {
	var s Sealed
	ok := l.object(func(key []byte) uint32 {
		switch string(key) {
		case "kid":
			return bit(1, l.str(&s.KID))
		case "nonce":
			return bit(2, l.bytes(&s.Nonce))
		case "ciphertext":
			return bit(4, l.bytes(&s.Ciphertext))
		}
		return 0
	})
	*dst = s
	return ok
}

// bit is b when the member's value was read, else 0 (giving up).
func bit(b uint32, ok bool) uint32 {
	if !ok {
		return 0
	}
	return b
}

func decodeEmpty[T any](l *fastLexer) (any, bool) {
	var v T
	return v, l.object(func([]byte) uint32 { return 0 })
}

func decodeUserRegistered(l *fastLexer) (any, bool) {
	var e UserRegistered
	ok := l.object(func(key []byte) uint32 {
		switch string(key) {
		case "username":
			return bit(1, l.personal(&e.Username))
		case "username_key":
			return bit(2, l.personal(&e.UsernameKey))
		case "username_claim":
			return bit(4, l.str(&e.UsernameClaim))
		case "credential":
			return bit(8, l.sealed(&e.Credential))
		case "email":
			return bit(16, l.personal(&e.Email))
		case "name":
			return bit(32, l.personal(&e.Name))
		case "locale":
			return bit(64, l.personal(&e.Locale))
		case "attributes":
			return bit(128, l.personal(&e.Attributes))
		case "self_signup":
			return bit(256, l.boolean(&e.SelfSignup))
		}
		return 0
	})
	return e, ok
}

func decodeUserProfileUpdated(l *fastLexer) (any, bool) {
	var e UserProfileUpdated
	ok := l.object(func(key []byte) uint32 {
		switch string(key) {
		case "email":
			return bit(1, l.personal(&e.Email))
		case "name":
			return bit(2, l.personal(&e.Name))
		case "locale":
			return bit(4, l.personal(&e.Locale))
		case "attributes":
			return bit(8, l.personal(&e.Attributes))
		case "removed":
			return bit(16, l.strings(&e.Removed))
		}
		return 0
	})
	return e, ok
}

func decodeUserEmailVerified(l *fastLexer) (any, bool) {
	var e UserEmailVerified
	ok := l.object(func(key []byte) uint32 {
		if string(key) == "email" {
			return bit(1, l.personal(&e.Email))
		}
		return 0
	})
	return e, ok
}

func decodeUserPasswordChanged(l *fastLexer) (any, bool) {
	var e UserPasswordChanged
	ok := l.object(func(key []byte) uint32 {
		switch string(key) {
		case "credential":
			return bit(1, l.sealed(&e.Credential))
		case "reset":
			return bit(2, l.boolean(&e.Reset))
		}
		return 0
	})
	return e, ok
}

func decodeUserPasswordRehashed(l *fastLexer) (any, bool) {
	var e UserPasswordRehashed
	ok := l.object(func(key []byte) uint32 {
		if string(key) == "credential" {
			return bit(1, l.sealed(&e.Credential))
		}
		return 0
	})
	return e, ok
}

func decodeRoleDefined(l *fastLexer) (any, bool) {
	var e RoleDefined
	ok := l.object(func(key []byte) uint32 {
		switch string(key) {
		case "permissions":
			return bit(1, l.strings(&e.Permissions))
		case "description":
			return bit(2, l.str(&e.Description))
		}
		return 0
	})
	return e, ok
}

// oneString decodes a payload of one string member named name into *dst.
func oneString(l *fastLexer, name string, dst *string) bool {
	return l.object(func(key []byte) uint32 {
		if string(key) == name {
			return bit(1, l.str(dst))
		}
		return 0
	})
}

func decodeUserRoleAssigned(l *fastLexer) (any, bool) {
	var e UserRoleAssigned
	ok := oneString(l, "role", &e.Role)
	return e, ok
}

func decodeUserRoleUnassigned(l *fastLexer) (any, bool) {
	var e UserRoleUnassigned
	ok := oneString(l, "role", &e.Role)
	return e, ok
}

func decodeUserDisabled(l *fastLexer) (any, bool) {
	var e UserDisabled
	ok := oneString(l, "reason", &e.Reason)
	return e, ok
}

func decodeTenantDisabled(l *fastLexer) (any, bool) {
	var e TenantDisabled
	ok := oneString(l, "reason", &e.Reason)
	return e, ok
}

func decodeTenantCreated(l *fastLexer) (any, bool) {
	var e TenantCreated
	ok := oneString(l, "name", &e.Name)
	return e, ok
}

func decodeUserDeleted(l *fastLexer) (any, bool) {
	var e UserDeleted
	ok := oneString(l, "username_claim", &e.UsernameClaim)
	return e, ok
}

func decodeUserErased(l *fastLexer) (any, bool) {
	var e UserErased
	ok := oneString(l, "username_claim", &e.UsernameClaim)
	return e, ok
}
