//go:build !unix

package resp

// openFileLimit returns 0: the open-file limit is unknown here.
func openFileLimit() int { return 0 }
