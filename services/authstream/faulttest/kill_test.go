package faulttest_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authstream/authstream/services/authstream/authstreamtest"
)

// TestKill9_AcknowledgedCommandsSurvive starts the real binary, has
// concurrent clients register users, define roles and assign them, and
// kills the process with SIGKILL after a random number of acknowledged
// commands. After a restart on the same data folder and database, every
// acknowledged command is visible through the query API, and the accounts
// projection equals a rebuild from the log.
func TestKill9_AcknowledgedCommandsSurvive(t *testing.T) {
	start := time.Now()
	bin := authstreamtest.BuildBinary(t)
	first := authstreamtest.StartBinary(t, bin, map[string]string{
		"AUTH_BOOTSTRAP_ADMIN_USERNAME": rootName,
		"AUTH_BOOTSTRAP_ADMIN_PASSWORD": rootPassword,
	})
	first.HTTP = &http.Client{Timeout: httpTimeout}
	c, command := first.Client, first.Command
	root := c.Login(t, "platform", rootName, rootPassword, "").AccessToken
	created := c.MustTenant(t, root, authstreamtest.NewTenant{ID: "acme", Name: "Acme", Admin: "ada", Password: "ada password 1"})
	ada := created.Admin.AccessToken

	// The kill comes after a random number of acknowledgements, so that
	// runs hit the process in different states (mid role, mid user, mid
	// assignment, mid projection).
	killAfter := 20 + rand.IntN(61)
	var (
		mu       sync.Mutex
		acks     int
		tokens   = []string{created.Token}
		roles    = map[string]bool{}
		users    = map[string]string{} // username → id
		assigned = map[[2]string]bool{}
		killed   = make(chan struct{})
		kill     sync.Once
	)
	ack := func(a authstreamtest.Response) {
		mu.Lock()
		defer mu.Unlock()
		acks++
		tokens = append(tokens, a.Token())
		if acks >= killAfter {
			kill.Do(func() { close(killed) })
		}
	}
	// step runs one command; false means the worker stops (the process is
	// gone, or it refused, which before the kill is a failure).
	step := func(method, target string, body any) (authstreamtest.Response, bool) {
		a, err := c.Send(authstreamtest.Request{Method: method, URL: target, Bearer: ada, Body: body})
		if err == nil && a.Status < 300 {
			ack(a)
			return a, true
		}
		select {
		case <-killed:
		default:
			t.Errorf("%s %s before the kill: %v %d %s", method, target, err, a.Status, a.Body)
		}
		return a, false
	}

	const workers = 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				rname, uname := fmt.Sprintf("r-%d-%d", w, i), fmt.Sprintf("u-%d-%d", w, i)
				if _, ok := step(http.MethodPut, command+"/t/acme/roles/"+rname,
					map[string]any{"permissions": []string{"docs:read", "docs:" + rname}}); !ok {
					return
				}
				mu.Lock()
				roles[rname] = true
				mu.Unlock()
				a, ok := step(http.MethodPost, command+"/t/acme/users", map[string]any{"username": uname, "password": "password " + uname})
				if !ok {
					return
				}
				mu.Lock()
				users[uname] = a.Str("id")
				mu.Unlock()
				if _, ok := step(http.MethodPut, command+"/t/acme/users/"+a.Str("id")+"/roles/"+rname, nil); !ok {
					return
				}
				mu.Lock()
				assigned[[2]string{uname, rname}] = true
				mu.Unlock()
			}
		})
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	select {
	case <-killed:
	case <-workersDone:
		t.Fatalf("every worker stopped after %d acknowledgements, before the kill at %d", acks, killAfter)
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d acknowledgements after 30s, want %d", acks, killAfter)
	}
	first.Kill(t)
	<-workersDone

	mu.Lock()
	acked := acks
	mu.Unlock()
	t.Logf("SIGKILL after %d acknowledged commands (%d roles, %d users, %d assignments)", acked, len(roles), len(users), len(assigned))

	c = authstreamtest.StartBinary(t, bin, first.Env).Client
	ct := latestToken(t, tokens)
	ada = c.Login(t, "acme", "ada", "ada password 1", ct).AccessToken
	gotUsers := mustUsers(t, c, "acme", ada, ct)
	gotRoles := mustRoles(t, c, "acme", ada, ct)

	byName := index(gotUsers)
	roleSet := map[string]bool{}
	for _, r := range gotRoles {
		roleSet[r.Name] = true
	}
	found, lost := 0, 0
	for name := range roles {
		if roleSet[name] {
			found++
		} else {
			lost++
			t.Errorf("acknowledged role %s is missing after the restart", name)
		}
	}
	for name, id := range users {
		if u, ok := byName[name]; ok && u.ID == id {
			found++
		} else {
			lost++
			t.Errorf("acknowledged user %s (%s) is missing after the restart: %+v", name, id, u)
		}
	}
	for k := range assigned {
		if contains(byName[k[0]].Roles, k[1]) {
			found++
		} else {
			lost++
			t.Errorf("acknowledged assignment of %s to %s is missing after the restart", k[1], k[0])
		}
	}
	// The tenant creation is the first acknowledged command.
	if _, ok := byName["ada"]; ok {
		found++
	} else {
		lost++
		t.Error("the tenant's admin is missing after the restart")
	}
	acked++

	root = c.Login(t, "platform", rootName, rootPassword, "").AccessToken
	mustRebuild(t, c, root)
	rebuiltUsers := mustUsers(t, c, "acme", ada, ct)
	rebuiltRoles := mustRoles(t, c, "acme", ada, ct)
	if !reflect.DeepEqual(gotUsers, rebuiltUsers) {
		t.Errorf("users differ from a rebuild:\nlive    %+v\nrebuilt %+v", gotUsers, rebuiltUsers)
	}
	if !reflect.DeepEqual(gotRoles, rebuiltRoles) {
		t.Errorf("roles differ from a rebuild:\nlive    %+v\nrebuilt %+v", gotRoles, rebuiltRoles)
	}
	t.Logf("faults: 1 SIGKILL; %d acknowledged, %d found after restart, %d lost (%d users and %d roles listed, equal to a rebuild); %s",
		acked, found, lost, len(gotUsers), len(gotRoles), time.Since(start).Round(time.Millisecond))
}
