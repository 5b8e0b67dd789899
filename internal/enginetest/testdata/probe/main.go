// Command probe is a container's program in enginetest's tests. Given a
// file it writes there its hard limit on open files, which the container
// gave it, and exits; given none it runs until it is killed, as a worker
// left behind would.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		// As the container's first process it is killed only by signals
		// it handles: SIGKILL, or these.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		return
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	report := fmt.Sprintf("%d\n", rl.Max)
	if err := os.WriteFile(os.Args[1], []byte(report), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
