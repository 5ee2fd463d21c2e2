package securitytest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// specPath is docs/openapi.yaml seen from this package.
const specPath = "../../../docs/openapi.yaml"

// The sweep's tenants: A is the caller's, B the target.
const (
	tenantA, tenantB = "acme", "beta"
	roleB            = "beta-auditors"
	adminB           = "beatrix-of-beta"
	userB            = "bert-beta"
	// gamma is the tenant a refused POST /tenants would have created.
	gamma = "gamma"
	// B's user's profile, which no answer to A may show.
	emailB, nameB = "bert@beta.example", "Bert Betamax"
)

// sweepCaller is who calls B's operations: a token and the credentials
// behind it.
type sweepCaller struct {
	name               string
	username, password string
	tokens             tokens
	// client and redirectURI are a registered OpenID Connect client of
	// tenant A and its redirect URI, and auth a sealed authorization
	// request A's authorize endpoint issued for it: a mix-up attempt at B.
	client, redirectURI, auth string
	// tenant is the caller's own tenant, where its refresh token must
	// keep working after the sweep.
	tenant string
	// platformOps is false for a platform admin, whose /tenants
	// operations are its own to call.
	platformOps bool
}

// TestCrossTenant_EveryOperation calls every operation of the query and
// command services in docs/openapi.yaml that addresses a tenant (under
// /t/{tenant}, and /tenants) against tenant B, with the token and
// credentials of tenant A's admin (who holds "*" in A) and of the platform
// admin: path parameters name B's real user and role, bodies are built
// from the operation's schema. Every call must be refused (401, 403 or
// 404; a public key document may be read, a revocation may answer 200 as
// RFC 7009 requires), no answer may carry B's user ids, usernames or role
// names, and nothing may be appended to B's subjects. Afterwards B is as
// it was and A's session still works (the revocation at B did not touch
// it).
//
// The operations come from the spec, not from a list here: a new one is
// swept as soon as it is documented, and one the sweep cannot build a
// request for (an unknown path parameter or body field) fails the test.
func TestCrossTenant_EveryOperation(t *testing.T) {
	// Not parallel: each platform holds about twenty PostgreSQL connections.
	ops := mustTenantOperations(t)
	p := mustPlatform(t)

	root := p.Login(t, "platform", rootName, rootPassword, "")
	a := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: tenantA, Admin: "ada", Password: adaPassword})
	b := p.MustTenant(t, root.AccessToken, authstreamtest.NewTenant{ID: tenantB, Admin: adminB, Password: beaPassword})
	cmd := func(bearer, method, path string, body any, want int) answer {
		t.Helper()
		return p.Must(t, request{Method: method, URL: p.Command + path, Bearer: bearer, Body: body}, want)
	}
	cmd(a.Admin.AccessToken, http.MethodPut, "/t/acme/roles/acme-billing", map[string]any{"permissions": []string{"invoices:*"}}, http.StatusOK)
	// The address the sweep invites is A's username already, so that every
	// invitation in A answers alike (409) whatever the roles it names.
	cmd(a.Admin.AccessToken, http.MethodPost, "/t/acme/users", map[string]any{"username": "sweep@sweep.example", "password": adaPassword}, http.StatusCreated)
	cmd(b.Admin.AccessToken, http.MethodPut, "/t/beta/roles/"+roleB, map[string]any{"permissions": []string{"users:read"}, "description": "beta's auditors"}, http.StatusOK)
	bert := cmd(b.Admin.AccessToken, http.MethodPost, "/t/beta/users", map[string]any{"username": userB, "password": beaPassword, "roles": []string{roleB},
		"email": emailB, "name": nameB}, http.StatusCreated)
	bertID := bert.Str("id")
	client := cmd(b.Admin.AccessToken, http.MethodPost, "/t/beta/clients", map[string]any{
		"name": "beta's service", "type": "confidential", "grant_types": []string{"client_credentials"}, "scopes": []string{"openid"},
	}, http.StatusCreated)
	clientB := client.Str("client_id")
	hookB := cmd(b.Admin.AccessToken, http.MethodPost, "/t/beta/webhooks", map[string]any{
		"url": "https://hooks.beta.example/in", "event_types": []string{"*"}, "description": "beta's hook",
	}, http.StatusCreated)
	webhookB := hookB.Str("id")
	ct := hookB.Token()
	before := p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/beta/users", Bearer: b.Admin.AccessToken, Consistency: ct}, http.StatusOK)
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: a.Admin.AccessToken}, http.StatusOK)

	bData := []string{b.AdminID, bertID, userB, adminB, roleB, clientB, webhookB, "hooks.beta.example", hookB.Str("secret"), emailB, nameB}
	subjects := []struct{ stream, subject string }{
		{events.StreamEvents, "auth.evt." + tenantB + ".>"},
		{events.StreamEvents, "auth.uniq." + tenantB + ".>"},
		{events.StreamActivity, "auth.act." + tenantB + ".>"},
		{events.StreamEvents, "auth.evt." + gamma + ".>"},
		{events.StreamEvents, "auth.uniq." + gamma + ".>"},
	}
	seqs := func() []uint64 {
		out := make([]uint64, len(subjects))
		for i, s := range subjects {
			out[i] = p.LastSeq(t, s.stream, s.subject)
		}
		return out
	}
	initial := seqs()

	clientA, redirectA, authA := mustAuthorizationRequest(t, p, a)
	callers := []sweepCaller{
		{name: "acme's admin", username: a.AdminName, password: a.AdminPassword, tokens: a.Admin, tenant: tenantA, platformOps: true,
			client: clientA, redirectURI: redirectA, auth: authA},
		{name: "the platform admin", username: rootName, password: rootPassword, tokens: root, tenant: "platform",
			client: clientA, redirectURI: redirectA, auth: authA},
	}
	calls := 0
	exercised := map[string]bool{}
	// sweep calls every operation as caller in tenant (path parameters
	// naming B's user and role) and judges each answer. Secured only
	// leaves out the login endpoints, whose calls use the caller's own
	// session.
	sweep := func(caller sweepCaller, tenant string, securedOnly bool, judge func(operation, request, answer, string)) {
		for _, op := range ops {
			if (strings.HasPrefix(op.path, "/tenants") && (!caller.platformOps || tenant != tenantB)) || (securedOnly && !op.secured) {
				continue
			}
			reqs, err := buildRequests(op, caller, map[string]string{"tenant": tenant, "name": roleB, "client": clientB, "webhook": webhookB}, bertID, p)
			if err != nil {
				t.Errorf("%s: %v: the cross-tenant sweep cannot exercise it; teach buildRequests", op, err)
				continue
			}
			for _, r := range reqs {
				exercised[op.id] = true
				calls++
				e := p.Exchange(t, r)
				where := fmt.Sprintf("%s as %s (%s %s, %s)", op, caller.name, r.Method, r.URL, describeBody(r))
				judge(op, r, e, where)
				if now := seqs(); !slices.Equal(now, initial) {
					for i, s := range subjects {
						if now[i] != initial[i] {
							t.Errorf("%s: appended to %s (last sequence %d, was %d)", where, s.subject, now[i], initial[i])
						}
					}
					initial = now
				}
			}
		}
	}
	// B's paths with A's and the platform's credentials: all refused.
	for _, c := range callers {
		sweep(c, tenantB, false, func(op operation, r request, e answer, where string) {
			checkRefused(t, op, r, e, where)
			if leaked := bLeaks(e.Body, bData); len(leaked) > 0 {
				t.Errorf("%s: the answer carries tenant B's data %q: %s", where, leaked, e.Body)
			}
		})
	}
	for _, op := range ops {
		if !exercised[op.id] {
			t.Errorf("%s was not exercised by the cross-tenant sweep", op)
		}
	}
	// A's own paths naming B's user and role, with A's admin token: the
	// caller may do anything in A and must learn nothing of B there. Each
	// answer must be the one a made-up user id and role name get (a 404
	// for the user, a check answered false), so that nothing tells that
	// the id exists elsewhere.
	bUsers := []string{b.AdminID, userB, adminB}
	decoyID, decoyRole := events.NewID(), "no-such-role"
	sweep(callers[0], tenantA, true, func(op operation, r request, e answer, where string) {
		if e.Status >= 500 {
			t.Errorf("%s = %d %s", where, e.Status, e.Body)
		}
		if leaked := bLeaks(e.Body, bUsers); len(leaked) > 0 {
			t.Errorf("%s: the answer in tenant A carries tenant B's users %q: %s", where, leaked, e.Body)
		}
		if strings.Contains(op.path, "/users/{id}") && e.Status < 400 {
			t.Errorf("%s = %d %s: tenant A's path reached tenant B's user", where, e.Status, e.Body)
		}
		if op.id == "check" && e.Status == http.StatusOK && e.JSON()["allowed"] != false {
			t.Errorf("%s: a check in A of B's user = %s, want allowed false", where, e.Body)
		}
		swap := strings.NewReplacer(bertID, decoyID, roleB, decoyRole)
		decoy, ok := rewrite(t, r, swap)
		if !ok {
			return
		}
		d := p.Exchange(t, decoy)
		unswap := strings.NewReplacer(bertID, "<id>", roleB, "<role>", decoyID, "<id>", decoyRole, "<role>")
		got, want := unswap.Replace(string(e.Body)), unswap.Replace(string(d.Body))
		if e.Status != d.Status || got != want {
			t.Errorf("%s: B's user and role get %d %s, made-up ones get %d %s: the answer tells them apart",
				where, e.Status, got, d.Status, want)
		}
	})
	t.Logf("swept %d operations with %d calls", len(ops), calls)
	if len(ops) < 15 {
		t.Errorf("the spec lists only %d tenant operations: is %s the right file?", len(ops), specPath)
	}

	// B is untouched: same users, its admin and bert still log in.
	after := p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/beta/users", Bearer: b.Admin.AccessToken}, http.StatusOK)
	if !bytes.Equal(before.Body, after.Body) {
		t.Errorf("tenant B's users changed during the sweep:\nbefore %s\nafter  %s", before.Body, after.Body)
	}
	p.Login(t, tenantB, adminB, beaPassword, "")
	p.Login(t, tenantB, userB, beaPassword, "")
	// The callers' sessions survived their revocation at B, and their
	// tokens still work at home.
	for _, c := range callers {
		p.Must(t, request{Method: http.MethodPost, URL: p.Query + "/t/" + c.tenant + "/oauth/token", Body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.tokens.RefreshToken}}}, http.StatusOK)
	}
	p.Must(t, request{Method: http.MethodGet, URL: p.Query + "/t/acme/me", Bearer: a.Admin.AccessToken}, http.StatusOK)

	// Idempotency keys are the caller's own: B's admin reusing a key of
	// A's, with the same body, gets a fresh answer of B, not A's stored one.
	key := map[string]string{"Idempotency-Key": "shared-key-1"}
	body := map[string]any{"username": "same-name", "password": beaPassword}
	first := p.Must(t, request{Method: http.MethodPost, URL: p.Command + "/t/acme/users", Bearer: a.Admin.AccessToken, Body: body, Header: key}, http.StatusCreated)
	second := p.Must(t, request{Method: http.MethodPost, URL: p.Command + "/t/beta/users", Bearer: b.Admin.AccessToken, Body: body, Header: key}, http.StatusCreated)
	if first.Str("id") == second.Str("id") || second.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("B reusing A's Idempotency-Key got A's answer: %s (replayed %q)", second.Body, second.Header.Get("Idempotent-Replayed"))
	}
}

// operation is one operation of the spec the sweep calls.
type operation struct {
	id, method, path string
	services         []string
	secured          bool
	op               *openapi3.Operation
}

func (o operation) String() string { return fmt.Sprintf("%s (%s %s)", o.id, o.method, o.path) }

// mustTenantOperations returns every operation of the query and command
// services under /t/{tenant} or /tenants, in a stable order.
func mustTenantOperations(tb testing.TB) []operation {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		tb.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("validate %s: %v", specPath, err)
	}
	var out []operation
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/t/{tenant}/") && path != "/tenants" && !strings.HasPrefix(path, "/tenants/") {
			continue
		}
		for method, op := range item.Operations() {
			o := operation{id: op.OperationID, method: method, path: path, op: op}
			names, _ := op.Extensions["x-services"].([]any)
			for _, n := range names {
				if s, _ := n.(string); s == "query" || s == "command" {
					o.services = append(o.services, s)
				}
			}
			if len(o.services) == 0 {
				continue
			}
			sec := op.Security
			if sec == nil {
				sec = &doc.Security
			}
			o.secured = len(*sec) > 0
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	return out
}

// rewrite returns r with its path, body and idempotency key rewritten by
// swap, and whether that changed anything.
func rewrite(tb testing.TB, r request, swap *strings.Replacer) (request, bool) {
	tb.Helper()
	out := r
	out.URL = swap.Replace(r.URL)
	changed := out.URL != r.URL
	if m, ok := r.Body.(map[string]any); ok {
		raw, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		if s := swap.Replace(string(raw)); s != string(raw) {
			changed = true
			var v map[string]any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				tb.Fatal(err)
			}
			out.Body = v
		}
	}
	if r.Header != nil {
		out.Header = map[string]string{}
		for k, v := range r.Header {
			out.Header[k] = v
		}
		if k, ok := out.Header["Idempotency-Key"]; ok {
			out.Header["Idempotency-Key"] = k + "-decoy"
		}
	}
	return out, changed
}

// queryValues are the values of the required query parameters the sweep
// knows; an enumerated one takes its first value.
var queryValues = map[string]string{
	"permission": "users:read",
	"scope":      "openid",
	"at":         "2030-01-01T00:00:00Z",
	"as_of":      "2030-01-01T00:00:00Z",
	// The proofs of a tenant's verifiable log: B's first event, in B's
	// log of one event.
	"index": "0",
	"size":  "1",
	"from":  "1",
	"to":    "1",
	// A mailed link's token: well formed, B's links know none of them.
	"token": "c3dlZXAtbGluay10b2tlbi1vZi1hbm90aGVyLXRlbmE",
}

// buildRequests makes the requests of op against tenant B for caller: one
// per service that serves it, per request content type and per value of
// an enumerated body field (the grant types of the token endpoint).
func buildRequests(op operation, caller sweepCaller, params map[string]string, userID string, p *platform) ([]request, error) {
	path := op.path
	header := map[string]string{}
	query := url.Values{}
	for _, ref := range op.op.Parameters {
		prm := ref.Value
		switch prm.In {
		case "path":
			v, ok := params[prm.Name]
			if prm.Name == "id" {
				// /tenants/{id} names a tenant, /t/{tenant}/users/{id} a
				// user, /t/{tenant}/clients/{id} a client.
				v, ok = userID, true
				switch {
				case strings.HasPrefix(op.path, "/tenants/"):
					v = tenantB
				case strings.HasPrefix(op.path, "/t/{tenant}/clients/"):
					v = params["client"]
				case strings.HasPrefix(op.path, "/t/{tenant}/webhooks/"):
					v = params["webhook"]
				}
			}
			if prm.Name == "user_id" {
				// /tenants/{id}/users/{user_id}: B's user, in B.
				v, ok = userID, true
			}
			if prm.Name == "factor" {
				v, ok = "totp", true
			}
			if prm.Name == "purpose" {
				v, ok = "reset_password", true
			}
			if prm.Name == "credential_id" {
				// A passkey's credential id (base64url); B's user holds none
				// to find, and the answer must not tell.
				v, ok = "cGFzc2tleS1vZi1iZXJ0LWJldGE", true
			}
			if !ok {
				return nil, fmt.Errorf("unknown path parameter {%s}", prm.Name)
			}
			path = strings.ReplaceAll(path, "{"+prm.Name+"}", url.PathEscape(v))
		case "header":
			switch prm.Name {
			case "Idempotency-Key":
				header[prm.Name] = "sweep-" + op.id + "-" + caller.username
			case "Consistency-Token":
			default:
				if prm.Required {
					return nil, fmt.Errorf("unknown required header %s", prm.Name)
				}
			}
		case "query":
			if !prm.Required {
				continue
			}
			v, ok := queryValues[prm.Name]
			switch prm.Name {
			case "client_id":
				v, ok = caller.client, true
			case "redirect_uri":
				v, ok = caller.redirectURI, true
			case "auth":
				v, ok = caller.auth, true
			}
			if sch := prm.Schema; sch != nil && sch.Value != nil && len(sch.Value.Enum) > 0 {
				v, ok = fmt.Sprint(sch.Value.Enum[0]), true
			}
			if !ok {
				return nil, fmt.Errorf("unknown required query parameter %s", prm.Name)
			}
			query.Set(prm.Name, v)
		}
	}
	if strings.Contains(path, "{") {
		return nil, fmt.Errorf("path parameters left in %s", path)
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}

	type body struct {
		contentType string
		value       map[string]any
	}
	var bodies []body
	if rb := op.op.RequestBody; rb != nil && rb.Value != nil {
		cts := make([]string, 0, len(rb.Value.Content))
		for ct := range rb.Value.Content {
			cts = append(cts, ct)
		}
		sort.Strings(cts)
		for _, ct := range cts {
			variants, err := fillObject(rb.Value.Content[ct].Schema.Value, caller, userID)
			if err != nil {
				return nil, err
			}
			for _, v := range variants {
				bodies = append(bodies, body{ct, v})
			}
		}
	}
	if len(bodies) == 0 {
		bodies = []body{{}}
	}

	var out []request
	for _, svc := range op.services {
		base := p.Query
		if svc == "command" {
			base = p.Command
		}
		for _, b := range bodies {
			r := request{Method: strings.ToUpper(op.method), URL: base + path, Bearer: caller.tokens.AccessToken, Header: map[string]string{}}
			for k, v := range header {
				r.Header[k] = v
			}
			if k, ok := r.Header["Idempotency-Key"]; ok {
				// One key per distinct request: a key reused with another
				// body is refused (422) before anything else is looked at.
				r.Header["Idempotency-Key"] = fmt.Sprintf("%s-%d", k, len(out))
			}
			switch b.contentType {
			case "":
			case "application/x-ndjson":
				// One user a line: B's role for the caller's own username.
				r.ContentType = b.contentType
				r.Raw = `{"username": "` + caller.username + `", "password_hash": "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "roles": ["` + roleB + `"]}` + "\n"
			case "application/x-www-form-urlencoded":
				form := url.Values{}
				for k, v := range b.value {
					form.Set(k, fmt.Sprint(v))
				}
				r.Body = form
			default:
				r.Body = b.value
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// fillObject builds bodies for schema: every property gets a plausible
// value aimed at tenant B or carrying the caller's credentials. A string
// property with an enum gives one body per value. A property the sweep
// does not know is an error.
func fillObject(schema *openapi3.Schema, caller sweepCaller, userID string) ([]map[string]any, error) {
	obj := map[string]any{}
	var enumName string
	var enum []any
	names := make([]string, 0, len(schema.Properties))
	for name := range schema.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		prop := schema.Properties[name].Value
		if len(prop.Enum) > 1 && enumName == "" {
			enumName, enum = name, prop.Enum
			continue
		}
		if len(prop.Enum) > 0 {
			obj[name] = prop.Enum[0]
			continue
		}
		switch name {
		case "username":
			obj[name] = caller.username
		case "password", "current_password":
			obj[name] = caller.password
		case "refresh_token", "token":
			obj[name] = caller.tokens.RefreshToken
		case "token_type_hint":
			obj[name] = "refresh_token"
		case "roles":
			obj[name] = []string{roleB}
		case "permissions":
			obj[name] = []string{"*"}
		case "user_id":
			obj[name] = userID
		case "permission":
			obj[name] = "users:write"
		case "id":
			obj[name] = gamma
		case "name":
			obj[name] = "Gamma"
		case "description", "reason", "scope", "client_id", "client_secret":
			obj[name] = "sweep"
		case "tenant":
			obj[name] = tenantB
		case "skip":
			obj[name] = false
		case "overlap_seconds":
			obj[name] = 1200
		case "display_name":
			obj[name] = "Sweep"
		case "redirect_uris", "post_logout_redirect_uris":
			obj[name] = []string{"https://sweep.example/cb"}
		case "grant_types":
			obj[name] = []string{"authorization_code"}
		case "scopes":
			obj[name] = []string{"openid"}
		case "grace_seconds":
			obj[name] = 0
		case "auth":
			obj[name] = caller.auth
		case "csrf":
			obj[name] = "sweep"
		case "access_token":
			obj[name] = caller.tokens.AccessToken
		case "password_grant", "passwordless", "self_signup":
			obj[name] = false
		case "account_attempts_per_minute", "address_attempts_per_minute":
			obj[name] = 1
		case "url":
			obj[name] = "https://sweep.example/hooks"
		case "event_types":
			obj[name] = []string{"*"}
		case "from_sequence":
			obj[name] = 1
		case "from_time":
			continue // one of the two: the sequence
		case "code":
			obj[name] = "123456"
		case "login":
			obj[name] = caller.username
		case "policy":
			obj[name] = "required"
		case "email":
			obj[name] = "sweep@sweep.example"
		case "locale":
			obj[name] = "en"
		case "self_editable_attributes":
			obj[name] = []string{"nickname"}
		case "subject":
			obj[name] = "Sweep"
		case "text":
			obj[name] = "Sweep {{.Link}}"
		case "html":
			obj[name] = `{{define "body"}}<a href="{{.Link}}">Sweep</a>{{end}}`
		default:
			if prop.Type != nil && prop.Type.Includes(openapi3.TypeObject) {
				nested, err := fillObject(prop, caller, userID)
				if err != nil {
					return nil, fmt.Errorf("%s.%w", name, err)
				}
				obj[name] = nested[0]
				continue
			}
			return nil, fmt.Errorf("unknown body field %q", name)
		}
	}
	if enumName == "" {
		return []map[string]any{obj}, nil
	}
	var out []map[string]any
	for _, v := range enum {
		o := make(map[string]any, len(obj)+1)
		for k, x := range obj {
			o[k] = x
		}
		o[enumName] = v
		out = append(out, o)
	}
	return out, nil
}

// checkRefused fails unless e refuses a cross-tenant call of op: a
// secured operation answers 401, 403 or 404; a public one answers a 4xx,
// except public reads (the key set and discovery are B's public
// documents) and RFC 7009 revocation, which answers 200 with no body
// whatever the token. No answer hands out tokens.
func checkRefused(tb testing.TB, op operation, r request, e answer, where string) {
	tb.Helper()
	if len(issued(e)) > 0 {
		tb.Errorf("%s: answered tokens: %d %s", where, e.Status, e.Body)
		return
	}
	switch {
	case op.secured:
		if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden && e.Status != http.StatusNotFound {
			tb.Errorf("%s = %d %s, want 401, 403 or 404", where, e.Status, e.Body)
		}
	case strings.HasPrefix(op.id, "authorize") || strings.HasPrefix(op.id, "signin"):
		// A's client, or A's sealed authorization request, at B: a mix-up,
		// refused with an error page, never a form or a redirect.
		if e.Status < 400 || e.Status >= 500 {
			tb.Errorf("%s = %d %s, want a 4xx error page", where, e.Status, e.Body)
		}
	case r.Method == http.MethodGet:
		if e.Status != http.StatusOK && (e.Status < 400 || e.Status >= 500) {
			tb.Errorf("%s = %d %s, want 200 (public) or a 4xx", where, e.Status, e.Body)
		}
	default:
		if !(e.Status >= 400 && e.Status < 500) && !(e.Status == http.StatusOK && len(bytes.TrimSpace(e.Body)) == 0) {
			tb.Errorf("%s = %d %s, want a 4xx (or an empty 200 for a revocation)", where, e.Status, e.Body)
		}
	}
}

// bLeaks returns the items of bData found in an answer body. The problem
// field "instance" is left out: it echoes the path the caller sent.
func bLeaks(body []byte, bData []string) []string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		delete(m, "instance")
		body, _ = json.Marshal(m)
	}
	var out []string
	for _, d := range bData {
		if d != "" && bytes.Contains(body, []byte(d)) {
			out = append(out, d)
		}
	}
	return out
}

// describeBody names the body of r in a failure message, secrets left out.
func describeBody(r request) string {
	switch b := r.Body.(type) {
	case url.Values:
		return "form with " + strings.Join(slices.Sorted(maps.Keys(b)), ", ")
	case map[string]any:
		return "JSON with " + strings.Join(slices.Sorted(maps.Keys(b)), ", ")
	}
	return "no body"
}

// mustAuthorizationRequest registers a public OpenID Connect client in
// tenant a and has a's authorize endpoint start a request for it, without
// following the redirect: it returns the client, its redirect URI and the
// sealed request the hosted page carries (the auth parameter).
func mustAuthorizationRequest(tb testing.TB, p *platform, a authstreamtest.Tenant) (client, redirectURI, auth string) {
	tb.Helper()
	redirectURI = "https://" + a.ID + ".example/callback"
	reg := p.Must(tb, request{Method: http.MethodPost, URL: p.Command + "/t/" + a.ID + "/clients", Bearer: a.Admin.AccessToken,
		Body: map[string]any{"name": "sweep", "type": "public", "redirect_uris": []string{redirectURI}}}, http.StatusCreated)
	client = reg.Str("client_id")
	q := url.Values{
		"client_id": {client}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"s"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodGet, p.Query+"/t/"+a.ID+"/oauth/authorize?"+q.Encode(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Consistency-Token", reg.Token())
	res, err := noFollow.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("auth") == "" {
		tb.Fatalf("authorize at %s = %d, Location %q: want a redirect to the sign-in page", a.ID, res.StatusCode, res.Header.Get("Location"))
	}
	return client, redirectURI, loc.Query().Get("auth")
}
