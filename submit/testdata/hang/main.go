// Command hang never returns, and keeps a child process that never returns
// either, like a launcher blocked before it submits its pipeline.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func main() {
	if os.Getenv("HANG_CHILD") == "" {
		self, err := os.Executable()
		if err != nil {
			panic(err)
		}
		child := exec.Command(self)
		child.Env = append(os.Environ(), "HANG_CHILD=1")
		if err := child.Start(); err != nil {
			panic(err)
		}
		if f := os.Getenv("HANG_PIDFILE"); f != "" {
			pids := strconv.Itoa(os.Getpid()) + " " + strconv.Itoa(child.Process.Pid)
			if err := os.WriteFile(f, []byte(pids), 0o644); err != nil {
				panic(err)
			}
		}
		fmt.Println("hang: waiting for something that never happens")
	}
	for {
		time.Sleep(time.Hour)
	}
}
