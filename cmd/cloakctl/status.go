package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloakroom/cloakroom/protocol"
)

// cmdStatus shows the cluster as the node at --addr sees it, and every
// member's own account: partitions owned and backed up, keys, memory,
// readiness, and transfers in flight with a progress bar.
func cmdStatus(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("status")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) != 0 {
		return e.usageError("status", "takes no arguments, got %d", len(pos))
	}
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	ci, err := e.clusterInfo(cctx, e.addrs())
	if err != nil {
		return e.fail("status", err)
	}
	statuses := make([]*protocol.NodeStatus, len(ci.Members))
	errs := make([]error, len(ci.Members))
	for i, m := range ci.Members {
		statuses[i], errs[i] = e.nodeStatus(cctx, m.Addr)
	}
	printStatus(e.stdout, ci, statuses, errs)
	for _, err := range errs {
		if err != nil {
			return exitFailure
		}
	}
	return exitOK
}

// clusterInfo asks the first node of addrs that answers for its table.
func (e *env) clusterInfo(ctx context.Context, addrs []string) (*protocol.ClusterInfo, error) {
	c, err := e.client(addrs, true)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.Do(ctx, &protocol.Request{Op: protocol.OpTable})
	if err != nil {
		return nil, err
	}
	return protocol.NewDecoder().DecodeClusterInfo(r.Value)
}

func (e *env) nodeStatus(ctx context.Context, addr string) (*protocol.NodeStatus, error) {
	c, err := e.client([]string{addr}, true)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.Do(ctx, &protocol.Request{Op: protocol.OpStatus})
	if err != nil {
		return nil, err
	}
	return protocol.DecodeNodeStatus(r.Value)
}

func printStatus(w io.Writer, ci *protocol.ClusterInfo, st []*protocol.NodeStatus, errs []error) {
	fmt.Fprintf(w, "cluster: %d members, table version %d, %d partitions, %d copies of each\n\n",
		len(ci.Members), ci.Version, ci.Partitions, ci.Replicas)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDR\tTABLE\tPRIMARIES\tBACKUPS\tKEYS\tMEMORY\tREADY")
	under := 0
	for i, m := range ci.Members {
		s := st[i]
		if errs[i] != nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\tunreachable: %v\n", m.Name, m.Addr, errs[i])
			continue
		}
		ready := "yes"
		if !s.Ready {
			ready = "no: " + s.NotReady
		}
		mem := humanBytes(s.MemoryUsed)
		if s.MemoryMax > 0 {
			mem += " / " + humanBytes(s.MemoryMax)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, m.Addr, s.TableVersion, s.Primaries, s.Backups, s.Keys, mem, ready)
		under = max(under, s.UnderReplicated)
	}
	tw.Flush()
	fmt.Fprintln(w)
	moving := false
	for i, s := range st {
		if errs[i] != nil || s.TransferTotal == 0 || s.TransferDone >= s.TransferTotal {
			continue
		}
		if !moving {
			fmt.Fprintln(w, "transfers:")
			moving = true
		}
		fmt.Fprintf(w, "  %-12s %s\n", s.Name, progressLine(s))
	}
	if !moving {
		fmt.Fprintln(w, "transfers: none in flight")
	}
	fmt.Fprintf(w, "under-replicated partitions: %d\n", under)
}

// progressLine renders a node's transfers: a bar, partitions and entries
// moved, the rate and the time left at that rate.
func progressLine(s *protocol.NodeStatus) string {
	const width = 24
	frac := float64(s.TransferDone) / float64(s.TransferTotal)
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
	rate := 0.0
	if s.TransferSeconds > 0 {
		rate = float64(s.TransferEntries) / s.TransferSeconds
	}
	left := "?"
	if s.TransferDone > 0 && s.TransferSeconds > 0 {
		perPart := s.TransferSeconds / float64(s.TransferDone)
		left = (time.Duration(perPart*float64(s.TransferTotal-s.TransferDone)) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s] %3.0f%%  partitions %d/%d (%d arriving, %d sending)  entries %d  %.0f/s  left %s",
		bar, frac*100, s.TransferDone, s.TransferTotal, s.Arriving, s.Sending, s.TransferEntries, rate, left)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// cmdPing checks that the node at --addr answers and is ready to serve;
// it is what container health checks run.
func cmdPing(ctx context.Context, e *env, args []string) int {
	fs := e.subcommand("ping")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) != 0 {
		return e.usageError("ping", "takes no arguments, got %d", len(pos))
	}
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	s, err := e.nodeStatus(cctx, e.addrs()[0])
	if err != nil {
		return e.fail("ping", err)
	}
	if !s.Ready {
		return e.fail("ping", fmt.Errorf("%s is not ready: %s", s.Name, s.NotReady))
	}
	fmt.Fprintf(e.stdout, "%s ready\n", s.Name)
	return exitOK
}
