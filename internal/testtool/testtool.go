// Package testtool finds the programs tests drive (redis-server,
// redis-cli, redis-benchmark, script) for the tests of every package.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Look returns the path of the program name, which Debian's package pkg
// installs. When it is missing the test skips, unless CI is set, where it
// fails: .ci/run installs every such package, and a test that skips there
// proves nothing.
func Look(t testing.TB, name, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found under CI: install Debian's %s (%v)", name, pkg, err)
		}
		t.Skipf("%s not installed (apt-get install -y %s); the test is unproven without it", name, pkg)
	}
	return bin
}
