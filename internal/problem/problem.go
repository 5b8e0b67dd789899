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
	// Key is the setting whose value the problem is about, when it is
	// one setting's ({Key} in Reason): a caller that knows where each
	// setting came from (a file, a variable) can say so.
	Key string
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

// About names the setting whose value is at fault.
func (e *Error) About(key string) *Error { e.Key = key; return e }

// SettingKey is the setting the problem is about, "" for none.
func (e *Error) SettingKey() string { return e.Key }

// Keyed is an error about one setting's value.
type Keyed interface {
	error
	SettingKey() string
}

// KeyOf is the setting that the first error in err's chain about one
// setting is about.
func KeyOf(err error) (string, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if k, ok := e.(Keyed); ok && k.SettingKey() != "" {
			return k.SettingKey(), true
		}
	}
	return "", false
}

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

// Render words err with the caller's names for settings. A Renderer words
// itself; an error wrapping another, as fmt.Errorf("...: %w") does, is its
// own words followed by its cause's, so its cause is worded in turn; an
// error joining several words each. Any other error is taken as it reads.
func Render(err error, name func(setting string) string) string {
	switch e := err.(type) {
	case nil:
		return ""
	case Renderer:
		return e.Render(name)
	case interface{ Unwrap() []error }:
		parts := e.Unwrap()
		if !joined(err.Error(), parts) {
			return err.Error()
		}
		words := make([]string, len(parts))
		for i, p := range parts {
			words[i] = Render(p, name)
		}
		return strings.Join(words, "\n")
	case interface{ Unwrap() error }:
		cause := e.Unwrap()
		if cause == nil {
			return err.Error()
		}
		own, ok := strings.CutSuffix(err.Error(), cause.Error())
		if !ok {
			return err.Error()
		}
		return own + Render(cause, name)
	}
	return err.Error()
}

// joined reports whether msg is the parts' messages one a line, as
// errors.Join writes them.
func joined(msg string, parts []error) bool {
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = p.Error()
	}
	return len(parts) > 0 && msg == strings.Join(texts, "\n")
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
