package submit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/beamctl/beamctl/internal/check"
	"github.com/beamctl/beamctl/internal/problem"
)

// CheckEndpoint says whether a Beam job server answers at endpoint, and
// when something else does, what it looks like: Flink's REST port is the
// commonest mistake.
func CheckEndpoint(ctx context.Context, endpoint string, o DialOptions) check.Result {
	const name = "endpoint"
	o.Logger = nil
	conn, err := Dial(ctx, endpoint, o)
	if err == nil {
		defer conn.Close()
		jobs, err := ListJobs(ctx, conn)
		if err != nil {
			return check.Failure(name, problem.FirstLine(err.Error()), "check that "+endpoint+" is a Beam job server")
		}
		tls := "plaintext"
		if o.UseTLS() {
			tls = "TLS"
		}
		return check.Pass(name, fmt.Sprintf("%s answers the Beam Job API over %s (%d jobs)", endpoint, tls, len(jobs)))
	}
	msg := problem.FirstLine(err.Error())
	if errors.Is(err, ErrNotJobServer) || errors.Is(err, ErrTLSMismatch) {
		if what := httpService(ctx, endpoint); what != "" {
			return check.Failure(name, endpoint+" is "+what+", not a Beam job server",
				"give the Beam job server's port: the Flink job server listens on 8099 by default, Spark's on 8099 too, prism on 8073")
		}
	}
	// A dial error says what to do in its own words.
	var de *DialError
	if errors.As(err, &de) {
		return check.Failure(name, de.msg, "")
	}
	return check.Failure(name, msg, "check {Endpoint}, that the job server runs, and {TLS}")
}

// httpService names an HTTP service at endpoint, if one answers.
func httpService(ctx context.Context, endpoint string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+"/config", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case bytes.Contains(body, []byte(`"flink-version"`)):
		return "Flink's REST API (the web UI's port, 8081 by default)"
	case strings.HasSuffix(endpoint, ":8081"):
		return "an HTTP server on 8081, where Flink's REST API listens by default"
	}
	return "an HTTP server (" + resp.Status + ")"
}
