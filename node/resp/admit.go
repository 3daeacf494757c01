package resp

import (
	"crypto/tls"
	"io"
	"net"
	"time"
)

// DefaultMaxClients is Config.MaxClients unless it says otherwise:
// Redis's default maxclients.
const DefaultMaxClients = 10000

// admit counts a newly accepted connection unless the server is at
// MaxClients.
func (s *Server) admit() bool {
	n := s.admitted.Add(1)
	if s.cfg.MaxClients > 0 && n > int64(s.cfg.MaxClients) {
		s.admitted.Add(-1)
		return false
	}
	return true
}

// refuse closes a connection past MaxClients with the error Redis sends
// then. The socket is new, so its send buffer takes the error at once;
// a client that has not sent a command yet reads it before the close. A
// TLS client is closed without it: it could not read it before a
// handshake. A flood of refusals is logged once every ten seconds.
func (s *Server) refuse(nc net.Conn) {
	n := s.refused.Add(1)
	now := time.Now()
	if s.refusalLog.Allow(now) {
		s.log.Warn("resp: refusing connections: at the client limit (--resp-max-clients)",
			"peer", nc.RemoteAddr().String(), "limit", s.cfg.MaxClients, "refused_total", n)
	}
	msg := "-ERR max number of clients reached\r\n"
	if s.cfg.ClusterMode { // Redis Cluster counts its bus links too, and says so
		msg = "-ERR max number of clients + cluster connections reached\r\n"
	}
	if _, ok := nc.(*tls.Conn); !ok { // a TLS client could not read it before its handshake
		_ = nc.SetWriteDeadline(now.Add(time.Second))
		_, _ = io.WriteString(nc, msg)
	}
	nc.Close()
}

// Refused returns how many connections were closed at once because the
// server was at MaxClients.
func (s *Server) Refused() int64 { return s.refused.Load() }
