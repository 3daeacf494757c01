package session_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"

	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/client/session"
	"github.com/cloakroom/cloakroom/node"
)

// exampleNode starts an in-process node; in production this is cloakroomd.
func exampleNode() *node.Node {
	cfg := node.DefaultConfig()
	cfg.Addr, cfg.RESPAddr, cfg.HTTPAddr, cfg.GossipAddr = "127.0.0.1:0", "", "", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	return n
}

// get fetches u with hc and returns the body.
func get(hc *http.Client, u string) string {
	resp, err := hc.Get(u)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func ExampleManager_Handler() {
	n := exampleNode()
	defer n.Close()
	cl, _ := client.New(client.Config{Addrs: []string{n.Addr()}})
	defer cl.Close()
	m, err := session.New(session.Config{Client: cl, Secret: []byte("an example secret of 32+ bytes!!")})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := session.FromContext(r.Context())
		visits, _ := session.Get[int](s, "visits")
		if err := session.Put(s, "visits", visits+1); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d", visits+1)
	})
	srv := httptest.NewServer(m.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for range 3 {
		fmt.Println(get(browser, srv.URL))
	}
	// Output:
	// visit 1
	// visit 2
	// visit 3
}

func ExampleManager_LogoutEverywhere() {
	n := exampleNode()
	defer n.Close()
	cl, _ := client.New(client.Config{Addrs: []string{n.Addr()}})
	defer cl.Close()
	m, _ := session.New(session.Config{Client: cl, Secret: []byte("an example secret of 32+ bytes!!")})

	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		// After checking the password:
		if err := m.Login(r.Context(), r.FormValue("user")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		user := session.FromContext(r.Context()).UserID()
		infos, _ := m.ListSessions(r.Context(), user)
		fmt.Fprintf(w, "user %q, %d sessions", user, len(infos))
	})
	mux.HandleFunc("/logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		user := session.FromContext(r.Context()).UserID()
		n, _ := m.LogoutEverywhere(r.Context(), user)
		fmt.Fprintf(w, "ended %d sessions", n)
	})
	srv := httptest.NewServer(m.Handler(mux))
	defer srv.Close()

	laptop, phone := newJarClient(), newJarClient()
	get(laptop, srv.URL+"/login?user="+url.QueryEscape("alice"))
	get(phone, srv.URL+"/login?user="+url.QueryEscape("alice"))
	fmt.Println(get(phone, srv.URL+"/me"))
	fmt.Println(get(laptop, srv.URL+"/logout-everywhere"))
	fmt.Println(get(phone, srv.URL+"/me"))
	// Output:
	// user "alice", 2 sessions
	// ended 2 sessions
	// user "", 0 sessions
}

func newJarClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}
