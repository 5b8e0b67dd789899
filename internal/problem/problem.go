// Package problem is how beamctl's libraries report a problem their caller
// can fix: what is wrong and what to do, as data. Advice names the setting
// to change as a placeholder, {Name}, where Name is the field of the
// library's options that holds it; each caller words it its own way (the
// CLI as a flag, an embedding program as its own option), so no library
// gives advice in another program's terms.
package problem

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Error is a problem with a reason and a fix.
type Error struct {
	// Reason says what is wrong; Fix, what to do. Either may name settings
	// as {Name}.
	Reason, Fix string
	// Usage marks a problem with the caller's input, as opposed to a
	// failure of the work itself.
	Usage bool
	// Err is the underlying error, if any.
	Err error
}

// Usagef returns a usage problem.
func Usagef(fix, reasonFormat string, a ...any) *Error {
	return &Error{Reason: fmt.Sprintf(reasonFormat, a...), Fix: fix, Usage: true}
}

// Failf returns a problem that is not about the caller's input.
func Failf(fix, reasonFormat string, a ...any) *Error {
	return &Error{Reason: fmt.Sprintf(reasonFormat, a...), Fix: fix}
}

// FirstLine is the first non-blank line of s, trimmed: a message from
// below (a tool's stderr, a server's error) in one line.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// Wrap attaches err as the cause.
func (e *Error) Wrap(err error) *Error { e.Err = err; return e }

var placeholder = regexp.MustCompile(`\{([A-Za-z][A-Za-z0-9.]*)\}`)

// Renderer is an error whose text names settings as placeholders: Error
// words them with their own names, Render with the caller's.
type Renderer interface {
	error
	Render(name func(setting string) string) string
}

// Sub words the placeholders of s with name.
func Sub(s string, name func(setting string) string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		return name(m[1 : len(m)-1])
	})
}

// Plain words the placeholders of s with the settings' own names.
func Plain(s string) string { return Sub(s, func(n string) string { return n }) }

// Word renders the message of err with the caller's names for settings:
// the part of err's text that a Renderer in its chain wrote is replaced by
// that Renderer's wording.
func Word(err error, name func(setting string) string) string {
	msg := err.Error()
	for e := err; e != nil; {
		if r, ok := e.(Renderer); ok {
			return stringsReplaceOnce(msg, r.Error(), r.Render(name))
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			// A joined error: word each part.
			for _, p := range u.Unwrap() {
				if r, ok := p.(Renderer); ok {
					msg = stringsReplaceOnce(msg, r.Error(), r.Render(name))
				}
			}
			return msg
		default:
			e = nil
		}
	}
	return msg
}

// Render words the problem, naming each setting with name.
func (e *Error) Render(name func(setting string) string) string {
	msg := Sub(e.Reason, name)
	if e.Fix != "" {
		msg += ": " + Sub(e.Fix, name)
	}
	return msg
}

// Error words the problem with the settings' own names.
func (e *Error) Error() string { return e.Render(func(s string) string { return s }) }

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports whether the problem is with the caller's input.
func (e *Error) Invalid() bool { return e.Usage }

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var p *Error
	ok := errors.As(err, &p)
	return p, ok
}

func stringsReplaceOnce(s, old, new string) string {
	if old == "" {
		return s
	}
	return strings.Replace(s, old, new, 1)
}
