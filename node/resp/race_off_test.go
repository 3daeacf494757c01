//go:build !race

package resp

// raceBuild: the race detector is on (see race_on_test.go).
const raceBuild = false
