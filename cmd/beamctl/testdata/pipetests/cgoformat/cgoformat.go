// Package cgoformat formats counts in C: a DoFn that beamctl test runs
// only with --cgo.
package cgoformat

/*
#include <stdio.h>

static int format_count(char *buf, size_t size, long count) {
	return snprintf(buf, size, "count=%ld", count);
}
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.Function1x1(FormatFn)
}

// FormatFn formats n with C's snprintf and names the architecture it ran
// on.
func FormatFn(n int) string {
	buf := make([]byte, 32)
	k := C.format_count((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), C.long(n))
	return string(buf[:k]) + " on " + runtime.GOARCH
}
