package browsertest

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
)

// listener returns the func that chromedp calls with each event of a target
// of type kind ("page", "service_worker", ...). It runs on chromedp's
// reading goroutine, so it only formats and stores.
func (v *Visitor) listener(kind string) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			v.record(kind, string(ev.Type), consoleText(ev.Args), callSite(ev.StackTrace, string(ev.Type)))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				desc, _, _ := strings.Cut(argText(d.Exception), "\n    at ")
				text += " " + desc
			}
			where := fmt.Sprintf(" (%s:%d)", shortURL(d.URL), d.LineNumber+1)
			if d.URL == "" {
				where = callSite(d.StackTrace, "error")
			}
			v.record(kind, "exception", text, where)
		case *log.EventEntryAdded:
			e := ev.Entry
			where := ""
			if e.URL != "" {
				where = " (" + shortURL(e.URL) + ")"
			}
			v.record(kind, string(e.Source)+"-"+string(e.Level), e.Text, where)
		case *inspector.EventTargetCrashed:
			// A service worker that stops (StopWorkers, idle) says this too.
			v.record(kind, "inspector", "target crashed or stopped", "")
		case *inspector.EventTargetReloadedAfterCrash:
			v.record(kind, "inspector", "target started again", "")
		default:
			if kind == "page" {
				v.net.event(ev)
			}
		}
	}
}

// record keeps one console line and writes it to the test log.
func (v *Visitor) record(kind, level, text, where string) {
	line := fmt.Sprintf("[%s %s] %s: %s%s", v.Name, kind, level, text, where)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.logs = append(v.logs, line)
	close(v.changed)
	v.changed = make(chan struct{})
	if !v.ended {
		v.t.Log(line)
	}
}

// logf writes a line about the harness itself (not kept in Logs).
func (v *Visitor) logf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.ended {
		v.t.Logf("visitor %s: "+format, append([]any{v.Name}, args...)...)
	}
}

// Logs returns every console line so far, of the page and of the
// visitor's workers, in arrival order, each as
// "[<visitor> <target type>] <level>: <text>".
func (v *Visitor) Logs() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.logs...)
}

// CountLog is how many console lines so far contain substr.
func (v *Visitor) CountLog(substr string) int {
	n, _ := v.countLog(substr)
	return n
}

func (v *Visitor) countLog(substr string) (int, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, l := range v.logs {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n, v.changed
}

// WaitLog waits until a console line contains substr (lines logged before
// the call count) and returns the first such line; it fails the test after
// timeout.
func (v *Visitor) WaitLog(substr string, timeout time.Duration) string {
	v.t.Helper()
	v.WaitLogCount(substr, 1, timeout)
	for _, l := range v.Logs() {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

// WaitLogCount waits until at least n console lines contain substr; it
// fails the test after timeout.
func (v *Visitor) WaitLogCount(substr string, n int, timeout time.Duration) {
	v.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		got, changed := v.countLog(substr)
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			v.t.Fatalf("visitor %s: %d console lines containing %q after %v, want %d", v.Name, got, substr, timeout, n)
		}
	}
}

// callSite is " (file:line)" for warnings and errors, "" otherwise.
func callSite(st *runtime.StackTrace, level string) string {
	if st == nil || len(st.CallFrames) == 0 || (level != "error" && level != "warning" && level != "assert") {
		return ""
	}
	f := st.CallFrames[0]
	return fmt.Sprintf(" (%s:%d)", shortURL(f.URL), f.LineNumber+1)
}

func shortURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return path.Base(u[i+3+j:])
		}
	}
	return u
}

// consoleText renders console arguments as the DevTools console does, for
// the common cases: strings as they are, %s %d %i %f %o %O %c substitutions,
// other values by their description.
func consoleText(args []*runtime.RemoteObject) string {
	if len(args) == 0 {
		return ""
	}
	rest := args
	var parts []string
	if args[0].Type == runtime.RemoteObjectTypeString {
		format := argText(args[0])
		rest = args[1:]
		var b strings.Builder
		for i := 0; i < len(format); i++ {
			c := format[i]
			if c != '%' || i+1 == len(format) {
				b.WriteByte(c)
				continue
			}
			switch format[i+1] {
			case 's', 'd', 'i', 'f', 'o', 'O':
				if len(rest) > 0 {
					b.WriteString(argText(rest[0]))
					rest = rest[1:]
				}
				i++
			case 'c': // CSS: dropped
				if len(rest) > 0 {
					rest = rest[1:]
				}
				i++
			case '%':
				b.WriteByte('%')
				i++
			default:
				b.WriteByte(c)
			}
		}
		parts = append(parts, b.String())
	}
	for _, a := range rest {
		parts = append(parts, argText(a))
	}
	return strings.Join(parts, " ")
}

func argText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if o.Type == runtime.RemoteObjectTypeString && len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
	}
	switch {
	case len(o.Value) > 0:
		return string(o.Value)
	case o.UnserializableValue != "":
		return string(o.UnserializableValue)
	case o.Preview != nil && o.Type == runtime.RemoteObjectTypeObject && o.Subtype == "":
		var props []string
		for _, p := range o.Preview.Properties {
			props = append(props, p.Name+": "+p.Value)
		}
		more := ""
		if o.Preview.Overflow {
			more = ", …"
		}
		return "{" + strings.Join(props, ", ") + more + "}"
	case o.Description != "":
		return o.Description
	}
	return string(o.Type)
}

// netTracker follows the page's requests, so ScrollToBottom can wait for
// the network to be idle-ish.
type netTracker struct {
	mu       sync.Mutex
	inflight map[network.RequestID]bool
	last     time.Time // last request start or end
}

func (n *netTracker) event(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inflight == nil {
		n.inflight = make(map[network.RequestID]bool)
	}
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		n.inflight[ev.RequestID] = true
	case *network.EventLoadingFinished:
		delete(n.inflight, ev.RequestID)
	case *network.EventLoadingFailed:
		delete(n.inflight, ev.RequestID)
	default:
		return
	}
	n.last = time.Now()
}

// idle reports whether no request is in flight, or nothing happened for
// quiet (a long poll or a stream never ends), for at least quiet.
func (n *netTracker) idle(quiet time.Duration) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Since(n.last) >= quiet && (len(n.inflight) == 0 || time.Since(n.last) >= 3*quiet)
}
