// Package words is how beamctl's commands word what libraries say as data:
// the settings their errors name ({Name}, see internal/problem) become the
// flags that set them.
package words

import "github.com/beamctl/beamctl/internal/problem"

// flags word the settings that library errors name ({Name}) as the flags
// that set them.
var flags = map[string]string{
	"Address":           "--address",
	"AllowUnverified":   "--allow-unverified-worker",
	"MaxArtifactBytes":  "--max-artifact-bytes",
	"Expose":            "--expose",
	"Build":             "PKG",
	"Dist":              "DIST",
	"Target":            "--target",
	"Image":             "--image",
	"Boot":              "beamctl build --boot",
	"Base":              "--base",
	"InsecureRegistry":  "--insecure-registry",
	"OCILayout":         "--oci-layout",
	"Tarball":           "--tarball",
	"OutDir":            "--out",
	"Jobs":              "--jobs",
	"CacheDir":          "--cache-dir (or BEAMCTL_CACHE_DIR)",
	"CaptureTimeout":    "--capture-timeout",
	"Endpoint":          "--endpoint",
	"ConnectTimeout":    "--connect-timeout",
	"TLS":               "--tls",
	"CAFile":            "--tls-ca",
	"ServerName":        "--tls-server-name",
	"Environment":       "--environment",
	"EnvironmentConfig": "--environment-config",
	"LoopbackAddress":   "--loopback-address",
	"Detach":            "--detach",
	"Runner":            "--runner",
	"Project":           "--project",
	"Region":            "--region",
	"StagingLocation":   "--staging-location",
	"TemplateLocation":  "--template-location",
	"MachineType":       "--machine-type",
	"DryRun":            "--dry-run",
	"Wait":              "--wait",
	"Debug":             "--debug",
	"DebugAddr":         "--debug-addr",
	"Dlv":               "--dlv",
	"Vet":               "--vet=off",
}

// Flag words setting as the flag that sets it.
func Flag(setting string) string {
	if f, ok := flags[setting]; ok {
		return f
	}
	return setting
}

// Error is err's message with the settings it names worded as flags.
func Error(err error) string { return problem.Word(err, Flag) }
