package bootstrap_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer process and a reader test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Every flag with a range is checked at start-up: an explicit bad value is
// a clear error naming the flag and exit status 2, never a silent default
// nor a server that starts and refuses everyone.
func TestBadFlagsRefused(t *testing.T) {
	cases := []struct {
		flag string // named in the message
		args []string
		env  []string
	}{
		{"localities", []string{"--localities", "0"}, nil},
		{"localities", []string{"--localities", "70000"}, nil},
		{"instance-bits", []string{"--instance-bits", "9"}, nil},
		{"instance-bits", []string{"--instance-bits", "-1"}, nil},
		{"max-peers", []string{"--max-peers", "-1"}, nil},
		{"max-peers", []string{"--max-peers", "0"}, nil},
		{"landmarks", []string{"--landmarks", "notaurl"}, nil},
		{"landmarks", []string{"--landmarks", "https://lm.example/p,ftp://lm.example/p"}, nil},
		{"landmarks", []string{"--landmarks", "/relative/probe"}, nil},
		{"alternates", []string{"--alternates", "https://other.example/v1/ws"}, nil},
		{"max-frame", []string{"--max-frame", "10"}, nil},
		{"max-frame", []string{"--max-frame", "1000000"}, nil},
		{"peer-rate", []string{"--peer-rate", "0"}, nil},
		{"peer-burst", []string{"--peer-burst", "0"}, nil},
		{"ip-rate", []string{"--ip-rate", "-1"}, nil},
		{"ip-burst", []string{"--ip-burst", "0"}, nil},
		{"max-peers-per-ip", []string{"--max-peers-per-ip", "-5"}, nil},
		{"send-queue", []string{"--send-queue", "0"}, nil},
		{"send-queue-bytes", []string{"--send-queue-bytes", "1024"}, nil},
		{"entry-max", []string{"--entry-max", "0"}, nil},
		{"report-interval", []string{"--report-interval", "0s"}, nil},
		{"report-sites", []string{"--report-sites", "0"}, nil},
		{"sample-interval", []string{"--sample-interval", "-1s"}, nil},
		{"operator-token", nil, []string{"FLOWER_OPERATOR_TOKEN=short"}},
		{"entry-max", []string{"--entry-max", "17"}, nil},
		{"ping-interval", []string{"--ping-interval", "0s"}, nil},
		{"idle-timeout", []string{"--idle-timeout", "-1s"}, nil},
		{"idle-timeout", []string{"--ping-interval", "30s", "--idle-timeout", "20s"}, nil},
		{"write-timeout", []string{"--write-timeout", "0s"}, nil},
		{"handshake-timeout", []string{"--handshake-timeout", "0s"}, nil},
		{"shutdown-timeout", []string{"--shutdown-timeout", "-2s"}, nil},
		{"read-buffer", []string{"--read-buffer", "0"}, nil},
		{"write-buffer", []string{"--write-buffer", "-1"}, nil},
		{"dir-snapshot", []string{"--dir-snapshot", "0s"}, nil},
		{"nats-subject", []string{"--nats-subject", ""}, nil},
		{"nats", []string{"--nats", "http://nats.example:4222"}, nil},
		{"memory-limit", []string{"--memory-limit", "-1"}, nil},
		{"gogc", []string{"--gogc", "-5"}, nil},
		{"log-format", []string{"--log-format", "xml"}, nil},
		{"log-level", []string{"--log-level", "loud"}, nil},
		{"public-names", []string{"--public-names", "https://boot.example/v1/ws"}, nil},
		{"public-names", []string{"--listen", "0.0.0.0:0"}, nil},
		{"localities", nil, []string{"FLOWER_LOCALITIES=0"}},
		{"max-peers", nil, []string{"FLOWER_MAX_PEERS=-1"}},
	}
	for _, c := range cases {
		name := strings.Join(append(append([]string{}, c.env...), c.args...), " ")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out := runBinary(t, c.env, append([]string{"--listen", "127.0.0.1:0"}, c.args...)...)
			if code != 2 {
				t.Fatalf("exit status %d, want 2; output:\n%s", code, out)
			}
			if !strings.Contains(out, c.flag) {
				t.Fatalf("the message does not name %q:\n%s", c.flag, out)
			}
		})
	}
}

// runBinary runs flower-bootstrap and returns its exit status and output.
// A process that starts serving instead of refusing is stopped and reported
// as status -1.
func runBinary(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-done:
			var ee *exec.ExitError
			switch {
			case err == nil:
				return 0, out.String()
			case errors.As(err, &ee):
				return ee.ExitCode(), out.String()
			default:
				t.Fatalf("wait: %v", err)
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			return -1, out.String() + "\n(still running after 60s)"
		case <-time.After(20 * time.Millisecond):
			if strings.Contains(out.String(), "msg=listening") {
				_ = cmd.Process.Kill()
				<-done
				return -1, out.String() + "\n(started serving)"
			}
		}
	}
}
