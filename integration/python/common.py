"""What every Python suite shares: the target run.sh started, the Debian
packages the suites need, and the nodes' /metrics.

run.sh describes the target in the environment:

  PY_TARGET         its name (redis-server, cloakroomd, cloakroomd-3, ...)
  PY_PORTS          the RESP ports of its nodes, comma-separated
  PY_PASSWORD       the password (--requirepass), or empty
  PY_TLS            1 if the ports take TLS (rediss://; the CA is in
                    SSL_CERT_FILE, which Python's default context reads)
  CLOAKROOM_METRICS the nodes' HTTP addresses (host:port, comma-separated),
                    unset for a redis-server target

An app talks to app_port() (the second node of several, so that a cluster
forwards its requests); the checks a test makes on the server side use
inspect_port() (the last node), so on a cluster they also prove that
another node sees what the app wrote.
"""

import importlib
import json
import os
import time
import unittest
import urllib.request

HOST = "127.0.0.1"

# Python module -> the Debian package that installs it (bookworm).
PACKAGES = {
    "redis": "python3-redis",
    "django": "python3-django",
    "django_redis": "python3-django-redis",
    "flask": "python3-flask",
    "flask_session": "python3-flask-session",
}


def require(*modules):
    """Imports modules, one of PACKAGES' names each. A missing one skips
    the caller (raise in setUpModule or setUpClass), except under CI
    (.ci/run sets CI=true), where it fails: CI installs every package, and
    a suite that skips there proves nothing."""
    missing = {}
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            missing[name] = err
    if not missing:
        return
    what = ", ".join(f"{name} ({PACKAGES[name]}: {err})" for name, err in missing.items())
    msg = f"not installed: {what}; apt-get install -y {' '.join(PACKAGES[n] for n in missing)}"
    if os.environ.get("CI", "") not in ("", "0", "false"):
        raise RuntimeError(f"under CI every package must be installed: {msg}")
    raise unittest.SkipTest(msg)


def target():
    return os.environ.get("PY_TARGET", "redis-server")


def is_cloakroom():
    return target().startswith("cloakroomd")


def ports():
    raw = os.environ.get("PY_PORTS", "6379")
    return [int(p) for p in raw.split(",") if p]


def app_port():
    ps = ports()
    return ps[1] if len(ps) > 1 else ps[0]


def inspect_port():
    return ports()[-1]


def password():
    return os.environ.get("PY_PASSWORD") or None


def tls():
    """Whether the target's ports take TLS: every client sets ssl=tls()."""
    return os.environ.get("PY_TLS") == "1"


def redis_url(db=0):
    pw = password()
    auth = f":{pw}@" if pw else ""
    scheme = "rediss" if tls() else "redis"
    return f"{scheme}://{auth}{HOST}:{app_port()}/{db}"


def client(port=None, **kw):
    """A plain redis.Redis (RESP2) on port (the app's by default)."""
    import redis

    return redis.Redis(host=HOST, port=port or app_port(), password=password(), socket_timeout=20, ssl=tls(), **kw)


def inspector():
    """A client for the server-side checks, on the last node."""
    return client(inspect_port())


def unique(prefix):
    """A key prefix no other run or test uses."""
    return f"{prefix}:{os.getpid()}:{time.monotonic_ns()}:"


def assert_ttl(tc, ttl, want, slack=5, what="TTL"):
    """Asserts that a TTL in seconds is want, less at most slack."""
    tc.assertTrue(want - slack <= ttl <= want, f"{what} is {ttl}; want {want} (within {slack}s)")


# --- /metrics of the cloakroomd nodes ---------------------------------------


def metrics_addrs():
    raw = os.environ.get("CLOAKROOM_METRICS", "")
    return [a for a in raw.split(",") if a]


def metric_values(name):
    """The unlabelled metric name on every node, in CLOAKROOM_METRICS order."""
    out = []
    for addr in metrics_addrs():
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as res:
            text = res.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                out.append(float(line.split()[1]))
                break
        else:
            raise AssertionError(f"http://{addr}/metrics has no {name}")
    return out


def counter_sum(name):
    return sum(metric_values(name))


def wait_ready(timeout=15):
    """Waits until every node reports cloakroom_ready 1 (serving, every
    member on the same table, nothing arriving): until then a node in
    cluster mode forwards rather than redirect."""
    deadline = time.monotonic() + timeout
    while True:
        ready = metric_values("cloakroom_ready")
        if all(v == 1 for v in ready):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cloakroom_ready on {metrics_addrs()}: {json.dumps(ready)}; want 1 on every node")
        time.sleep(0.05)
