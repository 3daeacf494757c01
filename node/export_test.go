package node

import "time"

// FreeAddr is freeAddr (join_test.go) for the tests of package node_test.
var FreeAddr = freeAddr

// SetDropDelay sets dropDelay for the tests of package node_test and
// returns a function that restores it. Call it before starting any node.
func SetDropDelay(d time.Duration) (restore func()) {
	old := dropDelay
	dropDelay = d
	return func() { dropDelay = old }
}

// ReplicateMany is replicateMany for the tests of package node_test, with
// one standing in for the calls to the backups.
func (n *Node) ReplicateMany(backups []string, one func(string) (bool, error)) (int, error) {
	return n.replicateMany(backups, one)
}

// MaxHTTPConns is maxHTTPConns for the tests of package node_test.
const MaxHTTPConns = maxHTTPConns
