package provider

import (
	"context"

	dto "github.com/prometheus/client_model/go"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// GetStatsSummary answers the kubelet API's /stats/summary (stats.Collector.Summary). The
// summary is shared with other requests and must not be modified.
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsapi.Summary, error) {
	return p.stats.Summary(ctx)
}

// GetMetricsResource answers the kubelet API's /metrics/resource, which metrics-server reads
// (stats.Collector.ResourceMetrics).
func (p *Provider) GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	return p.stats.ResourceMetrics(ctx)
}
