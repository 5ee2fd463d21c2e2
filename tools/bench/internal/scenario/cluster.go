package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/authstream/authstream/libs/events"
	"github.com/authstream/authstream/tools/bench/internal/loadgen"
	"github.com/authstream/authstream/tools/bench/internal/platform"
)

// The multi-process shape the cluster scenario runs: three NATS nodes
// (every stream on three replicas), two command, two projector and three
// query processes.
const (
	clusterNATS       = 3
	clusterCommands   = 2
	clusterProjectors = 2
	clusterQueries    = 3
)

// topology is where the cluster scenario's workload runs: the all-in-one
// process or the cluster, behind one interface.
type topology struct {
	name string
	// client returns a Client sending commands to the command-th command
	// process and queries to the query-th query process (modulo their
	// numbers; the all-in-one has one of each).
	client func(command, query int) *platform.Client
	// natsURL reaches the streams with a user that may read them;
	// databaseURL is the read model database.
	natsURL, databaseURL string
	// exited names stopped processes ("" when all run).
	exited func() string
}

// runCluster runs one workload on the all-in-one and on a cluster of
// separate processes on loopback, and checks after each that nothing was
// lost or doubled: each operation registers a user through one command
// process, reads it through a query process other than the one after it
// (with the registration's consistency token: read-your-writes across
// processes), assigns it a role through the other command process, and
// checks the role's permission through a third query process with that
// write's token. Every step must answer as it should; afterwards the
// log holds exactly two events per acknowledged user and the read model
// exactly the acknowledged users.
func runCluster(ctx context.Context, e *Env) error {
	p, err := e.Platform(ctx, shared)
	if err != nil {
		return err
	}
	single := topology{
		name:        "all-in-one",
		client:      func(int, int) *platform.Client { return p.Client },
		natsURL:     p.NATS,
		databaseURL: p.DatabaseURL,
		exited:      func() string { return "" },
	}
	if err := clusterWorkload(ctx, e, single); err != nil {
		return err
	}

	e.logf("starting the cluster: %d NATS nodes, %d command, %d projector, %d query processes",
		clusterNATS, clusterCommands, clusterProjectors, clusterQueries)
	cl, err := platform.StartCluster(ctx, platform.ClusterOptions{
		ServerURL: e.opts.ServerURL, BcryptCost: shared.Cost,
		NATSNodes: clusterNATS, Commands: clusterCommands, Projectors: clusterProjectors, Queries: clusterQueries,
		Progress: e.opts.Progress,
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer func() { _ = cl.Stop() }()
	multi := topology{
		name:        fmt.Sprintf("cluster %d+%d+%d, NATS R3", clusterCommands, clusterProjectors, clusterQueries),
		client:      cl.Client,
		natsURL:     cl.NATS[0],
		databaseURL: cl.DatabaseURL,
		exited:      cl.Exited,
	}
	if err := clusterWorkload(ctx, e, multi); err != nil {
		return err
	}
	return cl.Stop()
}

// clusterWorkload measures the workload on top and verifies its effects.
func clusterWorkload(ctx context.Context, e *Env, top topology) error {
	root, err := top.client(0, 0).LoginAdmin(ctx)
	if err != nil {
		return err
	}
	for _, clients := range e.clients(16) {
		tenant := fmt.Sprintf("cluster%d", clients)
		t, err := clusterTenant(ctx, top, root.AccessToken, tenant)
		if err != nil {
			return err
		}
		before, _, err := userEvents(ctx, top.natsURL, tenant)
		if err != nil {
			return err
		}
		ids := make([][]string, clients)
		turn := make([]int, clients)
		op := func(ctx context.Context, c int) loadgen.Outcome {
			k := turn[c]
			turn[c]++
			// Consecutive steps of one operation land on different
			// processes of each kind.
			reg := top.client(c+k, 0)
			a, err := reg.Do(ctx, platform.Request{
				Method: http.MethodPost, URL: reg.Command + "/t/" + tenant + "/users", Bearer: t.AdminToken,
				Body: map[string]any{"username": fmt.Sprintf("u-%d-%d-%d", clients, c, k), "password": userPassword},
			})
			if out := outcome(a, err, http.StatusCreated); out != loadgen.OK {
				return out
			}
			var u struct {
				ID string `json:"id"`
			}
			if err := a.Decode(&u); err != nil || u.ID == "" {
				keepFailure(fmt.Sprintf("registration answer %.120s", a.Body))
				return loadgen.Failed
			}
			ids[c] = append(ids[c], u.ID)
			read := top.client(0, c+k+1)
			a, err = read.Do(ctx, platform.Request{
				Method: http.MethodGet, URL: read.Query + "/t/" + tenant + "/users/" + u.ID,
				Bearer: t.AdminToken, Consistency: a.Token,
			})
			if out := outcome(a, err, http.StatusOK); out != loadgen.OK {
				return out
			}
			assign := top.client(c+k+1, 0)
			a, err = assign.Do(ctx, platform.Request{
				Method: http.MethodPut, URL: assign.RoleURL(tenant, u.ID, "reader"), Bearer: t.AdminToken,
			})
			if out := outcome(a, err, http.StatusNoContent); out != loadgen.OK {
				return out
			}
			check := top.client(0, c+k+2)
			a, allowed, err := check.Check(ctx, tenant, t.AdminToken, u.ID, "reports:read", a.Token)
			if out := outcome(a, err, http.StatusOK); out != loadgen.OK {
				return out
			}
			if !allowed {
				keepFailure("a check after the role's assignment, with its consistency token, was denied")
				return loadgen.Failed
			}
			return loadgen.OK
		}
		res := loadgen.Run(ctx, e.loadConfig(clients), op)
		if msg := top.exited(); msg != "" {
			return errors.New(msg)
		}
		row := fromResult("register, read, assign, check across processes: "+top.name, res)

		// Nothing lost, nothing doubled: wait for the projection of the
		// last writes, then compare the log and the read model with the
		// acknowledged registrations.
		acked := slices.Concat(ids...)
		if err := waitUsers(ctx, top.databaseURL, tenant, len(acked)+1, time.Minute); err != nil {
			return err
		}
		after, subjects, err := userEvents(ctx, top.natsURL, tenant)
		if err != nil {
			return err
		}
		projected, found, err := projectedUsers(ctx, top.databaseURL, tenant, acked)
		if err != nil {
			return err
		}
		// Registrations are the tenant's users but its admin; each wrote
		// user.registered and user.role_assigned.
		switch {
		case res.Errors() > 0:
			return fmt.Errorf("%s: %d operations failed (%s)", top.name, res.Errors(), row.Notes)
		case after-before != 2*uint64(len(acked)):
			return fmt.Errorf("%s: %d user events written for %d acknowledged registrations, want %d", top.name, after-before, len(acked), 2*len(acked))
		case subjects != uint64(len(acked))+1:
			return fmt.Errorf("%s: %d user aggregates in the log, want %d", top.name, subjects, len(acked)+1)
		case projected != int64(len(acked))+1 || found != int64(len(acked)):
			return fmt.Errorf("%s: read model holds %d users (%d of the %d acknowledged), want %d", top.name, projected, found, len(acked), len(acked)+1)
		}
		row.Notes = fmt.Sprintf("4 requests an operation; %d users checked in log and read model: none lost or doubled", len(acked))
		e.add(row)
	}
	return nil
}

// clusterTenant creates tenant with a role "reader", visible on every query
// process, and returns it with its admin logged in.
func clusterTenant(ctx context.Context, top topology, root, tenant string) (platform.Tenant, error) {
	admin := top.client(0, 0)
	t, err := admin.CreateTenant(ctx, root, tenant, "admin", userPassword)
	if err != nil {
		return t, err
	}
	if err := admin.DefineRole(ctx, &t, "reader", []string{"reports:read"}); err != nil {
		return t, err
	}
	for q := range clusterQueries {
		c := top.client(0, q)
		if _, err := c.Expect(ctx, platform.Request{
			Method: http.MethodGet, URL: c.Query + "/t/" + tenant + "/roles/reader",
			Bearer: t.AdminToken, Consistency: t.Consistency,
		}, http.StatusOK); err != nil {
			return t, err
		}
	}
	return t, nil
}

// userEvents returns how many events the tenant's user aggregates hold in
// AUTH_EVENTS, and how many user aggregates there are, from the pending
// counts of two short-lived consumers.
func userEvents(ctx context.Context, natsURL, tenant string) (total, subjects uint64, err error) {
	nc, err := nats.Connect(natsURL, nats.Name("bench-cluster-count"))
	if err != nil {
		return 0, 0, fmt.Errorf("count user events: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, fmt.Errorf("count user events: %w", err)
	}
	stream, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return 0, 0, fmt.Errorf("count user events: %w", err)
	}
	count := func(policy jetstream.DeliverPolicy) (uint64, error) {
		cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			FilterSubject:     events.SubjectPrefixEvents + "." + tenant + ".user.>",
			DeliverPolicy:     policy,
			AckPolicy:         jetstream.AckNonePolicy,
			MemoryStorage:     true,
			InactiveThreshold: 30 * time.Second,
		})
		if err != nil {
			return 0, fmt.Errorf("count user events: %w", err)
		}
		info := cons.CachedInfo()
		_ = stream.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
		return info.NumPending, nil
	}
	if total, err = count(jetstream.DeliverAllPolicy); err != nil {
		return 0, 0, err
	}
	subjects, err = count(jetstream.DeliverLastPerSubjectPolicy)
	return total, subjects, err
}

// projectedUsers returns how many users of tenant the active accounts
// projection holds, and how many of ids among them.
func projectedUsers(ctx context.Context, databaseURL, tenant string, ids []string) (total, found int64, err error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT schema_name FROM projection_generations WHERE projection = 'accounts' AND state = 'active'`).Scan(&schema); err != nil {
		return 0, 0, fmt.Errorf("active accounts projection: %w", err)
	}
	users := pgx.Identifier{schema}.Sanitize() + ".users"
	err = conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE user_id = ANY($2)) FROM `+users+` WHERE tenant_id = $1`, tenant, ids).Scan(&total, &found)
	return total, found, err
}

// waitUsers waits until the read model holds want users of tenant.
func waitUsers(ctx context.Context, databaseURL, tenant string, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		n, _, err := projectedUsers(ctx, databaseURL, tenant, nil)
		if err == nil && n >= int64(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("read model holds %d users of %s after %s, want %d (%v)", n, tenant, limit, want, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
