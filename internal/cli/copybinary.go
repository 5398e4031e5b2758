package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newCopyBinaryCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "copy-binary DEST",
		Short: "Copy this binary to DEST (the init container of inject --mode exec)",
		Long: `Copy the running incumbent binary to DEST, executable by anyone, replacing DEST atomically.
The incumbent image holds nothing but the binary (no shell, no cp), so this is how the
init container that 'incumbent inject --mode exec' adds puts it into a volume that the
application's container runs it from:

  command: [/incumbent, copy-binary, /incumbent-bin/incumbent]`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("copy-binary takes one argument, the destination, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return failuref("find this binary: %w", err)
			}
			if err := copyFile(self, args[0]); err != nil {
				return failure(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s\n", self, args[0])
			return failure(err)
		},
	}
}

// copyFile copies src to dst with mode 0755: into a temporary file beside
// dst, synced, then renamed over it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy-binary: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return fmt.Errorf("copy-binary: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy-binary: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("copy-binary: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("copy-binary: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("copy-binary: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("copy-binary: %w", err)
	}
	return nil
}
