// Package webfetch makes the HTTP requests of the browser peer and the
// service worker without net/http's Client.
//
// In a js/wasm build, http.Client.Do keeps net/http's whole Transport in the
// module (its HTTP/1 and HTTP/2 client, crypto/tls, crypto/x509, the DNS
// resolver: about a third of the module's code), although the Transport
// sends the request through the browser's fetch. Do calls fetch directly
// there; in native builds it is http.Client.Do.
package webfetch

// The Fetch API options net/http's js build reads from request headers
// (net/http/roundtrip_js.go); Do reads them the same way and never sends
// them as headers.
const (
	// Credentials is "omit", "same-origin" (the default) or "include".
	Credentials = "js.fetch:credentials"
	// Mode is "cors", "no-cors", "same-origin" or "navigate".
	Mode = "js.fetch:mode"
	// Redirect is "follow" (the default), "error" or "manual".
	Redirect = "js.fetch:redirect"
)
