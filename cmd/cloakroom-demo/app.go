package main

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/cloakroom/cloakroom/client/session"
)

// maxUserLen bounds the demo's user names.
const maxUserLen = 64

// app is the demo web application: everything but flag parsing.
type app struct {
	m   *session.Manager
	log *slog.Logger
}

// handler returns the demo's routes behind cross-origin protection (so a
// foreign site cannot post the forms) and the session middleware.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /logout-everywhere", a.logoutEverywhere)
	mux.HandleFunc("GET /sessions", a.sessions)
	return securityHeaders(http.NewCrossOriginProtection().Handler(a.m.Handler(mux)))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// page is what the home template shows.
type page struct {
	User   string
	Visits int
	Flash  string
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := session.FromContext(r.Context())
	visits, _ := session.Get[int](s, "visits")
	visits++
	if err := session.Put(s, "visits", visits); err != nil {
		a.fail(w, err)
		return
	}
	flash, _ := session.Pop[string](s, "flash")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := homeTmpl.Execute(w, page{User: s.UserID(), Visits: visits, Flash: flash}); err != nil {
		a.log.Warn("render home", "err", err)
	}
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user := strings.TrimSpace(r.PostFormValue("user"))
	if user == "" || len(user) > maxUserLen || !utf8.ValidString(user) {
		http.Error(w, "user: 1 to 64 characters", http.StatusBadRequest)
		return
	}
	if err := a.m.Login(r.Context(), user); err != nil {
		a.fail(w, err)
		return
	}
	s := session.FromContext(r.Context())
	s.SetRememberMe(r.PostFormValue("remember") == "on")
	_ = session.Put(s, "flash", "Welcome, "+user+".")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.m.Logout(r.Context()); err != nil {
		a.fail(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	user := session.FromContext(r.Context()).UserID()
	if user == "" {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	if _, err := a.m.LogoutEverywhere(r.Context(), user); err != nil {
		a.fail(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// sessions answers the JSON list of the user's sessions, the current one
// marked "current": true.
func (a *app) sessions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	user := session.FromContext(r.Context()).UserID()
	if user == "" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("[]\n"))
		return
	}
	infos, err := a.m.ListSessions(r.Context(), user)
	if err != nil {
		a.fail(w, err)
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(infos)
}

func (a *app) fail(w http.ResponseWriter, err error) {
	a.log.Warn("request failed", "err", err)
	http.Error(w, "the session store is unavailable; try again", http.StatusServiceUnavailable)
}

var homeTmpl = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cloakroom demo</title>
<style>
body { font-family: sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.5; }
form { margin: 1em 0; }
.flash { background: #eef; padding: .5em 1em; }
</style>
</head>
<body>
<h1>Cloakroom demo</h1>
{{with .Flash}}<p class="flash" id="flash">{{.}}</p>{{end}}
{{if .User}}
<p id="status">Logged in as <strong id="user">{{.User}}</strong>.</p>
<form method="post" action="/logout"><button id="logout">Log out</button></form>
<form method="post" action="/logout-everywhere"><button id="logout-everywhere">Log out everywhere</button></form>
<p><a href="/sessions">Your sessions (JSON)</a></p>
{{else}}
<p id="status">Not logged in.</p>
<form method="post" action="/login">
<label>User <input name="user" id="login-user" required maxlength="64"></label>
<label><input type="checkbox" name="remember"> Remember me</label>
<button id="login">Log in</button>
</form>
{{end}}
<p>Visits in this session: <span id="visits">{{.Visits}}</span></p>
</body>
</html>
`))
