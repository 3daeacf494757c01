// Package session is net/http middleware for server-side sessions kept in a
// Cloakroom cluster, with the secure choices made by default.
//
// # Use
//
//	m, err := session.New(session.Config{Client: cl, Secret: secret})
//	http.ListenAndServe(addr, m.Handler(mux))
//
// and in a handler:
//
//	s := session.FromContext(r.Context())
//	n, _ := session.Get[int](s, "visits")
//	err := session.Put(s, "visits", n+1)
//	msg, ok := session.Pop[string](s, "flash") // read once
//	err = m.Login(r.Context(), userID)          // after checking the password
//	err = m.Logout(r.Context())
//	infos, err := m.ListSessions(r.Context(), userID)
//	n, err := m.LogoutEverywhere(r.Context(), userID)
//
// The middleware loads the session before the handler (sliding its TTL in
// the same round trip) and saves it just before the response header goes
// out, only if it changed. Values are stored as JSON, one per key.
//
// # What the browser holds, what the store holds
//
// A session ID is 256 bits from crypto/rand, base64url-encoded. The store
// never sees it: the key is an HMAC-SHA256 of the ID under a key derived
// from Config.Secret, so a memory dump, a SCAN listing, a replica stream or
// a log line yields no usable session. New refuses a secret shorter than 32
// bytes; there is no built-in default (cmd/cloakroom-demo makes a random one
// per process, for trying it out only).
//
// Sessions not bound to a user are stored as
//
//	<prefix>a:<hmac(id)>
//
// and the cookie holds the ID. After Login the session is stored as
//
//	<prefix>{u:<tag>}:<hmac(id)>     tag = 128 bits of an HMAC of the user ID
//
// and the cookie holds "<tag>.<id>", so the server can find the key. The tag
// is a keyed hash: without the secret it says nothing about the user.
//
// # Per-user index: the partition is the index
//
// "{u:<tag>}" is a hash tag (as in Redis Cluster): every session of one
// user hashes to the same slot, hence the same partition, on whichever node
// owns it. That partition is the user's session index, kept by the node with
// no extra bookkeeping:
//
//   - ListSessions is one OpScan of that partition with the pattern
//     "<prefix>{u:<tag>}:*", plus a read per session found;
//   - LogoutEverywhere is one OpDeleteMatch with that pattern: the owner
//     tombstones every match under the partition's lock, so when it returns
//     none is readable, and no separate index can disagree with the data;
//   - expiry needs nothing: an expired session is simply gone from the
//     partition, so it drops out of the list and there is no stale index
//     entry to clean up.
//
// Every per-user operation touches one partition, so it stays a single,
// atomic, routed call in a cluster. The cost is that one user's sessions
// cannot spread over nodes, which is harmless at any realistic number of
// devices per user. The partition count is asked of a node on first use
// (client.Partitions); a Config.Partitions that disagrees fails with
// ErrPartitions rather than listing or deleting nothing.
//
// # Rules the middleware enforces
//
//   - Strict mode, always: a cookie naming no live session is ignored and
//     expired; a new session gets a fresh ID, and only once something is
//     stored in it. An ID the server did not issue is never adopted.
//   - Login rotates the ID (the old one dies at once) and binds the user;
//     Renew rotates without login. A different user's values never carry
//     over to the next user.
//   - Logout deletes the session server-side and expires the cookie.
//   - Idle (sliding) and absolute timeouts are checked on the server with
//     Config.Now, and mirrored in the store's TTL so that dead sessions do
//     not occupy memory. Last-seen is rewritten at most once per
//     TouchInterval; a session can end up to that much early, never late.
//   - Cookies: HttpOnly, SameSite=Lax, Path=/, no Domain; Secure and named
//     __Host-<name> over HTTPS (SecureAuto), always (SecureAlways, behind a
//     TLS proxy) or never (SecureNever, local HTTP only). A browser-session
//     cookie unless SetRememberMe, which makes it persistent for RememberFor.
//   - Saves are compare-and-swap on the version read. On a conflict the
//     session is re-read and this request's changes merged in: values it did
//     not change keep the other request's writes; a value both changed fails
//     the request with ErrConflict (409) rather than losing a write silently.
//   - A save never creates a stored session: a session deleted while a
//     request ran (logout, log out everywhere, expiry) stays deleted, and
//     that request's changes are dropped.
package session
