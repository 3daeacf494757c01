package integration

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// Measurements for docs/benchmarks.md ("Membership changes (issue 4)").
// They are not tests of timing: they log figures, and run only when
// CLOAKROOM_MEASURE=1, since each takes a minute or more:
//
//	CLOAKROOM_MEASURE=1 go test ./integration -run TestMeasure -v -timeout 20m

func measuring(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv("CLOAKROOM_MEASURE") != "1" {
		t.Skip("set CLOAKROOM_MEASURE=1 to measure")
	}
}

// TestMeasure_crashDetection logs the time from kill -9 of one of three
// nodes until every survivor's table agrees on two members, three times per
// gossip preset.
func TestMeasure_crashDetection(t *testing.T) {
	measuring(t)
	for _, preset := range []string{"lan", "local"} {
		t.Run(preset, func(t *testing.T) {
			for round := range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				c := startProcCluster(t, 3, "--replicas", "2", "--gossip-preset", preset)
				waitTablesAgree(ctx, t, c, 3)
				c.kill(1)
				killed := time.Now()
				waitTablesAgree(ctx, t, c, 2)
				t.Logf("preset %s round %d: kill -9 to tables agreeing on 2 members: %v",
					preset, round+1, time.Since(killed).Round(time.Millisecond))
				c.stopAll()
				cancel()
			}
		})
	}
}

// TestMeasure_restoreReplication1M loads CLOAKROOM_MEASURE_KEYS sessions
// (default 1,000,000, 200-byte values) into three nodes with two copies,
// kills one with -9 and logs how long until every survivor reports no
// under-replicated partition and /readyz 200, and how many entries the
// survivors' transfers applied meanwhile.
func TestMeasure_restoreReplication1M(t *testing.T) {
	measuring(t)
	n := 1_000_000
	if s := os.Getenv("CLOAKROOM_MEASURE_KEYS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := startProcCluster(t, 3, "--replicas", "2", "--gossip-preset", "local")
	waitTablesAgree(ctx, t, c, 3)
	cl := newRouted(t, c.nativeAddrs()...)
	start := time.Now()
	if failed := loadSessions(ctx, cl, n, 64); failed > 0 {
		t.Fatalf("%d of %d sets failed", failed, n)
	}
	load := time.Since(start)
	t.Logf("loaded %d sessions in %v (%.0f/s)", n, load.Round(time.Millisecond), float64(n)/load.Seconds())
	before := map[string]float64{}
	for _, p := range c.running() {
		m, err := metricsOf(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p.name] = m["cloakroom_transfer_entries_total"]
		t.Logf("%s holds %.0f keys", p.name, m["cloakroom_keys"])
	}
	c.kill(1)
	killed := time.Now()
	waitTablesAgree(ctx, t, c, 2)
	detected := time.Since(killed)
	eventuallyWithin(t, 10*time.Minute, c.fullyReplicated)
	restored := time.Since(killed)
	var moved float64
	for _, p := range c.running() {
		m, err := metricsOf(p)
		if err != nil {
			t.Fatal(err)
		}
		moved += m["cloakroom_transfer_entries_total"] - before[p.name]
		t.Logf("%s holds %.0f keys after", p.name, m["cloakroom_keys"])
	}
	t.Logf("kill -9 with %d sessions: tables agree after %v; full replication (under-replicated 0, /readyz 200 on both survivors) after %v; %.0f entries transferred (%.0f/s from detection)",
		n, detected.Round(time.Millisecond), restored.Round(time.Millisecond), moved, moved/(restored-detected).Seconds())
}
