package dataflow

import (
	"strings"
	"testing"
)

func TestMachineArch(t *testing.T) {
	for _, tt := range []struct{ machine, arch string }{
		{"", "amd64"},
		{"t2a-standard-4", "arm64"},
		{"c4a-highmem-8", "arm64"},
		{"N4A-standard-2", "arm64"},
		{"n2-standard-4", "amd64"},
		{"c3a-standard-4", "amd64"}, // AMD, not Arm
		{"t2d-standard-4", "amd64"},
	} {
		if got := MachineArch(tt.machine); got != tt.arch {
			t.Errorf("MachineArch(%q) = %q, want %q", tt.machine, got, tt.arch)
		}
	}
}

func TestArgValue(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		name, val string
		found     bool
	}{
		{[]string{"--worker_machine_type=t2a-standard-1"}, "worker_machine_type", "t2a-standard-1", true},
		{[]string{"-machine_type", "c4a-standard-1"}, "machine_type", "c4a-standard-1", true},
		{[]string{"--machine_type=a", "--machine_type=b"}, "machine_type", "b", true},
		{[]string{"--dry_run"}, "dry_run", "true", true},
		{[]string{"--async", "--input=x"}, "async", "true", true},
		{[]string{"--", "--worker_binary=x"}, "worker_binary", "", false},
		{[]string{"--worker_machine_type_x=y"}, "worker_machine_type", "", false},
	} {
		v, ok := ArgValue(tt.args, tt.name)
		if v != tt.val || ok != tt.found {
			t.Errorf("ArgValue(%q, %q) = %q, %v; want %q, %v", tt.args, tt.name, v, ok, tt.val, tt.found)
		}
	}
}

// TestLogReader reads the SDK's slog text records as the launcher writes
// them, in pieces.
// TestLogReader reads the job, its id and console link from each format the
// SDK logs in: slog text (its default since v2.6x), slog JSON (--log_kind
// json), and the standard library's log of older SDKs, where the job's
// JSON spans lines of its own.
func TestLogReader(t *testing.T) {
	const (
		console = "https://console.cloud.google.com/dataflow/jobs/europe-west4/2026-01-01_00_00_00-123?project=p"
		spec    = "{\n  \"projectId\": \"p\",\n  \"type\": \"JOB_TYPE_BATCH\"\n}"
	)
	for _, tc := range []struct {
		name, log string
	}{
		{"slog text", `time=2026-01-01T00:00:00Z level=WARN msg="Error creating GCS client: dialing"
time=2026-01-01T00:00:00Z level=INFO msg="{\n  \"projectId\": \"p\",\n  \"type\": \"JOB_TYPE_BATCH\"\n}"
time=2026-01-01T00:00:00Z level=INFO msg="Submitted job: 2026-01-01_00_00_00-123"
time=2026-01-01T00:00:00Z level=INFO msg="Console: ` + console + `"
time=2026-01-01T00:00:00Z level=INFO msg=done`},
		{"slog JSON", `{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"{\n  \"projectId\": \"p\",\n  \"type\": \"JOB_TYPE_BATCH\"\n}"}
{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"Submitted job: 2026-01-01_00_00_00-123"}
{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"Console: ` + console + `"}
{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"done"}`},
		{"standard log", "2026/01/01 00:00:00 Error creating GCS client: dialing\n" +
			"2026/01/01 00:00:00 " + spec + "\n" +
			"2026/01/01 00:00:00 Submitted job: 2026-01-01_00_00_00-123\n" +
			"2026/01/01 00:00:00 Console: " + console + "\n" +
			"2026/01/01 00:00:00 done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newLogReader()
			log := tc.log
			for len(log) > 0 {
				n := min(7, len(log))
				r.Write([]byte(log[:n]))
				log = log[n:]
			}
			r.flush()
			j := r.job()
			if j.ID != "2026-01-01_00_00_00-123" || j.ConsoleURL != console || !strings.Contains(string(j.Spec), `"projectId": "p"`) {
				t.Errorf("job %+v, spec %s", j, j.Spec)
			}
			if got := lastLine(r.tail()); got != "done" {
				t.Errorf("last line %q", got)
			}
		})
	}
}

// TestLogReaderJobEnd reads how the SDK says a job it waited for ended.
func TestLogReaderJobEnd(t *testing.T) {
	const id = "2026-01-01_00_00_00-123"
	for _, tc := range []struct {
		name, log, want string
	}{
		{"done", `msg="Job ` + id + ` succeeded!"`, "DONE"},
		{"cancelled", `msg="Job ` + id + ` cancelled"`, "CANCELLED"},
		{"drained", `msg="Job ` + id + ` drained"`, "DRAINED"},
		{"failed, as the pipeline's error", `msg="wordcount: Job ` + id + ` failed"`, "FAILED"},
		{"still running", `msg="Job still running ..."`, ""},
		{"another job", `msg="Job 2026-01-01_00_00_00-999 cancelled"`, ""},
		{"the API failing", `msg="wordcount: failed to get job: googleapi: Error 503"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newLogReader()
			r.Write([]byte(`time=2026-01-01T00:00:00Z level=INFO msg="Submitted job: ` + id + `"` + "\n"))
			r.Write([]byte("time=2026-01-01T00:00:00Z level=INFO " + tc.log + "\n"))
			r.flush()
			if got := r.job().End; got != tc.want {
				t.Errorf("End = %q, want %q", got, tc.want)
			}
		})
	}
}
