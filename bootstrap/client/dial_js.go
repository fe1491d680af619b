//go:build js

package client

import "github.com/coder/websocket"

// dialOptions: the browser's WebSocket sets Origin itself, dials through
// its own network stack and negotiates no compression unless asked.
func dialOptions(Options) *websocket.DialOptions { return &websocket.DialOptions{} }
