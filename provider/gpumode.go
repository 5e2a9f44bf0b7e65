package provider

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
func (p *Provider) readCRIConfig(ctx context.Context) (criConfig, error) {
	st, err := p.cri.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
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

// autoGPUMode is what --gpu-mode=auto means given containerd's configuration and the CDI
// specs naming nvidia.com/gpu (cdiSpecCommand's output); why says so for the log.
func autoGPUMode(cfg criConfig, specs string) (mode GPUMode, why string) {
	var files []string
	for _, f := range strings.Split(specs, "\n") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	dirs := strings.Join(cfg.CDISpecDirs, ", ")
	switch {
	case cfg.EnableCDI && len(files) > 0:
		return GPUModeCDI, "containerd's CDI is on and " + strings.Join(files, ", ") + " names nvidia.com/gpu"
	case cfg.EnableCDI:
		return GPUModeEnv, "containerd's CDI is on, but no CDI spec in " + dirs + " names nvidia.com/gpu (nvidia-ctk cdi generate writes one)"
	}
	return GPUModeEnv, "containerd's CDI is off"
}

// resolveGPUMode sets f.GPUMode to what --gpu-mode=auto means on the host, when it has GPUs.
// When containerd cannot be asked, the last answer (old's) stands.
func (p *Provider) resolveGPUMode(ctx context.Context, f, old *hostFacts) {
	if p.cfg.GPUMode != GPUModeAuto || len(f.GPUs) == 0 {
		return
	}
	if old != nil {
		f.GPUMode = old.GPUMode
	}
	cfg, err := p.readCRIConfig(ctx)
	var specs []byte
	if err == nil && cfg.EnableCDI {
		if specs, err = p.host.Output(ctx, cdiSpecCommand(cfg.CDISpecDirs)); err != nil {
			err = fmt.Errorf("look for CDI specs: %w", err)
		}
	}
	if err != nil {
		log.G(ctx).WithError(err).Warn("--gpu-mode=auto: cannot tell whether the host's containerd gives GPUs by CDI; keeping the last answer")
		return
	}
	mode, why := autoGPUMode(cfg, string(specs))
	if mode != f.GPUMode {
		log.G(ctx).WithField("gpuMode", mode).Info("--gpu-mode=auto: " + why)
	}
	f.GPUMode = mode
}

// gpuMode is how containers are given their GPUs: the configured mode, or what auto found on
// the host. auto has its answer from the check that first reads the GPUs, unless containerd
// could not be asked then: until it can, env.
func (p *Provider) gpuMode() GPUMode {
	if p.cfg.GPUMode != GPUModeAuto {
		return p.cfg.GPUMode
	}
	p.node.mu.Lock()
	defer p.node.mu.Unlock()
	if p.node.facts == nil || p.node.facts.GPUMode == "" {
		return GPUModeEnv
	}
	return p.node.facts.GPUMode
}
