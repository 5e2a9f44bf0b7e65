package volumes

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/remote"
)

// configMaps are Objects with ConfigMaps only.
type configMaps map[string]*corev1.ConfigMap

func (o configMaps) ConfigMap(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
	if cm, ok := o[name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (o configMaps) Secret(_ context.Context, _, name string) (*corev1.Secret, error) {
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func volumePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-0", UID: "u-1"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", TerminationMessagePath: "/dev/termination-log"}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/data", Type: ptr.To(corev1.HostPathDirectory)}}},
			},
		},
	}
}

// scriptHost is a fake host on which volume scripts succeed, reporting the pod files written,
// and /srv/data is a directory once exists is set.
type scriptHost struct {
	*fake.Host
	mu     sync.Mutex
	exists bool
	stdin  map[string][]byte // by script
}

func newScriptHost() *scriptHost {
	h := &scriptHost{Host: fake.NewHost(), stdin: map[string][]byte{}}
	h.Script(fake.Command{Prefix: "test -d '/srv/data'", Run: func(context.Context, string, []byte) ([]byte, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.exists {
			return nil, &remote.ExitError{Code: 1}
		}
		return nil, nil
	}}, fake.Command{Run: func(_ context.Context, cmd string, in []byte) ([]byte, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.stdin[cmd] = in
		return []byte(podFilesDone + "\n"), nil
	}})
	return h
}

// SetUp: the first script makes the pod's directory and carries the pod files; a failure is
// one FailedMount event however often it repeats; content already written is not sent again;
// Forget starts over.
func TestSetUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newScriptHost()
	rec := record.NewFakeRecorder(10)
	m := New(Config{Host: h, PodDir: "/pods", Recorder: rec,
		Objects: configMaps{"settings": {Data: map[string]string{"greeting": "hello"}}}})
	pod := volumePod()

	const failed = `MountVolume.SetUp failed for volume "data" : hostPath type check failed: /srv/data is not a directory`
	for i := range 2 {
		if err := m.SetUp(ctx, pod); err == nil || err.Error() != failed {
			t.Fatalf("SetUp %d: %v, want %q", i, err, failed)
		}
	}
	if n := len(rec.Events); n != 1 {
		t.Fatalf("%d events, want one FailedMount", n)
	}
	if got := <-rec.Events; got != "Warning FailedMount "+failed {
		t.Errorf("event %q, want a FailedMount with the failure", got)
	}
	if !m.Due(pod.UID) || m.Ready(pod.UID) {
		t.Errorf("after a failure: due %t, ready %t; want due, not ready", m.Due(pod.UID), m.Ready(pod.UID))
	}

	inputs := h.inputs()
	if len(inputs) != 2 {
		t.Fatalf("scripts %q, want the configMap's and the emptyDir's", inputs)
	}
	if !strings.HasPrefix(inputs[0], "(umask 077 && mkdir -p '/pods/shop_web-0_u-1'/volumes && chmod 0700 '/pods/shop_web-0_u-1') || exit 1; if podfiles_out=") ||
		!strings.Contains(inputs[0], "cd '/pods/shop_web-0_u-1/volumes/config' && tar -x") {
		t.Errorf("first script %q: want the pod directory, the pod files, then the configMap", inputs[0])
	}
	if want := "mkdir -p '/pods/shop_web-0_u-1/volumes/scratch' && chmod 0777 '/pods/shop_web-0_u-1/volumes/scratch'"; inputs[1] != want {
		t.Errorf("emptyDir script %q, want %q", inputs[1], want)
	}
	if got := h.tarFiles(t, inputs[0]); !strings.Contains(got, "/greeting 644 hello") || !strings.Contains(got, "greeting -> ..data/greeting") {
		t.Errorf("configMap content %s", got)
	}

	h.mu.Lock()
	h.exists = true
	h.mu.Unlock()
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if n := len(h.inputs()); n != 2 || len(rec.Events) != 0 {
		t.Errorf("unchanged volumes: %d scripts in all, %d events; want nothing more sent or recorded", n, len(rec.Events))
	}
	if m.Due(pod.UID) || !m.Ready(pod.UID) || m.ResyncIn(pod) <= 0 || m.ResyncIn(pod) > resync {
		t.Errorf("after success: due %t, ready %t, resync in %v", m.Due(pod.UID), m.Ready(pod.UID), m.ResyncIn(pod))
	}
	m.Forget(pod.UID)
	if !m.Due(pod.UID) || m.Ready(pod.UID) {
		t.Error("a forgotten pod's volumes are still known")
	}
}

// inputs are the scripts run with Input, in order.
func (h *scriptHost) inputs() []string {
	var out []string
	for _, c := range h.Calls() {
		if c.Method == "Input" {
			out = append(out, c.Arg)
		}
	}
	return out
}

// tarFiles lists the tar stream a script was given: "name mode data" for files,
// "name -> target" for symlinks.
func (h *scriptHost) tarFiles(t *testing.T, script string) string {
	h.mu.Lock()
	in := h.stdin[script]
	h.mu.Unlock()
	tr := tar.NewReader(bytes.NewReader(in))
	var out []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return strings.Join(out, ", ")
		}
		if err != nil {
			t.Fatal(err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			data, _ := io.ReadAll(tr)
			out = append(out, fmt.Sprintf("%s %o %s", hdr.Name, hdr.Mode, data))
		case tar.TypeSymlink:
			out = append(out, hdr.Name+" -> "+hdr.Linkname)
		}
	}
}

func TestMounts(t *testing.T) {
	t.Parallel()
	h := fake.NewHost()
	m := New(Config{Host: h, PodDir: "/pods"})
	pod := volumePod()
	c := &corev1.Container{Name: "main", VolumeMounts: []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/app"},
		{Name: "scratch", MountPath: "/tmp", MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)},
		{Name: "data", MountPath: "/data", ReadOnly: true},
		{Name: "scratch", MountPath: "/logs", SubPathExpr: "$(POD)"},
	}}
	mounts, binds, err := m.containerMounts(pod, c, map[string]string{"POD": "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mt := range mounts {
		got = append(got, fmt.Sprintf("%s<-%s ro=%t %s", mt.ContainerPath, mt.HostPath, mt.Readonly, runtimeapi.MountPropagation_name[int32(mt.Propagation)]))
	}
	want := []string{
		"/etc/app<-/pods/shop_web-0_u-1/volumes/config ro=true PROPAGATION_PRIVATE",
		"/tmp<-/pods/shop_web-0_u-1/volumes/scratch ro=false PROPAGATION_HOST_TO_CONTAINER",
		"/data<-/srv/data ro=true PROPAGATION_PRIVATE",
		"/logs<-/pods/shop_web-0_u-1/volume-subpaths/scratch/main/3 ro=false PROPAGATION_PRIVATE",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("mounts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantBind := subPathBind{mount: "scratch", volume: "/pods/shop_web-0_u-1/volumes/scratch", sub: "web-0", target: "/pods/shop_web-0_u-1/volume-subpaths/scratch/main/3"}
	if len(binds) != 1 || binds[0] != wantBind {
		t.Errorf("binds %+v, want %+v", binds, wantBind)
	}
	if _, err := m.Mounts(context.Background(), pod, &corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "nope"}}}, nil); err == nil || err.Error() != `volumeMount "nope": no such volume` {
		t.Errorf("unknown volume: %v", err)
	}
}

// Remove takes away the pod's directory, unmounting below it first; RemoveDir refuses what
// is not a pod directory.
func TestRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := fake.NewHost()
	h.Script(fake.Command{Prefix: "[ -e "})
	m := New(Config{Host: h, PodDir: "/pods"})
	if err := m.Remove(ctx, volumePod()); err != nil {
		t.Fatal(err)
	}
	if cmds := h.Commands(); len(cmds) != 1 || !strings.HasPrefix(cmds[0], "[ -e '/pods/shop_web-0_u-1' ] || exit 0; awk") ||
		!strings.HasSuffix(cmds[0], "rm -rf --one-file-system '/pods/shop_web-0_u-1'") {
		t.Errorf("commands %q", cmds)
	}
	for _, dir := range []string{"/pods", "/pods/a/b", "/var/lib/x", "/pods/../etc"} {
		if err := m.RemoveDir(ctx, dir); err == nil || !strings.HasPrefix(err.Error(), "refusing to remove") {
			t.Errorf("RemoveDir(%q): %v", dir, err)
		}
	}
	if n := len(h.Commands()); n != 1 {
		t.Errorf("%d commands run, want none for the refused paths", n-1)
	}
}
