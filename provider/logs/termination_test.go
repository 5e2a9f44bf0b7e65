package logs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
)

func criLog(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("2026-11-22T01:00:00Z stdout F " + l + "\n")
	}
	return b.String()
}

func exited(code int32, reason, policy, message string) *runtimeapi.ContainerStatus {
	return &runtimeapi.ContainerStatus{
		Metadata: &runtimeapi.ContainerMetadata{Name: "main"}, State: runtimeapi.ContainerState_CONTAINER_EXITED,
		ExitCode: code, Reason: reason, Message: message, LogPath: "/logs/main/0.log",
		Annotations: map[string]string{kuberuntime.AnnotationTerminationPath: "/dev/termination-log", kuberuntime.AnnotationTerminationPolicy: policy},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/etc/hosts", HostPath: "/pods/x/etc-hosts"},
			{ContainerPath: "/dev/termination-log", HostPath: "/pods/x/containers/main/0a1b2c3d"},
		},
	}
}

func TestTerminationMessage(t *testing.T) {
	t.Parallel()
	const file, logs = "/pods/x/containers/main/0a1b2c3d", "/logs/main/0.log"
	var many []string
	for i := 1; i <= 100; i++ {
		many = append(many, fmt.Sprintf("line %03d", i))
	}
	long := strings.Repeat("x", 5000) + "THE END"
	fallback, readFile := string(corev1.TerminationMessageFallbackToLogsOnError), string(corev1.TerminationMessageReadFile)
	tests := []struct {
		name   string
		st     *runtimeapi.ContainerStatus
		files  map[string]string
		fail   error
		want   string
		cached bool
	}{
		{name: "file", st: exited(0, "Completed", readFile, ""), files: map[string]string{file: "all done\n"}, want: "all done\n", cached: true},
		{name: "after the runtime's message", st: exited(137, "OOMKilled", readFile, "out of memory"), files: map[string]string{file: "bye"}, want: "out of memory: bye", cached: true},
		{name: "last 4096 bytes", st: exited(1, "Error", readFile, ""), files: map[string]string{file: long}, want: long[len(long)-4096:], cached: true},
		{name: "empty file, File policy", st: exited(1, "Error", readFile, ""), files: map[string]string{file: "", logs: criLog("boom")}, want: "", cached: true},
		{name: "empty file, fallback, failed", st: exited(2, "Error", fallback, ""), files: map[string]string{file: "", logs: criLog("starting", "boom")},
			want: "starting\nboom\n", cached: true},
		{name: "missing file, fallback, failed", st: exited(2, "Error", fallback, ""), files: map[string]string{logs: criLog("boom")}, want: "boom\n", cached: true},
		{name: "fallback, succeeded", st: exited(0, "Completed", fallback, ""), files: map[string]string{file: "", logs: criLog("fine")}, want: "", cached: true},
		{name: "fallback, could not run", st: exited(128, "ContainerCannotRun", fallback, "exec: no such file"), files: map[string]string{file: "", logs: criLog("x")},
			want: "exec: no such file", cached: true},
		{name: "file wins over logs", st: exited(1, "Error", fallback, ""), files: map[string]string{file: "from file", logs: criLog("from logs")}, want: "from file", cached: true},
		{name: "last 80 lines", st: exited(1, "Error", fallback, ""), files: map[string]string{logs: criLog(many...)},
			want: strings.Join(many[20:], "\n") + "\n", cached: true},
		{name: "at most 2048 bytes of the log", st: exited(1, "Error", fallback, ""), files: map[string]string{logs: criLog(strings.Repeat("y", 3000) + "TAIL")},
			want: strings.Repeat("y", 2043) + "TAIL\n", cached: true},
		{name: "unreadable file", st: exited(1, "Error", fallback, ""), files: map[string]string{logs: criLog("x")}, fail: errors.New("permission denied"),
			want: "Error on reading termination log " + file + ": permission denied", cached: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := hostWith(tt.files)
			if tt.fail != nil {
				h.Fail(file, tt.fail)
			}
			m := New(Config{}, h, nil)
			cached := m.AddTerminationMessage(context.Background(), tt.st)
			if tt.st.Message != tt.want || cached != tt.cached {
				t.Errorf("message %q (final %v), want %q (final %v)", tt.st.Message, cached, tt.want, tt.cached)
			}
		})
	}
}

func TestTerminationSource(t *testing.T) {
	t.Parallel()
	st := exited(1, "Error", string(corev1.TerminationMessageFallbackToLogsOnError), "")
	st.Annotations[kuberuntime.AnnotationTerminationPath] = "/tmp/msg" // not mounted: an older container
	if f, fb := terminationSource(st); f != "" || !fb {
		t.Errorf("unmounted path: file %q fallback %v", f, fb)
	}
	st.Annotations[kuberuntime.AnnotationTerminationPath] = ""
	if f, _ := terminationSource(st); f != "" {
		t.Errorf("no path: file %q", f)
	}
}
