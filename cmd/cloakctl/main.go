// Command cloakctl is the Cloakroom operator CLI: it reads, writes and
// deletes sessions on a running node, and generates load to measure one.
//
//	cloakctl [--addr host:port] <command> [flags] [args]
//
//	cloakctl set session:42 '{"user":7}' --ttl 30m
//	cloakctl get session:42
//	cloakctl ttl session:42
//	cloakctl del session:42 session:43
//	cloakctl bench --workers 50 --duration 10s --value-size 200
//	cloakctl bench --target redis --redis-addr 127.0.0.1:6379
//
// --addr (default 127.0.0.1:7400, or $CLOAKROOM_ADDR) names one or more
// nodes, comma-separated; it may also follow the command.
//
// Exit codes: 0 success; 1 the session does not exist; 2 bad usage;
// 3 any other failure (node unreachable, request refused, bench errors).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
