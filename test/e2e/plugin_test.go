package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/yaml"

	"github.com/incumbent-io/incumbent/store/kube"
)

// listedLease is what a test reads of one item of `status -o json|yaml`
// without --lease.
type listedLease struct {
	Lease       string   `json:"lease"`
	Namespace   string   `json:"namespace"`
	Holder      string   `json:"holder"`
	HolderKind  string   `json:"holderKind"`
	Instance    string   `json:"instance"`
	Term        int64    `json:"term"`
	Transitions int64    `json:"transitions"`
	ExpiresIn   *float64 `json:"expiresInSeconds"`
	Pod         *struct {
		Name  string `json:"name"`
		Phase string `json:"phase"`
		IP    string `json:"ip"`
		Node  string `json:"node"`
	} `json:"pod"`
}

type listedLeases struct {
	Items    []listedLease `json:"items"`
	Warnings []string      `json:"warnings"`
}

// tableRows reads a kubectl-style table into one map per row, header to
// cell, keyed by the NAME column (NAMESPACE/NAME with -A). Cells hold no
// blanks but in the columns after the last fixed one, which tests do not
// read here.
func tableRows(t *testing.T, table string) (header []string, rows map[string]map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	header = strings.Fields(lines[0])
	rows = map[string]map[string]string{}
	for _, line := range lines[1:] {
		// RENEWED ("5s ago") and EXPIRES-IN ("expired 5s ago") take
		// several words: join them back.
		f := strings.Fields(line)
		var cells []string
		for i := 0; i < len(f); i++ {
			switch {
			case f[i] == "expired" && i+2 < len(f):
				cells = append(cells, strings.Join(f[i:i+3], " "))
				i += 2
			case i+1 < len(f) && f[i+1] == "ago":
				cells = append(cells, f[i]+" ago")
				i++
			default:
				cells = append(cells, f[i])
			}
		}
		row := map[string]string{}
		for i, h := range header {
			if i < len(cells) {
				row[h] = cells[i]
			}
		}
		key := row["NAME"]
		if ns, ok := row["NAMESPACE"]; ok {
			key = ns + "/" + key
		}
		rows[key] = row
	}
	return header, rows
}

// startClientGo runs a client-go LeaderElector for ns/lease as id, with
// short timings, until the test ends; the channel closes when it leads.
func startClientGo(t *testing.T, ns, lease, id string) <-chan struct{} {
	t.Helper()
	leading := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: lease},
			Client:     admin.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		},
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(leading) },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); le.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return leading
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// getLease reads a Lease as the administrator.
func getLease(t *testing.T, ns, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := admin.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// incumbentLeader runs `incumbent run` for ns/lease as identity and waits
// until it leads and has recorded its term; it returns the process and the
// term.
func incumbentLeader(t *testing.T, ns, lease, identity string) (*proc, int64) {
	t.Helper()
	p := start(t, identity, []string{"POD_NAME=" + identity, "POD_NAMESPACE=" + ns},
		append([]string{"run", "--kubeconfig=" + kubeconfig, "--lease=" + lease, "--http-addr=127.0.0.1:0", "--log-format=json"},
			fastTimings...)...)
	p.waitLog(identity+" leading", msg("started leading"))
	var term int64
	eventually(t, identity+"'s term recorded on the Lease", func() (bool, string) {
		l := getLease(t, ns, lease)
		term = kube.RecordOf(l).Term
		return term > 0, jsonString(l.Annotations)
	})
	return p, term
}

// createHolderPod creates a pod on a node, Running with an IP.
func createHolderPod(t *testing.T, ns, name, node, ip string) {
	t.Helper()
	ctx := context.Background()
	pod, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// grantListLeases lets user list (only) the Leases of ns.
func grantListLeases(t *testing.T, ns, user string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "list-leases", Namespace: ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"list"}}}}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "list-leases-" + user, Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "list-leases"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestStatusListsWhoLeadsWhat fills a namespace with Leases as each kind of
// candidate leaves them (a running incumbent leader, a running client-go
// leader, a client-go candidate that took a Lease over from a killed
// incumbent leader, a free Lease) and pods named like the holders, and
// reads them back through `incumbent status` without --lease: each output
// format, -A, a user RBAC restricts, --context, the kubectl plugin and
// shell completion.
func TestStatusListsWhoLeadsWhat(t *testing.T) {
	const ns, nsB = "who-leads", "who-leads-b"
	ctx := context.Background()
	createNamespace(t, ns)
	createNamespace(t, nsB)
	createHolderPod(t, ns, "inc-a", "node-1", "10.0.0.7")
	createHolderPod(t, ns, "ctrl-7d9c", "node-2", "10.0.0.8")

	// A running incumbent leader; its identity is its pod's name.
	_, incTerm := incumbentLeader(t, ns, "inc", "inc-a")
	// A running client-go leader with a controller-runtime style identity:
	// its pod is named like the part before "_".
	waitClosed(t, startClientGo(t, ns, "cg", "ctrl-7d9c_4f1e2d3c"), "the client-go leader of cg")
	// An incumbent leader killed, then a client-go candidate taking over:
	// the Lease keeps the stale incumbent annotations.
	gone, _ := incumbentLeader(t, ns, "takeover", "gone-0")
	gone.signal(syscall.SIGKILL)
	gone.wait()
	waitClosed(t, startClientGo(t, ns, "takeover", "ctrl-7d9c_9a8b7c6d"), "the client-go takeover of takeover")
	if l := getLease(t, ns, "takeover"); l.Annotations[kube.AnnotationInstance] == "" || l.Annotations[kube.AnnotationTerm] == "" {
		t.Fatalf("the takeover is not the case under test: the client-go holder kept no incumbent annotations: %v", l.Annotations)
	}
	// A free Lease, and one in another namespace.
	holder, secs := "x", int32(15)
	for _, l := range []*coordinationv1.Lease{
		{ObjectMeta: metav1.ObjectMeta{Name: "free", Namespace: ns}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: nsB}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder,
			LeaseDurationSeconds: &secs, RenewTime: &metav1.MicroTime{Time: time.Now()}}},
	} {
		if _, err := admin.CoordinationV1().Leases(l.Namespace).Create(ctx, l, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kc := "--kubeconfig=" + kubeconfig

	t.Run("table", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "status", kc, "-n", ns)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		header, rows := tableRows(t, out)
		if want := []string{"NAME", "HOLDER", "KIND", "TERM", "RENEWED", "EXPIRES-IN", "POD", "NODE"}; !slices.Equal(header, want) {
			t.Errorf("header %q, want %q", header, want)
		}
		want := map[string]map[string]string{
			"inc":      {"HOLDER": "inc-a", "KIND": "incumbent", "TERM": jsonString(incTerm), "POD": "inc-a", "NODE": "node-1"},
			"cg":       {"HOLDER": "ctrl-7d9c_4f1e2d3c", "KIND": "client-go", "TERM": "-", "POD": "ctrl-7d9c", "NODE": "node-2"},
			"takeover": {"HOLDER": "ctrl-7d9c_9a8b7c6d", "KIND": "client-go", "TERM": "-", "POD": "ctrl-7d9c", "NODE": "node-2"},
			"free":     {"HOLDER": "<none>", "KIND": "-", "TERM": "-", "POD": "-", "NODE": "-", "EXPIRES-IN": "-"},
		}
		if len(rows) != len(want) {
			t.Errorf("%d rows, want %d (only the namespace's):\n%s", len(rows), len(want), out)
		}
		for name, cells := range want {
			for h, v := range cells {
				if rows[name][h] != v {
					t.Errorf("%s: %s = %q, want %q\n%s", name, h, rows[name][h], v, out)
				}
			}
		}
		if e := rows["inc"]["EXPIRES-IN"]; !strings.HasSuffix(e, "s") || strings.HasPrefix(e, "expired") {
			t.Errorf("inc expires in %q, want a few seconds", e)
		}
		if r := rows["cg"]["RENEWED"]; !strings.HasSuffix(r, "s ago") {
			t.Errorf("cg renewed %q, want seconds ago", r)
		}
	})

	t.Run("json and yaml", func(t *testing.T) {
		var docs []listedLeases
		for _, format := range []string{"json", "yaml"} {
			code, out, errOut := runCLI(t, nil, "status", kc, "-n", ns, "-o", format)
			var doc listedLeases
			decode := json.Unmarshal
			if format == "yaml" {
				decode = func(b []byte, v any) error { return yaml.Unmarshal(b, v) }
			}
			if code != 0 || decode([]byte(out), &doc) != nil {
				t.Fatalf("-o %s: exit %d, %s%s", format, code, out, errOut)
			}
			docs = append(docs, doc)
		}
		for i, doc := range docs {
			var names []string
			byName := map[string]listedLease{}
			for _, it := range doc.Items {
				names = append(names, it.Lease)
				byName[it.Lease] = it
				if it.Namespace != ns {
					t.Errorf("item %s in namespace %q", it.Lease, it.Namespace)
				}
			}
			if want := []string{"cg", "free", "inc", "takeover"}; !slices.Equal(names, want) {
				t.Errorf("document %d lists %q, want %q, sorted", i, names, want)
			}
			inc, cg, tk, free := byName["inc"], byName["cg"], byName["takeover"], byName["free"]
			if inc.HolderKind != "incumbent" || inc.Term != incTerm || inc.Instance == "" || inc.Pod == nil || inc.Pod.Node != "node-1" ||
				inc.Pod.Phase != "Running" || inc.Pod.IP != "10.0.0.7" || inc.ExpiresIn == nil {
				t.Errorf("document %d: inc = %s", i, jsonString(inc))
			}
			if cg.HolderKind != "client-go" || cg.Term != 0 || cg.Pod == nil || cg.Pod.Name != "ctrl-7d9c" {
				t.Errorf("document %d: cg = %s", i, jsonString(cg))
			}
			// The takeover raised leaseTransitions past the one the stale
			// term annotation names.
			// The killed holder's instance is not the client-go holder's.
			if tk.HolderKind != "client-go" || tk.Term != 0 || tk.Transitions < 1 || tk.Instance != "" {
				t.Errorf("document %d: takeover = %s", i, jsonString(tk))
			}
			if free.HolderKind != "" || free.Holder != "" || free.Pod != nil || free.ExpiresIn != nil {
				t.Errorf("document %d: free = %s", i, jsonString(free))
			}
			if len(doc.Warnings) != 0 {
				t.Errorf("document %d warns as the administrator: %q", i, doc.Warnings)
			}
		}
	})

	t.Run("wide", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "status", kc, "-n", ns, "-o", "wide")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		header, rows := tableRows(t, out)
		for _, h := range []string{"PHASE", "IP", "TRANSITIONS", "DURATION", "NOTE"} {
			if !slices.Contains(header, h) {
				t.Errorf("-o wide lacks %s: %q", h, header)
			}
		}
		if r := rows["inc"]; r["PHASE"] != "Running" || r["IP"] != "10.0.0.7" || r["DURATION"] != "3s" {
			t.Errorf("inc in -o wide: %v\n%s", r, out)
		}
	})

	t.Run("all namespaces", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "status", kc, "-A")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		header, rows := tableRows(t, out)
		if header[0] != "NAMESPACE" {
			t.Errorf("-A without a NAMESPACE column: %q", header)
		}
		for _, key := range []string{ns + "/inc", ns + "/takeover", nsB + "/other"} {
			if rows[key] == nil {
				t.Errorf("-A lacks %s:\n%s", key, out)
			}
		}
		if rows[nsB+"/other"]["KIND"] != "client-go" || rows[nsB+"/other"]["HOLDER"] != "x" {
			t.Errorf("other: %v", rows[nsB+"/other"])
		}
	})

	// Two users: one granted nothing, one who may list the Leases of ns
	// and nothing else.
	nobodyCfg, err := env.User("lease-nobody")
	if err != nil {
		t.Fatal(err)
	}
	userCfg, err := env.User("lease-lister")
	if err != nil {
		t.Fatal(err)
	}
	nobodyKC, userKC := filepath.Join(t.TempDir(), "nobody.kubeconfig"), filepath.Join(t.TempDir(), "lister.kubeconfig")
	if err := writeKubeconfig(nobodyKC, nobodyCfg); err != nil {
		t.Fatal(err)
	}
	if err := writeKubeconfig(userKC, userCfg); err != nil {
		t.Fatal(err)
	}
	grantListLeases(t, ns, "lease-lister")
	eventually(t, "the lister's Role to take effect", func() (bool, string) {
		code, _, errOut := runCLI(t, nil, "status", "--kubeconfig="+userKC, "-n", ns, "-o", "json")
		return code == 0, errOut
	})

	t.Run("refusals", func(t *testing.T) {
		code, _, errOut := runCLI(t, nil, "status", "--kubeconfig="+nobodyKC, "-n", ns)
		if code != 3 || !strings.Contains(errOut, `refused verb "list" on resource "leases" (group coordination.k8s.io) in namespace "who-leads"`) ||
			!strings.Contains(errOut, "--lease") {
			t.Errorf("without any permission: exit %d, %s", code, errOut)
		}
		// The lister may list the Leases, not their pods: the list goes
		// on without them, and says why.
		code, out, errOut := runCLI(t, nil, "status", "--kubeconfig="+userKC, "-n", ns)
		if code != 0 || !strings.Contains(errOut, `refused verb "list" on resource "pods" (group core) in namespace "who-leads"`) {
			t.Errorf("without pods: exit %d, stderr %s", code, errOut)
		}
		_, rows := tableRows(t, out)
		if r := rows["inc"]; r["KIND"] != "incumbent" || r["POD"] != "<unknown>" || r["NODE"] != "<unknown>" {
			t.Errorf("inc without pods: %v\n%s", r, out)
		}
		if r := rows["free"]; r["POD"] != "-" {
			t.Errorf("a free Lease has no pod to be unknown: %v", r)
		}
		code, out, _ = runCLI(t, nil, "status", "--kubeconfig="+userKC, "-n", ns, "-o", "json")
		var doc listedLeases
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Items) != 4 || len(doc.Warnings) != 1 ||
			!strings.Contains(doc.Warnings[0], `"pods"`) {
			t.Errorf("-o json without pods: exit %d, %s", code, out)
		}
		// Every namespace needs a cluster-wide grant.
		code, _, errOut = runCLI(t, nil, "status", "--kubeconfig="+userKC, "-A")
		if code != 3 || !strings.Contains(errOut, `refused verb "list" on resource "leases" (group coordination.k8s.io) in every namespace (-A)`) {
			t.Errorf("-A with a namespaced grant: exit %d, %s", code, errOut)
		}
	})

	// A kubeconfig with two contexts: a (the administrator in ns, current)
	// and b (the lister, who may list the Leases of ns only, in nsB).
	twoKC := filepath.Join(t.TempDir(), "two.kubeconfig")
	two := clientcmdapi.NewConfig()
	two.Clusters["e2e"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	two.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData,
		Token: env.Config.BearerToken}
	two.AuthInfos["lister"] = &clientcmdapi.AuthInfo{ClientCertificateData: userCfg.CertData, ClientKeyData: userCfg.KeyData}
	two.Contexts["a"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "admin", Namespace: ns}
	two.Contexts["b"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "lister", Namespace: nsB}
	two.CurrentContext = "a"
	if err := clientcmd.WriteToFile(*two, twoKC); err != nil {
		t.Fatal(err)
	}

	t.Run("context", func(t *testing.T) {
		// The current context: its namespace, its user.
		code, out, errOut := runCLI(t, nil, "status", "--kubeconfig="+twoKC)
		if _, rows := tableRows(t, out); code != 0 || rows["inc"] == nil {
			t.Errorf("current context a: exit %d\n%s%s", code, out, errOut)
		}
		// --context b: nsB, as the lister, who may not list there.
		code, _, errOut = runCLI(t, nil, "status", "--kubeconfig="+twoKC, "--context=b")
		if code != 3 || !strings.Contains(errOut, `in namespace "who-leads-b"`) {
			t.Errorf("--context b: exit %d, %s", code, errOut)
		}
		// --context b with -n ns: the lister's grant there.
		code, out, errOut = runCLI(t, nil, "status", "--kubeconfig="+twoKC, "--context=b", "-n", ns)
		if _, rows := tableRows(t, out); code != 0 || rows["inc"] == nil || rows["inc"]["POD"] != "<unknown>" {
			t.Errorf("--context b -n %s: exit %d\n%s%s", ns, code, out, errOut)
		}
		// The variable does the same.
		code, _, errOut = runCLI(t, []string{"INCUMBENT_CONTEXT=b"}, "status", "--kubeconfig="+twoKC)
		if code != 3 || !strings.Contains(errOut, `in namespace "who-leads-b"`) {
			t.Errorf("INCUMBENT_CONTEXT=b: exit %d, %s", code, errOut)
		}
		code, _, errOut = runCLI(t, nil, "status", "--kubeconfig="+twoKC, "--context=nosuch")
		if code != 2 || !strings.Contains(errOut, `context "nosuch" does not exist`) {
			t.Errorf("--context nosuch: exit %d, %s", code, errOut)
		}
		// One lease, through a context, as before.
		code, out, errOut = runCLI(t, nil, "status", "--kubeconfig="+twoKC, "--context=a", "--lease=inc")
		if code != 0 || !strings.Contains(out, ns+"/inc  inc-a") {
			t.Errorf("--context a --lease inc: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("kubectl plugin", func(t *testing.T) {
		// kubectl runs the executable kubectl-incumbent it finds on PATH,
		// with the arguments after `kubectl incumbent`; its completion,
		// kubectl_complete-incumbent.
		dir := t.TempDir()
		plugin, complete := filepath.Join(dir, "kubectl-incumbent"), filepath.Join(dir, "kubectl_complete-incumbent")
		for _, link := range []string{plugin, complete} {
			if err := os.Symlink(bin, link); err != nil {
				t.Fatal(err)
			}
		}
		code, out, errOut := runProgram(t, plugin, nil, "status", kc, "-n", ns)
		if _, rows := tableRows(t, out); code != 0 || rows["inc"]["KIND"] != "incumbent" || rows["takeover"]["KIND"] != "client-go" {
			t.Errorf("kubectl-incumbent status: exit %d\n%s%s", code, out, errOut)
		}
		code, out, _ = runProgram(t, plugin, nil, "status", "--help")
		if code != 0 || !strings.Contains(out, "kubectl incumbent status [--lease NAME]") {
			t.Errorf("kubectl-incumbent status --help: exit %d\n%s", code, out)
		}
		code, _, errOut = runProgram(t, plugin, nil, "status", kc, "-o", "xml")
		if code != 2 || !strings.Contains(errOut, "Run 'kubectl incumbent --help'") {
			t.Errorf("kubectl-incumbent status -o xml: exit %d, %s", code, errOut)
		}
		code, out, errOut = runProgram(t, complete, nil, "status", kc, "-n", ns, "--lease", "ta")
		if code != 0 || out != "takeover\theld by ctrl-7d9c_9a8b7c6d\n:4\n" {
			t.Errorf("kubectl_complete-incumbent status --lease ta: exit %d, %q %s", code, out, errOut)
		}
	})

	t.Run("completion", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "__complete", "status", kc, "-n", ns, "--lease", "")
		want := "cg\theld by ctrl-7d9c_4f1e2d3c\nfree\tfree\ninc\theld by inc-a\ntakeover\theld by ctrl-7d9c_9a8b7c6d\n:4\n"
		if code != 0 || out != want {
			t.Errorf("__complete status --lease '': exit %d\n%q\nwant\n%q\n%s", code, out, want, errOut)
		}
		// Without descriptions, from the environment, on another command.
		code, out, _ = runCLI(t, []string{"INCUMBENT_KUBECONFIG=" + kubeconfig, "INCUMBENT_NAMESPACE=" + ns}, "__completeNoDesc", "release", "--lease", "in")
		if code != 0 || out != "inc\n:4\n" {
			t.Errorf("__completeNoDesc release --lease in: exit %d, %q", code, out)
		}
		code, out, _ = runCLI(t, nil, "__complete", "watch", kc, "-n", "who-")
		if code != 0 || out != "who-leads\nwho-leads-b\n:4\n" {
			t.Errorf("__complete watch -n who-: exit %d, %q", code, out)
		}
		code, out, _ = runCLI(t, nil, "__complete", "status", "--kubeconfig="+twoKC, "--context", "")
		if code != 0 || out != "a\nb\n:4\n" {
			t.Errorf("__complete status --context '': exit %d, %q", code, out)
		}
		// Refused, or no cluster at all: nothing, and no noise.
		for _, args := range [][]string{
			{"__complete", "status", "--kubeconfig=" + userKC, "-n", nsB, "--lease", ""},
			{"__complete", "status", "--kubeconfig=/no/such/file", "--lease", ""},
			{"__complete", "status", "--backend=file", "--lease", ""},
		} {
			code, out, errOut := runCLI(t, nil, args...)
			// cobra's own line on stderr, which the shells discard
			if code != 0 || out != ":4\n" || strings.TrimSpace(errOut) != "Completion ended with directive: ShellCompDirectiveNoFileComp" {
				t.Errorf("%q: exit %d, %q, stderr %q", args, code, out, errOut)
			}
		}
	})
}
