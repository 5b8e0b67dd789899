package main

import (
	"github.com/spf13/cobra"

	"github.com/beamctl/beamctl/boot"
	"github.com/beamctl/beamctl/cmd/internal/bootcmd"
)

const workerPoolLong = `Serve Beam's external worker pool service (BeamFnExternalWorkerPool), for
job servers that cannot start Go workers themselves: submit with
--environment external --environment-config HOST:PORT and the job server
asks this pool for each worker.

For each worker, the pool asks the job server's provision service for the
pipeline options and artifacts, retrieves the worker binary through the job
server's artifact service (checked against its sha256) and runs it on this
machine, under qemu-user if it is built for another architecture. Worker
output goes to stderr, each line prefixed with the worker's id.

SECURITY: the pool runs whatever worker binary a job stages, as the user
running beamctl. So it starts workers only for processes of that user (and
root) on this machine: the kernel's socket table tells who is at the other
end of each connection, and others get PermissionDenied. It listens on
127.0.0.1:50000 by default. --allow-other-users serves every user of this
machine (a job server that runs as another user); --expose allows an
--address beyond loopback, and so anyone who can reach it: restrict who can
connect (firewall, network policy). Both print a warning at start.

DEBUGGING: --debug starts each worker under Delve's headless server, on the
next free port of --debug-addr, stopped until a debugger attaches and
continues it (--debug-wait=false starts it at once); the pool logs where
each listens. Debuggers stay on loopback unless --expose: reach them with a
port-forward (kubectl port-forward, ssh -L), then dlv connect 127.0.0.1:PORT.

SIGINT or SIGTERM stops every worker, then beamctl exits 0. Exit code 2:
the address is in use or unusable.`

func newWorkerPoolCmd(a *app) *cobra.Command {
	var (
		address    string
		maxWorkers int
		pool       bootcmd.PoolFlags
	)
	cmd := &cobra.Command{
		Use:   "worker-pool [--address HOST:PORT] [--max-workers N]",
		Short: "Serve Beam's external worker pool, starting workers on this machine for a job server",
		Long:  workerPoolLong,
		Example: `  beamctl worker-pool
  beamctl worker-pool --address 10.0.0.5:50000 --expose --max-workers 8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd, ""); err != nil {
				return err
			}
			if err := pool.Check(); err != nil {
				return err
			}
			if maxWorkers < 0 {
				return usagef("--max-workers %d is negative: give the most workers to run at once, or 0 for 4 per CPU", maxWorkers)
			}
			o := boot.PoolOptions{
				Address:      address,
				AnswerErrors: true,
				MaxWorkers:   maxWorkers,
				LabelByID:    true,
			}
			if err := pool.Apply(&o, a.log); err != nil {
				return err
			}
			return bootcmd.Serve(cmd.Context(), o, a.log, a.stderr)
		},
	}
	cmd.Flags().StringVar(&address, "address", "127.0.0.1:50000", "HOST:PORT to serve on; beyond loopback only with --expose (see SECURITY)")
	bootcmd.AddPoolFlags(cmd.Flags(), &pool)
	cmd.Flags().IntVar(&maxWorkers, "max-workers", 0, "most workers to run or boot at once; more are refused with an error to the job server (0: 4 per CPU)")
	declareBootFields(cmd.Flags())
	return cmd
}
