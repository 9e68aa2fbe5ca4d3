// Command genman writes the manual pages tcpeek.8 and tcpeekstat.1 from the
// programs' --help texts (package manual) into a directory:
//
//	go run ./internal/manual/genman man
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tcpeek/tcpeek/internal/manual"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genman DIR")
		os.Exit(2)
	}
	for _, p := range manual.Pages() {
		path := filepath.Join(os.Args[1], p.File)
		if err := os.WriteFile(path, p.Roff, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "genman: %v\n", err)
			os.Exit(1)
		}
	}
}
