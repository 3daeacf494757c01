package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
)

const (
	idBytes  = 32    // 256-bit session IDs
	idLen    = 43    // base64url of idBytes, unpadded
	hashLen  = 43    // base64url of a SHA-256 HMAC
	tagBytes = 16    // user tags: 128 bits of an HMAC
	tagLen   = 22    // base64url of tagBytes
	maxUA    = 200   // user-agent bytes kept for the session list
	tagSep   = "."   // between user tag and ID in a cookie
	anonPart = "a:"  // key part for sessions without a user
	userOpen = "{u:" // opens a user's hash tag
	userShut = "}:"  // closes it
	b64      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
)

var enc = base64.RawURLEncoding

// newID returns a fresh session ID: 256 bits from crypto/rand, base64url.
func newID() string {
	b := make([]byte, idBytes)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return enc.EncodeToString(b)
}

// keyer turns IDs and user IDs into store keys. The store never sees an ID:
// only an HMAC of it under a key derived from the application's secret.
type keyer struct {
	prefix  string
	idKey   []byte // keys ID hashes
	userKey []byte // keys user tags
}

func newKeyer(secret []byte, prefix string) keyer {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return keyer{prefix: prefix, idKey: derive("cloakroom session id v1"), userKey: derive("cloakroom session user v1")}
}

// idHash is the store's name for a session ID, also used as the session's
// public handle in session lists.
func (k keyer) idHash(id string) string {
	m := hmac.New(sha256.New, k.idKey)
	m.Write([]byte(id))
	return enc.EncodeToString(m.Sum(nil))
}

// userTag is a user's pseudonym in keys and cookies: an HMAC, so it tells
// nothing about the user ID without the secret.
func (k keyer) userTag(userID string) string {
	m := hmac.New(sha256.New, k.userKey)
	m.Write([]byte(userID))
	return enc.EncodeToString(m.Sum(nil)[:tagBytes])
}

// key returns the store key of a session. A user's sessions share the hash
// tag {u:<tag>}, so they all live in one partition.
func (k keyer) key(tag, idHash string) string {
	if tag == "" {
		return k.prefix + anonPart + idHash
	}
	return k.prefix + userOpen + tag + userShut + idHash
}

// userPattern is the glob that matches every session key of the user with
// tag. The prefix has no glob characters (Validate) and neither has base64url.
func (k keyer) userPattern(tag string) string {
	return k.prefix + userOpen + tag + userShut + "*"
}

// userSlotKey is a key with the user's hash tag, for finding its partition.
func (k keyer) userSlotKey(tag string) string { return userOpen + tag + "}" }

// cookieValue is what the browser holds: the ID, after the user's tag when
// the session is bound to a user, so that the server can find its key.
func cookieValue(tag, id string) string {
	if tag == "" {
		return id
	}
	return tag + tagSep + id
}

// parseCookie splits a cookie value, refusing anything not shaped exactly
// like one this package issued.
func parseCookie(v string) (tag, id string, ok bool) {
	if t, i, found := strings.Cut(v, tagSep); found {
		tag, v = t, i
		if len(tag) != tagLen || !isB64(tag) {
			return "", "", false
		}
	}
	if len(v) != idLen || !isB64(v) {
		return "", "", false
	}
	return tag, v, true
}

// validHandle reports whether h is shaped like an idHash.
func validHandle(h string) bool { return len(h) == hashLen && isB64(h) }

func isB64(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(b64, s[i]) < 0 {
			return false
		}
	}
	return true
}

// remoteHost is the default Config.ClientIP.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ipHint coarsens an address to its /24 (IPv4) or /48 (IPv6) network: enough
// to tell "home" from "abroad" in a session list, not enough to track.
func ipHint(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		return (&net.IPNet{IP: v4.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(48, 128)), Mask: net.CIDRMask(48, 128)}).String()
}

func truncateUA(ua string) string {
	if len(ua) <= maxUA {
		return ua
	}
	return strings.ToValidUTF8(ua[:maxUA], "")
}
