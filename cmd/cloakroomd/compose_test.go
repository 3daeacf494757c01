package main

import (
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// There is no Docker engine where these tests run, so they check what can
// be checked without one: the compose file parses, and cloakroomd accepts
// every setting the Dockerfile and the compose file give it.

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Command     []string          `yaml:"command"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	return cf
}

// dockerfileEnv returns the ENV settings of the Dockerfile's final stage.
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

func TestCompose_everyServiceConfigurationIsAccepted(t *testing.T) {
	cf := readCompose(t)
	if len(cf.Services) != 3 {
		t.Fatalf("compose defines %d services; want a 3-node cluster", len(cf.Services))
	}
	base := dockerfileEnv(t)
	for name, svc := range cf.Services {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range svc.Environment {
			env[k] = v
		}
		if svc.Build == nil {
			t.Errorf("%s: no build section", name)
		}
		// The name is resolved inside the compose network only; here it
		// must at least be taken as a host.
		env["CLOAKROOM_ADVERTISE"] = "127.0.0.1"
		o, err := parseFlags(svc.Command, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Errorf("%s: cloakroomd refuses its configuration: %v", name, err)
			continue
		}
		if o.cfg.Replicas != 2 || len(o.cfg.Join) != 3 || o.cfg.Name != name {
			t.Errorf("%s: replicas=%d join=%v name=%q; want 2, three seeds, %q", name, o.cfg.Replicas, o.cfg.Join, o.cfg.Name, name)
		}
		// Published ports must reach the container ports the node listens on.
		listen := map[string]bool{}
		for _, a := range []string{o.cfg.Addr, o.cfg.RESPAddr, o.cfg.HTTPAddr} {
			_, port, _ := net.SplitHostPort(a)
			listen[port] = true
		}
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			if !listen[parts[len(parts)-1]] {
				t.Errorf("%s publishes %s, but the node listens on %v", name, p, listen)
			}
		}
	}
}
