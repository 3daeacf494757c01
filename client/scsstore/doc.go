// Package scsstore stores github.com/alexedwards/scs/v2 sessions in a
// Cloakroom cluster, for applications already built on scs.
//
//	cl, err := client.New(client.Config{Addrs: []string{"127.0.0.1:7400"}})
//	if err != nil { ... }
//	store, err := scsstore.New(scsstore.Config{Client: cl})
//	if err != nil { ... }
//	sm := scs.New()
//	sm.Store = store
//	http.ListenAndServe(addr, sm.LoadAndSave(mux))
//
// Store implements scs.Store, scs.CtxStore, scs.IterableStore and
// scs.IterableCtxStore. Each session is one key, prefix followed by the
// SHA-256 of the scs token, so tokens never appear in key listings (SCAN,
// KEYS, cloakctl) or in anything that logs keys. scs's iteration (All) has
// to return tokens, so the token is kept inside the value, next to the
// data; Find checks it. A memory dump of a node therefore still holds tokens:
// for sessions whose store never holds a usable ID, and for ID rotation,
// log-out-everywhere and session lists, use package client/session instead.
//
// Expiry is the store's TTL, set from the deadline scs passes to Commit.
// All scans every partition of the cluster, whose count it asks a node.
package scsstore
