package helmcheck_test

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/authstream/authstream/services/command"
	"github.com/authstream/authstream/services/dispatcher"
	"github.com/authstream/authstream/services/projector"
	"github.com/authstream/authstream/services/query"
)

const chartDir = "../../deployments/helm/authstream"

// productionValues are what an operator sets: the public URL and the NATS
// cluster. Everything else keeps the chart's defaults.
func productionValues() map[string]any {
	return map[string]any{
		"publicURL": "https://auth.example.com",
		"nats": map[string]any{
			"servers": []any{"nats-0.nats:4222", "nats-1.nats:4222", "nats-2.nats:4222"},
		},
	}
}

func mustLoadChart(tb testing.TB) *chart.Chart {
	tb.Helper()
	c, err := loader.LoadDir(chartDir)
	if err != nil {
		tb.Fatalf("load chart: %v", err)
	}
	return c
}

// render renders the chart as `helm template` would, values checked against
// values.schema.json, and returns the manifests by template name.
func render(c *chart.Chart, values map[string]any) (map[string]string, error) {
	opts := common.ReleaseOptions{Name: "authstream", Namespace: "auth", IsInstall: true, Revision: 1}
	vals, err := util.ToRenderValues(c, values, opts, common.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(c, vals)
}

// objects decodes every rendered document strictly into the Kubernetes API
// types: an unknown field, a wrong type or an unknown kind fails, which is
// what the API server's schema would refuse.
func mustDecode(tb testing.TB, manifests map[string]string) []runtime.Object {
	tb.Helper()
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	names := make([]string, 0, len(manifests))
	for name := range manifests {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []runtime.Object
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for i, doc := range strings.Split(manifests[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, _, err := decoder.Decode([]byte(doc), nil, nil)
			if err != nil {
				tb.Fatalf("%s, document %d: %v\n%s", name, i, err, doc)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

func TestChart_lint(t *testing.T) {
	t.Parallel()
	linter := lint.RunAll(chartDir, productionValues(), "auth")
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}

// TestChart_refusesIncompleteValues: values.schema.json makes an install
// without the public URL or the NATS servers fail before anything renders.
func TestChart_refusesIncompleteValues(t *testing.T) {
	t.Parallel()
	c := mustLoadChart(t)
	tests := []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"no public URL", func(v map[string]any) { delete(v, "publicURL") }, "publicURL"},
		{"public URL not a URL", func(v map[string]any) { v["publicURL"] = "auth.example.com" }, "publicURL"},
		{"no NATS servers", func(v map[string]any) { v["nats"] = map[string]any{"servers": []any{}} }, "servers"},
		{"NATS server with credentials", func(v map[string]any) {
			v["nats"] = map[string]any{"servers": []any{"user:pw@nats-0:4222"}}
		}, "servers"},
		{"zero replicas", func(v map[string]any) { v["command"] = map[string]any{"replicas": 0} }, "replicas"},
		{"unknown setting", func(v map[string]any) { v["comand"] = map[string]any{} }, "comand"},
		{"bad log level", func(v map[string]any) { v["log"] = map[string]any{"level": "verbose"} }, "level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := productionValues()
			tt.change(v)
			_, err := render(c, v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("render = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// fakeSecrets stands for the operator's Secret: values the test can look
// for in the rendered manifests (they must not be there) and feed to the
// services' configuration readers.
var fakeSecrets = map[string]string{
	"kek":                      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	"database-url":             "postgres://authstream:pg-secret@postgres:5432/authstream?sslmode=require",
	"bootstrap-admin-password": "admin-secret-password",
	"nats-command-password":    "c0ffee01",
	"nats-projector-password":  "c0ffee02",
	"nats-query-password":      "c0ffee03",
	"nats-dispatcher-password": "c0ffee04",
	"smtp-url":                 "smtp://mailer:mail-secret@smtp.example.com:587",
}

// expandedEnv resolves a container's environment as the kubelet would:
// secretKeyRef from fakeSecrets, then $(VAR) references to variables
// defined earlier in the list.
func expandedEnv(t *testing.T, c corev1.Container, secretName string) map[string]string {
	t.Helper()
	env := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if e.ValueFrom.SecretKeyRef.Name != secretName {
				t.Errorf("%s: %s reads secret %q, want %q", c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name, secretName)
			}
			v, ok := fakeSecrets[e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				t.Errorf("%s: %s reads unknown secret key %q", c.Name, e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			env[e.Name] = v
		case e.ValueFrom != nil:
			t.Errorf("%s: %s has an unexpected valueFrom", c.Name, e.Name)
		default:
			env[e.Name] = ref.ReplaceAllStringFunc(e.Value, func(m string) string {
				name := ref.FindStringSubmatch(m)[1]
				v, ok := env[name]
				if !ok {
					t.Errorf("%s: %s refers to $(%s), not defined before it", c.Name, e.Name, name)
				}
				return v
			})
		}
	}
	return env
}

// configReaders are the services' own configuration readers, keyed by the
// chart's component names, with the variables Run requires of each.
var configReaders = map[string]struct {
	read     func(lookup func(string) (string, bool)) error
	required []string
}{
	"command": {func(l func(string) (string, bool)) error { _, err := command.ConfigFromEnv(l); return err },
		[]string{"AUTH_NATS_URL", "AUTH_KEK", "AUTH_COMMAND_ADDR", "AUTH_PUBLIC_URL"}},
	"projector": {func(l func(string) (string, bool)) error { _, err := projector.ConfigFromEnv(l); return err },
		[]string{"AUTH_NATS_URL", "DATABASE_URL", "AUTH_PROJECTOR_ADDR"}},
	"query": {func(l func(string) (string, bool)) error { _, err := query.ConfigFromEnv(l); return err },
		[]string{"AUTH_NATS_URL", "AUTH_KEK", "DATABASE_URL", "AUTH_QUERY_ADDR", "AUTH_PUBLIC_URL"}},
	"dispatcher": {func(l func(string) (string, bool)) error { _, err := dispatcher.ConfigFromEnv(l); return err },
		[]string{"AUTH_NATS_URL", "AUTH_KEK", "DATABASE_URL", "AUTH_DISPATCHER_ADDR"}},
}

// TestChart_rendersAValidDeployment renders the chart with an operator's
// values and checks what a cluster would get: objects the API accepts,
// probes on /healthz and /readyz, secrets only by reference, an environment
// each service's own configuration reader accepts, disruption budgets and
// the query service's autoscaler.
func TestChart_rendersAValidDeployment(t *testing.T) {
	t.Parallel()
	c := mustLoadChart(t)
	manifests, err := render(c, productionValues())
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for name, m := range manifests {
		for key, secret := range fakeSecrets {
			if strings.Contains(m, secret) {
				t.Errorf("%s holds the value of secret key %s", name, key)
			}
		}
	}
	objs := mustDecode(t, manifests)

	deployments := map[string]*appsv1.Deployment{}
	services := map[string]*corev1.Service{}
	pdbs := map[string]*policyv1.PodDisruptionBudget{}
	var hpas []*autoscalingv2.HorizontalPodAutoscaler
	for _, obj := range objs {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			deployments[o.Labels["app.kubernetes.io/component"]] = o
		case *corev1.Service:
			services[o.Labels["app.kubernetes.io/component"]] = o
		case *policyv1.PodDisruptionBudget:
			pdbs[o.Labels["app.kubernetes.io/component"]] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpas = append(hpas, o)
		default:
			t.Errorf("unexpected object %T", obj)
		}
	}

	documented := documentedVariables(t)
	for component, reader := range configReaders {
		t.Run(component, func(t *testing.T) {
			d, ok := deployments[component]
			if !ok {
				t.Fatalf("no Deployment for %s", component)
			}
			if errs := validation.IsDNS1123Subdomain(d.Name); len(errs) > 0 {
				t.Errorf("Deployment name %q: %v", d.Name, errs)
			}
			pod := d.Spec.Template
			for k, v := range d.Spec.Selector.MatchLabels {
				if pod.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
				}
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
			}
			ctr := pod.Spec.Containers[0]
			checkProbes(t, ctr)
			checkHardening(t, pod.Spec, ctr)
			if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %v: want cpu and memory requests and a memory limit", ctr.Resources)
			}

			env := expandedEnv(t, ctr, "authstream")
			for _, name := range reader.required {
				if env[name] == "" {
					t.Errorf("%s is not set", name)
				}
			}
			for _, e := range ctr.Env {
				if e.Name == "NATS_PASSWORD" {
					continue // the chart's own, only expanded into AUTH_NATS_URL
				}
				if !documented[e.Name] {
					t.Errorf("%s is not in the README's configuration table", e.Name)
				}
			}
			if n := strings.Count(env["AUTH_NATS_URL"], "nats://"+component+":"+fakeSecrets["nats-"+component+"-password"]+"@"); n != 3 {
				t.Errorf("AUTH_NATS_URL = %q: want the three servers, each as user %s with its password", env["AUTH_NATS_URL"], component)
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			if err := reader.read(lookup); err != nil {
				t.Errorf("the %s service refuses the chart's environment: %v", component, err)
			}
			addr := env["AUTH_"+strings.ToUpper(component)+"_ADDR"]
			if len(ctr.Ports) != 1 || !strings.HasSuffix(addr, fmt.Sprintf(":%d", ctr.Ports[0].ContainerPort)) {
				t.Errorf("listens on %q but declares ports %v", addr, ctr.Ports)
			}

			svc, ok := services[component]
			if !ok {
				t.Fatalf("no Service for %s", component)
			}
			for k, v := range svc.Spec.Selector {
				if pod.Labels[k] != v {
					t.Errorf("Service selector %s=%s does not match the pods", k, v)
				}
			}
		})
	}

	for _, component := range []string{"command", "projector", "query"} {
		pdb, ok := pdbs[component]
		if !ok {
			t.Errorf("no PodDisruptionBudget for %s", component)
			continue
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
			t.Errorf("%s: PodDisruptionBudget minAvailable = %v", component, pdb.Spec.MinAvailable)
		}
	}
	if _, ok := pdbs["dispatcher"]; ok {
		t.Error("a PodDisruptionBudget for the single dispatcher would block node drains")
	}
	if len(hpas) != 1 || hpas[0].Spec.ScaleTargetRef.Name != deployments["query"].Name || hpas[0].Spec.ScaleTargetRef.Kind != "Deployment" {
		t.Fatalf("want one autoscaler, of the query Deployment; got %v", hpas)
	}
	if deployments["query"].Spec.Replicas != nil {
		t.Error("the query Deployment sets replicas although the autoscaler owns them")
	}
	if q := services["query"]; q.Spec.Ports[0].Port != 80 {
		t.Errorf("query Service port %d, want 80", q.Spec.Ports[0].Port)
	}
	// The console reaches the command service and the projector by their
	// Services' names.
	qenv := expandedEnv(t, deployments["query"].Spec.Template.Spec.Containers[0], "authstream")
	for key, component := range map[string]string{"AUTH_COMMAND_URL": "command", "AUTH_PROJECTOR_URL": "projector"} {
		want := fmt.Sprintf("http://%s:%d", services[component].Name, services[component].Spec.Ports[0].Port)
		if qenv[key] != want {
			t.Errorf("query %s = %q, want %q", key, qenv[key], want)
		}
	}
}

// TestChart_options covers the values that change the objects' shape.
func TestChart_options(t *testing.T) {
	t.Parallel()
	c := mustLoadChart(t)
	v := productionValues()
	v["query"] = map[string]any{"autoscaling": map[string]any{"enabled": false}, "replicas": 2}
	v["dispatcher"] = map[string]any{"enabled": false}
	v["command"] = map[string]any{"replicas": 1}
	v["extraEnv"] = []any{map[string]any{"name": "AUTH_BCRYPT_COST", "value": "11"}}
	manifests, err := render(c, v)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var kinds []string
	for _, obj := range mustDecode(t, manifests) {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			component := o.Labels["app.kubernetes.io/component"]
			kinds = append(kinds, "Deployment/"+component)
			if component == "query" && (o.Spec.Replicas == nil || *o.Spec.Replicas != 2) {
				t.Errorf("query replicas = %v, want 2 without autoscaling", o.Spec.Replicas)
			}
			if !slices.ContainsFunc(o.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool {
				return e.Name == "AUTH_BCRYPT_COST" && e.Value == "11"
			}) {
				t.Errorf("%s lacks the extra environment", component)
			}
		case *policyv1.PodDisruptionBudget:
			kinds = append(kinds, "PodDisruptionBudget/"+o.Labels["app.kubernetes.io/component"])
		case *autoscalingv2.HorizontalPodAutoscaler:
			kinds = append(kinds, "HorizontalPodAutoscaler")
		}
	}
	sort.Strings(kinds)
	want := []string{"Deployment/command", "Deployment/projector", "Deployment/query",
		"PodDisruptionBudget/projector", "PodDisruptionBudget/query"}
	if !slices.Equal(kinds, want) {
		t.Errorf("objects %v, want %v", kinds, want)
	}
}

func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}
	want := map[string]string{"liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz"}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", kind)
			continue
		}
		if p.HTTPGet.Path != want[kind] || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %s on %s, want %s on port http", kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), want[kind])
		}
	}
}

func checkHardening(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod may run as root")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %v: want a read-only root, no privilege escalation, every capability dropped", sc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it has no use for")
	}
}

// documentedVariables reads the variable names of the README's
// configuration table, so the chart sets only what the services document.
func documentedVariables(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| ((?:`[A-Z_]+`(?:, )?)+) \\|")
	name := regexp.MustCompile("`([A-Z_]+)`")
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		for _, n := range name.FindAllStringSubmatch(m[1], -1) {
			names[n[1]] = true
		}
	}
	if len(names) < 10 {
		t.Fatal(errors.New("the README's configuration table was not found"))
	}
	return names
}

// TestChart_mail: with an SMTP key in the Secret the dispatcher mails
// through it, the URL (and its password) read from the Secret only.
func TestChart_mail(t *testing.T) {
	t.Parallel()
	c := mustLoadChart(t)
	v := productionValues()
	v["secrets"] = map[string]any{"keys": map[string]any{"smtpURL": "smtp-url"}}
	v["mail"] = map[string]any{"from": "Acme <no-reply@acme.example>"}
	manifests, err := render(c, v)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for name, m := range manifests {
		if strings.Contains(m, "mail-secret") {
			t.Errorf("%s holds the SMTP password", name)
		}
	}
	for _, obj := range mustDecode(t, manifests) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok || d.Labels["app.kubernetes.io/component"] != "dispatcher" {
			continue
		}
		env := expandedEnv(t, d.Spec.Template.Spec.Containers[0], "authstream")
		if env["AUTH_SMTP_URL"] != fakeSecrets["smtp-url"] || env["AUTH_MAIL_FROM"] != "Acme <no-reply@acme.example>" {
			t.Errorf("dispatcher mail settings %q, %q", env["AUTH_SMTP_URL"], env["AUTH_MAIL_FROM"])
		}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		if err := configReaders["dispatcher"].read(lookup); err != nil {
			t.Errorf("the dispatcher refuses the chart's mail settings: %v", err)
		}
		return
	}
	t.Fatal("no dispatcher Deployment")
}
