// Package node is the Cloakroom server: one node of a cluster. It owns a
// partitioned in-memory store (package node/store), serves the native
// protocol (package protocol) and the Redis protocol (package node/resp),
// and an HTTP endpoint for health checks and Prometheus metrics.
//
// A node is configured with a Config, validated as a whole before anything
// starts, and runs until Close or Shutdown:
//
//	cfg := node.DefaultConfig()
//	cfg.Addr = "127.0.0.1:0" // let the kernel pick
//	n, err := node.New(cfg)
//	if err != nil { ... }
//	defer n.Close()
//	fmt.Println("serving on", n.Addr())
package node
