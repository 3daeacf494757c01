//go:build !linux

package resp

import "errors"

// readySet exists only on Linux (epoll); elsewhere event loops do not spin.
type readySet struct{}

func newReadySet() (readySet, error) {
	return readySet{}, errors.New("resp: idle spin needs Linux")
}

func (*readySet) add(int) error { return errors.New("resp: idle spin needs Linux") }
func (*readySet) remove(int)    {}
func (*readySet) ready() bool   { return false }
func (*readySet) close()        {}
