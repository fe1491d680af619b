//go:build !js

package client

import (
	"net/http"

	"github.com/coder/websocket"
)

func dialOptions(opt Options) *websocket.DialOptions {
	do := &websocket.DialOptions{HTTPClient: opt.HTTPClient, CompressionMode: websocket.CompressionDisabled}
	if opt.Origin != "" {
		do.HTTPHeader = http.Header{"Origin": []string{opt.Origin}}
	}
	return do
}
