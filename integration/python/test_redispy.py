"""redis-py's plain client (redis.Redis, RESP2): the commands a session store
builds on, with the replies and errors redis-server gives.

Every test runs against whatever target run.sh started; a failure against
redis-server means a wrong test.
"""

import threading
import time
import unittest

import common


def setUpModule():
    common.require("redis")


class RedisPyTest(unittest.TestCase):
    def setUp(self):
        import redis

        self.redis = redis
        self.r = common.client()
        self.check = common.inspector()
        self.p = common.unique("py:redispy")
        self.addCleanup(self.r.close)
        self.addCleanup(self.check.close)

    def k(self, name):
        return self.p + name

    def test_set_with_ex_px_nx_xx_keepttl_get(self):
        r, k = self.r, self.k("set")
        self.assertIs(r.set(k, "v1", ex=100), True)
        common.assert_ttl(self, self.check.ttl(k), 100)
        self.assertEqual(self.check.get(k), b"v1")

        self.assertIs(r.set(k, "v2", px=5000), True)
        pttl = self.check.pttl(k)
        self.assertTrue(4000 < pttl <= 5000, f"PTTL after SET PX 5000: {pttl}")

        self.assertIsNone(r.set(k, "nx", nx=True), "SET NX of an existing key")
        self.assertEqual(r.get(k), b"v2")
        self.assertIs(r.set(self.k("nx"), "nx", nx=True, ex=60), True)
        self.assertEqual(r.get(self.k("nx")), b"nx")

        self.assertIsNone(r.set(self.k("xx"), "xx", xx=True), "SET XX of a missing key")
        self.assertEqual(self.check.exists(self.k("xx")), 0)
        self.assertIs(r.set(k, "xx", xx=True, ex=200), True)
        common.assert_ttl(self, self.check.ttl(k), 200)

        self.assertIs(r.set(k, "kept", keepttl=True), True)
        common.assert_ttl(self, self.check.ttl(k), 200, what="TTL after SET KEEPTTL")
        self.assertEqual(r.get(k), b"kept")
        self.assertIs(r.set(k, "plain"), True)
        self.assertEqual(self.check.ttl(k), -1, "a plain SET drops the TTL")

        self.assertEqual(r.set(k, "new", get=True, ex=50), b"plain", "SET ... GET returns the old value")
        self.assertEqual(r.get(k), b"new")
        self.assertIs(r.set(k, "at", exat=int(time.time()) + 300), True)
        common.assert_ttl(self, self.check.ttl(k), 300, slack=6)
        self.assertIs(r.set(k, "pat", pxat=int(time.time() * 1000) + 30_000), True)
        common.assert_ttl(self, self.check.ttl(k), 30, slack=6)

        self.assertIsNone(r.get(self.k("missing")))

    def test_set_errors_read_as_from_redis(self):
        r, k = self.r, self.k("seterr")
        with self.assertRaises(self.redis.ResponseError) as cm:
            r.set(k, "v", ex=0)
        self.assertEqual(str(cm.exception), "invalid expire time in 'set' command")
        with self.assertRaises(self.redis.ResponseError) as cm:
            r.execute_command("SET", k, "v", "NX", "XX")
        self.assertEqual(str(cm.exception), "syntax error")
        with self.assertRaises(self.redis.ResponseError) as cm:
            r.execute_command("GET")
        self.assertEqual(str(cm.exception), "wrong number of arguments for 'get' command")
        self.assertEqual(self.check.exists(k), 0)

    def test_getex_getdel(self):
        r, k = self.r, self.k("getex")
        r.set(k, b"sess")
        self.assertEqual(r.getex(k), b"sess")
        self.assertEqual(self.check.ttl(k), -1)
        self.assertEqual(r.getex(k, ex=50), b"sess")
        common.assert_ttl(self, self.check.ttl(k), 50)
        self.assertEqual(r.getex(k, px=90_000), b"sess")
        common.assert_ttl(self, self.check.ttl(k), 90)
        self.assertEqual(r.getex(k, exat=int(time.time()) + 120), b"sess")
        common.assert_ttl(self, self.check.ttl(k), 120, slack=6)
        self.assertEqual(r.getex(k, persist=True), b"sess")
        self.assertEqual(self.check.ttl(k), -1)
        self.assertIsNone(r.getex(self.k("missing"), ex=10))

        self.assertEqual(r.getdel(k), b"sess")
        self.assertEqual(self.check.exists(k), 0)
        self.assertIsNone(r.getdel(k))

    def test_expire_pexpire_ttl_pttl_persist(self):
        r, k = self.r, self.k("expire")
        self.assertEqual(r.ttl(k), -2)
        self.assertEqual(r.pttl(k), -2)
        self.assertIs(r.expire(k, 10), False, "EXPIRE of a missing key")
        r.set(k, "v")
        self.assertEqual(r.ttl(k), -1)
        self.assertEqual(r.pttl(k), -1)
        self.assertIs(r.expire(k, 100), True)
        common.assert_ttl(self, r.ttl(k), 100)
        self.assertIs(r.pexpire(k, 50_000), True)
        pttl = self.check.pttl(k)
        self.assertTrue(45_000 < pttl <= 50_000, f"PTTL after PEXPIRE 50000: {pttl}")
        # The options redis-py 4.3 passes through (Redis 7.0).
        self.assertIs(r.expire(k, 10, nx=True), False)
        self.assertIs(r.expire(k, 10, gt=True), False)
        self.assertIs(r.expire(k, 200, gt=True), True)
        self.assertIs(r.expire(k, 300, lt=True), False)
        self.assertIs(r.expire(k, 150, xx=True), True)
        common.assert_ttl(self, self.check.ttl(k), 150)
        self.assertIs(r.expireat(k, int(time.time()) + 400), True)
        common.assert_ttl(self, self.check.ttl(k), 400, slack=6)
        self.assertIs(r.pexpireat(k, int(time.time() * 1000) + 60_000), True)
        common.assert_ttl(self, self.check.ttl(k), 60, slack=6)
        self.assertIs(r.persist(k), True)
        self.assertEqual(self.check.ttl(k), -1)
        self.assertIs(r.pexpire(k, 1), True)
        time.sleep(0.05)
        self.assertIsNone(r.get(k), "a key past its PEXPIRE")
        self.assertEqual(self.check.exists(k), 0)

    def test_delete_exists_several_keys(self):
        r = self.r
        keys = [self.k(f"d{i}") for i in range(5)]
        for key in keys:
            r.set(key, "v", ex=60)
        self.assertEqual(r.exists(*keys), 5)
        self.assertEqual(r.exists(keys[0], keys[0], self.k("none")), 2, "EXISTS counts a key named twice twice")
        self.assertEqual(r.delete(keys[0], keys[1], keys[2], self.k("none")), 3)
        self.assertEqual(self.check.exists(*keys), 2)
        self.assertEqual(r.unlink(*keys), 2)
        self.assertEqual(self.check.exists(*keys), 0)
        self.assertEqual(r.delete(*keys), 0)

    def test_scan_iter_match(self):
        r = self.r
        want = {self.k(f"s{i}").encode() for i in range(60)}
        for key in want:
            r.set(key, "v", ex=120)
        r.set(self.p[:-1] + "-other", "v", ex=120)  # not matched: the prefix ends with ':'
        self.addCleanup(r.delete, self.p[:-1] + "-other", *want)
        for count in (None, 5, 1000):
            with self.subTest(count=count):
                got = list(r.scan_iter(match=self.p + "*", count=count))
                self.assertEqual(set(got), want)
                self.assertEqual(len(got), len(want), f"SCAN ... COUNT {count} returned a key twice")
        self.assertEqual(list(r.scan_iter(match=self.p + "nothing*", count=10)), [])
        self.assertEqual(set(self.check.keys(self.p + "*")), want)

    def test_pipeline_transaction_multi_exec(self):
        # The keys share a hash tag: Cloakroom runs a transaction as one
        # step on one partition (test_transaction_across_partitions).
        r, k, none = self.r, self.k("{tx}a"), self.k("{tx}none")
        with r.pipeline(transaction=True) as pipe:
            pipe.set(k, b"one").expire(k, 300).get(k).ttl(k).getdel(none)
            res = pipe.execute()
        self.assertEqual(res[:3], [True, True, b"one"])
        common.assert_ttl(self, res[3], 300)
        self.assertIsNone(res[4])
        common.assert_ttl(self, self.check.ttl(k), 300)

        # An error found when EXEC runs fails that command only (redis-py
        # raises it after EXEC; with raise_on_error=False it is in place).
        with r.pipeline(transaction=True) as pipe:
            pipe.set(k, b"two").set(none, b"x", ex=0).get(k)
            res = pipe.execute(raise_on_error=False)
        self.assertEqual(res[0], True)
        self.assertIsInstance(res[1], self.redis.ResponseError)
        self.assertEqual(str(res[1]), "invalid expire time in 'set' command")
        self.assertEqual(res[2], b"two")
        self.assertEqual(self.check.exists(none), 0)

        # An unknown command is refused when queued: EXEC aborts and
        # nothing runs.
        with r.pipeline(transaction=True) as pipe:
            pipe.set(k, b"three").execute_command("NOSUCHCOMMAND", k)
            with self.assertRaises(self.redis.ResponseError) as cm:
                pipe.execute()
        self.assertIn("unknown command 'NOSUCHCOMMAND'", str(cm.exception))
        self.assertEqual(self.check.get(k), b"two")

        # transaction=False pipelines without MULTI.
        with r.pipeline(transaction=False) as pipe:
            for i in range(20):
                pipe.set(self.k(f"p{i}"), i, ex=60)
            for i in range(20):
                pipe.get(self.k(f"p{i}"))
            res = pipe.execute()
        self.assertEqual(res, [True] * 20 + [str(i).encode() for i in range(20)])

    def test_transaction_across_partitions(self):
        # redis-py's pipeline() is a transaction unless told otherwise, and
        # django-redis's set_many() uses it so. redis-server runs it with
        # keys anywhere; Cloakroom runs a transaction as one atomic step on
        # the partition its keys share, and refuses a command whose key is
        # elsewhere as Redis Cluster does: CROSSSLOT when queued, then
        # EXECABORT, and nothing of it is applied.
        r = self.r
        keys = [self.k(f"x{i}") for i in range(8)]
        pipe = r.pipeline()
        for key in keys:
            pipe.set(key, b"v", ex=60)
        if not common.is_cloakroom():
            self.assertEqual(pipe.execute(), [True] * len(keys))
            return
        with self.assertRaises(self.redis.ResponseError) as cm:
            pipe.execute()
        self.assertIn("CROSSSLOT Keys in request don't hash to the same slot", str(cm.exception))
        self.assertEqual(self.check.exists(*keys), 0)
        # Without MULTI the same pipeline works.
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, b"v", ex=60)
        self.assertEqual(pipe.execute(), [True] * len(keys))
        self.assertEqual(self.check.exists(*keys), len(keys))

    def test_watch(self):
        r, k = self.r, self.k("watch")
        r.set(k, b"0", ex=300)
        # Untouched: EXEC runs.
        with r.pipeline() as pipe:
            pipe.watch(k)
            self.assertEqual(pipe.get(k), b"0")
            pipe.multi()
            pipe.set(k, b"1", keepttl=True)
            self.assertEqual(pipe.execute(), [True])
        self.assertEqual(self.check.get(k), b"1")

        # Written by another client between WATCH and EXEC: WatchError.
        with r.pipeline() as pipe:
            pipe.watch(k)
            pipe.get(k)
            self.check.set(k, b"other", keepttl=True)
            pipe.multi()
            pipe.set(k, b"mine")
            with self.assertRaises(self.redis.WatchError):
                pipe.execute()
        self.assertEqual(self.check.get(k), b"other")
        common.assert_ttl(self, self.check.ttl(k), 300)

        # Expiring counts as a change too.
        r.set(k, b"short", px=100)
        with r.pipeline() as pipe:
            pipe.watch(k)
            time.sleep(0.3)
            pipe.multi()
            pipe.set(k, b"late")
            with self.assertRaises(self.redis.WatchError):
                pipe.execute()

        # redis-py's transaction() helper retries until no watched key
        # changed: ten threads appending to one session all land.
        r.set(k, b"", ex=300)

        def append(n):
            c = common.client()

            def add(pipe):
                cur = pipe.get(k) or b""
                pipe.multi()
                pipe.set(k, cur + b"%d," % n, keepttl=True)

            c.transaction(add, k)
            c.close()

        threads = [threading.Thread(target=append, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = sorted(int(x) for x in self.check.get(k).split(b",") if x)
        self.assertEqual(got, list(range(10)))
        common.assert_ttl(self, self.check.ttl(k), 300, slack=15)

        with r.pipeline() as pipe:
            pipe.watch(k)
            pipe.unwatch()
            self.check.set(k, b"after unwatch")
            pipe.multi()
            pipe.set(k, b"mine")
            self.assertEqual(pipe.execute(), [True])

    def test_binary_values_and_keys(self):
        r = self.r
        value = bytes(range(256)) + b"\x00\r\n\x80\xff" + "ü€".encode() + b"\x00"
        k = self.k("bin")
        r.set(k, value, ex=60)
        self.assertEqual(self.check.get(k), value)
        self.assertEqual(r.getex(k, ex=60), value)
        big = bytes((i * 7 + 0x80) % 256 for i in range(512 * 1024))
        r.set(k, big)
        self.assertEqual(r.get(k), big)
        bk = self.k("").encode() + b"\x00\xff\x80key"
        r.set(bk, value)
        self.assertEqual(self.check.get(bk), value)
        self.assertIn(bk, set(r.scan_iter(match=self.p + "*")))
        self.assertEqual(r.delete(bk, k), 2)
        # decode_responses=True, as apps storing JSON use it.
        d = common.client(decode_responses=True)
        self.addCleanup(d.close)
        d.set(k, "sessión ✓", ex=60)
        self.assertEqual(d.get(k), "sessión ✓")

    def test_connection_introspection(self):
        r = self.r
        self.assertIs(r.ping(), True)
        self.assertEqual(r.echo("hi"), b"hi")
        self.assertIs(r.client_setname("py-suite"), True)
        self.assertEqual(r.client_getname(), "py-suite")
        # client_info() converts a dozen fields to integers, and fails on a
        # missing one (KeyError against cloakroomd before 2026-12-07).
        info = r.client_info()
        self.assertEqual((info["name"], info["db"], info["multi"], info["flags"]), ("py-suite", 0, -1, "N"))
        self.assertEqual(info["id"], r.client_id())
        self.assertIn(str(info["id"]), {c["id"] for c in r.client_list()})
        self.assertIsInstance(r.info()["redis_version"], str)
        self.assertIsInstance(r.dbsize(), int)
        self.assertEqual(len(r.time()), 2)

    def test_password(self):
        if not common.password():
            self.skipTest("the target has no password")
        import redis

        # redis-py 4.3 raises NOAUTH as AuthenticationError, WRONGPASS (from
        # the AUTH it sends on connecting) as a plain ResponseError.
        cases = (
            (None, redis.AuthenticationError, "Authentication required."),
            ("wrong", redis.ResponseError, "WRONGPASS invalid username-password pair or user is disabled."),
        )
        for pw, err, want in cases:
            with self.subTest(password=pw):
                c = redis.Redis(host=common.HOST, port=common.app_port(), password=pw, ssl=common.tls())
                self.addCleanup(c.close)
                with self.assertRaises(err) as cm:
                    c.get(self.k("x"))
                self.assertEqual(str(cm.exception), want)
        c = redis.Redis(host=common.HOST, port=common.app_port(), username="default", password=common.password(), ssl=common.tls())
        self.addCleanup(c.close)
        self.assertIs(c.set(self.k("x"), "v", ex=10), True)

    def test_database_other_than_0(self):
        # redis.Redis(db=1), or a URL ending in /1, sends SELECT 1 on every
        # new connection. Cloakroom has database 0 only and answers as a
        # redis-server started with "databases 1".
        c = common.client(db=1)
        self.addCleanup(c.close)
        if not common.is_cloakroom():
            self.assertIs(c.set(self.k("db1"), "v", ex=10), True)
            self.assertEqual(self.check.exists(self.k("db1")), 0)
            return
        with self.assertRaises(self.redis.ResponseError) as cm:
            c.set(self.k("db1"), "v", ex=10)
        self.assertEqual(str(cm.exception), "DB index is out of range")

    def test_cluster_client_needs_cluster_mode(self):
        # RedisCluster checks INFO's cluster_enabled before CLUSTER SLOTS.
        from redis.cluster import RedisCluster
        from redis.exceptions import RedisClusterException

        with self.assertRaises(RedisClusterException) as cm:
            RedisCluster(host=common.HOST, port=common.app_port(), password=common.password(), ssl=common.tls())
        self.assertIn("Cluster mode is not enabled on this node", str(cm.exception))

    def test_scripting_is_refused_clearly(self):
        # Cloakroom has no Lua: EVAL and EVALSHA are unknown commands there,
        # as redis-py's Lock (release) and django-redis's incr send them.
        if not common.is_cloakroom():
            self.assertEqual(self.r.eval("return 1", 0), 1)
            return
        with self.assertRaises(self.redis.ResponseError) as cm:
            self.r.eval("return 1", 0)
        self.assertTrue(str(cm.exception).startswith("unknown command 'EVAL'"), str(cm.exception))


if __name__ == "__main__":
    unittest.main()
