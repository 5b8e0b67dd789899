package build

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

func (o *Options) run(ctx context.Context, tc *Toolchain, pkg *Package, j *job, emit func(Event), log *slog.Logger) error {
	start := time.Now()
	ev := Event{File: j.bin.File, Role: j.bin.Role, Platform: j.bin.Platform}
	if err := os.MkdirAll(filepath.Dir(j.cacheOut), 0o755); err != nil {
		return fmt.Errorf("creating the build cache: %w", err)
	}
	if o.Force {
		if err := os.Remove(j.cacheOut); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s to rebuild it: %w", j.cacheOut, err)
		}
	}
	before := readBuildID(j.cacheOut)
	ev.State = Compiling
	emit(ev)
	log.Debug("go build", "file", j.bin.File, "dir", pkg.runDir, "args", j.args, "env", j.env)

	out, err := tc.build(ctx, pkg.runDir, j.env, j.tmp, j.args...)
	ev.Elapsed = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ev.State = Failed
		emit(ev)
		return &CompileError{File: j.bin.File, Platform: j.bin.Platform, Output: relativize(errorLines(out), pkg.runDir, o.WorkDir)}
	}
	sum, size, err := binaryDigest(ctx, j.cacheOut, o.Digests)
	if err != nil {
		return err
	}
	j.bin.SHA256, j.bin.Size = sum, size
	if o.cgoEnv(j.bin.Platform, j.bin.Role) != nil {
		if j.bin.CGO, err = o.describeCGO(j.cacheOut, j.bin.Platform); err != nil {
			return err
		}
	}
	ev.Size = size
	ev.State = Done
	if before != "" && before == readBuildID(j.cacheOut) {
		ev.State = Cached
	}
	emit(ev)
	return nil
}

var goPosRE = regexp.MustCompile(`^(\S+?\.(?:go|s|c|mod)):(\d+)`)

// relativize rewrites go's file positions, which are relative to the
// directory go ran in, to be relative to the user's directory, so they can
// be clicked or pasted.
func relativize(out, runDir, workDir string) string {
	rel, err := filepath.Rel(workDir, runDir)
	if err != nil || rel == "." {
		return out
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if m := goPosRE.FindStringSubmatchIndex(l); m != nil {
			file := l[m[2]:m[3]]
			if !filepath.IsAbs(file) {
				lines[i] = filepath.Join(rel, file) + l[m[3]:]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// compile runs the planned go builds, concurrently, and the pipeline
// checks beside them; each job learns its binary's digest.
func (o *Options) compile(ctx context.Context, pkg *Package, jobs []*job, log *slog.Logger) error {
	tc := o.Toolchain
	var mu sync.Mutex
	emit := func(e Event) {
		if o.OnEvent == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		o.OnEvent(e)
	}
	for _, j := range jobs {
		emit(Event{File: j.bin.File, Role: j.bin.Role, Platform: j.bin.Platform, State: Waiting})
	}
	// Each go build keeps go's own -p, one compile per CPU: a fixed share
	// of the CPUs would hold a build to it after the others had finished
	// or found their binary up to date, as a launcher usually does, and
	// the kernel shares the CPUs among compiles as well as a split would.
	concurrent := min(o.Jobs, len(jobs))
	if avail, ok := availableMemory(); ok {
		// Added after planning: the collector's settings are not part of
		// a binary's cache key, as they change nothing in it.
		if gc := toolGCEnv(tc.Environ(), concurrent*runtime.NumCPU(), avail); gc != nil {
			for _, j := range jobs {
				j.env = append(j.env, gc...)
			}
		}
	}
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	var checked *vetRun
	firstDone := make(chan struct{})
	vctx, vstop := context.WithCancel(ctx)
	defer vstop()
	if o.Vet && len(jobs) > 0 {
		checked = o.startVet(vctx, pkg, jobs[0].bin.Platform, firstDone, stop, log)
	}
	// A pipeline that needs cgo, built without, would fail in the
	// compiler with "undefined" errors that never say cgo. A first build
	// lists the imports beside the compiles, and such a package stops
	// them before minutes of compiling. A rebuild, whose imports built
	// before, lists them only once its compile has failed, so that an
	// edit's relink does not share the CPUs with a go list.
	refused := make(chan error, 1)
	cctx, cstop := context.WithCancel(ctx)
	defer cstop()
	checkCGO := o.CGO == CGOOff && len(jobs) > 0
	rebuild := checkCGO && fileExists(jobs[0].cacheOut)
	if checkCGO && !rebuild {
		go func() {
			name, err := o.cgoPackage(cctx, pkg, jobs[0].bin.Platform)
			if err != nil {
				log.Debug("listing the packages that use cgo", "error", err)
			}
			if name != "" {
				refused <- &CGOError{Package: name}
				stop()
			}
			close(refused)
		}()
	} else {
		close(refused)
	}
	g, gctx := errgroup.WithContext(bctx)
	g.SetLimit(o.Jobs)
	for i, j := range jobs {
		g.Go(func() error {
			err := o.run(gctx, tc, pkg, j, emit, log)
			if i == 0 {
				if err != nil {
					// The compile failed: its errors say more than a check.
					vstop()
				}
				close(firstDone)
			}
			return err
		})
	}
	err := g.Wait()
	if err != nil && bctx.Err() == nil {
		vstop()
	}
	if err == nil {
		// What compiled needs no refusal, whatever its imports.
		cstop()
	}
	cerr := <-refused
	if err != nil && rebuild && ctx.Err() == nil {
		if name, lerr := o.cgoPackage(ctx, pkg, jobs[0].bin.Platform); name != "" {
			cerr = &CGOError{Package: name}
		} else if lerr != nil {
			log.Debug("listing the packages that use cgo", "error", lerr)
		}
	}
	if checked != nil {
		if verr := checked.result(log); verr != nil && cerr == nil {
			return verr
		}
	}
	if cerr != nil && err != nil {
		return cerr
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
