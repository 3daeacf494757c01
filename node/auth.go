package node

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"sync/atomic"
	"time"

	"github.com/cloakroom/cloakroom/internal/throttle"
	"github.com/cloakroom/cloakroom/protocol"
)

// nativeAuth checks the password in native hellos (Config.NativePassword)
// and words what goes wrong with it, on either side of a connection.
type nativeAuth struct {
	sum      *[sha256.Size]byte // the password's hash; nil: none required
	optional bool               // let in hellos without it (NativePasswordOptional)
	inLog    throttle.Every     // hellos refused (or let in) here
	outLog   throttle.Every     // members that refused this node's hello
	failures atomic.Int64       // hellos without the password, for the log
}

func newNativeAuth(cfg *Config) *nativeAuth {
	a := &nativeAuth{optional: cfg.NativePasswordOptional,
		inLog: throttle.Every{Period: 10 * time.Second}, outLog: throttle.Every{Period: 10 * time.Second}}
	if cfg.NativePassword != "" {
		sum := sha256.Sum256([]byte(cfg.NativePassword))
		a.sum = &sum
	}
	return a
}

// ok reports whether a hello giving password may go on. Hashing first
// makes the comparison take the same time whatever the length given.
func (a *nativeAuth) ok(password []byte) bool {
	if a.sum == nil {
		return true
	}
	sum := sha256.Sum256(password)
	return subtle.ConstantTimeCompare(sum[:], a.sum[:]) == 1
}

// helloAuth checks the password of a hello on nc. It returns the error to
// answer with and close, or nil to serve the connection. A hello without
// the password is counted and logged, let in or not; one let in
// (NativePasswordOptional) marks nc, which counts in
// cloakroom_native_connections_without_password until it closes, so that
// an operator can tell when no client lacks the password any more.
func (n *Node) helloAuth(nc *nativeConn, password []byte) *protocol.Error {
	a := n.auth
	if a.ok(password) {
		return nil
	}
	n.metrics.authFailures.Inc()
	total := a.failures.Add(1)
	what := "no password"
	if len(password) > 0 {
		what = "a wrong password"
	}
	msg := "native: refused a connection whose hello gave " + what
	if a.optional {
		msg = "native: let in a connection whose hello gave " + what + " (--native-password-optional)"
		if !nc.unauth {
			nc.unauth = true
			n.metrics.unauthConns.Inc()
		}
	}
	if a.inLog.Allow(time.Now()) {
		n.log.Warn(msg+"; logged at most every 10 s, the others at debug level", "peer", nc.peer, "auth_failures_total", total)
	} else {
		n.log.Debug(msg, "peer", nc.peer)
	}
	if a.optional {
		return nil
	}
	return protocol.Errorf(protocol.CodeAuth, "node %s requires its --native-password in the hello (client.Config.Password); this one gave %s", n.cfg.Name, what)
}

// passwordWithoutGossipKey reports whether cfg sets a native password but
// leaves gossip unkeyed where others may reach it: whoever can gossip joins
// as a member and is given partitions and the password.
func passwordWithoutGossipKey(cfg *Config) bool {
	return cfg.NativePassword != "" && len(cfg.GossipKey) == 0 && cfg.GossipAddr != "" && !loopbackOnly(cfg.GossipAddr)
}

// loopbackOnly reports whether the listener address addr (host:port) takes
// connections from this machine only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// peerErr notes a call to member name that failed with err: a member that
// refuses this node's password cannot be replicated to or forwarded to,
// which an operator must hear of.
func (n *Node) peerErr(name string, err error) {
	if protocol.CodeOf(err) == protocol.CodeAuth && n.auth.outLog.Allow(time.Now()) {
		n.log.Error("member refused this node's --native-password: set the same one on every member (logged at most every 10 s)", "peer", name, "err", err)
	}
}
