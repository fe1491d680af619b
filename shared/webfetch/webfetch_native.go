//go:build !js

package webfetch

import "net/http"

// Do sends req with hc (nil: http.DefaultClient). In the browser it uses
// fetch and reads only hc's Timeout. The error is the client's, unwrapped:
// callers wrap it with what they were fetching.
func Do(hc *http.Client, req *http.Request) (*http.Response, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	return hc.Do(req) //nolint:wrapcheck // see above
}
