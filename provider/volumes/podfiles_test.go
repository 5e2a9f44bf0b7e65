package volumes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestHostAliasEntries(t *testing.T) {
	t.Parallel()
	if got := hostAliasEntries(nil); len(got) != 0 {
		t.Errorf("no aliases: %q", got)
	}
	got := string(hostAliasEntries([]corev1.HostAlias{
		{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}},
		{IP: "fd00::1", Hostnames: []string{"v6.local"}},
	}))
	want := "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\nfd00::1\tv6.local\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The script that writes a pod's files runs here as it runs on the host, with a hosts file
// of the test's own in place of /etc/hosts.
func TestPodFilesScript(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	const hostContent = "127.0.0.1\tlocalhost\n192.0.2.10\tgpu-box # the host's own\n"
	if err := os.WriteFile(hosts, []byte(hostContent), 0o644); err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(dir, "pods", "shop_web-0_u-1")
	term := []string{filepath.Join(podDir, "containers", "main", "0a1b2c3d"), filepath.Join(podDir, "containers", "init", "deadbeef")}
	aliases := hostAliasEntries([]corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local"}}})
	run := func() {
		cmd := exec.Command(sh, "-c", podFilesScript(podDir, hosts, aliases, term))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script: %v: %s", err, out)
		}
	}
	run()
	got, err := os.ReadFile(filepath.Join(podDir, "etc-hosts"))
	if err != nil {
		t.Fatal(err)
	}
	want := "# Kubernetes-managed hosts file (host network).\n" + hostContent + "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\n"
	if string(got) != want {
		t.Errorf("etc-hosts =\n%s\nwant\n%s", got, want)
	}
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(podDir); m != 0o700 {
		t.Errorf("pod directory mode %o, want 700", m)
	}
	if m := mode(filepath.Join(podDir, "etc-hosts")); m != 0o644 {
		t.Errorf("etc-hosts mode %o, want 644", m)
	}
	for _, f := range term {
		if m := mode(f); m != 0o666 {
			t.Errorf("%s mode %o, want 666", f, m)
		}
	}
	// A container that wrote its message, then the next round (a restart): the hosts file is
	// rewritten in place, other files are left alone.
	if err := os.WriteFile(term[0], []byte("bye"), 0o666); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(filepath.Join(podDir, "etc-hosts"))
	term = term[1:]
	run()
	after, _ := os.Stat(filepath.Join(podDir, "etc-hosts"))
	if !os.SameFile(before, after) {
		t.Error("etc-hosts was replaced, not rewritten: running containers would keep the old file")
	}
	if b, _ := os.ReadFile(filepath.Join(podDir, "containers", "main", "0a1b2c3d")); string(b) != "bye" {
		t.Errorf("an earlier termination file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(podDir, ".etc-hosts.new")); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestMountsAt(t *testing.T) {
	t.Parallel()
	c := &corev1.Container{VolumeMounts: []corev1.VolumeMount{{MountPath: "/data"}, {MountPath: "/etc/hosts/"}}}
	if !mountsAt(c, etcHosts) || mountsAt(c, "/etc") {
		t.Error("mountsAt misreads the container's mounts")
	}
}

// The pod files' script ahead of a volume's in one session: the volume's script gets the
// whole standard input, the report says whether the pod files were written, and their
// failure does not stop the volume.
func TestWithPodFiles(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const payload = "the volume's tar stream\n"
	volume := "set -e; cat > " + filepath.Join(dir, "volume") + "; exit $1"
	for _, tc := range []struct {
		name      string
		hosts     string
		volumeRC  string
		written   bool
		volumeErr bool
	}{
		{"both succeed", hosts, "0", true, false},
		{"pod files fail, volume succeeds", filepath.Join(dir, "missing"), "0", false, false},
		{"pod files succeed, volume fails", hosts, "3", true, true},
	} {
		podDir := filepath.Join(dir, "pods", tc.name)
		cmd := exec.Command(sh, "-c", withPodFiles(podFilesScript(podDir, tc.hosts, nil, nil), volume), "sh", tc.volumeRC)
		cmd.Stdin = bytes.NewReader([]byte(payload))
		out, err := cmd.Output()
		if (err != nil) != tc.volumeErr {
			t.Errorf("%s: volume script error %v, want error %t", tc.name, err, tc.volumeErr)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "volume")); string(got) != payload {
			t.Errorf("%s: the volume's script read %q, want all of standard input %q", tc.name, got, payload)
		}
		written, why := podFilesWritten(out)
		if written != tc.written {
			t.Errorf("%s: pod files written %t (%q), want %t; output %q", tc.name, written, why, tc.written, out)
		}
		if !tc.written && !strings.Contains(why, "missing") {
			t.Errorf("%s: the report %q does not say what failed", tc.name, why)
		}
		if _, err := os.Stat(filepath.Join(podDir, "etc-hosts")); (err == nil) != tc.written {
			t.Errorf("%s: etc-hosts present %t, want %t", tc.name, err == nil, tc.written)
		}
	}
}
