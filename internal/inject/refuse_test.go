package inject

import (
	"strings"
	"testing"
)

// deployment is a small Deployment; spec is its pod spec's body, indented
// by six spaces.
func deployment(name, spec string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
` + spec
}

const appContainer = `      containers:
        - name: app
          image: registry.example/app:1
          command: [/app]
          ports: [{name: http, containerPort: 8080}]
`

// TestRefusals: what inject cannot handle is refused, naming the place and
// the reason, and telling what to do.
func TestRefusals(t *testing.T) {
	sidecar := func(image string) string {
		return "      initContainers:\n        - {name: incumbent, image: " + image + ", restartPolicy: Always}\n" + appContainer
	}
	for _, c := range []struct {
		name, in string
		o        Options
		want     []string
	}{
		{"another version", deployment("a", sidecar("ghcr.io/incumbent-io/incumbent:v0.0.1")), Options{Lease: "a", Image: "ghcr.io/incumbent-io/incumbent:v0.2.0"},
			[]string{"stdin:1: Deployment/a already has an init container incumbent from another version (image ghcr.io/incumbent-io/incumbent:v0.0.1; this incumbent writes ghcr.io/incumbent-io/incumbent:v0.2.0)", "inject the original manifest"}},
		{"other settings", deployment("a", sidecar("ghcr.io/incumbent-io/incumbent:latest")), Options{Lease: "a"},
			[]string{"already has an init container incumbent, different from what inject writes (", "args"}},
		{"a regular container named incumbent", deployment("a", appContainer+"        - {name: incumbent, image: ghcr.io/incumbent-io/incumbent:latest}\n"), Options{Lease: "a"},
			[]string{"already has a container named incumbent among its containers"}},
		{"host network", deployment("a", "      hostNetwork: true\n"+appContainer), Options{Lease: "a"},
			[]string{"runs on the host's network (hostNetwork: true)", "4040 (status API) and 127.0.0.1:4041", "--host-network", "--http-port"}},
		{"host network, leader port", deployment("a", "      hostNetwork: true\n"+appContainer), Options{Lease: "a", Mode: LeaderPort},
			[]string{"8081 (leader port)"}},
		{"a port incumbent needs", deployment("a", strings.ReplaceAll(appContainer, "8080", "4040")), Options{Lease: "a"},
			[]string{"container app of Deployment/a declares port 4040", "status API (--http-port)"}},
		{"a port name incumbent needs", deployment("a", strings.ReplaceAll(appContainer, "name: http", "name: incumbent")), Options{Lease: "a"},
			[]string{`declares port 8080 ("incumbent")`}},
		{"the control port", deployment("a", strings.ReplaceAll(appContainer, "8080", "4041")), Options{Lease: "a"},
			[]string{"control endpoint (--control-port)"}},
		{"exec without a command", deployment("a", strings.ReplaceAll(appContainer, "command: [/app]", "args: [--x]")), Options{Lease: "a", Mode: Exec},
			[]string{"container app of Deployment/a has no command in the manifest", "cannot know its image's entrypoint"}},
		{"exec with a liveness probe", deployment("a", appContainer+"          livenessProbe: {httpGet: {path: /, port: http}}\n"), Options{Lease: "a", Mode: Exec},
			[]string{"has a livenessProbe, which every follower", "--health-url"}},
		{"exec with two containers", deployment("a", appContainer+"        - {name: b, image: b, command: [/b]}\n"), Options{Lease: "a", Mode: Exec},
			[]string{"has 2 containers (app, b): name the one to run under incumbent with --container"}},
		{"exec, no such container", deployment("a", appContainer), Options{Lease: "a", Mode: Exec, Container: "web"},
			[]string{`has no container "web" (it has app)`}},
		{"exec on an injected pod", deployment("a", sidecar("ghcr.io/incumbent-io/incumbent:latest")), Options{Lease: "a", Mode: Exec},
			[]string{"already has the incumbent sidecar, and --mode exec runs incumbent in the application's container"}},
		{"two workloads", deployment("a", appContainer) + "---\n" + deployment("b", appContainer), Options{Lease: "a"},
			[]string{`the input has 2 workloads (Deployment/a, Deployment/b), and one lease is one election: name the one(s) that campaign for "a" with --workload`}},
		{"no workload", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", Options{Lease: "a"},
			[]string{"the input has no workload to inject", "workloads found: none"}},
		{"only a hook", strings.Replace(deployment("a", appContainer), "  name: a\n", "  name: a\n  annotations: {helm.sh/hook: test}\n", 1), Options{Lease: "a"},
			[]string{"Helm hooks count only when named with --workload", "workloads found: Deployment/a"}},
		{"no such workload", deployment("a", appContainer), Options{Lease: "a", Workloads: []string{"StatefulSet/a"}},
			[]string{"no workload StatefulSet/a in the input (its workloads: Deployment/a)"}},
		{"an old API version", strings.Replace(deployment("a", appContainer), "apps/v1", "extensions/v1beta1", 1), Options{Lease: "a"},
			[]string{"stdin:1: Deployment/a is extensions/v1beta1, which inject does not know (Kubernetes serves apps/v1)"}},
		{"no pod spec", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 1}\n", Options{Lease: "a"},
			[]string{"Deployment/a has no pod spec (spec.template.spec)"}},
		{"labels without ports", deployment("a", "      containers: [{name: app, image: app}]\n"), Options{Lease: "a", Mode: Labels},
			[]string{"declares no container port", "--service=false"}},
		{"a Service of that name", deployment("a", appContainer) + "---\napiVersion: v1\nkind: Service\nmetadata: {name: a-leader}\nspec: {ports: [{port: 1}]}\n", Options{Lease: "a", Mode: Labels},
			[]string{"stdin:", "the input already has Service/a-leader, different from the one inject writes (metadata, spec): remove or rename it"}},
		{"a mount where the token goes", deployment("a", strings.ReplaceAll(appContainer, "ports:", "volumeMounts: [{name: t, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]\n          ports:")), Options{Lease: "a", Mode: Exec},
			[]string{"mounts t at /var/run/secrets/kubernetes.io/serviceaccount, where incumbent needs its incumbent-token volume"}},
		{"an environment variable of another meaning", deployment("a", strings.ReplaceAll(appContainer, "ports:", "env: [{name: POD_NAME, value: x}]\n          ports:")), Options{Lease: "a", Mode: Exec},
			[]string{"container app of Deployment/a already has an environment variable POD_NAME, different from what inject writes (valueFrom, value)"}},
		{"not YAML", "a: [\n", Options{Lease: "a"}, []string{"stdin: document 1 is not valid YAML"}},
		{"not an object", "- a\n- b\n", Options{Lease: "a"}, []string{"document 1 is not a Kubernetes object but a YAML sequence"}},
		{"no lease", deployment("a", appContainer), Options{}, []string{"--lease is required"}},
		{"a bad lease", deployment("a", appContainer), Options{Lease: "Bad_Lease"}, []string{`invalid lease name "Bad_Lease"`}},
		{"a long lease", deployment("a", appContainer), Options{Lease: strings.Repeat("a", 64)}, []string{"it is also the value of the incumbent.io/lease label"}},
		{"an unknown mode", deployment("a", appContainer), Options{Lease: "a", Mode: "sidecar"}, []string{`unknown mode "sidecar": one of status, exec, labels, leader-port`}},
		{"ports twice", deployment("a", appContainer), Options{Lease: "a", HTTPPort: 4041}, []string{"the sidecar's ports must differ: 4041 is given twice"}},
		{"a bad image", deployment("a", appContainer), Options{Lease: "a", Image: "ghcr.io/x: y"}, []string{`invalid image "ghcr.io/x: y"`}},
		{"await-app in the status mode", deployment("a", appContainer), Options{Lease: "a", AwaitApp: true}, []string{"--await-app is for the labels and leader-port modes"}},
		{"a Service name that is no DNS label", deployment("a", appContainer), Options{Lease: "a.b", Mode: Labels}, []string{`the leader Service cannot be named "a.b-leader"`, "--service-name"}},
		{"-- among the run flags", deployment("a", appContainer), Options{Lease: "a", RunArgs: []string{"--"}}, []string{`may not hold "--"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Inject(c.o, Input{Name: "stdin", Data: []byte(c.in)})
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nsays nothing of %q", err, w)
				}
			}
		})
	}
}
