package main

import (
	"strings"
	"testing"

	"github.com/cloakroom/cloakroom/node/nodetest"
	"github.com/cloakroom/cloakroom/protocol"
)

func TestCloakctl_Status_showsEveryMemberAndItsPartitions(t *testing.T) {
	c := nodetest.Start(t, 3)
	r := cloakctl(t, nil, "", "--addr", c.Node(0).Addr(), "status")
	if r.code != exitOK {
		t.Fatalf("status exit %d; want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "cluster: 3 members") {
		t.Errorf("status does not count 3 members:\n%s", r.stdout)
	}
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("status does not list %s:\n%s", name, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "under-replicated partitions: 0") {
		t.Errorf("a settled 3-node cluster shows under-replicated partitions:\n%s", r.stdout)
	}
}

func TestProgressLine_showsBarRateAndTimeLeft(t *testing.T) {
	got := progressLine(&protocol.NodeStatus{TransferDone: 50, TransferTotal: 100, TransferEntries: 20000, TransferSeconds: 2, Arriving: 50})
	for _, want := range []string{"[############............]", " 50%", "partitions 50/100", "10000/s", "left 2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
}

func TestCloakctl_Ping_readyNodeExitsZero(t *testing.T) {
	addr := startNode(t)
	if r := cloakctl(t, nil, "", "--addr", addr, "ping"); r.code != exitOK || !strings.Contains(r.stdout, "ready") {
		t.Fatalf("ping = %d %q %q; want 0 and ready", r.code, r.stdout, r.stderr)
	}
	if r := cloakctl(t, nil, "", "--addr", "127.0.0.1:1", "--timeout", "1s", "ping"); r.code != exitFailure {
		t.Fatalf("ping of nothing = %d; want %d", r.code, exitFailure)
	}
}
