package session_test

import (
	"fmt"
	"testing"

	"github.com/cloakroom/cloakroom/node/nodetest"
)

// TestCluster_perUserOperationsWorkOnEveryOwner runs the per-user rules on a
// three-node cluster, with users spread over the partition owners.
// The client knows one node's address and learns the rest.
func TestCluster_perUserOperationsWorkOnEveryOwner(t *testing.T) {
	c := nodetest.Start(t, 3)
	e := newEnvOn(t, c.Node(0), false)
	const users = 6
	phones := make([]*browser, users)
	laptops := make([]*browser, users)
	for u := range users {
		laptops[u], phones[u] = e.browser(t), e.browser(t)
		laptops[u].get(fmt.Sprintf("/login?u=user%d", u))
		phones[u].get(fmt.Sprintf("/login?u=user%d", u))
		phones[u].get("/put?k=cart&v=socks")
	}
	for u := range users {
		if infos := list(t, laptops[u]); len(infos) != 2 {
			t.Fatalf("user%d: got %d sessions; want 2", u, len(infos))
		}
	}
	for u := 0; u < users; u += 2 {
		laptops[u].get(fmt.Sprintf("/everywhere?u=user%d", u))
	}
	for u := range users {
		want := fmt.Sprintf("user%d", u)
		if u%2 == 0 {
			want = ""
		}
		if got := phones[u].get("/whoami"); got != want {
			t.Errorf("user%d's phone after log out everywhere of even users: got %q; want %q", u, got, want)
		}
	}
}
