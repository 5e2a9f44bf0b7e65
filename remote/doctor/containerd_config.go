package doctor

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// Defaults of containerd's CRI plugin when its config says nothing (containerd 1.6 to 2.2).
const (
	defaultCNIConfDir = "/etc/cni/net.d"
	defaultCNIBinDir  = "/opt/cni/bin"
)

// criPluginIDs are the entries of disabled_plugins that turn CRI off: the CRI gRPC service by
// its short ID ("cri", as some packages ship it) or full URI, and containerd 2.x's runtime and
// image plugins the service needs.
var criPluginIDs = []string{"cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"}

// containerdConfig is a containerd config.toml, read through the layout of its version: 3 for
// containerd 2.x, 2 for 1.x, 1 (no version key) for old 1.x files.
type containerdConfig struct {
	doc     *tomlDoc
	version int
	runtime []string // the table of the CRI runtime settings (restrict_oom_score_adj, ...)
	cni     []string // the table of conf_dir and the CNI plugin directory
}

func parseContainerdConfig(text string) (*containerdConfig, error) {
	doc, err := parseTOML(text)
	if err != nil {
		return nil, err
	}
	c := &containerdConfig{doc: doc, version: 1}
	if k, ok := doc.get("version"); ok {
		n, isInt := k.value.(int64)
		if !isInt || n < 1 || n > 3 {
			return nil, fmt.Errorf("version %v: want 1, 2 or 3", k.value)
		}
		c.version = int(n)
	}
	switch c.version {
	case 3:
		c.runtime = []string{"plugins", "io.containerd.cri.v1.runtime"}
	case 2:
		c.runtime = []string{"plugins", "io.containerd.grpc.v1.cri"}
	default:
		c.runtime = []string{"plugins", "cri"}
	}
	c.cni = append(slices.Clone(c.runtime), "cni")
	return c, nil
}

// disabledCRI are the entries of disabled_plugins that disable CRI, and the line they are on.
func (c *containerdConfig) disabledCRI() ([]string, int) {
	var found []string
	for _, p := range c.doc.getStrings("disabled_plugins") {
		if slices.Contains(criPluginIDs, p) {
			found = append(found, p)
		}
	}
	k, _ := c.doc.get("disabled_plugins")
	return found, c.doc.line(k.lineStart)
}

func (c *containerdConfig) confDir() string {
	if d := c.doc.getString(append(c.cni, "conf_dir")...); d != "" {
		return d
	}
	return defaultCNIConfDir
}

// binDirs are the directories containerd looks for CNI plugins in. containerd 2.x reads the
// list bin_dirs, and still the deprecated bin_dir when the list is not set.
func (c *containerdConfig) binDirs() []string {
	if c.version == 3 {
		if dirs := c.doc.getStrings(append(c.cni, "bin_dirs")...); len(dirs) > 0 {
			return dirs
		}
	}
	if d := c.doc.getString(append(c.cni, "bin_dir")...); d != "" {
		return []string{d}
	}
	return []string{defaultCNIBinDir}
}

func (c *containerdConfig) restrictOOMScoreAdj() bool {
	k, _ := c.doc.get(append(c.runtime, "restrict_oom_score_adj")...)
	v, _ := k.value.(bool)
	return v
}

// sandboxImage is the pause image the config names, "" when it names none.
func (c *containerdConfig) sandboxImage() string {
	if c.version == 3 {
		return c.doc.getString("plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox")
	}
	return c.doc.getString(append(c.runtime, "sandbox_image")...)
}

// configWants is what a host needs in its containerd config besides CRI being enabled.
type configWants struct {
	// restrictOOMScoreAdj: the host cannot lower oom_score_adj (no CAP_SYS_RESOURCE in its
	// bounding set: a container, some VMs), so runc fails every sandbox unless containerd
	// keeps containers' oom_score_adj at or above its own.
	restrictOOMScoreAdj bool
	// cniBinDir is a directory holding the CNI loopback plugin to add to the plugin
	// directories ("" when they already hold one): Debian and Ubuntu install the plugins in
	// /usr/lib/cni, not in containerd's default /opt/cni/bin.
	cniBinDir string
}

// fixContainerdConfig returns text changed as Satellite needs, with one line per change. A
// text without keys (a missing file) means containerd's defaults; settings added to it go in a
// config of version newVersion (3 for containerd 2.x, 2 for 1.x; 0 if unknown).
func fixContainerdConfig(text string, newVersion int, w configWants) (string, []string, error) {
	c, err := parseContainerdConfig(text)
	if err != nil {
		return "", nil, err
	}
	e := &configEdit{text: text, c: c}
	if len(c.doc.keys) == 0 && (w.restrictOOMScoreAdj || w.cniBinDir != "") {
		if err := e.setVersion(newVersion); err != nil {
			return "", nil, err
		}
	}
	for _, step := range []func(configWants) error{e.enableCRI, e.restrictOOMScoreAdj, e.addCNIBinDir} {
		if err := step(w); err != nil {
			return "", nil, err
		}
	}
	return e.text, e.changes, nil
}

// configEdit is containerd's config being changed: its text, that text parsed, and the
// changes made so far, one line each.
type configEdit struct {
	text    string
	c       *containerdConfig
	changes []string
}

// setVersion starts a file of containerd's defaults with the version its settings are written
// in.
func (e *configEdit) setVersion(newVersion int) error {
	if newVersion == 0 {
		return errors.New("cannot tell containerd's version: start the file with version = 3 (containerd 2.x) or version = 2 (1.x)")
	}
	return e.apply(fmt.Sprintf("write a version %d config (containerd %d.x)", newVersion, newVersion-1), func() (string, error) {
		return e.c.doc.set([]string{"version"}, strconv.Itoa(newVersion))
	})
}

// apply makes one change, which must leave a config that parses.
func (e *configEdit) apply(change string, edit func() (string, error)) error {
	out, err := edit()
	if err != nil {
		return err
	}
	c, err := parseContainerdConfig(out)
	if err != nil {
		return fmt.Errorf("%s: the edited config does not parse: %w", change, err)
	}
	e.text, e.c = out, c
	e.changes = append(e.changes, change)
	return nil
}

// enableCRI removes the CRI plugin from disabled_plugins.
func (e *configEdit) enableCRI(configWants) error {
	found, _ := e.c.disabledCRI()
	if len(found) == 0 {
		return nil
	}
	keep := slices.DeleteFunc(e.c.doc.getStrings("disabled_plugins"), func(p string) bool { return slices.Contains(found, p) })
	return e.apply("enable the CRI plugin: remove "+quoteAll(found)+" from disabled_plugins", func() (string, error) {
		return e.c.doc.set([]string{"disabled_plugins"}, renderStrings(keep))
	})
}

// restrictOOMScoreAdj sets the runtime's restrict_oom_score_adj when the host needs it.
func (e *configEdit) restrictOOMScoreAdj(w configWants) error {
	if !w.restrictOOMScoreAdj || e.c.restrictOOMScoreAdj() {
		return nil
	}
	path := append(slices.Clone(e.c.runtime), "restrict_oom_score_adj")
	return e.apply("set "+renderPath(path)+" = true: this host cannot lower oom_score_adj", func() (string, error) {
		return e.c.doc.set(path, "true")
	})
}

// addCNIBinDir adds the directory of the host's CNI plugins to those containerd looks in.
func (e *configEdit) addCNIBinDir(w configWants) error {
	if w.cniBinDir == "" || slices.Contains(e.c.binDirs(), w.cniBinDir) {
		return nil
	}
	path, value := append(slices.Clone(e.c.cni), "bin_dir"), renderString(w.cniBinDir)
	if e.c.version == 3 {
		path, value = append(slices.Clone(e.c.cni), "bin_dirs"), renderStrings(append(e.c.binDirs(), w.cniBinDir))
	}
	return e.apply("look for CNI plugins in "+w.cniBinDir+" too: "+renderPath(path)+" = "+value, func() (string, error) {
		return e.c.doc.set(path, value)
	})
}

func quoteAll(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}

var containerdVersionRE = regexp.MustCompile(`(?:^|\s)v?(\d+)\.(\d+)\.\d+`)

// containerdMajor reads the major version from `containerd --version` ("containerd
// github.com/containerd/containerd/v2 v2.2.1 dea7da5...", "containerd containerd.io 1.6.20
// 2806fc1...", Debian's "... 1.6.20~ds1 ..."); 0 when it cannot tell.
func containerdMajor(out string) int {
	m := containerdVersionRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return n
}

// loopbackConflist is a CNI configuration that only brings up loopback: enough for containerd
// to report NetworkReady, and all Satellite's pods need, since they use the host's network.
const loopbackConflist = `{"cniVersion":"0.4.0","name":"satellite-loopback","plugins":[{"type":"loopback"}]}` + "\n"

const loopbackConflistName = "99-satellite-loopback.conflist"
