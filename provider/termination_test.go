package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// filesHost is a host with a few files and nothing else.
type filesHost struct {
	Host  // the methods these tests do not use
	files map[string]string
	fail  map[string]error
}

func (h filesHost) Open(_ context.Context, p string) (remote.File, error) {
	if err := h.fail[p]; err != nil {
		return nil, err
	}
	data, ok := h.files[p]
	if !ok {
		return nil, fmt.Errorf("open %s on host: %w", p, remote.ErrNotFound)
	}
	return &memFile{data: []byte(data)}, nil
}

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
			h := filesHost{files: tt.files}
			if tt.fail != nil {
				h.fail = map[string]error{file: tt.fail}
			}
			p := &Provider{host: h}
			cached := p.addTerminationMessage(context.Background(), tt.st)
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

// The status holds at most an equal share of 12 KiB of termination message per container of
// the pod, in state and lastState, cut at its end as the kubelet's status manager cuts it.
func TestCapTerminationMessages(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 4093) + "END" // what a file of more than 4096 bytes gives
	withMessage := func(s *runtimeapi.ContainerStatus, msg string) *runtimeapi.ContainerStatus {
		s.Message = msg
		return s
	}
	const exitedState = runtimeapi.ContainerState_CONTAINER_EXITED
	tests := []struct {
		name        string
		pod         *corev1.Pod
		history     []*runtimeapi.ContainerStatus
		state, last int // lengths of the first container's messages
	}{
		{name: "alone: the whole 4096 bytes", pod: testPod(corev1.RestartPolicyNever, nil, "a"),
			history: []*runtimeapi.ContainerStatus{withMessage(ctr("a", 0, exitedState, 1), long)}, state: 4096},
		{name: "one of seven: 12288/7", pod: testPod(corev1.RestartPolicyNever, nil, "a", "b", "c", "d", "e", "f", "g"),
			history: []*runtimeapi.ContainerStatus{withMessage(ctr("a", 0, exitedState, 1), long)}, state: 1755},
		{name: "init containers count", pod: testPod(corev1.RestartPolicyNever, []string{"i1", "i2"}, "a"),
			history: []*runtimeapi.ContainerStatus{withMessage(ctr("a", 0, exitedState, 1), long)}, state: 4096},
		{name: "lastState too", pod: testPod(corev1.RestartPolicyAlways, []string{"i1", "i2", "i3"}, "a"),
			history: []*runtimeapi.ContainerStatus{ctr("a", 1, runtimeapi.ContainerState_CONTAINER_RUNNING, 0), withMessage(ctr("a", 0, exitedState, 1), long)}, state: -1, last: 3072},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs := observation{sandbox: readySandbox, containers: map[string][]*runtimeapi.ContainerStatus{"a": tt.history}}
			st := podStatus(statusInput{pod: tt.pod, obs: obs, hostIP: "10.0.0.5", start: time.Now()})
			cs := st.ContainerStatuses[0]
			state, last := -1, 0
			if cs.State.Terminated != nil {
				state = len(cs.State.Terminated.Message)
				if !strings.HasPrefix(long, cs.State.Terminated.Message) {
					t.Errorf("message is not the beginning of the file's last 4096 bytes: %q", cs.State.Terminated.Message)
				}
			}
			if cs.LastTerminationState.Terminated != nil {
				last = len(cs.LastTerminationState.Terminated.Message)
			}
			if state != tt.state || last != tt.last {
				t.Errorf("messages of %d and %d bytes in state and lastState, want %d and %d", state, last, tt.state, tt.last)
			}
			if tt.history[len(tt.history)-1].Message != long {
				t.Error("the runtime's status was changed")
			}
		})
	}
}
