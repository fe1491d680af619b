//go:build !linux

package bootstrap

import (
	"context"
	"errors"
)

// poller is Linux only; elsewhere every peer has a reader goroutine.
type poller struct{}

func newPoller(*Server) (*poller, error) { return nil, errors.New("epoll poller: linux only") }
func (*poller) add(*peer) error          { return errors.New("no poller") }
func (*poller) arm(*peer) error          { return errors.New("no poller") }
func (*poller) remove(*peer)             {}
func (*poller) run(context.Context)      {}
func (*poller) close()                   {}
