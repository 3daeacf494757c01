package scsstore_test

import (
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/cloakroom/cloakroom/client"
	"github.com/cloakroom/cloakroom/client/scsstore"
)

func ExampleNew() {
	cl, err := client.New(client.Config{Addrs: []string{"127.0.0.1:7400"}})
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	store, err := scsstore.New(scsstore.Config{Client: cl})
	if err != nil {
		panic(err)
	}
	sm := scs.New()
	sm.Store = store
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "visits", sm.GetInt(r.Context(), "visits")+1)
	})
	_ = sm.LoadAndSave(mux) // serve this handler
}
