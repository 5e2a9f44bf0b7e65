package logs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
			files := &memFiles{files: map[string]string{file: strings.Repeat("x", tt.size), old1: "old", old2: "newer"}}
			mine := &runtimeapi.Container{Id: "c1", Labels: map[string]string{"node": "n1"}}
			other := &runtimeapi.Container{Id: "c2", Labels: map[string]string{"node": "n2"}}
			cri := &fakeRuntime{containers: []*runtimeapi.Container{mine, other}, reopenErr: tt.reopenErr}
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
			for f := range files.files {
				if f != file && f != old1 && f != old2 {
					f = file + ".new"
				}
				got = append(got, f)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("files %q, want %q", got, tt.want)
			}
			if want := tt.size > 50 && tt.reopenErr == nil; want != slices.Equal(cri.reopened, []string{"c1"}) {
				t.Errorf("reopened %q", cri.reopened)
			}
		})
	}
}
