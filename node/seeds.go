package node

import (
	"context"
	"net"
	"strconv"
	"time"
)

// otherSeeds resolves the --join seeds to gossip addresses, leaving out
// this node's own: one seed list for every node (docker-compose.yml's, or
// a Kubernetes headless service that lists every pod) names each node
// too, and memberlist counts reaching itself as a join. self counts the
// addresses left out. A seed that does not resolve (yet) is kept as it is,
// for memberlist to try and report.
func (n *Node) otherSeeds(ctx context.Context) (others []string, self int) {
	// Not ml.LocalNode().Port: memberlist writes its fields under its own
	// lock whenever an alive message about this node is applied.
	advHost, p, _ := net.SplitHostPort(n.members.addr)
	port, _ := strconv.Atoi(p)
	adv := net.ParseIP(advHost)
	bindHost, _, _ := net.SplitHostPort(n.cfg.GossipAddr)
	bind := net.ParseIP(bindHost)
	anyAddr := bind == nil || bind.IsUnspecified()
	var local []net.IP
	if anyAddr {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				local = append(local, ipn.IP)
			}
		}
	}
	isSelf := func(ip net.IP, p int) bool {
		switch {
		case p != port:
			return false
		case ip.Equal(adv), !anyAddr && ip.Equal(bind):
			return true
		case anyAddr && ip.IsLoopback():
			return true
		}
		for _, l := range local {
			if ip.Equal(l) {
				return true
			}
		}
		return false
	}
	for _, seed := range n.cfg.Join {
		host, ps, err := net.SplitHostPort(seed)
		p, perr := strconv.Atoi(ps)
		if err != nil || perr != nil {
			host, p = seed, port // memberlist's default: this node's port
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ips, err := net.DefaultResolver.LookupIP(rctx, "ip", host)
		cancel()
		if err != nil {
			others = append(others, seed)
			continue
		}
		for _, ip := range ips {
			if isSelf(ip, p) {
				self++
				continue
			}
			others = append(others, net.JoinHostPort(ip.String(), strconv.Itoa(p)))
		}
	}
	return others, self
}
