package launch

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/beamctl/beamctl/internal/problem"
)

// SidecarPort is where a worker-pool sidecar serves: boot's default pool
// address, on the loopback device the pod's containers share.
const SidecarPort = 50000

// SidecarArgs are boot's arguments in a worker-pool sidecar. The runner in
// the pod (a Flink task manager, a Spark executor) runs as another uid than
// the image's user, and the pool serves only its own user and root unless
// told otherwise; loopback still keeps other machines out.
var SidecarArgs = []string{"--worker_pool", "--allow-other-users"}

// SidecarYAML is a Kubernetes container spec that runs the worker image
// image, given by digest, as a worker-pool sidecar next to a runner that
// uses the External environment at localhost:SidecarPort. A tag is refused:
// the pool must run the worker the job was built with, and a tag can move
// under a running deployment.
func SidecarYAML(image string) (string, error) {
	if !strings.Contains(image, "@sha256:") {
		return "", problem.Usagef("give the image by digest, REPO@sha256:...", "a sidecar needs the image by digest, not %q", image)
	}
	// JSON strings and flow sequences are YAML, and quoting keeps a
	// reference's ':' and '@' from being read as YAML syntax.
	q := func(v string) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // a string always marshals
		}
		return string(b)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: beam-worker-pool\n")
	fmt.Fprintf(&b, "image: %s\n", q(image))
	args := make([]string, len(SidecarArgs))
	for i, a := range SidecarArgs {
		args[i] = q(a)
	}
	fmt.Fprintf(&b, "args: [%s]\n", strings.Join(args, ", "))
	fmt.Fprintf(&b, "ports:\n- name: beam-pool\n  containerPort: %d\n  protocol: TCP\n", SidecarPort)
	b.WriteString(`# Placeholder sizes: the pool itself is small; size this for the workers
# it starts, one for each SDK harness the runner in the pod asks for.
resources:
  requests:
    cpu: "1"
    memory: 2Gi
  limits:
    memory: 2Gi
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
`)
	return b.String(), nil
}
