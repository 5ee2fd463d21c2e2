package domain

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/authstream/authstream/libs/events"
)

// Reasons recorded in events.BrowserEnded.
const (
	// BrowserLogout: the user logged out (RP-initiated logout).
	BrowserLogout = "logout"
	// BrowserReplaced: a new sign-in in the same browser started another
	// session, whose cookie replaced this one's.
	BrowserReplaced = "replaced"
)

// cookieLen is the length of a browser session cookie: 32 random bytes in
// unpadded base64url.
const cookieLen = 43

// NewBrowserCookie returns the value of a new browser session cookie and
// the id of its aggregate, the hex SHA-256 of the value: the events and
// their subjects never hold what would let someone present the cookie.
func NewBrowserCookie() (cookie, id string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	cookie = base64.RawURLEncoding.EncodeToString(b[:])
	return cookie, HashToken(cookie)
}

// BrowserID returns the aggregate id of a browser session cookie's value,
// or ErrMalformedCookie when NewBrowserCookie could not have made it.
func BrowserID(cookie string) (string, error) {
	if len(cookie) != cookieLen {
		return "", ErrMalformedCookie
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(cookie); err != nil {
		return "", ErrMalformedCookie
	}
	return HashToken(cookie), nil
}

// Browser is one browser (single sign-on) session (aggregate
// events.AggregateBrowser, id = BrowserID of its cookie): started by a
// sign-in on the hosted login page, ended by a logout or a later sign-in.
// Its last event carries its whole state (browser.started everything, and
// browser.ended that it is over), so ResumeBrowser decides from it alone.
type Browser struct {
	base
	userID   string
	authTime time.Time
	amr      []string
	ended    bool
}

// LoadBrowser folds a browser session's whole history, oldest first; an
// empty history gives a session that does not exist. The errors are
// ErrInvalidID and ErrCorruptHistory.
func LoadBrowser(id string, history []events.Envelope) (*Browser, error) {
	b, err := newBrowser(id)
	if err != nil {
		return nil, err
	}
	if err := b.fold(history, b.apply); err != nil {
		return nil, err
	}
	return b, nil
}

// ResumeBrowser returns the state of a browser session from its last
// event alone, which carries all a decision needs. The errors are
// LoadBrowser's.
func ResumeBrowser(id string, last events.Envelope) (*Browser, error) {
	b, err := newBrowser(id)
	if err != nil {
		return nil, err
	}
	if err := b.resume(last); err != nil {
		return nil, err
	}
	if err := b.fold([]events.Envelope{last}, b.apply); err != nil {
		return nil, err
	}
	return b, nil
}

func newBrowser(id string) (*Browser, error) {
	if !events.ValidToken(id) {
		return nil, detail(ErrInvalidID, "browser session id %q is invalid", id)
	}
	return &Browser{base: base{kind: events.AggregateBrowser, id: id}}, nil
}

// apply is the only place a browser session's state changes.
func (b *Browser) apply(e event) error {
	ev, ok := e.data.(events.BrowserEvent)
	if !ok {
		return fmt.Errorf("browser session cannot apply %T", e.data)
	}
	switch d := ev.(type) {
	case events.BrowserStarted:
		b.userID, b.authTime, b.amr = d.UserID, d.AuthTime, d.AMR
	case events.BrowserEnded:
		b.ended = true
	}
	return nil
}

// Live reports whether the session started and has not ended. Whether it
// still signs its user in depends on the user too (App decides).
func (b *Browser) Live() bool { return b.userID != "" && !b.ended }

// UserID returns the user who signed in; "" when the state does not know
// (never started, or resumed from its end).
func (b *Browser) UserID() string { return b.userID }

// AuthTime returns when the user signed in.
func (b *Browser) AuthTime() time.Time { return b.authTime }

// AMR returns the authentication methods of the sign-in.
func (b *Browser) AMR() []string { return slices.Clone(b.amr) }

// Start records events.BrowserStarted: userID signed in at now with the
// methods amr, from the client address client. The session must not exist
// yet (ErrBrowserExists): every sign-in gets a new cookie.
func (b *Browser) Start(userID string, amr []string, client string, now time.Time) error {
	if b.Version() > 0 {
		return detail(ErrBrowserExists, "browser session %q already exists", b.id)
	}
	b.record(b.apply, events.TypeBrowserStarted, events.BrowserStarted{
		UserID: userID, AuthTime: now.UTC(), AMR: slices.Clone(amr), Client: client,
	}, now)
	return nil
}

// End records events.BrowserEnded for reason, as of now. A session that
// is not live records nothing: ending is idempotent, and a cookie nobody
// signed in with has nothing to end.
func (b *Browser) End(reason string, now time.Time) {
	if !b.Live() {
		return
	}
	b.record(b.apply, events.TypeBrowserEnded, events.BrowserEnded{Reason: reason}, now)
}
