# Where the tests find their Redis server.
#
# Order: a CFG dict (set with `mpremote exec "CFG={...}"` before `run run.py`,
# which copies it here and to builtins), else the environment variables
# MICROREDIS_TEST_HOST / MICROREDIS_TEST_PORT (CPython, and os.getenv on the
# MicroPython unix port), else SkipTest("no server configured").
#
# CFG keys: 'host', 'port', 'modules' (list of t_* module names), 'dir'
# (folder holding the t_*.py files), anything else a test wants to read (get()).
import os

from tinytest import SkipTest

CFG = None


def config():
    """The CFG dict in force, or {}."""
    if CFG is not None:
        return CFG
    try:
        import builtins

        c = getattr(builtins, "CFG", None)
        if c is not None:
            return c
    except ImportError:
        pass
    return {}


def get(key, default=None):
    return config().get(key, default)


def _getenv(name):
    getenv = getattr(os, "getenv", None)
    if getenv is None:  # some board ports have no os.getenv
        return None
    return getenv(name)


def server():
    """(host, port) of the test Redis server, or raise SkipTest."""
    c = config()
    if c.get("port"):
        return (c.get("host") or "127.0.0.1", int(c["port"]))
    port = _getenv("MICROREDIS_TEST_PORT")
    if port:
        return (_getenv("MICROREDIS_TEST_HOST") or "127.0.0.1", int(port))
    raise SkipTest("no server configured")


def cluster():
    """[(host, port), ...] of the test Redis Cluster (CFG 'cluster', else MICROREDIS_CLUSTER_NODES =
    "host:port,host:port,..."), or raise SkipTest."""
    v = config().get("cluster") or _getenv("MICROREDIS_CLUSTER_NODES")
    if not v:
        raise SkipTest("no Redis Cluster configured (MICROREDIS_CLUSTER_NODES=host:port,...; pytest's "
                       "redis_cluster fixture sets it for modules with CLUSTER = True)")
    if type(v) is not str:
        return list(v)
    out = []
    for a in v.split(","):
        k = a.rfind(":")
        out.append((a[:k], int(a[k + 1:])))
    return out


def cluster_proxies():
    """The control ports of the fault proxies in front of the test cluster's nodes, in cluster()'s order (CFG
    'cluster_proxies', else MICROREDIS_CLUSTER_PROXIES = "port,port,..."; tests_host/test_cluster.py sets it for
    its Valkey cluster, whose nodes give clients the proxies' addresses), or raise SkipTest."""
    v = config().get("cluster_proxies") or _getenv("MICROREDIS_CLUSTER_PROXIES")
    if not v:
        raise SkipTest("no fault proxies in front of the cluster (tests_host/test_cluster.py's Valkey cluster has them)")
    if type(v) is not str:
        return list(v)
    return [int(p) for p in v.split(",")]


def getenv(name):
    """An environment variable, or None (also where os.getenv is missing)."""
    return _getenv(name)
