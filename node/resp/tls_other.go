//go:build !unix

package resp

import "errors"

func socketpair() ([2]int, error) {
	return [2]int{}, errors.New("resp: TLS clients need a Unix system")
}

func closeFD(int) {}

func readFD(uintptr, []byte) (int, error) {
	return 0, errors.New("resp: TLS clients need a Unix system")
}
