package inject

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// What inject does to one pod. Every change is "ensure": what is missing
// is added, what is there already and equal is kept (so that injecting
// twice changes nothing), and what is there but different is refused.

// account is the service account a pod runs as, after injection.
type account struct {
	name string
	// own is inject's own account (incumbent-<lease>), which the RBAC
	// objects then include; otherwise it is the workload's, bound only.
	own bool
}

// injectPod changes the pod spec of w for o's mode.
func (o *Options) injectPod(w *workload) (account, error) {
	if err := o.checkHostNetwork(w); err != nil {
		return account{}, err
	}
	if err := o.checkPorts(w); err != nil {
		return account{}, err
	}
	var err error
	if o.Mode == Exec {
		err = o.injectExec(w)
	} else {
		err = o.injectSidecar(w)
	}
	if err != nil {
		return account{}, err
	}
	tok, err := o.tokenVolume()
	if err != nil {
		return account{}, err
	}
	if err := ensureNamed(w.what(), w.spec, "volumes", tok); err != nil {
		return account{}, err
	}
	return o.serviceAccount(w), nil
}

func (o *Options) injectSidecar(w *workload) error {
	if c, _ := named(get(w.spec, "containers"), ContainerName); c != nil {
		return fmt.Errorf("%s: %s already has a container named %s among its containers (as older examples ran it): remove it, and inject the manifest again", w.where(), w.ref(), ContainerName)
	}
	if c, _ := named(get(w.spec, "initContainers"), InstallerName); c != nil {
		return fmt.Errorf("%s: %s was injected with --mode exec (it has the %s init container): inject the original manifest", w.where(), w.ref(), InstallerName)
	}
	sc, err := o.sidecar()
	if err != nil {
		return err
	}
	// Last among the init containers: whatever the pod needs first (a
	// network proxy, a migration) is ready before the election starts, and
	// as sidecars stop in reverse order it stops first, after the
	// application.
	return ensureNamed(w.what(), w.spec, "initContainers", sc, "containers")
}

func (o *Options) injectExec(w *workload) error {
	if c, _ := named(get(w.spec, "initContainers"), ContainerName); c != nil {
		return fmt.Errorf("%s: %s already has the incumbent sidecar, and --mode exec runs incumbent in the application's container instead: inject the original manifest", w.where(), w.ref())
	}
	if c, _ := named(get(w.spec, "containers"), ContainerName); c != nil {
		return fmt.Errorf("%s: %s already has a container named %s: remove it, and inject the manifest again", w.where(), w.ref(), ContainerName)
	}
	c, err := o.execContainer(w)
	if err != nil {
		return err
	}
	name := scalar(get(c, "name"))
	what := fmt.Sprintf("%s: container %s of %s", w.where(), name, w.ref())
	cmd := get(c, "command")
	if cmd == nil || cmd.Kind != yaml.SequenceNode || len(cmd.Content) == 0 {
		return fmt.Errorf("%s has no command in the manifest, and inject cannot know its image's entrypoint: write it out (command: [...], the image's ENTRYPOINT; args stay as they are), then inject again", what)
	}
	orig := cmd.Content // the nodes, with their comments
	wrapped := scalar(orig[0]) == ExecBinary
	if wrapped {
		i := slices.Index(scalars(cmd), "--")
		if i < 0 {
			return fmt.Errorf("%s runs %s without a command after --: inject the original manifest", what, ExecBinary)
		}
		orig = orig[i+1:]
	}
	sc, err := o.sidecar()
	if err != nil {
		return err
	}
	if !wrapped {
		// The workload runs only on the leader: a probe of its own would
		// fail on every follower, and the kubelet restart them forever.
		for _, p := range []string{"livenessProbe", "startupProbe"} {
			if get(c, p) != nil {
				return fmt.Errorf("%s has a %s, which every follower (where the workload does not run) would fail, and be restarted for: remove it (incumbent run --health-url or --health-exec, after inject's --, makes leadership follow the workload's health); inject adds probes on incumbent's /healthz", what, p)
			}
		}
	}
	args := append([]arg{{Value: ExecBinary}}, o.args()...)
	if k := w.kind(); (k == "Job" || k == "CronJob") && !slices.ContainsFunc(o.RunArgs, func(a string) bool {
		return strings.HasPrefix(a, "--on-child-exit")
	}) {
		args = append(args, arg{Value: "--on-child-exit=exit", Comment: []string{
			"A Job's pod is done when its workload is: exit with the workload's code.",
		}})
	}
	args = append(args, arg{Value: "--"})
	want := argsNode(args)
	for _, n := range orig {
		want.Content = append(want.Content, clone(n))
	}
	if wrapped && !equal(cmd, want) {
		return fmt.Errorf("%s already runs under incumbent with other flags (%q): inject the original manifest", what, scalars(cmd))
	}
	setCommented(c, "command", want, "Run by incumbent (inject --mode exec): the command after -- runs only\n"+
		"while this replica leads, with its fencing token in INCUMBENT_TERM; args\n"+
		"(if any) follow it.")
	for _, e := range get(sc, "env").Content {
		if err := ensureNamed(what, c, "env", e); err != nil {
			return err
		}
	}
	if err := ensureNamed(what, c, "ports", get(sc, "ports").Content[0]); err != nil {
		return err
	}
	readiness := clone(get(sc, "livenessProbe"))
	for _, p := range []struct {
		key  string
		want *yaml.Node
	}{{"startupProbe", get(sc, "startupProbe")}, {"livenessProbe", get(sc, "livenessProbe")}, {"readinessProbe", readiness}} {
		have := get(c, p.key)
		switch {
		case have == nil:
			set(c, p.key, clone(p.want), "")
		case p.key == "readinessProbe": // the application's own: kept
		case !equal(have, p.want):
			return fmt.Errorf("%s has a %s other than the one inject writes: inject the original manifest", what, p.key)
		}
	}
	if err := o.ensureMount(w, c, BinVolume, BinDir, true); err != nil {
		return err
	}
	if err := o.ensureMount(w, c, TokenVolume, TokenPath, true); err != nil {
		return err
	}
	inst, err := o.installer()
	if err != nil {
		return err
	}
	if err := ensureNamed(w.what(), w.spec, "initContainers", inst, "containers"); err != nil {
		return err
	}
	bin, err := o.binVolume()
	if err != nil {
		return err
	}
	return ensureNamed(w.what(), w.spec, "volumes", bin)
}

// execContainer returns the container exec mode runs under incumbent.
func (o *Options) execContainer(w *workload) (*yaml.Node, error) {
	cs := get(w.spec, "containers")
	var names []string
	if cs != nil {
		for _, c := range cs.Content {
			names = append(names, scalar(get(c, "name")))
		}
	}
	if o.Container != "" {
		c, _ := named(cs, o.Container)
		if c == nil {
			return nil, fmt.Errorf("%s: %s has no container %q (it has %s)", w.where(), w.ref(), o.Container, strings.Join(names, ", "))
		}
		return c, nil
	}
	if len(names) != 1 {
		return nil, fmt.Errorf("%s: %s has %d containers (%s): name the one to run under incumbent with --container", w.where(), w.ref(), len(names), strings.Join(names, ", "))
	}
	return deref(cs.Content[0]), nil
}

// ensureMount ensures a volume mount of volume at mountPath in container c.
func (o *Options) ensureMount(w *workload, c *yaml.Node, volume, mountPath string, readOnly bool) error {
	m := mapping()
	m.Style = yaml.FlowStyle
	set(m, "name", str(volume), "")
	set(m, "mountPath", str(mountPath), "")
	if readOnly {
		set(m, "readOnly", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}, "")
	}
	if ms := get(c, "volumeMounts"); ms != nil {
		for _, have := range ms.Content {
			if scalar(get(have, "mountPath")) == mountPath && scalar(get(have, "name")) != volume {
				return fmt.Errorf("%s: container %s of %s mounts %s at %s, where incumbent needs its %s volume",
					w.where(), scalar(get(c, "name")), w.ref(), scalar(get(have, "name")), mountPath, volume)
			}
		}
	}
	return ensureNamed(fmt.Sprintf("%s: container %s of %s", w.where(), scalar(get(c, "name")), w.ref()), c, "volumeMounts", m)
}

// checkHostNetwork refuses a pod on the host's network unless accepted.
func (o *Options) checkHostNetwork(w *workload) error {
	if scalar(get(w.spec, "hostNetwork")) != "true" || o.HostNetwork {
		return nil
	}
	ports := fmt.Sprintf("%d (status API) and 127.0.0.1:%d (control endpoint)", o.HTTPPort, o.ControlPort)
	if o.Mode == LeaderPort {
		ports = fmt.Sprintf("%d (status API), %d (leader port) and 127.0.0.1:%d (control endpoint)", o.HTTPPort, o.LeaderPort, o.ControlPort)
	}
	return fmt.Errorf("%s: %s runs on the host's network (hostNetwork: true), so incumbent's ports %s would be the node's own, shared with every process and replica on it. "+
		"If they are free on your nodes, accept with --host-network (the declared ports become host ports, so the scheduler places at most one replica per node), or choose others with --http-port, --control-port and --leader-port",
		w.where(), w.ref(), ports)
}

// checkPorts refuses a pod whose containers declare a port (or port name)
// that incumbent needs: they share the pod's network namespace.
func (o *Options) checkPorts(w *workload) error {
	type port struct {
		number int
		name   string
		what   string
	}
	need := []port{{o.HTTPPort, StatusPortName, "the status API (--http-port)"}, {o.ControlPort, "", "the control endpoint (--control-port)"}}
	if o.Mode == LeaderPort {
		need = append(need, port{o.LeaderPort, LeaderPortName, "the leader port (--leader-port)"})
	}
	for _, list := range []string{"initContainers", "containers"} {
		for _, c := range seqItems(get(w.spec, list)) {
			cname := scalar(get(c, "name"))
			if cname == ContainerName && list == "initContainers" {
				continue // the sidecar itself, injected before
			}
			for _, p := range seqItems(get(c, "ports")) {
				number, _ := strconv.Atoi(scalar(get(p, "containerPort")))
				pname := scalar(get(p, "name"))
				for _, n := range need {
					if o.Mode == Exec && pname == StatusPortName && number == o.HTTPPort {
						continue // exec mode's own port, injected before
					}
					if number == n.number || (pname != "" && pname == n.name) {
						return fmt.Errorf("%s: container %s of %s declares port %d (%q), which incumbent needs for %s: choose another port for incumbent, or rename the container's",
							w.where(), cname, w.ref(), number, pname, n.what)
					}
				}
			}
		}
	}
	return nil
}

// serviceAccount sets the pod's service account, and says which it is: a
// pod that names none (or the namespace's default, which every pod uses)
// runs as incumbent's own; one that names its own keeps it, and the Role
// is bound to it.
func (o *Options) serviceAccount(w *workload) account {
	sa := scalar(get(w.spec, "serviceAccountName"))
	if sa == "" {
		sa = scalar(get(w.spec, "serviceAccount")) // the deprecated alias
	}
	switch sa {
	case "", "default":
		set(w.spec, "serviceAccountName", str(o.ownName()),
			"# incumbent's own service account, bound to the Role the sidecar needs.",
			"initContainers", "containers")
		if get(w.spec, "serviceAccount") != nil {
			set(w.spec, "serviceAccount", str(o.ownName()), "")
		}
		return account{name: o.ownName(), own: true}
	case o.ownName():
		return account{name: sa, own: true}
	}
	return account{name: sa}
}

// ensureNamed ensures that the sequence under key in m holds want (found
// by its name): appended when missing (the sequence created, inserted
// before the first of before), kept when equal, refused when different.
func ensureNamed(what string, m *yaml.Node, key string, want *yaml.Node, before ...string) error {
	name := scalar(get(want, "name"))
	s := get(m, key)
	if s == nil || s.Tag == "!!null" {
		set(m, key, seq(want), "", before...)
		return nil
	}
	if s.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: %s is not a list", what, key)
	}
	have, _ := named(s, name)
	if have == nil {
		if len(s.Content) == 0 {
			s.Style &^= yaml.FlowStyle // "[]" becomes a block list
		}
		appendItem(s, want)
		return nil
	}
	if equal(have, want) {
		return nil
	}
	what = fmt.Sprintf("%s already has %s %s", what, singular(key), name)
	if key == "initContainers" && name == ContainerName {
		if img, ours := scalar(get(have, "image")), scalar(get(want, "image")); img != ours {
			return fmt.Errorf("%s from another version (image %s; this incumbent writes %s): inject the original manifest, or remove that container first", what, img, ours)
		}
	}
	return fmt.Errorf("%s, different from what inject writes (%s): inject the original manifest, or remove or rename it", what, strings.Join(differences(have, want), ", "))
}

func singular(key string) string {
	switch key {
	case "initContainers":
		return "an init container"
	case "volumes":
		return "a volume"
	case "volumeMounts":
		return "a volume mount"
	case "env":
		return "an environment variable"
	case "ports":
		return "a port"
	}
	return key
}

// setCommented sets key in m to v, with comment above the key (before a
// comment that is there already).
func setCommented(m *yaml.Node, key string, v *yaml.Node, comment string) {
	set(m, key, v, "")
	c := "# " + strings.ReplaceAll(comment, "\n", "\n# ")
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Value == key && !strings.Contains(k.HeadComment, c) {
			k.HeadComment = joinComments(c, k.HeadComment)
		}
	}
}

// seqItems returns the items of a sequence node (none for anything else).
func seqItems(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

// scalars returns the values of a sequence of scalars.
func scalars(n *yaml.Node) []string {
	var out []string
	for _, c := range seqItems(n) {
		out = append(out, scalar(c))
	}
	return out
}

// clone deep-copies a node.
func clone(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = clone(k)
	}
	return &c
}
