package logs

import (
	"context"
	"testing"

	"github.com/satellite-vk/satellite/provider/internal/fake"
	"github.com/satellite-vk/satellite/remote"
)

// hostWith is an in-memory host holding files, by path.
func hostWith(files map[string]string) *fake.Host {
	h := fake.NewHost()
	for p, data := range files {
		h.SetFile(p, []byte(data), 0o644)
	}
	return h
}

// dataFile is where openData puts its bytes.
const dataFile = "/logs/data.log"

// openData opens data as a file of an in-memory host, which counts its reads.
func openData(t *testing.T, data []byte) (remote.File, *fake.Host) {
	t.Helper()
	h := fake.NewHost()
	h.SetFile(dataFile, data, 0o644)
	f, err := h.Open(context.Background(), dataFile)
	if err != nil {
		t.Fatal(err)
	}
	return f, h
}
