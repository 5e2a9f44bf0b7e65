package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/kuberuntime"
	"github.com/satellite-vk/satellite/remote"
)

// An exited container's termination message is read as the kubelet reads it
// (kuberuntime_container.go getTerminationMessage, readLastStringFromContainerLogs): the last
// 4096 bytes of the file mounted at its terminationMessagePath; with FallbackToLogsOnError, a
// failed container (not one that could not even start) whose file is empty or missing gets the
// last 80 lines of its log, at most their last 2048 bytes. The message follows the runtime's
// own, after ": ".

const (
	maxTerminationMessage  = 4096 // kubecontainer.MaxContainerTerminationMessageLength
	maxTerminationLogLines = 80   // MaxContainerTerminationMessageLogLines
	maxTerminationLogBytes = 2048 // MaxContainerTerminationMessageLogLength
	// maxPodTerminationMessages is what the messages of all a pod's containers may take
	// together (MaxPodTerminationMessageLogLength, 12 KiB).
	maxPodTerminationMessages = 12 << 10
)

// CapTerminationMessages cuts every terminated state's message, in state and lastState, to
// an equal share of maxPodTerminationMessages per container of the pod, keeping its
// beginning, as the kubelet's status manager does to every status it sends (normalizeStatus):
// the message of a pod with seven containers is at most 1755 bytes, whatever its file held.
func CapTerminationMessages(pod *corev1.Pod, st *corev1.PodStatus) {
	limit := maxPodTerminationMessages
	if n := len(pod.Spec.Containers) + len(pod.Spec.InitContainers) + len(pod.Spec.EphemeralContainers); n > 0 {
		limit /= n
	}
	for _, ss := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses, st.EphemeralContainerStatuses} {
		for i := range ss {
			for _, t := range []*corev1.ContainerStateTerminated{ss[i].State.Terminated, ss[i].LastTerminationState.Terminated} {
				if t != nil && len(t.Message) > limit {
					t.Message = t.Message[:limit]
				}
			}
		}
	}
}

// terminationSource says where an exited container's message is to be read: the host path of
// its termination message file ("" when none is mounted), and whether to fall back to its log.
func terminationSource(st *runtimeapi.ContainerStatus) (file string, fallback bool) {
	fallback = st.Annotations[kuberuntime.AnnotationTerminationPolicy] == string(corev1.TerminationMessageFallbackToLogsOnError) &&
		st.ExitCode != 0 && st.Reason != "ContainerCannotRun"
	want := st.Annotations[kuberuntime.AnnotationTerminationPath]
	if want == "" {
		return "", fallback
	}
	for _, m := range st.Mounts {
		if m.ContainerPath == want {
			return m.HostPath, fallback
		}
	}
	return "", fallback
}

// withTerminationMessage appends the termination message to the runtime's message.
func withTerminationMessage(runtimeMessage, message string) string {
	switch {
	case message == "":
		return runtimeMessage
	case runtimeMessage == "":
		return message
	}
	return runtimeMessage + ": " + message
}

// AddTerminationMessage completes an exited container's message. It reports false when a
// file could not be read for another reason than its absence: the status then carries the
// kubelet's error message and is read again at the next sync.
func (m *Manager) AddTerminationMessage(ctx context.Context, st *runtimeapi.ContainerStatus) bool {
	file, fallback := terminationSource(st)
	var msg string
	final := true
	if file != "" {
		data, err := m.readTail(ctx, file, maxTerminationMessage)
		switch {
		case errors.Is(err, remote.ErrNotFound):
		case err != nil:
			log.G(ctx).WithError(err).WithField("container", st.GetMetadata().GetName()).Warn("cannot read the termination message")
			msg, fallback, final = fmt.Sprintf("Error on reading termination log %s: %v", file, err), false, false
		default:
			msg, fallback = string(data), fallback && len(data) == 0
		}
	}
	if fallback && path.IsAbs(st.LogPath) {
		var err error
		if msg, err = m.lastLogString(ctx, st.LogPath); err != nil {
			msg, final = fmt.Sprintf("Error on reading termination message from logs: %v", err), false
		}
	}
	st.Message = withTerminationMessage(st.Message, msg)
	return final
}

// readTail reads at most the last limit bytes of a file on the host.
func (m *Manager) readTail(ctx context.Context, file string, limit int64) ([]byte, error) {
	f, err := m.files.Open(ctx, file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	start := max(0, fi.Size()-limit)
	data, err := io.ReadAll(io.NewSectionReader(f, start, fi.Size()-start))
	if err != nil {
		return nil, fmt.Errorf("read %s on host: %w", file, err)
	}
	return data, nil
}

// lastLogString is what kubectl logs --tail=80 shows of the container's log file, at most its
// last 2048 bytes.
func (m *Manager) lastLogString(ctx context.Context, file string) (string, error) {
	f, err := m.files.Open(ctx, file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	return lastLogLines(f, fi.Size())
}

// lastLogLines formats the last 80 lines of a CRI log file and keeps the last 2048 bytes.
func lastLogLines(r io.ReaderAt, size int64) (string, error) {
	start, err := tailStart(r, size, maxTerminationLogLines)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	lf := &logFormatter{w: &out}
	if _, err := io.Copy(lf, io.NewSectionReader(r, start, size-start)); err != nil {
		return "", err
	}
	b := out.Bytes()
	return string(b[max(0, len(b)-maxTerminationLogBytes):]), nil
}
