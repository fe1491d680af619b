//go:build linux

package rtc

import (
	"fmt"
	"net"
	"syscall"
)

// setSocketBuffer asks for size bytes of UDP receive and send buffer:
// SO_RCVBUFFORCE first (root may exceed net.core.rmem_max), then the normal
// option. It returns what the kernel reports (twice the request on Linux:
// the kernel counts its bookkeeping in it).
func setSocketBuffer(c *net.UDPConn, size int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("raw conn: %w", err)
	}
	var got int
	var serr error
	err = rc.Control(func(fd uintptr) {
		if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size); e != nil {
			_ = c.SetReadBuffer(size)
		}
		if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, size); e != nil {
			_ = c.SetWriteBuffer(size)
		}
		got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if err == nil {
		err = serr
	}
	if err == nil && got < size {
		err = fmt.Errorf("kernel granted %d of %d bytes (raise net.core.rmem_max)", got, size)
	}
	return got, err
}
