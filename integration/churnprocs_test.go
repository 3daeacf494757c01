package integration

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Membership changes on a procCluster, as an operator or an autoscaler
// makes them: nodes join the running ones, leave with SIGTERM, come back on
// their old addresses or, as a Kubernetes pod, on new ones.

// drainWait bounds how long a SIGTERM'd node may take to hand off its
// partitions and exit: the nodes' --drain-timeout (30s) plus a margin.
const drainWait = 40 * time.Second

// joinArgs returns args with --join naming the gossip addresses of the
// running nodes, instead of whatever it named before.
func (c *procCluster) joinArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--join" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	var seeds []string
	for _, p := range c.running() {
		seeds = append(seeds, p.gossip)
	}
	if len(seeds) > 0 {
		out = append(out, "--join", strings.Join(seeds, ","))
	}
	return out
}

// add starts one more node that joins the running ones and returns its
// index. It does not wait for readiness.
func (c *procCluster) add() int {
	c.t.Helper()
	t := c.t
	p := &proc{name: fmt.Sprintf("n%d", len(c.procs)+1)}
	p.readdress(t)
	p.args = c.joinArgs(append(p.args, c.extra...))
	c.procs = append(c.procs, p)
	c.start(p)
	return len(c.procs) - 1
}

// restartElsewhere starts node i again, empty, under its name but on new
// addresses, joining the running nodes: as Kubernetes recreates a pod, with
// a new IP.
func (c *procCluster) restartElsewhere(i int) {
	c.t.Helper()
	p := c.procs[i]
	p.readdress(c.t)
	p.args = c.joinArgs(append(p.args, c.extra...))
	c.start(p)
}

// rejoin starts node i again, empty, on its old addresses, joining the
// running nodes (node 0 was started with no --join at all).
func (c *procCluster) rejoin(i int) {
	c.t.Helper()
	p := c.procs[i]
	p.args = c.joinArgs(p.args)
	c.start(p)
}

// metrics fetches one node's /metrics as name → value, for metrics without
// labels.
func metricsOf(p *proc) (map[string]float64, error) {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// fullyReplicated reports nil once every running node answers /readyz with
// 200 and reports no under-replicated partition.
func (c *procCluster) fullyReplicated() error {
	for _, p := range c.running() {
		code, body, err := httpGet(p, "/readyz")
		if err != nil {
			return fmt.Errorf("%s: %v", p.name, err)
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s: /readyz %d %s", p.name, code, body)
		}
		m, err := metricsOf(p)
		if err != nil {
			return fmt.Errorf("%s metrics: %v", p.name, err)
		}
		if u := m["cloakroom_under_replicated_partitions"]; u != 0 {
			return fmt.Errorf("%s: %v under-replicated partitions", p.name, u)
		}
	}
	return nil
}

// names lists the running nodes, for logs.
func (c *procCluster) names() []string {
	var out []string
	for _, p := range c.running() {
		out = append(out, p.name)
	}
	return slices.Clip(out)
}

// logOutputs logs the last lines each node wrote, as evidence for
// anomalies that do not fail the test.
func (c *procCluster) logOutputs() {
	for _, p := range c.procs {
		c.t.Logf("%s output:\n%s", p.name, lastLines(p.out.String(), 60))
	}
}
