package kubernetes

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// There is no Kubernetes cluster where these tests run. They check what can
// be checked without one: every object decodes strictly into its API type
// (a misspelt field is an error, not silently ignored); the objects agree
// with each other (selectors, service names, ports, probes); cloakroomd
// accepts the configuration they give it; and a node started with that
// configuration answers the probes.

const manifestFile = "cloakroom.yaml"

type manifest struct {
	raw         string
	statefulSet *appsv1.StatefulSet
	services    map[string]*corev1.Service
	budget      *policyv1.PodDisruptionBudget
	policy      *networkingv1.NetworkPolicy
}

// decodeStrict decodes one YAML document into obj, refusing unknown and
// duplicate fields.
func decodeStrict(doc []byte, obj any) error { return yaml.UnmarshalStrict(doc, obj) }

func loadManifest(t *testing.T) *manifest {
	t.Helper()
	raw, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifest{raw: string(raw), services: map[string]*corev1.Service{}}
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", manifestFile, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", manifestFile, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case " ":
			continue // comments only
		case "v1 Service":
			obj = &corev1.Service{}
		case "apps/v1 StatefulSet":
			m.statefulSet = &appsv1.StatefulSet{}
			obj = m.statefulSet
		case "policy/v1 PodDisruptionBudget":
			m.budget = &policyv1.PodDisruptionBudget{}
			obj = m.budget
		case "networking.k8s.io/v1 NetworkPolicy":
			m.policy = &networkingv1.NetworkPolicy{}
			obj = m.policy
		default:
			t.Fatalf("%s: unexpected object %s %s", manifestFile, tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(doc, obj); err != nil {
			t.Fatalf("%s: %s: %v", manifestFile, tm.Kind, err)
		}
		if s, ok := obj.(*corev1.Service); ok {
			m.services[s.Name] = s
		}
	}
	if m.statefulSet == nil || m.budget == nil || m.policy == nil {
		t.Fatalf("%s: want a StatefulSet, a PodDisruptionBudget and a NetworkPolicy", manifestFile)
	}
	return m
}

func (m *manifest) container(t *testing.T) corev1.Container {
	t.Helper()
	cs := m.statefulSet.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the pod has %d containers; want cloakroomd alone", len(cs))
	}
	return cs[0]
}

// podLabels returns the labels of the StatefulSet's pods.
func (m *manifest) podLabels() labels.Set { return m.statefulSet.Spec.Template.Labels }

// selects reports whether sel picks the StatefulSet's pods.
func (m *manifest) selects(t *testing.T, what string, sel *metav1.LabelSelector) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	switch {
	case err != nil:
		t.Errorf("%s: %v", what, err)
	case s.Empty() || !s.Matches(m.podLabels()):
		t.Errorf("%s selects %v; the pods are labelled %v", what, sel, m.podLabels())
	}
}

func TestManifest_objectsAgree(t *testing.T) {
	m := loadManifest(t)
	ss := m.statefulSet
	c := m.container(t)
	m.selects(t, "the StatefulSet", ss.Spec.Selector)
	m.selects(t, "the PodDisruptionBudget", m.budget.Spec.Selector)
	m.selects(t, "the NetworkPolicy", &m.policy.Spec.PodSelector)

	// The members find each other through a headless Service listing pods
	// before they are ready: a node becomes ready only after joining.
	peers := m.services[ss.Spec.ServiceName]
	if peers == nil {
		t.Fatalf("the StatefulSet's serviceName %q is no Service of the manifest", ss.Spec.ServiceName)
	}
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q, publishNotReadyAddresses %v; want None, true", peers.Name, peers.Spec.ClusterIP, peers.Spec.PublishNotReadyAddresses)
	}
	if ss.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
		t.Errorf("podManagementPolicy %q: scale-in must stop one node at a time, each after the one before has handed its partitions over", ss.Spec.PodManagementPolicy)
	}
	if mu := m.budget.Spec.MaxUnavailable; mu == nil || mu.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v; want 1, so that a drain stops one node at a time", mu)
	}

	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	var clients []*corev1.Service
	for name, s := range m.services {
		if s.Spec.Selector == nil || !labels.SelectorFromSet(s.Spec.Selector).Matches(m.podLabels()) {
			t.Errorf("Service %s selects %v; the pods are labelled %v", name, s.Spec.Selector, m.podLabels())
		}
		for _, sp := range s.Spec.Ports {
			target := sp.TargetPort.String()
			if sp.TargetPort.IntValue() == 0 && target == "0" {
				target = strconv.Itoa(int(sp.Port)) // unset: the service port
			}
			found := false
			for _, cp := range c.Ports {
				if (cp.Name == target || strconv.Itoa(int(cp.ContainerPort)) == target) && cp.Protocol == sp.Protocol {
					found = true
					if cp.Name != sp.Name {
						t.Errorf("Service %s port %s reaches the container's port %s", name, sp.Name, cp.Name)
					}
				}
			}
			if !found {
				t.Errorf("Service %s port %s targets %s/%s, which the container does not expose", name, sp.Name, target, sp.Protocol)
			}
		}
		if s != peers {
			clients = append(clients, s)
		}
	}
	// Clients reach ready nodes only, on the Redis and native ports.
	if len(clients) != 1 {
		t.Fatalf("%d client Services; want 1", len(clients))
	}
	if cs := clients[0]; cs.Spec.ClusterIP == corev1.ClusterIPNone || cs.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s is for clients: it must balance over ready nodes only", cs.Name)
	}

	// Probes: a new node is first ready when in sync (/readyz), then until
	// it terminates (/healthz): not /readyz, which every node fails during
	// a resize, nor /servingz, which a node cut off from the majority
	// fails, and OrderedReady recreates no lost pod while one before it is
	// unready. Alive is /healthz. All on the HTTP port.
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startupProbe", c.StartupProbe, "/readyz"}, {"readinessProbe", c.ReadinessProbe, "/healthz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: want an HTTP GET of %s", pr.name, pr.path)
			continue
		}
		if g := pr.probe.HTTPGet; g.Path != pr.path || g.Port.String() != "http" {
			t.Errorf("%s: GET %s on port %s; want %s on port http", pr.name, g.Path, g.Port.String(), pr.path)
		}
	}
	if _, ok := ports["http"]; !ok {
		t.Errorf("the container has no port named http for its probes")
	}
	if p := c.StartupProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second < 5*time.Minute {
		t.Errorf("startupProbe gives a node %d × %d s to receive its partitions; want at least 5 minutes, or a node with many sessions to pull is restarted before it is done", p.FailureThreshold, p.PeriodSeconds)
	}
	if uid, sc := dockerfileUID(t), ss.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid {
		t.Errorf("the pod's runAsUser is not %d, the Dockerfile's user", uid)
	}

	m.checkNetworkPolicy(t, c)
}

// checkNetworkPolicy checks that the NetworkPolicy restricts ingress only,
// lets only members reach the gossip ports (TCP and UDP), and lets anyone
// reach every other container port: probes, clients and Prometheus.
func (m *manifest) checkNetworkPolicy(t *testing.T, c corev1.Container) {
	t.Helper()
	pol := m.policy.Spec
	if !slices.Equal(pol.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy policyTypes %v; want [Ingress]: restricting egress would cut the members off from DNS and each other", pol.PolicyTypes)
	}
	allows := func(rule networkingv1.NetworkPolicyIngressRule, cp corev1.ContainerPort) bool {
		if len(rule.Ports) == 0 {
			return true
		}
		for _, p := range rule.Ports {
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if proto == cp.Protocol && (p.Port == nil || p.Port.IntValue() == int(cp.ContainerPort) || p.Port.String() == cp.Name) {
				return true
			}
		}
		return false
	}
	membersOnly := func(rule networkingv1.NetworkPolicyIngressRule) bool {
		for _, from := range rule.From {
			if from.PodSelector == nil || from.NamespaceSelector != nil || from.IPBlock != nil {
				return false
			}
			sel, err := metav1.LabelSelectorAsSelector(from.PodSelector)
			if err != nil || sel.Empty() || !sel.Matches(m.podLabels()) {
				return false
			}
		}
		return len(rule.From) > 0
	}
	for _, cp := range c.Ports {
		fromAnyone, fromMembers := false, false
		for _, rule := range pol.Ingress {
			if allows(rule, cp) {
				fromAnyone = fromAnyone || len(rule.From) == 0
				fromMembers = fromMembers || membersOnly(rule)
			}
		}
		gossip := strings.HasPrefix(cp.Name, "gossip")
		switch {
		case gossip && fromAnyone:
			t.Errorf("NetworkPolicy lets anyone reach gossip port %d/%s", cp.ContainerPort, cp.Protocol)
		case gossip && !fromMembers:
			t.Errorf("NetworkPolicy: no rule opens gossip port %d/%s to the members alone (every peer a podSelector of theirs)", cp.ContainerPort, cp.Protocol)
		case !gossip && !fromAnyone:
			t.Errorf("NetworkPolicy: port %s (%d) is not open; probes, clients and Prometheus need it", cp.Name, cp.ContainerPort)
		}
	}
}

// secretKeys returns the keys the manifest's header creates the Secret
// with (kubectl create secret generic cloakroom --from-literal=KEY=...),
// each with a value of the kind that command makes.
func secretKeys(t *testing.T, raw string) (string, map[string]string) {
	t.Helper()
	var lines []string // the command, a line after each trailing backslash
	for line := range strings.Lines(raw) {
		line = strings.TrimSpace(strings.TrimPrefix(line, "#"))
		if len(lines) == 0 && !strings.Contains(line, "kubectl create secret generic ") {
			continue
		}
		lines = append(lines, line)
		if !strings.HasSuffix(line, `\`) {
			break
		}
	}
	if len(lines) == 0 {
		t.Fatal("the manifest's header gives no `kubectl create secret generic` command")
	}
	_, rest, _ := strings.Cut(lines[0], "kubectl create secret generic ")
	secret, _, _ := strings.Cut(rest, " ")
	cmd := strings.Join(lines, "\n")
	keys := map[string]string{}
	for _, lit := range regexp.MustCompile(`--from-literal=([\w-]+)="\$\(openssl rand -base64 32\)"`).FindAllStringSubmatch(cmd, -1) {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		keys[lit[1]] = base64.StdEncoding.EncodeToString(b)
	}
	if n := strings.Count(cmd, "--from-literal="); n == 0 || n != len(keys) {
		t.Fatalf("%d --from-literal values in the header's command, %d of them `openssl rand -base64 32`; want all:\n%s", n, len(keys), cmd)
	}
	return secret, keys
}

// dockerfileEnv returns the ENV settings of the Dockerfile's final stage,
// which the image runs with.
func dockerfileEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.*)$`).FindAllStringSubmatch(text, -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	if len(env) == 0 {
		t.Fatal("the Dockerfile sets no ENV")
	}
	return env
}

// dockerfileUID returns the user ID the Dockerfile creates its user with.
func dockerfileUID(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`useradd .*--uid (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Dockerfile creates no user with useradd --uid")
	}
	uid, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return uid
}

// podEnv returns the environment cloakroomd sees in a pod: the image's,
// then the container's, with the pod's name and IP and the Secret's values
// filled in.
func podEnv(t *testing.T, m *manifest, podIP string) map[string]string {
	t.Helper()
	secret, keys := secretKeys(t, m.raw)
	env := dockerfileEnv(t)
	for _, e := range m.container(t).Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.FieldRef != nil && vf.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = m.statefulSet.Name + "-0"
		case vf.FieldRef != nil && vf.FieldRef.FieldPath == "status.podIP":
			env[e.Name] = podIP
		case vf.SecretKeyRef != nil:
			v, ok := keys[vf.SecretKeyRef.Key]
			if vf.SecretKeyRef.Name != secret || !ok {
				t.Errorf("%s reads key %q of Secret %q, which the header's command does not create (it creates %v in %q)", e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name, slices.Sorted(maps.Keys(keys)), secret)
			}
			env[e.Name] = v
		default:
			t.Errorf("%s: unexpected valueFrom %+v", e.Name, vf)
		}
	}
	return env
}

// buildNode builds cloakroomd from the repository into a temporary
// directory.
func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cloakroomd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cloakroomd")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cloakroomd: %v\n%s", err, out)
	}
	return bin
}

func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func TestManifest_configurationIsAccepted(t *testing.T) {
	m := loadManifest(t)
	c := m.container(t)
	env := podEnv(t, m, "10.1.2.3")

	check := exec.Command(buildNode(t), "--check-config")
	check.Env = environ(env)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("cloakroomd --check-config refuses the pod's configuration: %v\n%s", err, out)
	}

	// Each named container port is where the node listens, on every
	// interface, so that the pod's IP reaches it.
	for name, key := range map[string]string{"redis": "CLOAKROOM_RESP_ADDR", "native": "CLOAKROOM_ADDR", "http": "CLOAKROOM_HTTP_ADDR", "gossip-tcp": "CLOAKROOM_GOSSIP_ADDR", "gossip-udp": "CLOAKROOM_GOSSIP_ADDR"} {
		host, port, err := net.SplitHostPort(env[key])
		if err != nil || (host != "0.0.0.0" && host != "") {
			t.Errorf("%s=%q: want 0.0.0.0:PORT", key, env[key])
			continue
		}
		found := false
		for _, cp := range c.Ports {
			if cp.Name == name && strconv.Itoa(int(cp.ContainerPort)) == port {
				found = true
			}
		}
		if !found {
			t.Errorf("%s listens on port %s; the container has no port %s with that number", key, port, name)
		}
	}

	// The seed is the peers' Service, on the gossip port.
	host, port, err := net.SplitHostPort(env["CLOAKROOM_JOIN"])
	_, gossipPort, _ := net.SplitHostPort(env["CLOAKROOM_GOSSIP_ADDR"])
	if err != nil || host != m.statefulSet.Spec.ServiceName || port != gossipPort {
		t.Errorf("CLOAKROOM_JOIN=%q; want %s:%s, the peers' Service on the gossip port", env["CLOAKROOM_JOIN"], m.statefulSet.Spec.ServiceName, gossipPort)
	}

	// The grace period outlasts the node's own drain.
	drain, err := time.ParseDuration(env["CLOAKROOM_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("CLOAKROOM_DRAIN_TIMEOUT=%q: %v", env["CLOAKROOM_DRAIN_TIMEOUT"], err)
	}
	grace := m.statefulSet.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < drain+10*time.Second {
		got := "unset (30)"
		if grace != nil {
			got = strconv.FormatInt(*grace, 10)
		}
		t.Errorf("terminationGracePeriodSeconds %s; want at least the drain timeout (%v) plus 10 s, or a node is killed while it hands its partitions over", got, drain)
	}
	// The store's cap leaves the Go runtime room under the memory limit,
	// whether or not the node could read the limit from its cgroup.
	limit := c.Resources.Limits.Memory()
	max, err := binaryBytes(env["CLOAKROOM_MAX_MEMORY"])
	switch {
	case limit.IsZero():
		t.Error("the container has no memory limit")
	case err != nil:
		t.Errorf("CLOAKROOM_MAX_MEMORY=%q: %v; want it set, at most 80%% of the memory limit", env["CLOAKROOM_MAX_MEMORY"], err)
	case max <= 0 || float64(max) > 0.8*float64(limit.Value()):
		t.Errorf("CLOAKROOM_MAX_MEMORY is %d bytes, the memory limit %d: want at most 80%% of it", max, limit.Value())
	}
	if n, err := strconv.Atoi(env["CLOAKROOM_REPLICAS"]); err != nil || n < 2 {
		t.Errorf("CLOAKROOM_REPLICAS=%q; want at least 2 copies, so that one node lost or restarted loses no session", env["CLOAKROOM_REPLICAS"])
	}
}

// binaryBytes reads a size as the manifest writes CLOAKROOM_MAX_MEMORY:
// a number of KiB, MiB or GiB.
func binaryBytes(v string) (int64, error) {
	for i, unit := range []string{"KiB", "MiB", "GiB"} {
		if n, ok := strings.CutSuffix(v, unit); ok {
			k, err := strconv.ParseInt(n, 10, 64)
			return k << (10 * (i + 1)), err
		}
	}
	return 0, errors.New("not a number of KiB, MiB or GiB")
}

// freePort returns a loopback port free at the time of the call.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// stop ends the node as the kubelet does, with SIGTERM, and expects it to
// leave cleanly within the grace period; past it, it is killed.
func stop(t *testing.T, node *exec.Cmd, logs string) {
	t.Helper()
	_ = node.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- node.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("cloakroomd after SIGTERM: %v\n%s", err, readLog(logs))
		}
	case <-time.After(45 * time.Second):
		_ = node.Process.Kill()
		<-done
		t.Errorf("cloakroomd still running 45 s after SIGTERM\n%s", readLog(logs))
	}
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// A node started with the pod's configuration, on loopback ports instead
// of the pod's, passes each probe of the manifest: a lone node starts its
// cluster, takes every partition and answers 200.
func TestManifest_probesPassOnANodeWithThePodsConfiguration(t *testing.T) {
	m := loadManifest(t)
	c := m.container(t)
	env := podEnv(t, m, "127.0.0.1")
	gossip := "127.0.0.1:" + freePort(t)
	httpAddr := "127.0.0.1:" + freePort(t)
	env["CLOAKROOM_ADDR"] = "127.0.0.1:" + freePort(t)
	env["CLOAKROOM_RESP_ADDR"] = "127.0.0.1:" + freePort(t)
	env["CLOAKROOM_HTTP_ADDR"] = httpAddr
	env["CLOAKROOM_GOSSIP_ADDR"] = gossip
	env["CLOAKROOM_JOIN"] = gossip // the peers' Service lists only this pod

	node := exec.Command(buildNode(t))
	node.Env = environ(env)
	logs := filepath.Join(t.TempDir(), "cloakroomd.log")
	f, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	node.Stdout, node.Stderr = f, f
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop(t, node, logs)

	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		resp, err := hc.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Fatal("the container lacks an HTTP probe (see TestManifest_objectsAgree)")
		}
	}
	// The startup probe first, as the kubelet does, within its budget here
	// of 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(c.StartupProbe.HTTPGet.Path)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("startup probe GET %s: %d %s after 30 s\n%s", c.StartupProbe.HTTPGet.Path, code, body, readLog(logs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if code, body := get(p.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("GET %s: %d %s; want 200", p.HTTPGet.Path, code, body)
		}
	}
}
