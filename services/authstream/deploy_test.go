package authstream_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	"gopkg.in/yaml.v3"
)

// TestDeployment_ComposeFile keeps docker-compose.yml (which no test runs:
// it needs a container engine) parseable and shaped as documented: a
// three-node JetStream cluster syncing every write, PostgreSQL, and the
// services wired to all three NATS nodes with /readyz health checks.
func TestDeployment_ComposeFile(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "postgres", "command", "projector", "query"} {
		svc, ok := compose.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if len(svc.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if svc.Build == nil {
			continue
		}
		if !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), "/readyz") {
			t.Errorf("service %s: health check %q does not probe /readyz", name, svc.Healthcheck.Test)
		}
		if n := strings.Count(svc.Environment["AUTH_NATS_URL"], "nats://"); n != 3 {
			t.Errorf("service %s: AUTH_NATS_URL names %d servers, want 3", name, n)
		}
		if !strings.HasPrefix(svc.Environment["DATABASE_URL"], "postgres://") {
			t.Errorf("service %s: DATABASE_URL = %q", name, svc.Environment["DATABASE_URL"])
		}
	}
	for _, v := range []string{"nats-1", "nats-2", "nats-3", "postgres"} {
		if _, ok := compose.Volumes[v]; !ok {
			t.Errorf("volume %s is missing", v)
		}
	}
}

// TestDeployment_NATSConfigs parses the cluster's node configurations with
// the server's own parser. They read the users' passwords from the
// environment, so the test sets them and runs alone.
func TestDeployment_NATSConfigs(t *testing.T) {
	setNATSPasswords(t)
	for _, node := range []string{"nats-1", "nats-2", "nats-3"} {
		t.Run(node, func(t *testing.T) {
			m, err := conf.ParseFile("../../deployments/nats/" + node + ".conf")
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if m["server_name"] != node {
				t.Errorf("server_name = %v, want %s", m["server_name"], node)
			}
			js, _ := m["jetstream"].(map[string]any)
			if js["sync_interval"] != "always" {
				t.Errorf("jetstream.sync_interval = %v, want always", js["sync_interval"])
			}
			cluster, _ := m["cluster"].(map[string]any)
			routes, _ := cluster["routes"].([]any)
			if len(routes) != 3 || !slices.Contains(routes, any("nats-route://"+node+":6222")) {
				t.Errorf("cluster.routes = %v, want the three nodes", routes)
			}
		})
	}
}
