// Command cloakroom-demo is a small web application showing the session
// toolkit (package client/session) on a Cloakroom cluster: log in, count
// visits, list your sessions, log out here or everywhere.
//
//	go run ./cmd/cloakroom-demo --listen 127.0.0.1:8080 --cluster 127.0.0.1:7400
//
// Every flag can also be set as CLOAKROOM_DEMO_<NAME> in the environment
// (--secret: CLOAKROOM_DEMO_SECRET). Without a secret the demo makes one per
// process: fine for a try-out, but sessions then end when it restarts and two
// demo processes cannot share sessions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if err == nil {
		err = run(ctx, o, os.Stderr)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cloakroom-demo:", err)
		}
		os.Exit(2)
	}
}
