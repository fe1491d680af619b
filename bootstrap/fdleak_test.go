package bootstrap_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
)

// fdCount is the number of open descriptors of the instance's process.
func (in *instance) fdCount() int {
	in.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", in.cmd.Process.Pid))
	if err != nil {
		in.t.Fatalf("descriptors: %v", err)
	}
	return len(ents)
}

// waitFDs polls until the descriptor count is back to baseline.
func (in *instance) waitFDs(baseline, peak int, when string) {
	in.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		http.DefaultClient.CloseIdleConnections()
		n := in.fdCount()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%s: %d descriptors open 20s later (baseline %d, peak %d): pre-Hello connections leak", when, n, baseline, peak)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawUpgrade opens a TCP connection and performs the WebSocket upgrade by
// hand (no library), leaving the socket after the 101 response.
func rawUpgrade(t *testing.T, addr string) net.Conn {
	c, _ := rawUpgradeReader(t, addr)
	return c
}

// rawUpgradeReader is rawUpgrade that also returns the reader holding what
// the server sent after the 101 response.
func rawUpgradeReader(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("upgrade headers: %v", err)
		}
		if l == "\r\n" {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, br
}

// Connections that fail before Hello (silence past the handshake timeout, a
// client that leaves, garbage, an oversized or malformed Hello, a text
// frame, raw junk on the socket) are all closed by the server: its
// descriptor count returns to where it was.
func TestPreHelloConnectionsClosed(t *testing.T) {
	in := start(t, nil, "--handshake-timeout", "1s", "--max-peers-per-ip", "50")
	http.DefaultClient.CloseIdleConnections()
	baseline := in.fdCount()

	var wss []*websocket.Conn
	wsDial := func() *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctxT(t), in.ws(), nil)
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		c.SetReadLimit(frame.MaxFrame)
		wss = append(wss, c)
		return c
	}
	// Silent: upgraded, then nothing; half of them leave at once.
	for i := range 20 {
		c := wsDial()
		if i%2 == 0 {
			_ = c.CloseNow()
		}
	}
	// Garbage instead of a Hello.
	hellos := [][]byte{
		{frame.Version, byte(frame.THello), 1, 2, 3},             // malformed
		{9, byte(frame.THello)},                                  // bad version
		(&frame.Frame{Type: frame.TPing, ReqID: 1}).Append(nil),  // out of order
		make([]byte, frame.MaxFrame+100),                         // oversized
		append([]byte{frame.Version, 0x7e}, make([]byte, 40)...), // unknown type
	}
	for _, b := range hellos {
		for range 3 {
			c := wsDial()
			if err := c.Write(ctxT(t), websocket.MessageBinary, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 3 {
		if err := wsDial().Write(ctxT(t), websocket.MessageText, []byte("hello?")); err != nil {
			t.Fatal(err)
		}
	}
	// Raw sockets: junk that is not a WebSocket frame after the upgrade, an
	// upgrade then a hang-up, and junk that is not even HTTP.
	var raws []net.Conn
	for range 5 {
		c := rawUpgrade(t, in.addr)
		if _, err := c.Write([]byte("\xff\xff\xff\xff\x00\x01junk junk junk")); err != nil {
			t.Fatal(err)
		}
		raws = append(raws, c)
	}
	for range 5 {
		_ = rawUpgrade(t, in.addr).Close()
	}
	for range 5 {
		c, err := net.DialTimeout("tcp", in.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("\x16\x03\x01\x02\x00junk\r\n\r\n"))
		raws = append(raws, c)
	}
	peak := in.fdCount()
	// Every upgraded one reached the handshake and failed there (the raw
	// non-HTTP ones are net/http's to refuse).
	const failed = 20 + 3*5 + 3 + 5 + 5
	eventually(t, 20*time.Second, "every handshake to fail", func() bool {
		all := in.metric("flower_bootstrap_connections_total", "")
		return all-in.metric("flower_bootstrap_connections_total", `result="accepted"`) >= failed
	})
	// Past the handshake timeout every one of them must be gone, whether
	// the client closed or not; then the clients close too.
	in.waitFDs(baseline, peak, "with the clients still open")
	for _, c := range wss {
		_ = c.CloseNow()
	}
	for _, c := range raws {
		_ = c.Close()
	}
	in.waitFDs(baseline, peak, "after the clients closed")
	t.Logf("descriptors: baseline %d, peak %d, now %d", baseline, peak, in.fdCount())
	// The per-IP slots came back too: a full set of peers still connects.
	ping(t, dial(t, in.ws(), client.Options{}), 1)
}
