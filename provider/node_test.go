package provider

import (
	"context"
	"errors"
	"testing"

	"github.com/satellite-vk/satellite/provider/internal/fake"
)

// The node status's last check reaches the requests that need the host: while it found the
// SSH link down, the stats answer ErrHostUnreachable without a command on the host, and the
// resource metrics a scrape error.
func TestHostDownReachesStats(t *testing.T) {
	t.Parallel()
	host := fake.NewHost()
	host.PingErr = errors.New("connection refused")
	p := New(Config{NodeName: "n", MaxPods: 10}, Deps{Host: host, Runtime: fake.NewRuntime()})
	ctx := context.Background()
	p.Node(ctx)
	if _, err := p.GetStatsSummary(ctx); !errors.Is(err, ErrHostUnreachable) {
		t.Errorf("stats while the host is down: %v, want ErrHostUnreachable", err)
	}
	if cmds := host.Commands(); len(cmds) != 0 {
		t.Errorf("commands run on a host known to be down: %q", cmds)
	}
	mfs, err := p.GetMetricsResource(ctx)
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "resource_scrape_error" || mfs[0].Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("resource metrics while the host is down: %v, %v; want resource_scrape_error 1 alone", mfs, err)
	}
}
