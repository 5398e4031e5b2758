package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

func newVersionCmd(e *Env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print incumbent's version, commit, Go version and platform",
		Long: `Print the version incumbent was built with (the image tag it is published under),
the commit, the Go toolchain and the platform, e.g.

  incumbent v0.1.0 (commit 0123456789ab, go1.26.8, linux/amd64)

-o json adds the full commit and the image reference.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := buildinfo.Read(e.Version, e.Revision)
			switch output {
			case "text":
				_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine(in))
				return failure(err)
			case "json":
				b, err := json.MarshalIndent(in, "", "  ")
				if err != nil {
					return failure(err)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return failure(err)
			default:
				return usagef("invalid --output %q: want text or json", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// versionLine is `incumbent VERSION (commit REV, GOVERSION, OS/ARCH)`; the
// commit is left out when it is unknown.
func versionLine(in buildinfo.Info) string {
	var parts []string
	if rev := in.Revision; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if in.Modified {
			rev += ", modified"
		}
		parts = append(parts, "commit "+rev)
	}
	parts = append(parts, in.GoVersion, in.Platform)
	return fmt.Sprintf("incumbent %s (%s)", in.Version, strings.Join(parts, ", "))
}

// version is the link-time version, else the module version, else "devel".
func version(linked string) string { return buildinfo.Read(linked, "").Version }
