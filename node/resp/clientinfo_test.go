package resp

import (
	"strconv"
	"strings"
	"testing"
)

// CLIENT INFO lists every field of Redis 7.2's line, in its order. redis-py
// 4.3 and 5's client_info() converts id, age, idle, db, sub, psub, multi,
// qbuf, qbuf-free, obl, argv-mem, oll, omem and tot-mem to integers, and
// raised KeyError (for whichever missing field it tried first) when the
// line had only id, addr, laddr, name, age, db, resp, lib-name and lib-ver.
func TestClient_InfoHasRedisFields(t *testing.T) {
	ts := startServer(t, func(cfg *Config, _ *storeBackend) { cfg.ClusterMode = true }) // for READONLY
	c := ts.dial(t)
	c.expect("+OK\r\n", "client", "setname", "web")
	c.expect("+OK\r\n", "client", "setinfo", "lib-name", "redis-py")

	fields := func() (keys []string, vals map[string]string) {
		t.Helper()
		c.cmd("client", "info")
		got := c.reply()
		// a bulk string: $<len>\r\n<line>\n\r\n
		_, line, ok := strings.Cut(got, "\r\n")
		if !ok || !strings.HasPrefix(got, "$") || !strings.HasSuffix(line, "\n\r\n") {
			t.Fatalf("CLIENT INFO: got %q; want a bulk string ending in a newline", got)
		}
		vals = map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(line, "\n\r\n"), " ") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("CLIENT INFO: %q is not key=value in %q", kv, line)
			}
			keys = append(keys, k)
			vals[k] = v
		}
		return keys, vals
	}

	keys, vals := fields()
	want := "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem multi-mem " +
		"rbs rbp obl oll omem tot-mem events cmd user redir resp lib-name lib-ver"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("CLIENT INFO fields:\n got %s\nwant %s", got, want)
	}
	for _, k := range strings.Fields("id fd age idle db sub psub ssub multi qbuf qbuf-free argv-mem multi-mem rbs rbp obl oll omem tot-mem redir resp") {
		if _, err := strconv.ParseInt(vals[k], 10, 64); err != nil {
			t.Errorf("CLIENT INFO %s=%q: not an integer", k, vals[k])
		}
	}
	for k, v := range map[string]string{"name": "web", "lib-name": "redis-py", "flags": "N", "multi": "-1", "db": "0",
		"resp": "2", "cmd": "client|info", "user": "default", "redir": "-1", "addr": c.nc.LocalAddr().String()} {
		if vals[k] != v {
			t.Errorf("CLIENT INFO %s=%q; want %q", k, vals[k], v)
		}
	}
	if fd, _ := strconv.Atoi(vals["fd"]); fd <= 0 {
		t.Errorf("CLIENT INFO fd=%s; want the socket's descriptor", vals["fd"])
	}

	// READONLY shows as flag r, as in Redis.
	c.expect("+OK\r\n", "readonly")
	if _, vals = fields(); vals["flags"] != "r" {
		t.Errorf("CLIENT INFO after READONLY: flags=%q; want r", vals["flags"])
	}
}
