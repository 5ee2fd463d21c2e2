package scenario

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// userPassword is the password of every user the benchmark registers.
const userPassword = "bench user password"

// runLogin measures the password grant at bcrypt cost 10 and 12. Its bound
// is the bcrypt comparisons the machine can do: cores ÷ the time of one
// comparison at that cost, measured in-process right before each run.
//
// The query service limits password attempts per account (20 a minute)
// and per client address (300 a minute). The benchmark stands for many
// users on many hosts, so each client logs in to its own rotating set of
// accounts, and every run's clients connect from fresh loopback addresses:
// the limits never bind, and what is measured is the login path itself.
func runLogin(ctx context.Context, e *Env) error {
	counts := e.clients(1, 8, 32)
	maxClients := slices.Max(counts)
	for _, cost := range []int{10, 12} {
		p, err := e.Platform(ctx, Setup{Cost: cost})
		if err != nil {
			return err
		}
		// Enough accounts that none receives more than its per-minute
		// allowance over all the runs, even at the bound.
		one := bcryptTime(cost)
		bound := float64(platform.Cores()) / one.Seconds()
		runs := time.Duration(len(counts)) * (e.opts.Warmup + e.opts.Duration + 5*time.Second)
		accounts := max(2*maxClients, int(bound*runs.Seconds()/float64(accountAllowance)*1.5))
		users, err := loginUsers(ctx, e, p, fmt.Sprintf("login-%d", cost), accounts)
		if err != nil {
			return err
		}
		for _, clients := range counts {
			one = bcryptTime(cost)
			bound = float64(platform.Cores()) / one.Seconds()
			// A closed loop of n clients over c cores waits n/c comparisons
			// per login: warm up past that queue so the window is steady.
			warmup := max(e.opts.Warmup, time.Duration(float64(clients)/float64(platform.Cores())*1.5*float64(one)))
			conns := make([]*platform.Client, clients)
			turns := make([]int, clients)
			for c := range conns {
				conns[c] = p.From(nextSource())
			}
			stop := e.profile(fmt.Sprintf("login-%d-c%d", cost, clients))
			res := loadgen.Run(ctx, loadgen.Config{Clients: clients, Warmup: warmup, Duration: e.opts.Duration},
				func(ctx context.Context, c int) loadgen.Outcome {
					// Client c owns accounts c, c+clients, ...: no two
					// logins of one account race on its sign-in history.
					owned := (len(users.names) - c + clients - 1) / clients
					u := c + turns[c]%owned*clients
					turns[c]++
					a, err := conns[c].Do(ctx, platform.Request{
						Method: http.MethodPost, URL: p.Query + "/t/" + users.tenant + "/oauth/token",
						Body: url.Values{"grant_type": {"password"}, "username": {users.names[u]}, "password": {userPassword}},
					})
					return outcome(a, err, http.StatusOK)
				})
			stop()
			for _, c := range conns {
				c.Close()
			}
			row := fromResult(fmt.Sprintf("login bcrypt %d", cost), res)
			row.Bound, row.Ratio = rateBound(bound), row.Rate/bound
			row.Notes = fmt.Sprintf("bound: %d cores / one bcrypt %s; shed (429/503) %d; %d accounts", platform.Cores(), formatDuration(one), res.Shed, len(users.names))
			e.add(row)
		}
	}
	return nil
}

// accountAllowance is the per-account password attempts a minute the
// query service allows (its default).
const accountAllowance = 20

// userSet is a tenant, its admin and users registered by the benchmark.
type userSet struct {
	tenant string
	names  []string
	ids    []string
	admin  platform.Tenant
}

// loginUsers creates tenant with n users, registered in parallel, and
// waits until the last one can log in.
func loginUsers(ctx context.Context, e *Env, p *platform.Platform, tenant string, n int) (*userSet, error) {
	set, err := newTenant(ctx, p, tenant)
	if err != nil {
		return nil, err
	}
	e.logf("registering %d users in %s", n, tenant)
	set.names, set.ids = make([]string, n), make([]string, n)
	if err := registerAll(ctx, p.Client, &set.admin, set.names, set.ids, nil, platform.Cores()*2); err != nil {
		return nil, err
	}
	// The last user in, the others are too: one tenant is one partition.
	if _, err := p.Login(ctx, tenant, set.names[n-1], userPassword, set.admin.Consistency); err != nil {
		return nil, err
	}
	return set, nil
}

// registerAll registers len(names) users of t in parallel (workers at
// once), naming them user-<i>, holding roles(i) when roles is not nil,
// and fills names and ids. t.Consistency ends as the token of the
// registration with the highest sequence.
func registerAll(ctx context.Context, p *platform.Client, t *platform.Tenant, names, ids []string, roles func(i int) []string, workers int) error {
	var (
		mu    sync.Mutex
		first error
		best  uint64
		next  = make(chan int)
		wg    sync.WaitGroup
	)
	for range max(workers, 1) {
		wg.Go(func() {
			local := *t
			for i := range next {
				name := fmt.Sprintf("user-%05d", i)
				var r []string
				if roles != nil {
					r = roles(i)
				}
				id, err := p.RegisterUser(ctx, &local, name, userPassword, r)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				names[i], ids[i] = name, id
				if seq := seqOf(local.Consistency); seq > best {
					best, t.Consistency = seq, local.Consistency
				}
				mu.Unlock()
			}
		})
	}
	for i := range names {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// bcryptTime returns the median time of one bcrypt comparison at cost on
// this machine, measured in this process, one at a time.
func bcryptTime(cost int) time.Duration {
	pw := []byte(userPassword)
	hash, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		panic(err) // cost is one of the scenario's constants
	}
	times := make([]time.Duration, 5)
	for i := range times {
		t0 := time.Now()
		_ = bcrypt.CompareHashAndPassword(hash, pw)
		times[i] = time.Since(t0)
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// outcome classifies an HTTP answer: want is OK, 429 and 503 are shed
// load, anything else (or a transport error) failed.
func outcome(a platform.Answer, err error, want int) loadgen.Outcome {
	switch {
	case err != nil:
		keepFailure(err.Error())
		return loadgen.Failed
	case a.Status == want:
		return loadgen.OK
	case a.Status == http.StatusTooManyRequests || a.Status == http.StatusServiceUnavailable:
		keepFailure(fmt.Sprintf("%d %.120s", a.Status, a.Body))
		return loadgen.Shed
	default:
		keepFailure(fmt.Sprintf("%d %.120s", a.Status, a.Body))
		return loadgen.Failed
	}
}

// failure is the first unexpected answer since the last row was added,
// shown in that row's notes when it counts errors.
var failure atomic.Pointer[string]

func keepFailure(msg string) { failure.CompareAndSwap(nil, &msg) }

// seqOf returns the stream sequence of a consistency token, 0 for none.
func seqOf(token string) uint64 { return platform.Answer{Token: token}.Sequence() }
