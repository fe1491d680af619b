//go:build !js

package webfetch

import "net/http"

// Client is http.Client in native builds. In the browser it is a struct
// holding only Timeout (the requests go through fetch): an *http.Client in
// a js build's reachable types keeps crypto/x509's and math/big's methods
// in the module.
type Client = http.Client

// Do sends req with hc (nil: http.DefaultClient). The error is the
// client's, unwrapped: callers wrap it with what they were fetching.
func Do(hc *Client, req *http.Request) (*http.Response, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req)
}
