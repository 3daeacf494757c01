// Package client is the Go client for Cloakroom, a distributed in-memory
// session store.
//
// A Client is safe for concurrent use and should be shared: it keeps a few
// connections per node and multiplexes every call over them, so concurrent
// calls are batched into few writes. Every call takes a context and honours
// its deadline.
//
//	c, err := client.New(client.Config{Addrs: []string{"127.0.0.1:7400"}})
//	if err != nil { ... }
//	defer c.Close()
//	err = c.Set(ctx, "session:1f3a", data, 30*time.Minute)
//	data, err = c.Get(ctx, "session:1f3a")
//	if errors.Is(err, client.ErrNotFound) { ... } // expired or logged out
//
// Conditional writes keep sessions safe: Add creates a key only if it does
// not exist (a fresh random ID can never overwrite another user's session),
// and CompareAndSwap writes only if the session still has the version that
// GetItem returned (two concurrent requests of one user cannot silently
// overwrite each other).
//
// Nodes started with --native-password require it in Config.Password; a
// call a node refuses for it fails at once with ErrAuth.
package client
