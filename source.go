// Package beamctl carries the source of beamctl-boot, the entrypoint of
// worker images, so that beamctl can build it for any target offline, with
// the pipeline's own toolchain and module graph, version-matched to the
// Beam SDK the worker uses.
package beamctl

import "embed"

// Module is beamctl's module path, which the embedded source imports
// itself by.
const Module = "github.com/beamctl/beamctl"

// BootMain is the directory of beamctl-boot's main package in BootSource.
const BootMain = "cmd/beamctl-boot"

// BootSource holds every package of this module that beamctl-boot is built
// from (tests included; builders skip them), at their paths in the module.
//
//go:embed go.mod
//go:embed cmd/beamctl-boot/*.go cmd/internal/bootcmd/*.go
//go:embed boot/*.go wrap/*.go
//go:embed internal/beam/*.go internal/digest/*.go internal/libc/*.go internal/lines/*.go internal/netaddr/*.go internal/peercred/*.go internal/problem/*.go internal/proc/*.go internal/reaper/*.go
var BootSource embed.FS
