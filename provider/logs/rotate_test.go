package logs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/satellite-vk/satellite/provider/internal/fake"
)

// A log over MaxSize is renamed with a timestamp, the runtime reopens it, and only MaxFiles-1
// rotated files are kept; a runtime that cannot reopen it gets its file back.
func TestRotate(t *testing.T) {
	t.Parallel()
	const file = "/logs/ns_p_u/main/0.log"
	const old1, old2 = file + ".20260101-000000.000000001", file + ".20260101-000000.000000002"
	for _, tt := range []struct {
		name      string
		size      int
		reopenErr error
		want      []string // the files left, the new rotated one as file+".new"
	}{
		{name: "small: kept", size: 10, want: []string{file, old1, old2}},
		{name: "big: rotated, oldest removed", size: 100, want: []string{old2, file + ".new"}},
		{name: "reopen fails: put back", size: 100, reopenErr: errors.New("no"), want: []string{file, old1, old2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := hostWith(map[string]string{file: strings.Repeat("x", tt.size), old1: "old", old2: "newer"})
			cri := fake.NewRuntime()
			cri.AddContainer("sb", &runtimeapi.ContainerStatus{Id: "c1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: map[string]string{"node": "n1"}})
			cri.AddContainer("sb", &runtimeapi.ContainerStatus{Id: "c2", State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: map[string]string{"node": "n2"}})
			cri.Hooks.ReopenContainerLog = func(context.Context, *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
				if tt.reopenErr != nil {
					return nil, tt.reopenErr
				}
				return nil, fake.Pass
			}
			m := New(Config{
				Selector: map[string]string{"node": "n1"},
				LogFile:  func(*runtimeapi.Container) string { return file },
				MaxSize:  50,
				MaxFiles: 3,
			}, files, cri)
			if err := m.rotateAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range files.Paths("/logs") {
				if _, isFile := files.File(f); !isFile {
					continue
				}
				if f != file && f != old1 && f != old2 {
					f = file + ".new"
				}
				got = append(got, f)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("files %q, want %q", got, tt.want)
			}
			// The container's log is reopened once rotated (c2 is another node's); a reopen
			// that failed is asked all the same.
			if asked := cri.CallsOf("ReopenContainerLog"); (tt.size > 50) != slices.Equal(asked, []string{"c1"}) {
				t.Errorf("reopened %q", asked)
			}
		})
	}
}
