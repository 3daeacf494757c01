package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// maxHTTPConns bounds the HTTP listener's open connections: probes and
// scrapes need a few, and without a bound idle keep-alive connections
// could take every file descriptor the node has, its Redis and native
// listeners' included. Past it, new connections wait in the kernel's
// backlog until one closes.
const maxHTTPConns = 256

// httpIdleTimeout closes keep-alive connections that sent no request for
// this long, so that idle ones do not hold the slots maxHTTPConns bounds.
const httpIdleTimeout = 30 * time.Second

// httpServer serves health, readiness and metrics.
type httpServer struct {
	ln  net.Listener
	srv *http.Server
}

func (n *Node) startHTTP(addr string) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := n.Ready(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /servingz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := n.Serving(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "serving")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	// Profiles, for operators who ask for them (--http-pprof): whoever
	// reaches /metrics could otherwise keep the node tracing or profiling.
	if n.cfg.HTTPProfiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	h := &httpServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second, // no endpoint takes a body
		IdleTimeout:       httpIdleTimeout,
		// No WriteTimeout: /debug/pprof/profile and /trace answer after
		// the seconds they are asked for.
	}}
	ln = netutil.LimitListener(ln, maxHTTPConns)
	n.goRun(func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http serve", "err", err)
		}
	})
	return h, nil
}

func (h *httpServer) addr() string { return h.ln.Addr().String() }

func (h *httpServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return h.srv.Shutdown(ctx)
}

// Ready reports whether the node serves (Serving) and holds every
// partition it should; when not, it says why.
func (n *Node) Ready() (bool, string) {
	if ok, why := n.Serving(); !ok {
		return false, why
	}
	if !n.settled.Load() {
		return false, "members do not all have the same partition table yet"
	}
	if k := n.transfers.syncCnt.Load(); k > 0 {
		return false, fmt.Sprintf("%d partitions still arriving", k)
	}
	return true, ""
}

// Serving reports whether the node serves sessions now: it has joined its
// cluster, is not shutting down, and is on the majority side. This is the
// check for a load balancer's list of nodes (/servingz). Ready is stricter:
// it also waits for the members to agree on the table and for the node's
// partitions to arrive, which every node of a cluster being resized may be
// doing at once, while each of them still serves (fetching the keys a
// request needs from the nodes that have them).
func (n *Node) Serving() (bool, string) {
	if !n.serving() {
		return false, n.state()
	}
	if why := n.noQuorum(); why != "" {
		return false, "no quorum: " + why
	}
	return true, ""
}
