package enginetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/beamctl/beamctl/internal/atomicfile"
	"github.com/beamctl/beamctl/internal/proc"
)

const (
	install = "apt-get install -y podman runc"
	// requireEnv turns a missing engine into a failure, so that a machine
	// meant to run the end-to-end tests cannot pass by skipping them.
	requireEnv = "BEAMCTL_REQUIRE_ENGINE"
	// runtimeEnv marks this program started as the engine's OCI runtime;
	// its value is the real runc.
	runtimeEnv = "BEAMCTL_INTERNAL_ENGINETEST_RUNC"

	// Generous, for a loaded two-core machine; the service answers in
	// about a second.
	startTimeout = time.Minute
	// The service exits at once on SIGTERM; this only bounds a hung one.
	stopGrace = 10 * time.Second
	// Removing containers kills them without a stop timeout; this bounds
	// an engine that hangs doing it.
	removeTimeout = time.Minute
	// How long an engine process seen after the engine stopped may take to
	// exit, should it be finishing a container's cleanup.
	exitTimeout = 10 * time.Second
)

// The engine's OCI runtime is this program started again (see runcShim):
// every test binary that links this package can be one, so the runtime
// needs nothing installed beyond runc.
func init() {
	if runc, ok := os.LookupEnv(runtimeEnv); ok {
		os.Exit(runcShim(runc, os.Args[1:]))
	}
}

// Options say what the engine's containers get.
type Options struct {
	// Insecure are registries, HOST:PORT, that the engine pulls from over
	// plain HTTP, as it must from a registrytest.Registry.
	Insecure []string
	// Volumes are directories that every container sees at the same path,
	// so that a job's input and output files are where the test put them.
	Volumes []string
}

// Engine is a running podman API service.
type Engine struct {
	// Host is the engine's address for DOCKER_HOST: unix://PATH.
	Host string

	t      testing.TB
	dir    string
	podman string
	runc   string
	env    []string
	client *http.Client
	// The service: stopService ends it; exited is closed once it has been
	// reaped, and exitErr then says how it ended.
	stopService context.CancelFunc
	exited      chan struct{}
	exitErr     error
}

// Start starts an engine for the test and, in t.Cleanup, removes every
// container it ran, stops it and checks that none of its processes is
// left. Without podman and runc, or without root, the test is skipped, or
// fails when BEAMCTL_REQUIRE_ENGINE is set.
func Start(t testing.TB, o Options) *Engine {
	t.Helper()
	podman, errPodman := exec.LookPath("podman")
	runc, errRunc := exec.LookPath("runc")
	if err := errors.Join(errPodman, errRunc); err != nil {
		unavailable(t, fmt.Sprintf("podman and runc are needed (%v); install them with: %s", err, install))
	}
	if os.Geteuid() != 0 {
		// Rootless podman needs user namespaces with subordinate ids set
		// up for the user, which a test cannot do.
		unavailable(t, "the container engine runs as root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A directory of its own, not t.TempDir: the socket's path must fit in
	// a sockaddr_un (108 bytes), which a long test name can overflow.
	dir, err := os.MkdirTemp("", "enginetest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing the engine's directory: %v", err)
		}
	})
	e := &Engine{t: t, dir: dir, podman: podman, runc: runc}
	e.env, err = configure(dir, runc, self, o)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	e.Host = "unix://" + sock
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	// The service gets f, a copy of the socket; this listener goes now, and
	// must leave the socket's file to the clients.
	f, err := l.File()
	l.SetUnlinkOnClose(false)
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	// systemd's socket activation: the socket listens before the service
	// starts, so clients may connect at once and nothing waits for the
	// service to be ready. The service takes the socket only if LISTEN_PID
	// is its own pid, which a shell learns and execs into it.
	argv := []string{"/bin/sh", "-c", `export LISTEN_PID=$$; exec "$@"`, "sh", podman, "system", "service", "--time=0"}
	if err := e.start(argv, f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	e.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(e.client.CloseIdleConnections)
	// One request, answered once the service has started: a configuration
	// it rejects fails here, with its output, not in the job server.
	if err := e.ping(); err != nil {
		t.Fatalf("container engine: %v\n%s", err, e.Output())
	}
	return e
}

func (e *Engine) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s", resp.Status)
	}
	return nil
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if _, required := os.LookupEnv(requireEnv); required {
		t.Fatalf("%s is set, but %s", requireEnv, why)
	}
	t.Skip(why)
}

// configure writes the engine's configuration into dir and returns the
// environment that has podman use it, and only it.
func configure(dir, runc, self string, o Options) ([]string, error) {
	shim := filepath.Join(dir, "runc")
	// runc keeps its containers' state in the engine's directory, not the
	// machine's, so that what podman fails to remove can be found.
	script := fmt.Sprintf("#!/bin/sh\n%s=%s exec %s --root %s \"$@\"\n", runtimeEnv, shellQuote(runc), shellQuote(self), shellQuote(runcState(dir)))
	if err := os.WriteFile(shim, []byte(script), 0o755); err != nil {
		return nil, err
	}
	var volumes []string
	for _, v := range o.Volumes {
		volumes = append(volumes, strconv.Quote(v+":"+v))
	}
	// Under the runtime's usual name, so that podman uses the features it
	// knows runc has. k8s-file logs and file events need no journald.
	// Conmon stays in the service's cgroup: with the cgroupfs manager it
	// would get one of its own that podman never removes.
	containers := fmt.Sprintf(`[containers]
volumes = [%s]
log_driver = "k8s-file"
cgroups = "no-conmon"

[engine]
runtime = "runc"
tmp_dir = %q
events_logger = "file"

[engine.runtimes]
runc = [%q]

[network]
network_config_dir = %q
`, strings.Join(volumes, ", "), filepath.Join(dir, "tmp"), shim, filepath.Join(dir, "networks"))
	// No driver: podman picks overlay where the filesystem allows it, else
	// vfs, and logs that it would rather be told.
	storage := fmt.Sprintf("[storage]\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "run"))
	var registries strings.Builder
	for _, r := range o.Insecure {
		fmt.Fprintf(&registries, "[[registry]]\nlocation = %q\ninsecure = true\n\n", r)
	}
	files := map[string]string{
		"containers.conf": containers,
		"storage.conf":    storage,
		"registries.conf": registries.String(),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	env := os.Environ()
	return append(env,
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"),
	), nil
}

func runcState(dir string) string { return filepath.Join(dir, "runc-state") }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// containers lists the IDs of the containers the engine has, running or
// not.
func (e *Engine) containers() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	out, err := e.podmanCmd(ctx, "ps", "--all", "--quiet", "--no-trunc")
	return strings.Fields(out), err
}

// start starts the service with the listener as its descriptor 3, and
// closes this process's copy once the service has its own. The service
// writes to a file, not a pipe: conmon inherits its output and outlives it.
func (e *Engine) start(argv []string, listener *os.File) error {
	out, err := os.Create(e.logPath())
	if err != nil {
		listener.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stopService, e.exited = cancel, make(chan struct{})
	var once sync.Once
	closeFiles := func() {
		once.Do(func() {
			listener.Close()
			out.Close()
		})
	}
	go func() {
		defer close(e.exited)
		defer closeFiles()
		res, err := proc.Run(ctx,
			proc.Cmd{Argv: argv, Env: append(e.env, "LISTEN_FDS=1"), Stdout: out, Stderr: out, ExtraFiles: []*os.File{listener}},
			proc.Options{Grace: stopGrace, Started: func(int) { closeFiles() }})
		e.exitErr = cmp.Or(err, res.Err, errors.New("exited with status 0"))
	}()
	return nil
}

func (e *Engine) logPath() string { return filepath.Join(e.dir, "service.log") }

// Output returns what the service has logged so far.
func (e *Engine) Output() string {
	b, err := os.ReadFile(e.logPath())
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// podmanCmd runs podman with the engine's configuration, beside the
// service: podman shares its storage between processes.
func (e *Engine) podmanCmd(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	res, err := proc.Run(ctx, proc.Cmd{Argv: append([]string{e.podman}, args...), Env: e.env, Stdout: &out, Stderr: &errb}, proc.Options{})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return out.String(), fmt.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// stop removes the containers first: each runs under a conmon of its own,
// outside the service's process group, so stopping the service alone
// would leave them running.
func (e *Engine) stop() {
	t := e.t
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	if _, err := e.podmanCmd(ctx, "rm", "--all", "--force", "--time=0"); err != nil {
		t.Errorf("removing the engine's containers: %v", err)
	}
	if ids, err := e.containers(); err != nil || len(ids) > 0 {
		t.Errorf("the engine still has containers %v (%v)", ids, err)
	}
	if ids := e.runcDelete(); len(ids) > 0 {
		t.Errorf("runc still ran containers %v after podman removed them all, killed", ids)
	}
	select {
	case <-e.exited:
		t.Errorf("the engine exited during the test: %v\n%s", e.exitErr, e.Output())
	default:
	}
	e.stopService()
	<-e.exited
	if left := waitGone(processesUsing(e.dir)); len(left) > 0 {
		t.Errorf("engine processes still running after it stopped, killed: %s", strings.Join(left, "; "))
	}
	// A container's filesystem stays mounted should its removal have
	// failed; the engine's directory cannot be removed while it is.
	left := unmountUnder(e.dir)
	// The overlay driver bind-mounts its home onto itself to make it
	// private, and a podman process stopped mid-shutdown (the service's,
	// on SIGTERM) can leave that mount behind; it holds no container's
	// files, unlike the layers and merged roots below it.
	home := filepath.Join(e.dir, "root", "overlay")
	left = slices.DeleteFunc(left, func(m string) bool { return m == home })
	if len(left) > 0 {
		t.Errorf("the engine left mounts, now detached: %s", strings.Join(left, " "))
	}
}

// unmountUnder detaches the mounts below dir, the innermost first, and
// returns them.
func unmountUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// Spaces and the like in a mount point are octal escapes.
		m, err := strconv.Unquote(`"` + strings.ReplaceAll(f[4], `"`, `\"`) + `"`)
		if err != nil {
			m = f[4]
		}
		if strings.HasPrefix(m, dir+"/") {
			mounts = append(mounts, m)
		}
	}
	slices.Sort(mounts)
	slices.Reverse(mounts)
	for _, m := range mounts {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	return mounts
}

// runcDelete kills and deletes the containers runc still has, and returns
// them.
func (e *Engine) runcDelete() []string {
	root := runcState(e.dir)
	if _, err := os.Stat(root); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	var out bytes.Buffer
	proc.Run(ctx, proc.Cmd{Argv: []string{e.runc, "--root", root, "list", "--quiet"}, Stdout: &out}, proc.Options{})
	ids := strings.Fields(out.String())
	for _, id := range ids {
		proc.Run(ctx, proc.Cmd{Argv: []string{e.runc, "--root", root, "delete", "--force", id}}, proc.Options{})
	}
	return ids
}

// processesUsing finds the processes whose command line names dir: what
// the engine started (conmon, its cleanup commands) names the engine's
// storage or configuration there.
func processesUsing(dir string) map[int]string {
	found := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		found[pid] = strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
	}
	return found
}

// waitGone waits for each process to exit, through a pidfd, which becomes
// readable when it does; those still running after exitTimeout are killed
// and returned.
func waitGone(procs map[int]string) []string {
	var (
		mu   sync.Mutex
		left []string
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(exitTimeout)
	for pid, cmdline := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, err := pidfdOpen(pid)
			if err != nil {
				return // already gone
			}
			defer syscall.Close(fd)
			if exited(fd, deadline) {
				return
			}
			pidfdKill(fd)
			mu.Lock()
			left = append(left, fmt.Sprintf("%d %s", pid, cmdline))
			mu.Unlock()
		}()
	}
	wg.Wait()
	return left
}

// runcShim is the engine's OCI runtime: runc, given each container's bundle
// without process.rlimits. Podman asks for rlimits above the current hard
// limits, which needs CAP_SYS_RESOURCE; sandboxes that run tests often
// withhold it, and runc then fails every container. Without the entry the
// container keeps the limits it inherits, as any process would.
func runcShim(runc string, args []string) int {
	if bundle := bundleArg(args); bundle != "" {
		if err := dropRlimits(filepath.Join(bundle, "config.json")); err != nil {
			fmt.Fprintf(os.Stderr, "enginetest runtime: %v\n", err)
			return 1
		}
	}
	os.Unsetenv(runtimeEnv)
	err := syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "enginetest runtime: exec %s: %v\n", runc, err)
	return 1
}

// bundleArg returns the bundle that runc create (or run) is given; conmon
// always names it.
func bundleArg(args []string) string {
	for i, a := range args {
		switch {
		case (a == "--bundle" || a == "-b") && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--bundle="):
			return strings.TrimPrefix(a, "--bundle=")
		}
	}
	return ""
}

func dropRlimits(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// Raw values keep every other field as podman wrote it.
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var process map[string]json.RawMessage
	if err := json.Unmarshal(spec["process"], &process); err != nil {
		return fmt.Errorf("%s: process: %w", path, err)
	}
	if _, ok := process["rlimits"]; !ok {
		return nil
	}
	delete(process, "rlimits")
	if spec["process"], err = json.Marshal(process); err != nil {
		return err
	}
	if b, err = json.Marshal(spec); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, fi.Mode().Perm())
}

func pidfdOpen(pid int) (int, error) { return unix.PidfdOpen(pid, 0) }

// exited reports whether the pidfd's process exits before deadline.
func exited(fd int, deadline time.Time) bool {
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(max(time.Until(deadline), 0).Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

func pidfdKill(fd int) { unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) }
