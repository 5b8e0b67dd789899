// Package watch reruns a pipeline as its author edits it: it watches the
// files the pipeline's build depends on (build.Sources), tells one change
// per save however many events the editor's save makes, and reruns the
// pipeline on a launch.Session, whose runner and pool stay up between
// runs, cancelling a job still running first.
package watch

import (
	"errors"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/beamctl/beamctl/build"
)

// DefaultDebounce is how long the files must stay quiet after an event
// before a change is told: an editor's save is several events (a backup
// written, the file replaced, its mode set) within milliseconds.
const DefaultDebounce = 150 * time.Millisecond

// Change is a save: the files changed, absolute and sorted.
type Change struct {
	Files []string
}

// Watcher tells changes of a set of sources.
type Watcher struct {
	fs       *fsnotify.Watcher
	debounce time.Duration
	log      *slog.Logger
	changes  chan Change
	done     chan struct{}
	wg       sync.WaitGroup

	mu   sync.Mutex
	src  *build.Sources
	dirs map[string]bool // watched
}

// NewWatcher starts a watcher of no files: Watch says which. debounce 0
// is DefaultDebounce; a nil log discards.
func NewWatcher(debounce time.Duration, log *slog.Logger) (*Watcher, error) {
	fs, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{fs: fs, debounce: debounce, log: log, changes: make(chan Change), done: make(chan struct{}),
		src: &build.Sources{}, dirs: map[string]bool{}}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Watch makes src the sources watched, in place of the last ones.
func (w *Watcher) Watch(src *build.Sources) error {
	want := map[string]bool{}
	for _, f := range src.Files {
		want[filepath.Dir(f)] = true
	}
	for _, d := range src.Dirs {
		want[d] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, d := range slices.Sorted(maps.Keys(want)) {
		if w.dirs[d] {
			continue
		}
		if err := w.fs.Add(d); err != nil {
			// A directory a go.work names but that is gone, say: the
			// rest still tells.
			errs = append(errs, err)
			continue
		}
		w.dirs[d] = true
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fs.Remove(d)
			delete(w.dirs, d)
		}
	}
	w.src = src
	return errors.Join(errs...)
}

// Changes delivers the changes, debounced; changes made while nobody reads
// are merged into one.
func (w *Watcher) Changes() <-chan Change { return w.changes }

// Close stops watching.
func (w *Watcher) Close() error {
	close(w.done)
	err := w.fs.Close()
	w.wg.Wait()
	return err
}

// matters reports whether an event changes the build: a write, creation,
// removal or rename of a source, or a Go file appearing in (or leaving) a
// package's directory. A change of mode alone changes nothing go reads;
// the files the pipeline writes are not sources, wherever they are.
func (w *Watcher) matters(ev fsnotify.Event) bool {
	if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.src.Has(ev.Name) {
		return true
	}
	name := filepath.Base(ev.Name)
	return !ev.Has(fsnotify.Write) && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") &&
		!strings.HasPrefix(name, ".") && w.src.HasDir(filepath.Dir(ev.Name))
}

func (w *Watcher) loop() {
	defer w.wg.Done()
	pending := map[string]bool{} // events not yet quiet
	var ready map[string]bool    // a change nobody has read yet
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var out chan Change
		var change Change
		if len(ready) > 0 {
			out, change = w.changes, Change{Files: slices.Sorted(maps.Keys(ready))}
		}
		select {
		case <-w.done:
			timer.Stop()
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if !w.matters(ev) {
				continue
			}
			w.log.Debug("source changed", "file", ev.Name, "op", ev.Op.String())
			pending[ev.Name] = true
			timer.Reset(w.debounce)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflowed event queue loses which files changed, not
			// that some did.
			w.log.Warn("watching the sources", "error", err)
		case <-timer.C:
			if ready == nil {
				ready = map[string]bool{}
			}
			maps.Copy(ready, pending)
			clear(pending)
		case out <- change:
			ready = nil
		}
	}
}
