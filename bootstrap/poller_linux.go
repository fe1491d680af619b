package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// poller watches the sockets of idle peers with one epoll set, so that an
// idle peer costs no goroutine (and no goroutine stack): when a socket turns
// readable, a short-lived goroutine (peer.serve) reads what is there, then
// re-arms the socket. Registrations are one-shot and level-triggered, so data
// that arrives while a peer is being served is seen at the re-arm.
type poller struct {
	s    *Server
	epfd int

	mu    sync.Mutex
	peers map[int32]*peer
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

func newPoller(s *Server) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &poller{s: s, epfd: fd, peers: make(map[int32]*peer)}, nil
}

// add registers p (armed). The descriptor stays valid while p's connection is
// open; remove runs before it is closed, and a descriptor number reused by a
// later connection is told apart by the map check in remove.
func (pl *poller) add(p *peer) error {
	if p.raw == nil {
		return errors.New("no raw connection")
	}
	fd := int32(-1)
	if err := p.raw.Control(func(u uintptr) { fd = int32(u) }); err != nil {
		return fmt.Errorf("socket descriptor: %w", err)
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if p.cleaned.Load() {
		// Closed meanwhile (replaced by a newer connection, shutdown):
		// its cleanup already ran remove, or runs it after this.
		return errors.New("peer closed")
	}
	p.fd = fd // under pl.mu, like every read of it
	pl.peers[fd] = p
	ev := syscall.EpollEvent{Events: pollEvents, Fd: fd}
	if err := syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		delete(pl.peers, fd)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// arm re-enables the one-shot registration of p.
func (pl *poller) arm(p *peer) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.peers[p.fd] != p {
		return errors.New("peer not registered")
	}
	ev := syscall.EpollEvent{Events: pollEvents, Fd: p.fd}
	if err := syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_MOD, int(p.fd), &ev); err != nil {
		return fmt.Errorf("epoll_ctl mod: %w", err)
	}
	return nil
}

// remove forgets p; it must run before p's socket is closed.
func (pl *poller) remove(p *peer) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.peers[p.fd] == p {
		delete(pl.peers, p.fd)
		_ = syscall.EpollCtl(pl.epfd, syscall.EPOLL_CTL_DEL, int(p.fd), nil)
	}
}

// run dispatches readiness until ctx ends.
func (pl *poller) run(ctx context.Context) {
	events := make([]syscall.EpollEvent, 512)
	for ctx.Err() == nil {
		n, err := syscall.EpollWait(pl.epfd, events, 200)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			pl.s.log.Error("epoll_wait", "err", err)
			return
		}
		pl.mu.Lock()
		for i := 0; i < n; i++ {
			if p := pl.peers[events[i].Fd]; p != nil {
				go p.serve()
			}
		}
		pl.mu.Unlock()
	}
}

func (pl *poller) close() { _ = syscall.Close(pl.epfd) }
