package gpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/remote"
)

// Mode says how the host's NVIDIA GPUs are advertised and handed to containers.
type Mode string

const (
	// ModeAuto asks the host's containerd: ModeCDI when its CDI is on and a CDI spec in its
	// spec directories names nvidia.com/gpu, else ModeEnv.
	ModeAuto Mode = "auto"
	// ModeCDI gives a container its devices as CDI names (nvidia.com/gpu=<index>) in the
	// CRI ContainerConfig.CDIDevices, resolved by containerd against the spec that the NVIDIA
	// Container Toolkit's `nvidia-ctk cdi generate` writes.
	ModeCDI Mode = "cdi"
	// ModeEnv sets NVIDIA_VISIBLE_DEVICES to the devices' UUIDs, which the NVIDIA container
	// runtime reads: the sandboxes of pods asking for GPUs run with the runtime handler
	// Config.RuntimeHandler (runtimehandler.go).
	ModeEnv Mode = "env"
	// ModeOff never advertises GPUs.
	ModeOff Mode = "off"
)

// ParseMode checks a --gpu-mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeCDI, ModeEnv, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("GPU mode %q: want auto, cdi, env or off", s)
}

// With --gpu-mode=auto Satellite asks the host how its containerd can hand GPUs to
// containers. CDI needs two things, the ones `satellite host doctor` checks
// (remote/doctor/gpu.go): containerd's CDI on (enable_cdi: containerd 1.7 with it set, 2.x by
// default) and a CDI spec for nvidia.com/gpu in one of its cdi_spec_dirs (what `nvidia-ctk cdi
// generate` writes). containerd tells the first in its CRI configuration, which a verbose CRI
// Status carries as JSON in Info["config"] (what `crictl info` prints); the second is a look
// in those directories. Without both, the devices go by NVIDIA_VISIBLE_DEVICES to the NVIDIA
// runtime handler. The answer is read again with the host's facts, so a host that gets its
// CDI spec later switches to CDI for the containers created from then on.

// criConfig is what Satellite reads of the "config" entry of a verbose CRI Status: containerd's
// CRI plugin configuration, in the JSON names containerd 1.6 to 2.x give it.
type criConfig struct {
	EnableCDI   bool     `json:"enableCDI"` // absent before containerd 1.7: off
	CDISpecDirs []string `json:"cdiSpecDirs"`
	Containerd  struct {
		Runtimes map[string]json.RawMessage `json:"runtimes"`
	} `json:"containerd"`
}

// defaultCDISpecDirs are containerd's cdi_spec_dirs when its configuration names none.
var defaultCDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// parseCRIConfig reads the "config" entry of a verbose CRI Status.
func parseCRIConfig(info map[string]string) (criConfig, error) {
	var c criConfig
	s, ok := info["config"]
	if !ok {
		return c, errors.New(`no "config" in the runtime's verbose status (not containerd?)`)
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return criConfig{}, fmt.Errorf("containerd's CRI configuration: %w", err)
	}
	if len(c.CDISpecDirs) == 0 {
		c.CDISpecDirs = defaultCDISpecDirs
	}
	return c, nil
}

// runtimes are the names of containerd's runtimes, the handlers a sandbox can ask for, sorted.
func (c *criConfig) runtimes() []string {
	names := make([]string, 0, len(c.Containerd.Runtimes))
	for name := range c.Containerd.Runtimes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// readCRIConfig asks the host's containerd for its CRI configuration.
func (m *Manager) readCRIConfig(ctx context.Context) (criConfig, error) {
	st, err := m.cri.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return criConfig{}, fmt.Errorf("container runtime status: %w", err)
	}
	return parseCRIConfig(st.GetInfo())
}

// cdiSpecCommand prints the CDI spec files in dirs (CDI reads *.yaml and *.json) that name
// nvidia.com/gpu, one per line.
func cdiSpecCommand(dirs []string) string {
	var globs []string
	for _, d := range dirs {
		globs = append(globs, remote.Quote(d)+"/*.yaml", remote.Quote(d)+"/*.json")
	}
	return "grep -lsF 'nvidia.com/gpu' " + strings.Join(globs, " ") + " 2>/dev/null; true"
}

// autoMode is what --gpu-mode=auto means given containerd's configuration and the CDI specs
// naming nvidia.com/gpu (cdiSpecCommand's output); why says so for the log.
func autoMode(cfg criConfig, specs string) (mode Mode, why string) {
	var files []string
	for _, f := range strings.Split(specs, "\n") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	dirs := strings.Join(cfg.CDISpecDirs, ", ")
	switch {
	case cfg.EnableCDI && len(files) > 0:
		return ModeCDI, "containerd's CDI is on and " + strings.Join(files, ", ") + " names nvidia.com/gpu"
	case cfg.EnableCDI:
		return ModeEnv, "containerd's CDI is on, but no CDI spec in " + dirs + " names nvidia.com/gpu (nvidia-ctk cdi generate writes one)"
	}
	return ModeEnv, "containerd's CDI is off"
}

// resolveMode is what --gpu-mode=auto means on the host now that it has devs; "" when the
// mode is set or there are no GPUs. When containerd cannot be asked, last (the answer before)
// stands.
func (m *Manager) resolveMode(ctx context.Context, devs []Device, last Mode) Mode {
	if m.cfg.Mode != ModeAuto || len(devs) == 0 {
		return ""
	}
	cfg, err := m.readCRIConfig(ctx)
	var specs []byte
	if err == nil && cfg.EnableCDI {
		if specs, err = m.host.Output(ctx, cdiSpecCommand(cfg.CDISpecDirs)); err != nil {
			err = fmt.Errorf("look for CDI specs: %w", err)
		}
	}
	if err != nil {
		log.G(ctx).WithError(err).Warn("--gpu-mode=auto: cannot tell whether the host's containerd gives GPUs by CDI; keeping the last answer")
		return last
	}
	mode, why := autoMode(cfg, string(specs))
	if mode != last {
		log.G(ctx).WithField("gpuMode", mode).Info("--gpu-mode=auto: " + why)
	}
	return mode
}
