package main

import (
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// errorLines are the lines of stderr that beamctl itself wrote as its
// final word, as opposed to the job's progress.
func errorLines(stderr string) []string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "beamctl: ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitExit waits for cmd to exit, at most bound, and returns its exit code
// and how long it took; past the bound the test fails and cmd is killed.
func waitExit(t *testing.T, cmd *exec.Cmd, bound time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	var err error
	select {
	case err = <-exited:
	case <-timer.C:
		cmd.Process.Kill()
		<-exited
		t.Fatalf("beamctl still ran %v after the fault", bound)
	}
	took := time.Since(start)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), took
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, took
}

// TestJobServerKilledMidJob SIGKILLs the upstream prism job server while
// submit follows a job whose workers run on this machine: beamctl exits 1
// within 10 s, in one line naming the endpoint, and neither a worker nor a
// temporary file of it stays.
func TestJobServerKilledMidJob(t *testing.T) {
	t.Parallel()
	dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")
	prism := startPrism(t)
	cmd, tmp, out := startInTmp(t, "submit", dist, "--endpoint", prism.Endpoint, "--environment", "loopback")
	waitOutput(t, out.String, "slow: element")
	// Close ends prism with SIGKILL: it has no chance to close a stream.
	prism.Close()
	code, took := waitExit(t, cmd, 10*time.Second)
	t.Logf("beamctl exited %d %v after the kill", code, took)
	if code != exitFailure {
		t.Errorf("exit %d, want %d\n%s", code, exitFailure, out.String())
	}
	lines := errorLines(out.String())
	if len(lines) != 1 || !strings.Contains(lines[0], prism.Endpoint) || !strings.Contains(lines[0], "lost track of job") {
		t.Errorf("want one line naming %s and the lost job; stderr:\n%s", prism.Endpoint, out.String())
	}
	if strings.Contains(out.String(), "level=WARN") {
		t.Errorf("warnings beside the one line:\n%s", out.String())
	}
	waitClean(t, tmp)
	if procs := processesWithEnv(t, "TMPDIR="+tmp); len(procs) > 0 {
		t.Errorf("%d processes of beamctl's still run", len(procs))
	}
}

// cutProxy forwards TCP connections to a job server and cuts them on
// demand, as a load balancer or a flaky network does.
type cutProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	conns    []net.Conn
	refuse   bool
	accepted int
	wg       sync.WaitGroup
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refuse {
			p.mu.Unlock()
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, b)
		p.accepted++
		p.wg.Add(2)
		go p.pipe(c, b)
		go p.pipe(b, c)
		p.mu.Unlock()
	}
}

// connections says how many connections the proxy has forwarded.
func (p *cutProxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes every connection open through the proxy; with refuse, it
// also closes each new one at once, as a job server gone for good.
func (p *cutProxy) cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.refuse = refuse
}

// TestFollowStreamCut cuts the connection to the upstream prism job server
// while submit follows a job: beamctl reconnects once and follows the job
// to its end, printing no message twice; when the job server stays out of
// reach, it exits 1 saying the job may still run and how to follow it
// again.
func TestFollowStreamCut(t *testing.T) {
	t.Parallel()
	dist := distOf(t, &slowOnce, &slowDist, "slow", "./testdata/slow")
	for _, tc := range []struct {
		name   string
		refuse bool
		code   int
		want   []string
	}{
		{name: "reconnects", code: 0, want: []string{"DONE"}},
		{name: "stays cut", refuse: true, code: exitFailure, want: []string{"the job may still be running there",
			"follow it again with: beamctl jobs logs --follow "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prism := startPrism(t)
			proxy := startCutProxy(t, prism.Endpoint)
			cmd, tmp, out := startInTmp(t, "submit", dist, "--endpoint", proxy.addr(), "--environment", "loopback",
				"--", "--delay=2s")
			waitOutput(t, out.String, "slow: element")
			proxy.cut(tc.refuse)
			code, _ := waitExit(t, cmd, 2*time.Minute)
			stderr := out.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			// A follow that did not notice the cut proves nothing.
			if n := proxy.connections(); !tc.refuse && n < 2 {
				t.Errorf("%d connections through the proxy: beamctl did not reconnect", n)
			}
			if tc.refuse {
				lines := errorLines(stderr)
				if len(lines) != 1 || !strings.Contains(lines[0], "--endpoint "+proxy.addr()) {
					t.Errorf("want one line naming --endpoint %s; stderr:\n%s", proxy.addr(), stderr)
				}
			}
			seen := map[string]bool{}
			for _, l := range strings.Split(stderr, "\n") {
				if l != "" && seen[l] {
					t.Errorf("printed twice: %q\n%s", l, stderr)
				}
				seen[l] = true
			}
			waitClean(t, tmp)
		})
	}
}
