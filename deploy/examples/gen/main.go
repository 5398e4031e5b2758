// Command gen writes the example manifests into the current folder (run by
// go generate in deploy/examples).
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/incumbent-io/incumbent/deploy/examples"
)

func main() {
	files, err := examples.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fences, err := examples.FenceFiles()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for name, b := range fences {
		files[name] = b
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.WriteFile(name, files[name], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", name)
	}
}
