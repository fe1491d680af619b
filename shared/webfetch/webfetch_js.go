//go:build js && wasm

package webfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"time"
)

// Client holds what a browser request takes from a client: its timeout
// (zero: none). Native builds use http.Client.
type Client struct {
	Timeout time.Duration
}

// Do sends req through the browser's fetch, as net/http's js Transport
// does, without linking that Transport. hc (may be nil) gives the timeout;
// redirects are the browser's (the Redirect option). The response body
// streams; closing it, or the end of req's context (or the timeout),
// aborts the fetch.
func Do(hc *Client, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cancel := context.CancelFunc(func() {})
	if hc != nil && hc.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, hc.Timeout)
	}
	resp, err := do(ctx, cancel, req)
	if err != nil {
		cancel()
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	return resp, nil
}

func do(ctx context.Context, cancel context.CancelFunc, req *http.Request) (*http.Response, error) {
	global := js.Global()
	if global.Get("fetch").IsUndefined() {
		return nil, errors.New("no fetch in this JavaScript environment")
	}
	opt := global.Get("Object").New()
	opt.Set("method", req.Method)
	opt.Set("credentials", "same-origin")
	headers := global.Get("Headers").New()
	for key, values := range req.Header {
		switch key {
		case Credentials:
			opt.Set("credentials", values[0])
		case Mode:
			opt.Set("mode", values[0])
		case Redirect:
			opt.Set("redirect", values[0])
		default:
			for _, v := range values {
				headers.Call("append", key, v)
			}
		}
	}
	opt.Set("headers", headers)
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("request body: %w", err)
		}
		if len(body) > 0 {
			buf := global.Get("Uint8Array").New(len(body))
			js.CopyBytesToJS(buf, body)
			opt.Set("body", buf)
		}
	}
	abort := global.Get("AbortController").New()
	opt.Set("signal", abort.Get("signal"))

	result, err := await(ctx, abort, global.Call("fetch", req.URL.String(), opt))
	if err != nil {
		return nil, err
	}
	resp := &http.Response{
		StatusCode: result.Get("status").Int(),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		ContentLength: -1,
		Request:       req,
	}
	resp.Status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	it := result.Get("headers").Call("entries")
	for {
		n := it.Call("next")
		if n.Get("done").Bool() {
			break
		}
		pair := n.Get("value")
		k := http.CanonicalHeaderKey(pair.Index(0).String())
		resp.Header[k] = append(resp.Header[k], pair.Index(1).String())
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		// The browser decoded the body; Content-Length is the encoded size.
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.Uncompressed = true
	} else if cl := resp.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			abort.Call("abort")
			return nil, fmt.Errorf("bad Content-Length %q", cl)
		}
		resp.ContentLength = n
	}
	body := &bodyReader{abort: abort, done: make(chan struct{}), cancel: cancel, ctx: ctx}
	if b := result.Get("body"); !b.IsUndefined() && !b.IsNull() {
		body.stream = b.Call("getReader")
	} else {
		body.array = result.Call("arrayBuffer")
	}
	go body.watch()
	resp.Body = body
	return resp, nil
}

// await waits for a promise, aborting the fetch when ctx ends first.
func await(ctx context.Context, abort, promise js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var ok, fail js.Func
	ok = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ok.Release()
		fail.Release()
		ch <- result{v: args[0]}
		return nil
	})
	fail = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ok.Release()
		fail.Release()
		ch <- result{err: jsError(args[0])}
		return nil
	})
	promise.Call("then", ok, fail)
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		abort.Call("abort")
		<-ch // the promise settles (rejected) once aborted
		return js.Undefined(), ctx.Err()
	}
}

// jsError is a rejected promise's reason as a Go error.
func jsError(v js.Value) error {
	if v.Type() != js.TypeObject {
		return fmt.Errorf("fetch failed: %s", v.String())
	}
	msg := v.Call("toString").String()
	if cause := v.Get("cause"); cause.Type() == js.TypeObject && cause.Get("toString").Type() == js.TypeFunction {
		msg += ": " + cause.Call("toString").String()
	} else if cause.Type() == js.TypeString {
		msg += ": " + cause.String()
	}
	return fmt.Errorf("fetch failed: %s", msg)
}

var errClosed = errors.New("webfetch: body closed")

// bodyReader reads a response body from its ReadableStream reader, or from
// arrayBuffer() where the browser has no streaming bodies.
type bodyReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	abort  js.Value
	stream js.Value // reader, or undefined
	array  js.Value // arrayBuffer() promise, or undefined

	pending []byte
	err     error // sticky
	once    sync.Once
	done    chan struct{}
}

// watch aborts the fetch when the request's context ends before Close.
func (r *bodyReader) watch() {
	select {
	case <-r.ctx.Done():
		r.abort.Call("abort")
	case <-r.done:
	}
}

func (r *bodyReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// fill reads the next chunk into pending, or sets err.
func (r *bodyReader) fill() {
	if !r.array.IsUndefined() {
		v, err := await(r.ctx, r.abort, r.array)
		r.array = js.Undefined()
		if err != nil {
			r.err = fmt.Errorf("webfetch: body: %w", err)
			return
		}
		r.pending = copyBytes(js.Global().Get("Uint8Array").New(v))
		r.err = io.EOF // after pending
		return
	}
	v, err := await(r.ctx, r.abort, r.stream.Call("read"))
	switch {
	case err != nil:
		r.err = fmt.Errorf("webfetch: body: %w", err)
	case v.Get("done").Bool():
		r.err = io.EOF
	default:
		r.pending = copyBytes(v.Get("value"))
	}
}

func copyBytes(u8 js.Value) []byte {
	b := make([]byte, u8.Get("byteLength").Int())
	js.CopyBytesToGo(b, u8)
	return b
}

// Close stops the fetch if the body was not read to its end.
func (r *bodyReader) Close() error {
	r.once.Do(func() {
		if r.err != io.EOF || len(r.pending) > 0 {
			r.abort.Call("abort")
		}
		if r.err == nil || r.err == io.EOF {
			r.err = errClosed
		}
		r.pending = nil
		close(r.done)
		r.cancel()
	})
	return nil
}
