package resp

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// readySet is an epoll set of one event loop's connections, used only to
// ask whether any has input: it is level-triggered and never read from, so
// asking consumes nothing and gnet's own poller still sees every event.
type readySet struct {
	fd int // -1 when closed
}

func newReadySet() (readySet, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return readySet{fd: -1}, os.NewSyscallError("epoll_create1", err)
	}
	return readySet{fd: fd}, nil
}

func (r *readySet) add(fd int) error {
	if r.fd < 0 {
		return errors.New("resp: ready set closed")
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(r.fd, unix.EPOLL_CTL_ADD, fd, &ev))
}

func (r *readySet) remove(fd int) {
	if r.fd >= 0 {
		_ = unix.EpollCtl(r.fd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// ready reports whether a connection in the set has input or has hung up.
func (r *readySet) ready() bool {
	if r.fd < 0 {
		return false
	}
	var ev [1]unix.EpollEvent
	n, _ := unix.EpollWait(r.fd, ev[:], 0)
	return n > 0
}

func (r *readySet) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}
