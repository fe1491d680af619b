//go:build !linux && !js

package rtc

import "net"

// setSocketBuffer asks for size bytes of UDP buffer; the granted size is
// unknown here (0).
func setSocketBuffer(c *net.UDPConn, size int) (int, error) {
	_ = c.SetWriteBuffer(size)
	return 0, c.SetReadBuffer(size)
}
