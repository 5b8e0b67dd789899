package embeddedrunner

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// restrictToLoopback binds the listening socket to the loopback device, so
// the kernel refuses connections that arrive on any other interface, and
// connections from this machine to any of its other addresses. Accepted
// connections inherit the binding. It returns the device's name.
func (s *serverSocket) restrictToLoopback() (string, error) {
	dev, err := loopbackDevice()
	if err != nil {
		return "", err
	}
	if err := unix.SetsockoptString(s.fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); err != nil {
		return "", fmt.Errorf("bind the listening socket to %s: %w", dev, err)
	}
	return dev, nil
}

func loopbackDevice() (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagUp != 0 {
			return i.Name, nil
		}
	}
	return "", fmt.Errorf("no loopback interface is up")
}
