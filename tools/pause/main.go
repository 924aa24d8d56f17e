// pause: the pod sandbox process for a local kubelet. It holds the pod's namespaces and
// sleeps until SIGTERM or SIGINT, then exits 0. Unlike the upstream pause it does not reap zombies.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	// As PID 1 a process gets no default signal handling: without these handlers it ignores both.
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
