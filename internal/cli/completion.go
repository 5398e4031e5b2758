package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/logging"
	"github.com/incumbent-io/incumbent/store/kube"
)

// completionTimeout bounds what shell completion asks the cluster: a slow
// or unreachable API server must not hang the shell.
const completionTimeout = 2 * time.Second

// registerCompletions completes, on every command that has the flag,
// --lease with the Leases of the namespace, --namespace with the cluster's
// namespaces and --context with the kubeconfig's contexts. It registers
// them only for a completion request (cobra keeps them in a process-wide
// table).
func registerCompletions(root *cobra.Command, e *Env) {
	args := e.args()
	if len(args) == 0 || (args[0] != cobra.ShellCompRequestCmd && args[0] != cobra.ShellCompNoDescRequestCmd) {
		return
	}
	funcs := map[string]cobra.CompletionFunc{
		"lease":     e.completeLeases,
		"namespace": e.completeNamespaces,
		"context":   e.completeContexts,
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for flag, fn := range funcs {
			if c.Flags().Lookup(flag) == nil {
				continue
			}
			if _, done := c.GetFlagCompletionFunc(flag); !done {
				_ = c.RegisterFlagCompletionFunc(flag, fn) // cannot fail: the flag exists and has none
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeLeases offers the Leases of the namespace the command line
// selects, each described by its holder. On any error it offers nothing
// and says nothing.
func (e *Env) completeLeases(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	err := e.withCluster(cmd, func(ctx context.Context, kc *kubeclient.Client, ns string) error {
		list, err := kc.Leases(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range list.Items {
			l := &list.Items[i]
			if !strings.HasPrefix(l.Name, toComplete) {
				continue
			}
			desc := "free"
			if rec := kube.RecordOf(l); rec.Held() {
				desc = "held by " + rec.Holder
			}
			out = append(out, cobra.CompletionWithDesc(l.Name, desc))
		}
		return nil
	})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces offers the cluster's namespaces, if the caller may
// list them.
func (e *Env) completeNamespaces(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	err := e.withCluster(cmd, func(ctx context.Context, kc *kubeclient.Client, _ string) error {
		list, err := kc.Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range list.Items {
			if strings.HasPrefix(n.Name, toComplete) {
				out = append(out, n.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeContexts offers the contexts of the kubeconfig the command line
// (or KUBECONFIG, or ~/.kube/config) names.
func (e *Env) completeContexts(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	defer logging.RouteKlog(slog.DiscardHandler)() // clientcmd logs through klog
	_ = applyEnv(cmd, e.Getenv)
	loading := &clientcmd.ClientConfigLoadingRules{}
	switch kc := flagValue(cmd, "kubeconfig"); {
	case kc != "":
		loading.ExplicitPath = kc
	case e.Getenv("KUBECONFIG") != "":
		loading.Precedence = filepath.SplitList(e.Getenv("KUBECONFIG"))
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		loading.ExplicitPath = filepath.Join(home, ".kube", "config")
	}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, &clientcmd.ConfigOverrides{}).RawConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for name := range raw.Contexts {
		if strings.HasPrefix(name, toComplete) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// withCluster runs fn with a client for the cluster and the namespace that
// the command line being completed selects (--kubeconfig, --context,
// --namespace and their INCUMBENT_* variables, which cobra does not apply
// during completion), within completionTimeout. Nothing is logged: client-go's
// logs and the API server's warnings are dropped, so that the shell shows
// nothing but completions.
func (e *Env) withCluster(cmd *cobra.Command, fn func(ctx context.Context, kc *kubeclient.Client, namespace string) error) error {
	defer logging.RouteKlog(slog.DiscardHandler)()
	_ = applyEnv(cmd, e.Getenv) // a bad value leaves its flag unset
	if b := flagValue(cmd, "backend"); b != "" && b != "kubernetes" {
		return errNoCluster
	}
	c := &common{env: e, kubeconfig: flagValue(cmd, "kubeconfig"), kubeContext: flagValue(cmd, "context"),
		namespace: flagValue(cmd, "namespace")}
	if err := c.resolveKube(); err != nil {
		return err
	}
	cfg := rest.CopyConfig(c.rest)
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.Timeout = completionTimeout
	kc, err := kubeclient.New(cfg)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	return fn(ctx, kc, c.namespace)
}

// errNoCluster: the command line selects a backend without a cluster.
var errNoCluster = errors.New("not a Kubernetes backend")

// flagValue is the value of cmd's flag name, "" when it has none.
func flagValue(cmd *cobra.Command, name string) string {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}
