"""Django sessions in the cache (SESSION_ENGINE
"django.contrib.sessions.backends.cache") over django-redis's RedisCache,
driven with Django's test Client against a tiny app configured here: log in,
come back, set an expiry, renew, rotate the id (cycle_key), log out (flush).

django-redis keys a session as ":1:django.contrib.sessions.cache<id>"
(KEY_PREFIX, version 1), its value a pickle (binary), its TTL the session's
expiry age.
"""

import sys
import time
import unittest

import common

# KEY_PREFIX: this run's keys only. No colon: django-redis's keys() and
# iter_keys() take the key back apart at the first two.
PREFIX = common.unique("pydjango").replace(":", "-").rstrip("-")
COOKIE_AGE = 1209600  # Django's default SESSION_COOKIE_AGE, two weeks


def key_of(sid):
    return f"{PREFIX}:1:django.contrib.sessions.cache{sid}"


def setUpModule():
    common.require("redis", "django", "django_redis")
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="cloakroom-python-suite",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["django.contrib.sessions"],
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
            SESSION_ENGINE="django.contrib.sessions.backends.cache",
            SESSION_COOKIE_AGE=COOKIE_AGE,
            CACHES={
                "default": {
                    "BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": common.redis_url(0),
                    "KEY_PREFIX": PREFIX,
                    "TIMEOUT": None,
                    "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
                },
            },
            # No model is used: the cache backend never touches a database.
            DATABASES={},
            USE_TZ=True,
        )
        django.setup()


# --- the app ----------------------------------------------------------------


def login(request):
    # As django.contrib.auth.login: a new id for a new user.
    request.session.cycle_key()
    request.session["user"] = request.GET["user"]
    request.session["blob"] = bytes(range(256))
    from django.http import HttpResponse

    return HttpResponse("welcome")


def whoami(request):
    from django.http import HttpResponse

    user = request.session.get("user")
    if not user:
        return HttpResponse("anonymous", status=401)
    assert request.session.get("blob") == bytes(range(256)), "binary session value changed"
    return HttpResponse(user)


def expiry(request):
    request.session.set_expiry(int(request.GET["seconds"]))
    from django.http import HttpResponse

    return HttpResponse("ok")


def visit(request):
    # Renewal: a write saves the session again with a fresh expiry.
    request.session["visits"] = request.session.get("visits", 0) + 1
    from django.http import HttpResponse

    return HttpResponse(str(request.session["visits"]))


def rotate(request):
    request.session.cycle_key()
    from django.http import HttpResponse

    return HttpResponse("rotated")


def logout(request):
    request.session.flush()
    from django.http import HttpResponse

    return HttpResponse("bye")


def _urls():
    try:
        from django.urls import path
    except ImportError:  # without Django, setUpModule skips
        return []
    return [
        path("login", login),
        path("whoami", whoami),
        path("expiry", expiry),
        path("visit", visit),
        path("rotate", rotate),
        path("logout", logout),
    ]


urlpatterns = _urls()


# --- the tests --------------------------------------------------------------


class DjangoSessionsTest(unittest.TestCase):
    def setUp(self):
        from django.conf import settings
        from django.test import Client

        self.client = Client()
        self.check = common.inspector()
        self.addCleanup(self.check.close)
        self.cookie = settings.SESSION_COOKIE_NAME

    def sid(self):
        return self.client.cookies[self.cookie].value

    def get(self, path, **params):
        return self.client.get(path, params)

    def test_login_read_expiry_renew_rotate_logout(self):
        self.assertEqual(self.get("/whoami").status_code, 401)
        res = self.get("/login", user="alice")
        self.assertEqual(res.status_code, 200)
        sid = self.sid()
        self.assertTrue(sid)
        key = key_of(sid)
        self.assertEqual(self.check.exists(key), 1, f"{key} not stored after login")
        common.assert_ttl(self, self.check.ttl(key), COOKIE_AGE, what="TTL after login")
        self.assertTrue(self.check.get(key).startswith(b"\x80"), "django-redis stores a pickle")

        # A later request reads it back.
        res = self.get("/whoami")
        self.assertEqual((res.status_code, res.content), (200, b"alice"))

        # set_expiry: the key's TTL and the cookie's Max-Age follow.
        self.get("/expiry", seconds=300)
        common.assert_ttl(self, self.check.ttl(key), 300, what="TTL after set_expiry(300)")
        self.assertEqual(int(self.client.cookies[self.cookie]["max-age"]), 300)
        self.assertEqual(self.sid(), sid)

        # Renewal: time passes, then a write saves it again for 300 s.
        self.check.expire(key, 100)
        self.assertEqual(self.get("/visit").content, b"1")
        common.assert_ttl(self, self.check.ttl(key), 300, what="TTL after a renewing write")
        self.assertEqual(self.get("/visit").content, b"2")

        # set_expiry(0): a browser-session cookie; the key keeps the cookie age.
        self.get("/expiry", seconds=0)
        common.assert_ttl(self, self.check.ttl(key), COOKIE_AGE, what="TTL after set_expiry(0)")
        self.assertEqual(self.client.cookies[self.cookie]["max-age"], "")

        # cycle_key: a new id with the same data; the old key is gone.
        self.get("/rotate")
        new = self.sid()
        self.assertNotEqual(new, sid)
        self.assertEqual(self.check.exists(key_of(sid)), 0, "the old id's key outlived cycle_key()")
        self.assertEqual(self.check.exists(key_of(new)), 1)
        common.assert_ttl(self, self.check.ttl(key_of(new)), COOKIE_AGE, what="TTL after cycle_key")
        self.assertEqual(self.get("/whoami").content, b"alice")
        self.assertEqual(self.get("/visit").content, b"3")

        # The old cookie no longer logs anyone in.
        from django.test import Client

        stale = Client()
        stale.cookies[self.cookie] = sid
        self.assertEqual(stale.get("/whoami").status_code, 401)

        # flush (logout): gone at once; the old cookie gets a fresh, empty
        # session under a new id.
        self.assertEqual(self.get("/logout").content, b"bye")
        self.assertEqual(self.check.exists(key_of(new)), 0, "the session outlived flush()")
        self.assertEqual(self.client.cookies[self.cookie].value, "")
        old = Client()
        old.cookies[self.cookie] = new
        self.assertEqual(old.get("/whoami").status_code, 401)
        self.assertEqual(old.get("/visit").content, b"1")
        fresh = old.cookies[self.cookie].value
        self.assertNotIn(fresh, ("", new))
        self.assertEqual(self.check.exists(key_of(new)), 0)
        self.assertEqual(self.check.exists(key_of(fresh)), 1)

    def test_sessions_are_separate_and_expire(self):
        from django.test import Client

        users = {}
        for name in ("bob", "carol", "dave"):
            c = Client()
            c.get("/login", {"user": name})
            users[name] = c
        for name, c in users.items():
            self.assertEqual(c.get("/whoami").content, name.encode())
        # A session whose key expires is gone: the user is anonymous.
        c = users["bob"]
        c.get("/expiry", {"seconds": 1})
        key = key_of(c.cookies[self.cookie].value)
        self.check.pexpire(key, 50)
        time.sleep(0.2)
        self.assertEqual(c.get("/whoami").status_code, 401)
        self.assertEqual(users["carol"].get("/whoami").content, b"carol")

    def test_session_store_directly(self):
        # What the middleware does, without HTTP: create (SET NX PX), exists
        # (EXISTS), load (GET), save (GET, then SET PX), delete (DEL).
        from django.contrib.sessions.backends.cache import SessionStore

        s = SessionStore()
        s["cart"] = ["a", "ü", b"\x00\xff"]
        s.set_expiry(120)
        s.save()
        sid = s.session_key
        self.assertTrue(SessionStore().exists(sid))
        common.assert_ttl(self, self.check.ttl(key_of(sid)), 120)
        self.assertEqual(SessionStore(sid).load()["cart"], ["a", "ü", b"\x00\xff"])
        s.delete()
        self.assertFalse(SessionStore().exists(sid))
        self.assertEqual(SessionStore(sid).load(), {})

    def test_cache_api_beyond_sessions(self):
        # The rest of the cache a Django app uses next to its sessions.
        from django.core.cache import cache

        k = "plain"
        self.assertTrue(cache.set(k, {"n": 1}, timeout=60))
        self.assertEqual(cache.get(k), {"n": 1})
        self.assertFalse(cache.add(k, "again"))
        self.assertTrue(cache.touch(k, 90))
        common.assert_ttl(self, cache.ttl(k), 90)
        self.assertTrue(cache.persist(k))
        self.assertIsNone(cache.ttl(k))
        self.assertTrue(cache.expire(k, 30))
        self.assertTrue(cache.has_key(k))
        self.assertEqual(cache.get_many([k, "nope"]), {k: {"n": 1}})
        self.assertEqual(sorted(cache.keys("pl*")), [k])
        self.assertEqual(sorted(cache.iter_keys("pl*")), [k])
        self.assertTrue(cache.delete(k))
        self.assertIsNone(cache.get(k))

        # incr sends EVAL first; Cloakroom has no scripting and answers
        # "unknown command", on which django-redis falls back to TTL, GET
        # and SET: the value is right, though not atomic. Of a missing key
        # the fallback adds to None: TypeError where Redis gives ValueError.
        cache.set("counter", 10, timeout=60)
        self.assertEqual(cache.incr("counter", 5), 15)
        self.assertEqual(cache.get("counter"), 15)
        common.assert_ttl(self, cache.ttl("counter"), 60)
        with self.assertRaises(TypeError if common.is_cloakroom() else ValueError):
            cache.incr("missing-counter")
        self.assertFalse(cache.has_key("missing-counter"))

        # set_many pipelines its SETs inside MULTI/EXEC, which Cloakroom
        # runs on one partition only: keys sharing a hash tag work.
        cache.set_many({"{many}a": 1, "{many}b": 2}, timeout=60)
        self.assertEqual(cache.get_many(["{many}a", "{many}b"]), {"{many}a": 1, "{many}b": 2})
        self.assertEqual(cache.delete_many(["{many}a", "{many}b"]), 2)
        if common.is_cloakroom():
            import redis
            from django_redis.exceptions import ConnectionInterrupted

            with self.assertRaises((redis.ResponseError, ConnectionInterrupted)) as cm:
                cache.set_many({"many-a": 1, "many-b": 2}, timeout=60)
            self.assertIn("CROSSSLOT", repr(cm.exception) + repr(cm.exception.__cause__))
        else:
            cache.set_many({"many-a": 1, "many-b": 2}, timeout=60)
            self.assertEqual(cache.get_many(["many-a", "many-b"]), {"many-a": 1, "many-b": 2})

        # lock: acquired with SET NX PX; released with EVALSHA, which
        # Cloakroom refuses ("unknown command 'EVALSHA'").
        lock = cache.lock("job", timeout=10)
        self.assertTrue(lock.acquire(blocking=False))
        if common.is_cloakroom():
            import redis

            with self.assertRaises(redis.ResponseError) as cm:
                lock.release()
            self.assertIn("unknown command 'EVALSHA'", str(cm.exception))
            cache.delete("job")
        else:
            lock.release()


if __name__ == "__main__":
    sys.exit(unittest.main())
