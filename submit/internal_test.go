package submit

import (
	"testing"
	"time"
)

func TestStagingTarget(t *testing.T) {
	tests := []struct {
		job, staging string
		want         string
		same         bool
	}{
		{"127.0.0.1:8073", "", "127.0.0.1:8073", true},
		{"127.0.0.1:8073", "localhost:8073", "127.0.0.1:8073", true},
		{"localhost:8073", "[::]:8073", "localhost:8073", true},
		{"jobs.example:8099", "localhost:8099", "jobs.example:8099", true},
		{"jobs.example:8099", "localhost:8098", "jobs.example:8098", false},
		{"jobs.example:8099", "0.0.0.0:8098", "jobs.example:8098", false},
		{"dns:///jobs.example:8099", "localhost:8099", "dns:///jobs.example:8099", true},
		{"jobs.example:8099", "staging.example:8098", "staging.example:8098", false},
		{"127.0.0.1:8073", "localhost:9000", "localhost:9000", false},
		{"jobs.example:8099", "not a host port", "not a host port", false},
	}
	for _, tt := range tests {
		t.Run(tt.job+" "+tt.staging, func(t *testing.T) {
			got, same := stagingTarget(tt.job, tt.staging)
			if got != tt.want || same != tt.same {
				t.Errorf("stagingTarget(%q, %q) = %q, %v; want %q, %v", tt.job, tt.staging, got, same, tt.want, tt.same)
			}
		})
	}
}

func TestJobFailedErrorText(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{"", "job j failed; the runner sent no reason"},
		{"boom", "job j failed: boom"},
		{"boom\n  at x\n", "job j failed: boom"},
		{"bundle failed: x\n\tcaused by:\nmain.f not found. Register DoFns and functions with the beam/register package.",
			"job j failed: main.f not found. Register DoFns and functions with the beam/register package: register it in an init function, which workers run too: register.FunctionXxY(f), from " + registerPkg + ", X and Y being its numbers of parameters and results"},
	}
	for _, tt := range tests {
		if got := (&JobFailedError{JobID: "j", Message: tt.msg}).Error(); got != tt.want {
			t.Errorf("Error() of message %q\n got %q\nwant %q", tt.msg, got, tt.want)
		}
	}
}

func TestNaturalCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"job-9", "job-10", -1},
		{"job-010", "job-9", 1},
		{"job-001", "job-001", 0},
		{"job-001", "job-1", 0},
		{"a", "b", -1},
		{"job", "job-1", -1},
		{"wc_1f3a", "wc_1f3b", -1},
		{"wc_2", "wc_10x", -1},
		{"", "a", -1},
	}
	for _, tt := range tests {
		if got := naturalCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
		if got := naturalCompare(tt.b, tt.a); got != -tt.want {
			t.Errorf("naturalCompare(%q, %q) = %d; want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	tests := []struct {
		r    Retry
		want time.Duration
	}{
		{Retry{}, 15 * time.Second},
		{Retry{Attempts: 1}, 0},
		{Retry{Attempts: 4, Delay: time.Second, MaxDelay: 3 * time.Second}, 6 * time.Second},
		{Retry{Attempts: 3, Delay: 2 * time.Second, MaxDelay: time.Second}, 4 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.r.withDefaults().budget(); got != tt.want {
			t.Errorf("budget of %+v = %v; want %v", tt.r, got, tt.want)
		}
	}
}
