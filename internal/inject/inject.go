package inject

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Inject adds incumbent to the workloads of the inputs and returns the
// whole stream, every other object as it was. Every error is a refusal of
// the input or of the options, and names the place and the reason.
func Inject(o Options, inputs ...Input) ([]byte, error) {
	if err := o.complete(); err != nil {
		return nil, err
	}
	var docs []*document
	for _, in := range inputs {
		d, err := parseStream(in)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	objs := collect(docs)
	var all []*workload
	existing := map[key]*object{}
	for _, ob := range objs {
		existing[ob.key()] = ob
		wk, ok, err := workloadKindOf(ob)
		if err != nil {
			return nil, err
		}
		if ok {
			w, err := newWorkload(ob, wk)
			if err != nil {
				return nil, err
			}
			all = append(all, w)
		}
	}
	selected, err := o.selectWorkloads(all)
	if err != nil {
		return nil, err
	}

	var rbacOut []*yaml.Node          // the RBAC objects, for --rbac=only
	generated := map[key]*yaml.Node{} // what this run generates, by key
	// once reports whether n is generated for the first time in this run;
	// two workloads may need the same object, never two different ones.
	once := func(w *workload, n *yaml.Node) (bool, error) {
		k := objectKey(n)
		prev, ok := generated[k]
		switch {
		case ok && !equal(prev, n):
			return false, fmt.Errorf("%s: %s needs a %s %s other than the one an earlier workload needs (the workloads of one lease run as different service accounts?): inject them one at a time, or give them one service account",
				w.where(), w.ref(), k.kind, k.name)
		case ok:
			return false, nil
		}
		generated[k] = n
		return true, nil
	}
	// fresh reports whether n is to be written: generated for the first
	// time, and not in the input already (an earlier run's output).
	fresh := func(w *workload, n *yaml.Node) (bool, error) {
		if first, err := once(w, n); !first || err != nil {
			return false, err
		}
		ex, ok := existing[objectKey(n)]
		switch {
		case ok && !equal(ex.node, n):
			return false, fmt.Errorf("%s: the input already has %s, different from the one inject writes (%s): remove or rename it",
				ex.where(), ex.ref(), strings.Join(differences(ex.node, n), ", "))
		case ok:
			return false, nil
		}
		return true, nil
	}
	var drop []*object // the workloads' own ServiceAccounts, for --rbac=exclude
	for _, w := range selected {
		if o.Mode == LeaderPort && o.Warn != nil {
			if why := rolloutDeadlock(w); why != "" {
				o.Warn(fmt.Sprintf("%s: %s: with --mode leader-port only the leader is ever Ready, and %s: a rollout deadlocks (the new pods are followers that never become Ready, and the old leader is never taken away). Set strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 100%%}} or {type: Recreate}, or use --mode labels, where every replica is Ready (docs/sidecar.md, \"Leader-only port\")",
					w.where(), w.ref(), why))
			}
		}
		sa, err := o.injectPod(w)
		if err != nil {
			return nil, err
		}
		// A workload's own ServiceAccount, when the input has it, goes with
		// the RBAC objects: the sidecar's release needs its token as much.
		if own, ok := existing[key{"ServiceAccount", w.namespace(), sa.name}]; ok && !sa.own {
			last(own.node)
			switch o.RBAC {
			case RBACOnly:
				if first, err := once(w, own.node); err != nil {
					return nil, err
				} else if first {
					rbacOut = append(rbacOut, own.node)
				}
			case RBACExclude:
				if !slices.Contains(drop, own) {
					drop = append(drop, own)
				}
			case RBACKeep:
				o.mark(own.node)
				keep(own.node)
			}
		}
		var before, after []*yaml.Node
		if o.RBAC != RBACExclude {
			objs, err := o.rbacObjects(w.namespace(), sa)
			if err != nil {
				return nil, err
			}
			for _, n := range objs {
				if o.RBAC == RBACOnly {
					first, err := once(w, n)
					if err != nil {
						return nil, err
					}
					if first {
						rbacOut = append(rbacOut, n)
					}
					continue
				}
				keep, err := fresh(w, n)
				if err != nil {
					return nil, err
				}
				if keep {
					before = append(before, n)
				}
			}
		}
		if o.Mode == Labels {
			if !o.NoService {
				svc, err := o.leaderService(w)
				if err != nil {
					return nil, err
				}
				if keep, err := fresh(w, svc); err != nil {
					return nil, err
				} else if keep {
					after = append(after, svc)
				}
			}
			if !o.NoPDB {
				pdb, err := o.budget(w, objs)
				if err != nil {
					return nil, err
				}
				if pdb != nil {
					if keep, err := fresh(w, pdb); err != nil {
						return nil, err
					} else if keep {
						after = append(after, pdb)
					}
				}
			}
		}
		docs = insert(docs, w.object, true, after...)
		docs = insert(docs, w.object, false, before...)
	}
	for _, ob := range drop {
		docs = removeObject(docs, ob)
	}
	if o.RBAC == RBACOnly {
		docs = nil
		for _, n := range rbacOut {
			docs = append(docs, newDocument(n))
		}
	}
	var b bytes.Buffer
	if err := writeStream(&b, docs); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// selectWorkloads picks the workloads to inject: those --workload names, or
// else the input's one workload (Helm hooks, such as a chart's test pod,
// are not counted).
func (o *Options) selectWorkloads(all []*workload) ([]*workload, error) {
	var names []string
	for _, w := range all {
		names = append(names, w.kind()+"/"+w.name())
	}
	found := "none"
	if len(names) > 0 {
		found = strings.Join(names, ", ")
	}
	if len(o.Workloads) > 0 {
		var out []*workload
		for _, want := range o.Workloads {
			kind, name, hasKind := strings.Cut(want, "/")
			if !hasKind {
				kind, name = "", want
			}
			n := 0
			for _, w := range all {
				if w.name() == name && (kind == "" || strings.EqualFold(kind, w.kind())) {
					if !containsWorkload(out, w) {
						out = append(out, w)
					}
					n++
				}
			}
			if n == 0 {
				return nil, fmt.Errorf("no workload %s in the input (its workloads: %s)", want, found)
			}
			if n > 1 && kind == "" {
				return nil, fmt.Errorf("more than one workload is named %s (%s): give KIND/NAME", name, found)
			}
		}
		return out, nil
	}
	var cands []*workload
	for _, w := range all {
		if !w.isHelmHook() {
			cands = append(cands, w)
		}
	}
	switch len(cands) {
	case 0:
		return nil, fmt.Errorf("the input has no workload to inject (a Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob or Pod; Helm hooks count only when named with --workload); workloads found: %s", found)
	case 1:
		return cands, nil
	}
	var cn []string
	for _, w := range cands {
		cn = append(cn, w.kind()+"/"+w.name())
	}
	return nil, fmt.Errorf("the input has %d workloads (%s), and one lease is one election: name the one(s) that campaign for %q with --workload KIND/NAME",
		len(cands), strings.Join(cn, ", "), o.Lease)
}

func containsWorkload(ws []*workload, w *workload) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}
