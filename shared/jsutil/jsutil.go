//go:build js && wasm

// Package jsutil holds the small JS interop pieces the browser's two
// halves share (worker/, wasm/, shared/idb): plain objects, Promises both
// ways, and byte copies, over github.com/hack-pad/safejs so that a JS
// exception comes back as an error.
package jsutil

import (
	"errors"
	"fmt"

	"github.com/hack-pad/safejs"
)

// NewObject returns a new plain JS object.
func NewObject() (safejs.Value, error) {
	cls, err := safejs.Global().Get("Object")
	if err != nil {
		return safejs.Value{}, err
	}
	return cls.New()
}

// Promise returns a JS Promise settled by fn, run in a goroutine (it may
// block on JS events).
func Promise(fn func() (any, error)) any {
	cls, err := safejs.Global().Get("Promise")
	if err != nil {
		return nil
	}
	var exec safejs.Func
	exec, err = safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		exec.Release()
		resolve, reject := args[0], args[1]
		go func() {
			v, err := fn()
			if err != nil {
				_, _ = reject.Invoke(err.Error())
				return
			}
			_, _ = resolve.Invoke(v)
		}()
		return nil
	})
	if err != nil {
		return nil
	}
	p, err := cls.New(exec.Value())
	if err != nil {
		return nil
	}
	return p
}

// Await waits for a JS promise.
func Await(p safejs.Value) (safejs.Value, error) {
	type result struct {
		v   safejs.Value
		err error
	}
	ch := make(chan result, 1)
	then, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		var v safejs.Value
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{v: v}
		return nil
	})
	if err != nil {
		return safejs.Value{}, err
	}
	defer then.Release()
	catch, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		msg := "rejected"
		if len(args) > 0 {
			if s, err := args[0].Call("toString"); err == nil {
				msg, _ = s.String()
			}
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	if err != nil {
		return safejs.Value{}, err
	}
	defer catch.Release()
	if _, err := p.Call("then", then.Value(), catch.Value()); err != nil {
		return safejs.Value{}, err
	}
	r := <-ch
	return r.v, r.err
}

// ToJS copies b into a new Uint8Array.
func ToJS(b []byte) (safejs.Value, error) {
	cls, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return safejs.Value{}, err
	}
	a, err := cls.New(len(b))
	if err != nil {
		return safejs.Value{}, err
	}
	if _, err := safejs.CopyBytesToJS(a, b); err != nil {
		return safejs.Value{}, err
	}
	return a, nil
}

// ToGo copies a Uint8Array (or ArrayBuffer) into a new slice.
func ToGo(v safejs.Value) ([]byte, error) {
	if v.IsUndefined() || v.IsNull() {
		return nil, nil
	}
	if isBuf, _ := v.InstanceOf(global("ArrayBuffer")); isBuf {
		cls := global("Uint8Array")
		var err error
		if v, err = cls.New(v); err != nil {
			return nil, err
		}
	}
	n, err := v.Length()
	if err != nil {
		return nil, fmt.Errorf("jsutil: not bytes: %w", err)
	}
	b := make([]byte, n)
	if _, err := safejs.CopyBytesToGo(b, v); err != nil {
		return nil, fmt.Errorf("jsutil: not bytes: %w", err)
	}
	return b, nil
}

func global(name string) safejs.Value {
	v, _ := safejs.Global().Get(name)
	return v
}
