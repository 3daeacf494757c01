package prometheus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
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

// protocolNames returns the names in a table of protocol/FILE whose
// entries read `Prefix...: "name"`: the values of the op and code labels
// of cloakroom_requests_total.
func protocolNames(t *testing.T, file, prefix string, must ...string) []string {
	t.Helper()
	b, err := os.ReadFile("../../protocol/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(prefix+`\w+: "([a-z_]+)"`).FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	for _, n := range must {
		if !slices.Contains(names, n) {
			t.Fatalf("found %v in protocol/%s, without %q: the names table moved?", names, file, n)
		}
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

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their paths: enough for a node to serve TLS, and so
// export its certificate's metric.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "alerts"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// scrapeNode starts cloakroomd on loopback, with a Redis TLS listener too,
// serves one Redis GET (so that the request counters have a series) and
// returns its metrics.
func scrapeNode(t *testing.T) map[string][]map[string]string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloakroomd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cloakroomd")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cloakroomd: %v\n%s", err, out)
	}
	cert, key := selfSigned(t, dir)
	httpAddr, respAddr := freeAddr(t), freeAddr(t)
	node := exec.Command(bin, "--name", "alerts", "--addr", freeAddr(t), "--resp-addr", respAddr,
		"--resp-tls-addr", freeAddr(t), "--resp-tls-cert", cert, "--resp-tls-key", key,
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

// targetLabels are the labels Prometheus gives every series of a target:
// job and instance always, namespace and pod on Kubernetes.
var targetLabels = []string{"job", "instance", "namespace", "pod"}

// jobNames are job names a scrape of Cloakroom may have, which an alert
// must match all of: a PodMonitor's with jobLabel (deploy/kubernetes), and
// the Prometheus Operator's default for one without.
var jobNames = []string{"cloakroom", "default/cloakroom"}

// keptLabels returns the labels each element of e's result has, as far as
// an annotation may name them: a set, or all=true for the labels of the
// series it selects (plus the target labels).
func keptLabels(e parser.Expr) (set map[string]bool, all bool) {
	switch e := e.(type) {
	case *parser.AggregateExpr:
		if e.Without {
			return nil, true
		}
		set = map[string]bool{}
		for _, l := range e.Grouping {
			set[l] = true
		}
		return set, false
	case *parser.BinaryExpr:
		l, lall := keptLabels(e.LHS)
		if e.Op != parser.LOR || e.LHS.Type() != parser.ValueTypeVector {
			if e.LHS.Type() != parser.ValueTypeVector {
				return keptLabels(e.RHS)
			}
			return l, lall
		}
		// or: an element comes from either side.
		r, rall := keptLabels(e.RHS)
		switch {
		case lall:
			return r, rall
		case rall:
			return l, false
		}
		for k := range l {
			if !r[k] {
				delete(l, k)
			}
		}
		return l, false
	case *parser.Call:
		for _, a := range e.Args {
			if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				return keptLabels(a)
			}
		}
		return map[string]bool{}, false
	case *parser.ParenExpr:
		return keptLabels(e.Expr)
	case *parser.StepInvariantExpr:
		return keptLabels(e.Expr)
	}
	return nil, true // a selector: its series' labels
}

// counterFuncs are the functions that make a rate of a counter.
var counterFuncs = []string{"rate", "irate", "increase"}

func TestAlerts_nameOnlyMetricsAndLabelsANodeExports(t *testing.T) {
	rules := loadRules(t)
	metrics := scrapeNode(t)
	values := map[string][]string{
		"code": protocolNames(t, "errors.go", "Code", "ok", "not_found", "unavailable"),
		"op":   protocolNames(t, "ops.go", "Op", "get", "set", "replicate"),
	}
	p := parser.NewParser(parser.Options{})
	for _, r := range rules {
		expr, err := p.ParseExpr(r.Expr)
		if err != nil {
			t.Fatalf("%s: %v", r.Alert, err) // rulefmt parsed it already
		}
		// The labels of the series the expression selects, and the
		// target's.
		known := map[string]bool{}
		for _, l := range targetLabels {
			known[l] = true
		}
		parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			if slices.Contains(scrapeSeries, name) {
				for _, m := range vs.LabelMatchers {
					for _, job := range jobNames {
						if m.Name == "job" && !m.Matches(job) {
							t.Errorf("%s: %s does not match the job name %q", r.Alert, m, job)
						}
					}
				}
				return nil
			}
			series, ok := metrics[name]
			if !ok {
				t.Errorf("%s: cloakroomd exports no metric %q", r.Alert, name)
				return nil
			}
			for _, ls := range series {
				for l := range ls {
					known[l] = true
				}
			}
			if strings.HasSuffix(name, "_total") && !slices.ContainsFunc(path, func(n parser.Node) bool {
				c, ok := n.(*parser.Call)
				return ok && slices.Contains(counterFuncs, c.Func.Name)
			}) {
				t.Errorf("%s: counter %s outside %v: its value only grows", r.Alert, name, counterFuncs)
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName || slices.Contains(targetLabels, m.Name) {
					continue
				}
				if !slices.ContainsFunc(series, func(ls map[string]string) bool { _, ok := ls[m.Name]; return ok }) {
					t.Errorf("%s: %s has no label %q", r.Alert, name, m.Name)
				}
				vals, ok := values[m.Name]
				if !ok {
					continue
				}
				var want []string
				switch m.Type {
				case labels.MatchEqual, labels.MatchNotEqual:
					want = []string{m.Value}
				default:
					want = strings.Split(m.Value, "|") // an alternation of names
				}
				for _, v := range want {
					if !slices.Contains(vals, v) {
						t.Errorf("%s: %s=%q: %q is no %s name (%v)", r.Alert, m.Name, m.Value, v, m.Name, vals)
					}
				}
			}
			return nil
		})
		// Grouping and matching name only labels the series have.
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			var used []string
			switch n := node.(type) {
			case *parser.AggregateExpr:
				used = n.Grouping
			case *parser.BinaryExpr:
				if n.VectorMatching != nil {
					used = n.VectorMatching.MatchingLabels
				}
			}
			for _, l := range used {
				if !known[l] {
					t.Errorf("%s: groups or matches by %q, which no series it selects has", r.Alert, l)
				}
			}
			return nil
		})
		// The annotations name only labels the result keeps.
		set, all := keptLabels(expr)
		for _, a := range r.Annotations {
			for _, m := range regexp.MustCompile(`\$labels\.(\w+)`).FindAllStringSubmatch(a, -1) {
				if l := m[1]; (all && !known[l]) || (!all && !set[l]) {
					t.Errorf("%s: an annotation names $labels.%s, which its result does not keep", r.Alert, l)
				}
			}
		}
	}
}
