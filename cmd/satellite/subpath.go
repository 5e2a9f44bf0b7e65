package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/satellite-vk/satellite/provider"
)

// subPathHelper reads satellite-subpath-linux-<arch> from dir, or from the directory of the
// running binary when dir is empty: the helper subPath mounts need on the host
// (cmd/satellite-subpath, built beside satellite by make build and in the image).
func subPathHelper(dir string) provider.HelperSource {
	return func(arch string) ([]byte, error) {
		d := dir
		if d == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("find the satellite-subpath helper: %w", err)
			}
			d = filepath.Dir(exe)
		}
		p := filepath.Join(d, "satellite-subpath-linux-"+arch)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("the satellite-subpath helper for a %s host: %w (build it with make build, or set --subpath-helper-dir)", arch, err)
		}
		return b, nil
	}
}
