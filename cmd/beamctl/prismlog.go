package main

import (
	"context"
	"log/slog"
	"sync"
)

// prism logs through slog.Default, a process-wide setting, while beamctl's
// commands may run side by side in one process (the tests run them so).
// The default is set once, to a handler that hands each record to the
// loggers of the commands that want prism's log: under --verbose, theirs;
// otherwise none.
var prismLog struct {
	once sync.Once
	mu   sync.Mutex
	to   map[*app]slog.Handler
}

// quietPrism sends what prism logs to this command's log under --verbose,
// and nowhere otherwise, until the returned func is called.
func (a *app) quietPrism() func() {
	a.silencePrism()
	if !a.v.GetBool("verbose") {
		return func() {}
	}
	prismLog.mu.Lock()
	prismLog.to[a] = a.log.Handler().WithAttrs([]slog.Attr{slog.String("component", "prism")})
	prismLog.mu.Unlock()
	return func() {
		prismLog.mu.Lock()
		delete(prismLog.to, a)
		prismLog.mu.Unlock()
	}
}

// silencePrism sends what prism logs nowhere, unless a command asks for it
// with quietPrism.
func (a *app) silencePrism() {
	prismLog.once.Do(func() {
		prismLog.to = map[*app]slog.Handler{}
		slog.SetDefault(slog.New(prismHandler{}))
	})
}

// prismHandler hands records to the handlers in prismLog, with the
// attributes and groups its loggers added.
type prismHandler struct {
	with []func(slog.Handler) slog.Handler
}

func (h prismHandler) handlers() []slog.Handler {
	prismLog.mu.Lock()
	defer prismLog.mu.Unlock()
	out := make([]slog.Handler, 0, len(prismLog.to))
	for _, to := range prismLog.to {
		for _, w := range h.with {
			to = w(to)
		}
		out = append(out, to)
	}
	return out
}

func (h prismHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, to := range h.handlers() {
		if to.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (h prismHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, to := range h.handlers() {
		if to.Enabled(ctx, r.Level) {
			_ = to.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (h prismHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return prismHandler{with: append(h.with[:len(h.with):len(h.with)], func(to slog.Handler) slog.Handler { return to.WithAttrs(attrs) })}
}

func (h prismHandler) WithGroup(name string) slog.Handler {
	return prismHandler{with: append(h.with[:len(h.with):len(h.with)], func(to slog.Handler) slog.Handler { return to.WithGroup(name) })}
}
