"""Writes the mip package files at the repo root from PACKAGES below (`make packages`); --check only compares.

Which module goes where (every lib/microredis/*.py is in exactly one package file;
tests_host/test_packaging.py enforces it):

    package.json          the core: everything needed to connect and send commands
    package-pubsub.json   microredis/pubsub.py: Subscription, Message (client.subscribe() imports it on first use);
                          msginto.py: receive_into()'s zero-copy message reads (loaded by the first one)
    package-survival.json microredis/outbox.py (with journal.py, journal1.py, idalloc.py, backoff.py, link.py,
                          flash.py), inbox.py, sentinel.py, retry.py, retryon.py, noperm.py: Outbox, Inbox, Sentinel (mr.Outbox /
                          mr.Inbox / mr.Sentinel load them),
                          h.retry() / h.health_check() (retryon.py: retry_on=...; noperm.py: subscription names the
                          server refuses, loaded on the first refusal)
    package-tx.json       microredis/transaction.py, scripts.py: client.transaction(), mr.WatchError,
                          client.register_script() (loaded on first use)
    package-cache.json    microredis/cache.py: the client-side cache (microredis.cache.Cache)
    package-aio.json      microredis/aio.py, aio_pubsub.py, aio_inbox.py: the asyncio client (`from microredis import
                          aio`); aio_pubsub.py needs package-pubsub.json too, aio_inbox.py (AsyncInbox)
                          package-survival.json
    package-cluster.json  microredis/cluster.py: the Redis Cluster client (mr.Cluster loads it); cluster_pubsub.py:
                          its sharded subscriptions (loaded by the first ssubscribe(); needs package-pubsub.json too)

Install (mip reads "urls"; a relative URL is resolved against the folder of the package file):

    mpremote mip install github:<owner>/<repo>                       # the core
    mpremote mip install github:<owner>/<repo>/package-pubsub.json   # + pub/sub
    mpremote mip install github:<owner>/<repo>/package-survival.json # + Outbox, Sentinel, retry
    mpremote mip install github:<owner>/<repo>/package-tx.json       # + transactions, Lua scripts
    mpremote mip install github:<owner>/<repo>/package-cache.json    # + client-side cache
    mpremote mip install github:<owner>/<repo>/package-aio.json      # + the asyncio client
    mpremote mip install github:<owner>/<repo>/package-cluster.json  # + Redis Cluster
    mpremote mip install /path/to/checkout/package.json              # from a local checkout
    >>> mip.install("github:<owner>/<repo>")                          # on the board, over Wi-Fi

The "version" of every package file is lib/microredis/__init__.py's __version__.
"""

import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(REPO, "lib", "microredis")

# package file -> modules of lib/microredis/ (without .py), in install order
PACKAGES = {
    "package.json": ["__init__", "errors", "resp", "bigint", "encoder", "clock", "ticks", "net", "transport",
                     "net_mp", "net_sock", "tlsctx", "client", "rare", "texts", "parttexts", "setopts",
                     "connection", "credentials", "url", "commands", "cmdargs", "strings", "keyspace", "hashes", "lists", "server", "sets", "zsets",
                     "streams", "xgroups"],
    "package-pubsub.json": ["pubsub", "msginto"],
    "package-survival.json": ["outbox", "journal", "journal1", "idalloc", "backoff", "link", "flash", "inbox",
                              "sentinel", "retry", "retryon", "noperm"],
    "package-tx.json": ["transaction", "scripts"],
    "package-cache.json": ["cache"],
    "package-aio.json": ["aio", "aio_pubsub", "aio_inbox"],
    "package-cluster.json": ["cluster", "cluster_pubsub"],
}


def version():
    with open(os.path.join(LIB, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", f.read(), re.M)
    if not m:
        raise SystemExit("no __version__ in lib/microredis/__init__.py")
    return m.group(1)


def render(modules, ver):
    # one [target, url] pair per line, like micropython-lib's package files
    urls = ",\n".join("    [%s, %s]" % (json.dumps("microredis/%s.py" % m), json.dumps("lib/microredis/%s.py" % m))
                      for m in modules)
    text = '{\n  "urls": [\n%s\n  ],\n  "version": %s\n}\n' % (urls, json.dumps(ver))
    json.loads(text)  # well-formed
    return text


def expected():
    ver = version()
    return {name: render(mods, ver) for name, mods in PACKAGES.items()}


def main(argv):
    check = "--check" in argv
    stale = []
    for name, text in expected().items():
        path = os.path.join(REPO, name)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except OSError:
            current = None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print("wrote", name)
    if stale:
        print("out of date: %s (run `make packages`)" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
