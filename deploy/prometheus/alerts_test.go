package prometheus

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// There is no Prometheus where these tests run. They check alerts.yml as
// `promtool check rules` would (Prometheus's own parser: the YAML, every
// PromQL expression, every template), that each alert is complete, and
// that every Cloakroom metric and label an expression names is one a
// running cloakroomd exports: a misspelt metric would make its alert
// silently never fire.

func loadRules(t *testing.T) []rulefmt.Rule {
	t.Helper()
	groups, errs := rulefmt.ParseFile("alerts.yml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	var rules []rulefmt.Rule
	for _, g := range groups.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return rules
}

func TestAlerts_parseAndEachIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		switch {
		case !strings.HasPrefix(r.Alert, "Cloakroom"):
			t.Errorf("rule %q: want an alert named Cloakroom...", r.Alert+r.Record)
		case seen[r.Alert]:
			t.Errorf("alert %s twice", r.Alert)
		}
		seen[r.Alert] = true
		if r.For == 0 {
			t.Errorf("%s: no `for`: one scrape's blip would page someone", r.Alert)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q; want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s", r.Alert, a)
			}
		}
	}
}

// codeNames returns the values of the code label of
// cloakroom_requests_total: the native protocol's code names.
func codeNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../protocol/errors.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`Code\w+: "([a-z_]+)"`).FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	if !slices.Contains(names, "ok") || !slices.Contains(names, "not_found") {
		t.Fatalf("found codes %v in protocol/errors.go; the code names table moved?", names)
	}
	return names
}

// freeAddr returns a loopback address free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeNode starts cloakroomd on loopback, serves one Redis GET (so that
// the request counters have a series) and returns its metrics.
func scrapeNode(t *testing.T) map[string][]map[string]string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cloakroomd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cloakroomd")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cloakroomd: %v\n%s", err, out)
	}
	httpAddr, respAddr := freeAddr(t), freeAddr(t)
	node := exec.Command(bin, "--name", "alerts", "--addr", freeAddr(t), "--resp-addr", respAddr,
		"--http-addr", httpAddr, "--gossip-addr", freeAddr(t), "--log-level", "warn")
	node.Env = []string{} // no CLOAKROOM_* from the caller's environment
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = node.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = node.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = node.Process.Kill()
			<-done
		}
	}()

	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cloakroomd not ready after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	nc, err := net.DialTimeout("tcp", respAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, "*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n"); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 5)
	if _, err := io.ReadFull(nc, reply); err != nil || string(reply) != "$-1\r\n" {
		t.Fatalf("GET missing: %q, %v", reply, err)
	}
	nc.Close()

	resp, err := hc.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	out := map[string][]map[string]string{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			out[name] = append(out[name], ls)
		}
	}
	return out
}

// Prometheus's own series, which a scrape adds beside a node's.
var scrapeSeries = []string{"up"}

func TestAlerts_nameOnlyMetricsAndLabelsANodeExports(t *testing.T) {
	rules := loadRules(t)
	metrics := scrapeNode(t)
	codes := codeNames(t)
	p := parser.NewParser(parser.Options{})
	for _, r := range rules {
		expr, err := p.ParseExpr(r.Expr)
		if err != nil {
			t.Fatalf("%s: %v", r.Alert, err) // rulefmt parsed it already
		}
		for _, sel := range parser.ExtractSelectors(expr) {
			var name string
			for _, m := range sel {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if slices.Contains(scrapeSeries, name) {
				continue
			}
			series, ok := metrics[name]
			if !ok {
				t.Errorf("%s: cloakroomd exports no metric %q", r.Alert, name)
				continue
			}
			for _, m := range sel {
				if m.Name == labels.MetricName || m.Name == "job" || m.Name == "instance" {
					continue
				}
				if !slices.ContainsFunc(series, func(ls map[string]string) bool { _, ok := ls[m.Name]; return ok }) {
					t.Errorf("%s: %s has no label %q", r.Alert, name, m.Name)
				}
				if m.Name == "code" && m.Type == labels.MatchEqual && !slices.Contains(codes, m.Value) {
					t.Errorf("%s: code %q is no code name (%v)", r.Alert, m.Value, codes)
				}
			}
		}
	}
}
