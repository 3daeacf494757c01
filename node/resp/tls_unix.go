//go:build unix

package resp

import "syscall"

// socketpair returns a connected pair of Unix stream sockets, neither of
// them inherited by a process the node starts.
func socketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}

func closeFD(fd int) { _ = syscall.Close(fd) }

// readFD is read(2) on fd.
func readFD(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }
