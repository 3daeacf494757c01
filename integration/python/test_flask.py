"""Flask-Session 0.3 (SESSION_TYPE "redis", SESSION_REDIS a redis.Redis)
driven with Flask's test client: log in, come back, renew, clear (log out).

Flask-Session keys a session as SESSION_KEY_PREFIX + id (a uuid4), its value
a pickle, written with SETEX for PERMANENT_SESSION_LIFETIME on every request
that has a session; an emptied session is deleted with DEL.
"""

import datetime
import sys
import unittest
import warnings

import common

PREFIX = common.unique("py:flask")
LIFETIME = 1800  # PERMANENT_SESSION_LIFETIME in seconds


def setUpModule():
    common.require("redis", "flask", "flask_session")


def make_app(lifetime=LIFETIME, permanent=True, signer=False):
    from flask import Flask, session
    from flask_session import Session

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="cloakroom-python-suite",
        SESSION_TYPE="redis",
        SESSION_REDIS=common.client(),
        SESSION_KEY_PREFIX=PREFIX,
        SESSION_PERMANENT=permanent,
        SESSION_USE_SIGNER=signer,
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=lifetime),
    )
    Session(app)

    @app.post("/login")
    def login():
        from flask import request

        session["user"] = request.args["user"]
        session["blob"] = bytes(range(256))
        return "welcome"

    @app.get("/whoami")
    def whoami():
        user = session.get("user")
        if not user:
            return "anonymous", 401
        assert session.get("blob") == bytes(range(256)), "binary session value changed"
        return user

    @app.post("/visit")
    def visit():
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    @app.post("/logout")
    def logout():
        session.clear()
        return "bye"

    return app


class FlaskSessionTest(unittest.TestCase):
    def setUp(self):
        self.check = common.inspector()
        self.addCleanup(self.check.close)
        # Flask 2.2 deprecates app.session_cookie_name, which Flask-Session
        # 0.3 reads.
        warnings.filterwarnings("ignore", category=DeprecationWarning)

    def sid(self, client, app):
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]) if hasattr(client, "get_cookie") else None
        if cookie is not None:
            return cookie.value
        for c in client.cookie_jar:
            if c.name == app.config["SESSION_COOKIE_NAME"]:
                return c.value
        return None

    def test_login_read_renew_clear(self):
        app = make_app()
        c = app.test_client()
        self.assertEqual(c.get("/whoami").status_code, 401)
        self.assertEqual(c.post("/login?user=alice").data, b"welcome")
        sid = self.sid(c, app)
        self.assertTrue(sid)
        key = PREFIX + sid
        self.assertEqual(self.check.exists(key), 1, f"{key} not stored after login")
        common.assert_ttl(self, self.check.ttl(key), LIFETIME, what="TTL after login")
        self.assertTrue(self.check.get(key).startswith(b"\x80"), "Flask-Session stores a pickle")

        res = c.get("/whoami")
        self.assertEqual((res.status_code, res.data), (200, b"alice"))

        # Every request with a session writes it again: the TTL is renewed.
        self.check.expire(key, 100)
        self.assertEqual(c.post("/visit").data, b"1")
        common.assert_ttl(self, self.check.ttl(key), LIFETIME, what="TTL after a request")
        self.check.expire(key, 100)
        self.assertEqual(c.get("/whoami").data, b"alice")
        common.assert_ttl(self, self.check.ttl(key), LIFETIME, what="TTL after a read")
        self.assertEqual(self.sid(c, app), sid)

        # A second client has its own session.
        other = app.test_client()
        other.post("/login?user=bob")
        self.assertNotEqual(self.sid(other, app), sid)
        self.assertEqual(other.get("/whoami").data, b"bob")

        # clear (logout): the key is deleted and the cookie dropped.
        self.assertEqual(c.post("/logout").data, b"bye")
        self.assertEqual(self.check.exists(key), 0, "the session outlived session.clear()")
        self.assertIsNone(self.sid(c, app))
        self.assertEqual(c.get("/whoami").status_code, 401)
        # Flask-Session 0.3 keeps the id of a cookie whose session is gone:
        # the old cookie gets a fresh, empty session under the same id.
        stale = app.test_client()
        stale.set_cookie("localhost", app.config["SESSION_COOKIE_NAME"], sid)
        self.assertEqual(stale.get("/whoami").status_code, 401)
        self.assertEqual(stale.post("/visit").data, b"1")
        self.assertEqual(self.check.exists(key), 1)
        self.assertEqual(other.get("/whoami").data, b"bob")

    def test_lifetime_is_the_ttl(self):
        for lifetime, permanent in ((60, True), (7 * 86400, True), (300, False)):
            with self.subTest(lifetime=lifetime, permanent=permanent):
                app = make_app(lifetime=lifetime, permanent=permanent)
                c = app.test_client()
                c.post("/login?user=carol")
                key = PREFIX + self.sid(c, app)
                # A session that is not permanent still gets the permanent
                # lifetime as its TTL; only its cookie ends with the browser.
                common.assert_ttl(self, self.check.ttl(key), lifetime)
                self.assertEqual(c.get("/whoami").data, b"carol")
                # Expired in the store: logged out.
                self.check.pexpire(key, 1)
                import time

                time.sleep(0.05)
                self.assertEqual(c.get("/whoami").status_code, 401)

    def test_signed_ids(self):
        app = make_app(signer=True)
        c = app.test_client()
        c.post("/login?user=dave")
        cookie = self.sid(c, app)
        sid = cookie.rsplit(".", 1)[0]
        self.assertNotEqual(sid, cookie)
        self.assertEqual(self.check.exists(PREFIX + sid), 1)
        self.assertEqual(c.get("/whoami").data, b"dave")
        c.post("/logout")
        self.assertEqual(self.check.exists(PREFIX + sid), 0)


if __name__ == "__main__":
    sys.exit(unittest.main())
