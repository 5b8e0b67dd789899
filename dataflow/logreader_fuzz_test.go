package dataflow

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzLogReader feeds the reader of the SDK's log output nobody wrote, in
// pieces of any size, as a launcher's pipe delivers it: what it finds of
// the job is one line each (id, console link, end), a job spec it keeps is
// JSON, and its tail holds at most the lines it keeps.
func FuzzLogReader(f *testing.F) {
	for _, s := range []string{
		"time=2026-01-01T00:00:00Z level=INFO msg=\"Submitted job: 2026-01-01_00_00_00-123\"\n" +
			"time=2026-01-01T00:00:01Z level=INFO msg=\"Console: https://console.cloud.google.com/dataflow/jobs/europe-west4/2026-01-01_00_00_00-123?project=p\"\n",
		"2026/01/01 00:00:00 {\n  \"type\": \"JOB_TYPE_BATCH\",\n  \"name\": \"wc\"\n}\n2026/01/01 00:00:01 Submitted job: j1\n2026/01/01 00:00:02 Job j1 succeeded!\n",
		`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"Submitted job: j2"}` + "\nwordcount: Job j2 failed\n",
		"time=x msg=\"unterminated\n2026/01/01 00:00:00 Console: ::not a url\n",
		strings.Repeat("2026/01/01 00:00:00 line\n", 30),
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		r := newLogReader()
		n := int(chunk) + 1
		for len(data) > 0 {
			k := min(n, len(data))
			if _, err := r.Write(data[:k]); err != nil {
				t.Fatal(err)
			}
			data = data[k:]
		}
		r.flush()
		j := r.job()
		for name, v := range map[string]string{"id": j.ID, "console": j.ConsoleURL, "end": j.End} {
			if strings.Contains(v, "\n") {
				t.Fatalf("job %s spans lines: %q", name, v)
			}
		}
		if j.End != "" && !strings.Contains(" DONE CANCELLED DRAINED UPDATED FAILED ", " "+j.End+" ") {
			t.Fatalf("job end %q is not a state", j.End)
		}
		if j.Spec != nil && !json.Valid(j.Spec) {
			t.Fatalf("job spec is not JSON: %q", j.Spec)
		}
		if tail := r.tail(); tail != "" && strings.Count(tail, "\n")+1 > keepLines {
			t.Fatalf("tail keeps %d lines, more than %d", strings.Count(tail, "\n")+1, keepLines)
		}
	})
}
