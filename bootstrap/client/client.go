// Package client is a Go peer of the bootstrap service: it dials /v1/ws,
// answers the challenge with an Ed25519 signature and then sends and
// receives frames. Native peers, tests and the load generator use it, and
// it builds for the browser (GOOS=js GOARCH=wasm), where the browser's
// WebSocket carries it.
package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

// Options tune Dial. The zero value is a fresh random identity.
type Options struct {
	// Key is the peer's identity; nil generates one.
	Key ed25519.PrivateKey
	// Origin is sent as the Origin header (as a browser page would). In
	// the browser (GOOS=js) the page's own origin is sent instead.
	Origin string
	// HTTPClient dials the connection (e.g. bound to a source address);
	// not used in the browser.
	HTTPClient *http.Client
	// Hello, if set, builds the Hello frame from the challenge instead of the
	// honest signature: tests use it to try impersonation.
	Hello func(challenge frame.Frame, host string) frame.Frame
}

// Client is one connected, authenticated peer.
type Client struct {
	conn      *websocket.Conn
	ID        ids.PeerID
	Key       ed25519.PrivateKey
	Challenge frame.Frame
	Welcome   frame.Frame
}

// ErrRejected wraps the Error frame a server sent instead of Welcome.
type ErrRejected struct{ Frame frame.Frame }

func (e *ErrRejected) Error() string {
	return fmt.Sprintf("bootstrap rejected the peer: %s: %s", e.Frame.Code, e.Frame.Text)
}

// Dial connects to a ws:// or wss:// URL of /v1/ws and authenticates.
func Dial(ctx context.Context, rawURL string, opt Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bootstrap url: %w", err)
	}
	key := opt.Key
	if key == nil {
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
	}
	conn, resp, err := websocket.Dial(ctx, rawURL, dialOptions(opt))
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %s: %w", rawURL, resp.Status, err)
		}
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	conn.SetReadLimit(frame.MaxFrame)
	c := &Client{conn: conn, Key: key, ID: ids.FromPublicKey(key.Public().(ed25519.PublicKey))}
	// The Hello signs the service name as dialled; the service accepts only
	// its own public names, so a hostile service cannot relay it.
	if err := c.handshake(ctx, strings.ToLower(u.Host), opt); err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	return c, nil
}

func (c *Client) handshake(ctx context.Context, host string, opt Options) error {
	ch, err := c.Recv(ctx)
	if err != nil {
		return fmt.Errorf("read challenge: %w", err)
	}
	if ch.Type != frame.TChallenge {
		return fmt.Errorf("expected challenge, got %s", ch.Type)
	}
	c.Challenge = ch
	var hello frame.Frame
	if opt.Hello != nil {
		hello = opt.Hello(ch, host)
	} else {
		hello = frame.Frame{Type: frame.THello}
		copy(hello.Key[:], c.Key.Public().(ed25519.PublicKey))
		copy(hello.Sig[:], ed25519.Sign(c.Key, frame.AuthMessage(host, ch.Nonce)))
	}
	if err := c.Send(ctx, &hello); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	w, err := c.Recv(ctx)
	if err != nil {
		return fmt.Errorf("read welcome: %w", err)
	}
	switch w.Type {
	case frame.TWelcome:
		c.Welcome = w
		if w.Peer != c.ID && opt.Hello == nil {
			return fmt.Errorf("server assigned id %s, expected %s", w.Peer, c.ID)
		}
		c.ID = w.Peer
		return nil
	case frame.TError:
		return &ErrRejected{Frame: w}
	}
	return fmt.Errorf("expected welcome, got %s", w.Type)
}

// Conn is the underlying WebSocket.
func (c *Client) Conn() *websocket.Conn { return c.conn }

// Send writes one frame.
func (c *Client) Send(ctx context.Context, f *frame.Frame) error {
	return c.SendRaw(ctx, f.Append(nil))
}

// SendRaw writes bytes as one binary message, valid frame or not.
func (c *Client) SendRaw(ctx context.Context, b []byte) error {
	if err := c.conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// Signal sends an opaque signalling payload to peer to.
func (c *Client) Signal(ctx context.Context, to ids.PeerID, payload []byte) error {
	return c.SendRaw(ctx, frame.AppendSignal(nil, to, payload))
}

// Register declares the peer's full set of (site, locality, role).
func (c *Client) Register(ctx context.Context, regs ...frame.Reg) error {
	return c.Send(ctx, &frame.Frame{Type: frame.TRegister, Regs: regs})
}

// Recv reads the next frame. The frame owns its memory.
func (c *Client) Recv(ctx context.Context) (frame.Frame, error) {
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		return frame.Frame{}, fmt.Errorf("recv: %w", err)
	}
	if typ != websocket.MessageBinary {
		return frame.Frame{}, errors.New("recv: text message from server")
	}
	f, err := frame.Decode(b)
	if err != nil {
		return frame.Frame{}, fmt.Errorf("recv: %w", err)
	}
	return f, nil
}

// Close closes the connection with a normal closure.
func (c *Client) Close() error {
	return c.conn.Close(websocket.StatusNormalClosure, "bye")
}

// CloseNow drops the connection without a close handshake.
func (c *Client) CloseNow() error { return c.conn.CloseNow() }
