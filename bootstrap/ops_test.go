package bootstrap_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/bootstrap/loadtest"
	"github.com/flowercdn/flower/shared/ids"
)

// Graceful shutdown tells peers where to reconnect and closes with 1001.
func TestGracefulShutdown(t *testing.T) {
	alt := "ws://127.0.0.1:1/v1/ws"
	in := start(t, nil, "--alternates", alt)
	c := dial(t, in.ws(), client.Options{})
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ga := recvType(t, c, frame.TGoAway)
	if len(ga.URLs) != 1 || ga.URLs[0] != alt || ga.Text == "" {
		t.Fatalf("goaway %+v", ga)
	}
	_, err := c.Recv(ctxT(t))
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Fatalf("close status %v (%v), want 1001", s, err)
	}
	select {
	case err := <-in.done:
		in.done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, in.logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("bootstrap did not exit after SIGTERM")
	}
}

// Operations: health, readiness, metrics, landmarks, probe, env config,
// max peers, per-IP limit, keepalive and idle timeout.
func TestOperations(t *testing.T) {
	in := start(t, []string{"FLOWER_LOCALITIES=5", "FLOWER_LANDMARKS=https://lm1.example/p,https://lm2.example/p"},
		"--max-peers", "3", "--ping-interval", "200ms", "--idle-timeout", "1s", "--allow-origins", "https://a.example")
	if code, body := in.get("/healthz", ""); code != 200 {
		t.Fatalf("healthz %d %s", code, body)
	}
	code, body := in.get("/v1/landmarks", "https://a.example")
	var lm struct {
		Localities int      `json:"localities"`
		Landmarks  []string `json:"landmarks"`
		Probe      string   `json:"probe"`
	}
	if err := json.Unmarshal([]byte(body), &lm); err != nil || code != 200 {
		t.Fatalf("landmarks %d %s %v", code, body, err)
	}
	if lm.Localities != 5 || len(lm.Landmarks) != 2 || lm.Landmarks[1] != "https://lm2.example/p" {
		t.Fatalf("landmarks from env: %+v", lm)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.addr+lm.Probe, nil)
	req.Header.Set("Origin", "https://a.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://a.example" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("probe %d %v", resp.StatusCode, resp.Header)
	}
	req, _ = http.NewRequest(http.MethodOptions, "http://"+in.addr+"/v1/entry", nil)
	req.Header.Set("Origin", "https://a.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
	}
	for _, m := range []string{"process_resident_memory_bytes", "go_goroutines", "flower_bootstrap_peers"} {
		if _, body := in.get("/metrics", ""); !strings.Contains(body, "\n"+m+" ") {
			t.Fatalf("metrics lack %s", m)
		}
	}

	// Keepalive: a peer that sends ping frames (every ping interval, as its
	// Welcome says) stays past the idle timeout; a silent one is dropped.
	live := dial(t, in.ws(), client.Options{})
	mute := dial(t, in.ws(), client.Options{})
	if live.Welcome.PingInterval != 0 { // 200ms rounds down to 0 s
		t.Fatalf("welcome ping interval %d", live.Welcome.PingInterval)
	}
	readErr := make(chan error, 1)
	go func() {
		for i := range 20 {
			if err := live.Send(ctxT(t), &frame.Frame{Type: frame.TPing, ReqID: uint32(i)}); err != nil {
				readErr <- err
				return
			}
			ctx, cancel := contextWithTimeout(2 * time.Second)
			f, err := live.Recv(ctx)
			cancel()
			if err != nil || f.Type != frame.TPong {
				readErr <- fmt.Errorf("pong %d: %v %v", i, f.Type, err)
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
		readErr <- nil
	}()
	third := dial(t, in.ws(), client.Options{})
	_, err = client.Dial(ctxT(t), in.ws(), client.Options{})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("4th peer with --max-peers 3: %v", err)
	}
	if code, _ := in.get("/readyz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz when full: %d", code)
	}
	_ = third.Close()
	eventually(t, 5*time.Second, "mute peer dropped for idleness", func() bool {
		return in.metric("flower_bootstrap_errors_sent_total", `code="idle"`) == 1
	})
	if err := <-readErr; err != nil {
		t.Fatalf("live peer: %v", err)
	}
	eventually(t, 10*time.Second, "only the live peer left", func() bool { return in.metric("flower_bootstrap_peers", "") == 1 })
	_ = mute
	if code, _ := in.get("/readyz", ""); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
}

// Per-IP limit on new connections: a burst beyond it is refused with 429.
func TestPerIPConnectionLimit(t *testing.T) {
	in := start(t, nil, "--ip-rate", "1", "--ip-burst", "3")
	for range 3 {
		dial(t, in.ws(), client.Options{})
	}
	_, err := client.Dial(ctxT(t), in.ws(), client.Options{})
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("4th connection in a burst of 3: %v", err)
	}
}

// The portable mode (one reader goroutine per peer, --poller=false) behaves
// the same: signalling, unknown targets, bad and oversized frames, shutdown.
func TestReaderGoroutineMode(t *testing.T) {
	in := start(t, nil, "--poller=false")
	a := dial(t, in.ws(), client.Options{})
	b := dial(t, in.ws(), client.Options{})
	if err := a.Signal(ctxT(t), b.ID, []byte("offer")); err != nil {
		t.Fatal(err)
	}
	if d := recvType(t, b, frame.TDeliver); d.Peer != a.ID || string(d.Payload) != "offer" {
		t.Fatalf("b got %q from %s", d.Payload, d.Peer)
	}
	if err := b.Signal(ctxT(t), ids.PeerID{1}, nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, frame.CodeUnknownTarget)
	if err := b.SendRaw(ctxT(t), []byte{frame.Version, 0x7e}); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, frame.CodeUnknownType)
	ping(t, b, 9)
	if err := b.SendRaw(ctxT(t), make([]byte, frame.MaxFrame+1)); err != nil {
		t.Fatal(err)
	}
	expectError(t, b, frame.CodeTooLarge)
	if _, err := b.Recv(ctxT(t)); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized: %v", err)
	}
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	recvType(t, a, frame.TGoAway)
	if _, err := a.Recv(ctxT(t)); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("shutdown: %v", err)
	}
}

// The load generator against the real binary: every peer connects, messages
// are relayed and timed, and the server's RSS is read from /metrics.
func TestLoadtestSmall(t *testing.T) {
	in := start(t, nil, "--peer-rate", "1000", "--peer-burst", "1000", "--ip-rate", "0")
	res, err := loadtest.Run(ctxT(t), loadtest.Config{
		URLs: []string{in.ws()}, Peers: 40, Duration: time.Second, Rate: 20, Payload: 64, Settle: 10 * time.Millisecond,
		Directory: 0.05, // the first 50 of every 1000: all 40 register their D-ring keys
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.PeersConnected != 40 || res.MsgsReceived == 0 || res.MsgsReceived > res.MsgsSent || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	if res.ServerRSSBytes.Before <= 0 || res.ServerRSSBytes.Connected <= 0 || res.RelayP50Ms <= 0 || res.RelayP99Ms < res.RelayP50Ms {
		t.Fatalf("result %+v", res)
	}
	// Every registration was accepted (a refused key would be a
	// server_bad_register error above) and is withdrawn with its peer.
	if v := in.metric("flower_bootstrap_frames_in_total", `type="register"`); v != 40 {
		t.Fatalf("register frames = %v, want 40", v)
	}
	eventually(t, 10*time.Second, "directories withdrawn", func() bool {
		return in.metric("flower_bootstrap_directory_local", "") == 0
	})
	if v := in.metric("flower_bootstrap_relay_total", `result="local"`); v < float64(res.MsgsReceived) {
		t.Fatalf("server relayed %v, client received %d", v, res.MsgsReceived)
	}
}
