package submit

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MetricKind is the kind of a user metric.
type MetricKind string

// User metric kinds of the Beam Go SDK.
const (
	Counter      MetricKind = "counter"
	Distribution MetricKind = "distribution"
	Gauge        MetricKind = "gauge"
	StringSet    MetricKind = "string_set"
)

// Metric is one user metric of one transform.
type Metric struct {
	Kind      MetricKind `json:"kind"`
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	// Transform is the unique name of the transform that reported it (its
	// id when the job server cannot tell the name).
	Transform string `json:"transform"`
	// Committed is false when the runner reported only attempted values,
	// which may count retried work twice.
	Committed bool `json:"committed"`

	Counter      int64             `json:"counter,omitempty"`
	Distribution DistributionValue `json:"distribution,omitzero"`
	Gauge        GaugeValue        `json:"gauge,omitzero"`
	StringSet    []string          `json:"string_set,omitempty"`
}

// DistributionValue summarises the values a distribution saw.
type DistributionValue struct {
	Count int64 `json:"count"`
	Sum   int64 `json:"sum"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
}

// Mean is the average value, 0 when there were none.
func (d DistributionValue) Mean() float64 {
	if d.Count == 0 {
		return 0
	}
	return float64(d.Sum) / float64(d.Count)
}

// GaugeValue is the latest value a gauge was set to.
type GaugeValue struct {
	Value int64     `json:"value"`
	Time  time.Time `json:"time"`
}

const userMetricPrefix = "beam:metric:user:"

var (
	sumInt64Type    = typeURN(pipepb.MonitoringInfoTypeUrns_SUM_INT64_TYPE)
	distInt64Type   = typeURN(pipepb.MonitoringInfoTypeUrns_DISTRIBUTION_INT64_TYPE)
	latestInt64Type = typeURN(pipepb.MonitoringInfoTypeUrns_LATEST_INT64_TYPE)
	setStringType   = typeURN(pipepb.MonitoringInfoTypeUrns_SET_STRING_TYPE)
)

func typeURN(t pipepb.MonitoringInfoTypeUrns_Enum) string {
	v := t.Descriptor().Values().ByNumber(protoreflect.EnumNumber(t))
	return proto.GetExtension(v.Options(), pipepb.E_BeamUrn).(string)
}

// Metrics returns the job's user metrics, committed values where the runner
// has them, sorted by transform, namespace and name.
func Metrics(ctx context.Context, conn grpc.ClientConnInterface, jobID string) ([]Metric, error) {
	resp, err := jobpb.NewJobServiceClient(conn).GetJobMetrics(ctx, &jobpb.GetJobMetricsRequest{JobId: jobID})
	if err != nil {
		if isNotFound(err) {
			return nil, notFound(jobID, endpointOf(conn))
		}
		if status.Code(err) == codes.Unimplemented {
			return nil, unsupported(endpointOf(conn), "report job metrics", "GetJobMetrics", err)
		}
		return nil, fmt.Errorf("fetching metrics of job %s: %w", jobID, err)
	}
	metrics, err := ParseMetrics(resp.GetMetrics())
	if err != nil {
		return nil, err
	}
	// Runners label metrics with transform ids; users know the names.
	pr, err := jobpb.NewJobServiceClient(conn).GetPipeline(ctx, &jobpb.GetJobPipelineRequest{JobId: jobID})
	if err != nil {
		return metrics, nil
	}
	transforms := pr.GetPipeline().GetComponents().GetTransforms()
	for i, m := range metrics {
		if name := transforms[m.Transform].GetUniqueName(); name != "" {
			metrics[i].Transform = name
		}
	}
	sortMetrics(metrics)
	return metrics, nil
}

// ParseMetrics extracts the user metrics from a job's monitoring infos.
// System metrics and kinds the Go SDK does not produce are skipped.
func ParseMetrics(r *jobpb.MetricResults) ([]Metric, error) {
	type key struct{ kind, transform, namespace, name string }
	byKey := map[key]int{}
	var out []Metric
	add := func(infos []*pipepb.MonitoringInfo, committed bool) error {
		for _, mi := range infos {
			m, ok, err := parseMetric(mi)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			m.Committed = committed
			k := key{string(m.Kind), m.Transform, m.Namespace, m.Name}
			if i, seen := byKey[k]; seen {
				out[i] = m
				continue
			}
			byKey[k] = len(out)
			out = append(out, m)
		}
		return nil
	}
	// Committed values replace attempted ones of the same metric.
	if err := add(r.GetAttempted(), false); err != nil {
		return nil, err
	}
	if err := add(r.GetCommitted(), true); err != nil {
		return nil, err
	}
	sortMetrics(out)
	return out, nil
}

func sortMetrics(ms []Metric) {
	slices.SortFunc(ms, func(a, b Metric) int {
		return cmp.Or(
			strings.Compare(a.Transform, b.Transform),
			strings.Compare(a.Namespace, b.Namespace),
			strings.Compare(a.Name, b.Name),
			strings.Compare(string(a.Kind), string(b.Kind)))
	})
}

func parseMetric(mi *pipepb.MonitoringInfo) (Metric, bool, error) {
	if !strings.HasPrefix(mi.GetUrn(), userMetricPrefix) {
		return Metric{}, false, nil
	}
	l := mi.GetLabels()
	m := Metric{Namespace: l["NAMESPACE"], Name: l["NAME"], Transform: l["PTRANSFORM"]}
	r := bytes.NewReader(mi.GetPayload())
	var err error
	switch mi.GetType() {
	case sumInt64Type:
		m.Kind = Counter
		m.Counter, err = coder.DecodeVarInt(r)
	case distInt64Type:
		m.Kind = Distribution
		d := &m.Distribution
		if d.Count, err = coder.DecodeVarInt(r); err == nil && d.Count > 0 {
			for _, v := range []*int64{&d.Sum, &d.Min, &d.Max} {
				if *v, err = coder.DecodeVarInt(r); err != nil {
					break
				}
			}
		}
	case latestInt64Type:
		m.Kind = Gauge
		var ms int64
		if ms, err = coder.DecodeVarInt(r); err == nil {
			m.Gauge.Time = time.UnixMilli(ms)
			m.Gauge.Value, err = coder.DecodeVarInt(r)
		}
	case setStringType:
		m.Kind = StringSet
		var n int32
		if n, err = coder.DecodeInt32(r); err == nil {
			for i := int32(0); i < n && err == nil; i++ {
				var s string
				if s, err = coder.DecodeStringUTF8(r); err == nil {
					m.StringSet = append(m.StringSet, s)
				}
			}
			slices.Sort(m.StringSet)
		}
	default:
		return Metric{}, false, nil
	}
	if err != nil {
		return Metric{}, false, fmt.Errorf("decoding %s metric %s/%s of %s: %w", m.Kind, m.Namespace, m.Name, m.Transform, err)
	}
	return m, true, nil
}
