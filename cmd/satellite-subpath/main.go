// Command satellite-subpath is the helper Satellite copies to a remote host to mount a
// volumeMount's subPath without following a symlink out of its volume (remote/subpath).
//
//	satellite-subpath bind VOLUME SUBPATH TARGET [VOLUME SUBPATH TARGET ...]
//
// It binds each in turn and stops at the first failure, writing to standard error one line
// "<index> mkdir|prepare <detail>" and exiting 1. Usage errors exit 2.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/satellite-vk/satellite/remote/subpath"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) < 4 || args[0] != "bind" || (len(args)-1)%3 != 0 {
		fmt.Fprintln(os.Stderr, "usage: satellite-subpath bind VOLUME SUBPATH TARGET [VOLUME SUBPATH TARGET ...]")
		return 2
	}
	for i := 0; (i+1)*3 < len(args); i++ {
		m := subpath.Mount{Volume: args[1+3*i], SubPath: args[2+3*i], Target: args[3+3*i]}
		if err := subpath.Bind(m); err != nil {
			kind := "prepare"
			if errors.Is(err, subpath.ErrMakeDir) {
				kind = "mkdir"
			}
			fmt.Fprintf(os.Stderr, "%d %s %v\n", i, kind, err)
			return 1
		}
	}
	return 0
}
