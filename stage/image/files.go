package image

import (
	"bytes"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The user workers run as: not root, with an /etc/passwd entry, since
// every Beam Go binary asks for its user at start and cannot do without.
const (
	userName = "beam"
	userID   = 65532
	userHome = "/home/beam"
)

// Where beamctl puts its files in an image. /opt/apache/beam/boot is where
// Beam's own SDK images keep their entrypoint, and where Dataflow expects
// a custom container's.
const (
	BootPath   = "/opt/apache/beam/boot"
	WorkerPath = "/opt/apache/beam/worker"
	// DebuggerPath is on the image's PATH, where boot finds dlv.
	DebuggerPath = "/usr/local/bin/dlv"
)

// systemEntries are the files of beamctl's own base: users, CA
// certificates from a pinned bundle, and a /tmp anyone may write.
func systemEntries() []entry {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", userName, userID, userID, userName, userHome)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, userID)
	return []entry{
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle()},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: "root", mode: 0o700, dir: true},
		{name: cleanName(userHome), mode: 0o755, uid: userID, dir: true},
	}
}

// homeEntries give a base image's users a home for the worker's user.
func homeEntries() []entry {
	return []entry{{name: cleanName(userHome), mode: 0o755, uid: userID, dir: true}}
}

// caBundle is the Mozilla NSS roots of golang.org/x/crypto's pinned
// bundle, as PEM. Roots with constraints a PEM file cannot express (trust
// that ends at a date) are left out rather than trusted without them.
func caBundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}
