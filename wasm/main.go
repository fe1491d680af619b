//go:build js && wasm

// Command wasm is Flower-CDN in the browser: one WebAssembly module that is
// both the service worker (worker/, started by site/flower-sw.js with the
// argument "worker") and the page-side peer (started by site/flower/flower.js
// with "page"). One module rather than two: the two share most of their code
// (the Go runtime, crypto, the security and peer packages), and a visitor
// downloads and compiles it once (docs/browser.md has the sizes).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/flowercdn/flower/worker"
	"github.com/hack-pad/safejs"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	level := slog.LevelInfo
	if len(os.Args) > 2 && os.Args[len(os.Args)-1] == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("side", mode)
	ctx := context.Background()
	var err error
	switch mode {
	case "worker":
		err = worker.Run(ctx, log)
	case "page":
		err = runPage(ctx, log, os.Args[2:])
	default:
		err = fmt.Errorf("flower.wasm: unknown mode %q (worker or page)", mode)
	}
	ready(err)
	if err != nil {
		log.Error("Flower-CDN did not start", "err", err)
		return
	}
	select {} // serve the glue's calls for the life of the worker or page
}

// ready tells the glue that the module started (or why not), through
// globalThis.flowerReady(error message or null).
func ready(err error) {
	fn, gerr := safejs.Global().Get("flowerReady")
	if gerr != nil || fn.IsUndefined() {
		return
	}
	var arg any = safejs.Null()
	if err != nil {
		arg = err.Error()
	}
	_, _ = fn.Invoke(arg)
}
