package submit_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/beamctl/beamctl/submit"
)

func varints(vs ...int64) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		coder.EncodeVarInt(v, &b)
	}
	return b.Bytes()
}

func stringSet(ss ...string) []byte {
	var b bytes.Buffer
	coder.EncodeInt32(int32(len(ss)), &b)
	for _, s := range ss {
		coder.EncodeStringUTF8(s, &b)
	}
	return b.Bytes()
}

func userInfo(urn, typ, transform, name string, payload []byte) *pipepb.MonitoringInfo {
	return &pipepb.MonitoringInfo{
		Urn:     "beam:metric:user:" + urn + ":v1",
		Type:    "beam:metrics:" + typ + ":v1",
		Labels:  map[string]string{"PTRANSFORM": transform, "NAMESPACE": "ns", "NAME": name},
		Payload: payload,
	}
}

func TestParseMetrics(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		name    string
		results *jobpb.MetricResults
		want    []submit.Metric
		wantErr string
	}{
		{
			name: "all user kinds, system metrics skipped",
			results: &jobpb.MetricResults{Committed: []*pipepb.MonitoringInfo{
				userInfo("sum_int64", "sum_int64", "t1", "count", varints(42)),
				userInfo("distribution_int64", "distribution_int64", "t1", "len", varints(3, 30, 1, 20)),
				userInfo("latest_int64", "latest_int64", "t2", "last", varints(at.UnixMilli(), -7)),
				userInfo("set_string", "set_string", "t2", "seen", stringSet("b", "a")),
				{Urn: "beam:metric:element_count:v1", Type: "beam:metrics:sum_int64:v1", Labels: map[string]string{"PCOLLECTION": "n1"}, Payload: varints(9)},
				userInfo("sum_double", "sum_double", "t1", "float", []byte{0, 0, 0, 0, 0, 0, 0, 0}),
			}},
			want: []submit.Metric{
				{Kind: submit.Counter, Namespace: "ns", Name: "count", Transform: "t1", Committed: true, Counter: 42},
				{Kind: submit.Distribution, Namespace: "ns", Name: "len", Transform: "t1", Committed: true, Distribution: submit.DistributionValue{Count: 3, Sum: 30, Min: 1, Max: 20}},
				{Kind: submit.Gauge, Namespace: "ns", Name: "last", Transform: "t2", Committed: true, Gauge: submit.GaugeValue{Value: -7, Time: at}},
				{Kind: submit.StringSet, Namespace: "ns", Name: "seen", Transform: "t2", Committed: true, StringSet: []string{"a", "b"}},
			},
		},
		{
			name: "committed replaces attempted, attempted alone is kept",
			results: &jobpb.MetricResults{
				Attempted: []*pipepb.MonitoringInfo{
					userInfo("sum_int64", "sum_int64", "t1", "count", varints(50)),
					userInfo("sum_int64", "sum_int64", "t1", "only_attempted", varints(5)),
				},
				Committed: []*pipepb.MonitoringInfo{userInfo("sum_int64", "sum_int64", "t1", "count", varints(42))},
			},
			want: []submit.Metric{
				{Kind: submit.Counter, Namespace: "ns", Name: "count", Transform: "t1", Committed: true, Counter: 42},
				{Kind: submit.Counter, Namespace: "ns", Name: "only_attempted", Transform: "t1", Counter: 5},
			},
		},
		{
			name: "empty distribution is a lone zero count",
			results: &jobpb.MetricResults{Committed: []*pipepb.MonitoringInfo{
				userInfo("distribution_int64", "distribution_int64", "t1", "len", varints(0)),
			}},
			want: []submit.Metric{{Kind: submit.Distribution, Namespace: "ns", Name: "len", Transform: "t1", Committed: true}},
		},
		{
			name: "truncated payload",
			results: &jobpb.MetricResults{Committed: []*pipepb.MonitoringInfo{
				userInfo("distribution_int64", "distribution_int64", "t1", "len", varints(3, 30)),
			}},
			wantErr: "decoding distribution metric ns/len of t1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := submit.ParseMetrics(tt.results)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMetrics error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMetrics =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
