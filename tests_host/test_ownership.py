"""Each base class in the core owns the state it uses (issue 9): a class that others inherit reads only the
attributes and methods it creates itself (in its class body or through `self.x = ...`) or inherits, never ones a
subclass creates. (Sender and Builder did: they are module functions now, bound by the class that owns the state.)
"""

import ast

from conftest import REPO

LIB = REPO / "lib" / "microredis"

# the core and its lazily loaded helpers; the catalogue mixins (the group modules strings.py ... streams.py) are meant to need
# only `_cmd`, and the optional modules' classes are not bases of the core's
CORE = ("__init__", "errors", "clock", "ticks", "encoder", "resp", "client", "net",
        "transport", "net_mp", "net_sock", "connection", "rare", "setopts", "tlsctx", "url", "credentials")


def _classes():
    out = {}
    for m in CORE:
        tree = ast.parse((LIB / (m + ".py")).read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            made, used = set(), set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.ClassDef)):
                    made.add(item.name)
                elif isinstance(item, ast.Assign):
                    made.update(t.id for t in item.targets if isinstance(t, ast.Name))
                for x in ast.walk(item):
                    if isinstance(x, ast.Attribute) and isinstance(x.value, ast.Name) and x.value.id == "self":
                        (made if isinstance(x.ctx, ast.Store) else used).add(x.attr)
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            out[node.name] = (m, bases, made, used)
    return out


def test_base_classes_use_only_what_they_create():
    classes = _classes()
    bases = {b for (_, bs, _, _) in classes.values() for b in bs if b in classes}
    assert {"RedisError", "_Base"} <= bases  # the check sees the package's base classes

    def owned(name):
        m, bs, made, _ = classes[name]
        out = set(made)
        for b in bs:
            if b in classes:
                out |= owned(b)
        return out

    for name in sorted(bases):
        m, _, _, used = classes[name]
        foreign = sorted(used - owned(name))
        assert not foreign, "%s.%s uses attributes its subclasses create: %s" % (m, name, foreign)


def test_the_client_and_the_reader_have_no_base_class():
    # the sending half and the build pass are module functions: the client and the reader own all their state
    classes = _classes()
    assert classes["CoreClient"][1] == [] and classes["Reader"][1] == []
    assert "Sender" not in classes and "Builder" not in classes


# The subscription's routing on the client (which Subscription its pub/sub frames go to, RESP2 subscribed mode) is
# the client's: pubsub.py, aio_pubsub.py, noperm.py and retry.py change it through CoreClient._subscribed(). The
# subscription's own counting (confirmations due, replies ahead of its answer, the refusal taken for it, the calls in
# progress) is written only by the one body the sync and asyncio subscriptions share (pubsub.py) and the asyncio
# waits (aio_pubsub.py), never by the client, the reader task, retry or noperm.
CLIENT_ROUTING = {"_sub", "_resp2_subscribed"}
SUBSCRIPTION_STATE = {"_want", "_count", "_r2", "_ahead", "_err", "_users", "_busy", "_sync"}


def _foreign_writes(attrs):
    # (module, line, target) of every assignment to obj.attr (attr in attrs) where obj is not `self`
    out = []
    for p in sorted(LIB.glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            else:
                continue
            for t in targets:
                for x in ast.walk(t):
                    if isinstance(x, ast.Attribute) and x.attr in attrs and \
                            not (isinstance(x.value, ast.Name) and x.value.id == "self"):
                        out.append((p.stem, node.lineno, ast.unparse(x)))
    return out


def test_the_subscription_routing_is_written_only_by_the_client():
    writes = _foreign_writes(CLIENT_ROUTING)
    assert not writes, "write the client's subscription routing through c._subscribed(): %s" % writes
    src = (LIB / "client.py").read_text(encoding="utf-8")
    assert "def _subscribed(self, sub, mode):" in src


def test_the_subscription_state_is_written_only_by_its_body():
    writes = [w for w in _foreign_writes(SUBSCRIPTION_STATE) if w[0] not in ("pubsub", "aio_pubsub")]
    assert not writes, "the Subscription's counting written outside pubsub.py/aio_pubsub.py: %s" % writes


# ---- one owner per state, across modules (issue 16) -----------------------------------------------------------------
# A private attribute (`_x`) is read or written only in the module that creates it (`self._x = ...` or a class-body
# name). Other modules call the owner's declared verbs (VERBS: the extension points docs/DESIGN.md lists under
# "Owners and extension points"). What is still reached past them is pinned in KNOWN, per module: the check fails
# when a module reaches anything new, and when a pinned entry is no longer used (delete it), so the list only
# shrinks. The method calls that are not verbs count as reads of the attribute.
VERBS = {
    # CoreClient (client.py): the catalogue's entry, claiming and ending a command, reading frames, breaking the
    # connection, the subscription's routing, re-binding to a new connection (retry.py), the error reply a wait()
    # raises (cluster.py's node client keeps it)
    "_cmd", "_begin", "_end", "_check", "_next", "_dispatch", "_read_one", "_broken", "_lost", "_subscribed",
    "_recv", "_parse", "_get", "_poll", "_push", "_claim_slow", "_rebind", "_set_retry", "_idle_ms", "_touch",
    "_owe_raw", "_seen_error",
    # MultiCommands (commands.py): EXEC ends a watch (transaction.py)
    "_watch_ended",
    # Subscription (pubsub.py): the body the sync and asyncio subscriptions share, and what the client hands it
    "_take_push", "_is_frame", "_route", "_act", "_run", "_bind", "_confirmed", "_receive", "_receive_into",
    # Reader (resp.py): a malformed reply's error (bigint.py)
    "_bad",
    # ConnectionHandler (connection.py): one dial with its handshake (retry.py, sentinel.py)
    "_dial",
}

# What the client lets the package's parts read (never write): whether it is connected, how many replies are
# pending and how many it can hold, its clock and timeout, its connection's reader, encoder and transport, its
# subscription and RESP2 subscribed mode, its retry policy, the send_raw() replies owed
READABLE = {"_conn", "_pending", "_cap", "_clock", "_timeout_ms", "_reader", "_encoder", "_transport", "_sub",
            "_resp2_subscribed", "_retry", "_raw_replies"}

KNOWN = {
    # the asyncio client reads its futures' state and the subscription's wants; aio_pubsub the client's wake-ups
    "aio": {"_state:R", "_want:R"},
    "aio_pubsub": {"_task:R", "_wake:R"},
    # the cache fills a miss through the slot's conversion and answers hits with pooled futures (a read-through
    # hook in the client would replace these)
    "cache": {"_conv:R", "_handler_raised:R", "_handler_raised:W", "_last:R", "_name:R", "_resolved_count:R",
              "_state:W"},
    # the handshake's own memory limit (the HELLO reply), restored after it
    "connection": {"_limit:R", "_limit:W"},
    # receive_into's zero-copy message reads: a part of the reader loaded only by receive_into() (in resp.py it
    # would cost every board its 1.5 KB)
    "msginto": {"_KINDS:R", "_bulk_len:R", "_bulk_len:W", "_ilen:R", "_len:R", "_pull:R", "_scan:R", "_scanned:R",
                "_take:R"},
    # refused subscription names: the subscription's name sets and confirmations
    "noperm": {"_CONFIRM:R", "_c:R", "_mine:R", "_owes:R", "_r2:R", "_sets:R"},
    "pubsub": {"_limit:R"},
    # the sharded subscription, a part of the cluster client loaded by the first ssubscribe(): the Cluster's nodes
    # and their connections
    "cluster_pubsub": {"_address:R", "_client:R", "_hc_ms:R", "_moved_to:R", "_owner:R", "_pin:R", "_rides:R"},
    # the core's error paths, out of client.py and resp.py to keep them small
    "rare": {"_bad_utf8:W", "_counts:R", "_resolved_count:R"},
    # the handler's policy: its connection and stack, and the subscription it re-subscribes
    "retry": {"_c:R", "_conn:W", "_owes:R", "_retry:W", "_sets:R", "_stack:R"},
    # retry_on keeps the pending reads of a lost connection and re-sends them (slot verbs would replace these)
    "retryon": {"_client:R", "_conv:R", "_fut:R", "_into:R", "_key:R", "_last:R", "_name:R", "_state:R",
                "_state:W", "_value:W"},
}


def _reached():
    made = {}
    trees = {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(LIB.glob("*.py"))}
    for m, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.ClassDef)):
                        made.setdefault(item.name, set()).add(m)
                    elif isinstance(item, ast.Assign):
                        for t in item.targets:
                            if isinstance(t, ast.Name):
                                made.setdefault(t.id, set()).add(m)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                    node.value.id == "self" and isinstance(node.ctx, ast.Store):
                made.setdefault(node.attr, set()).add(m)
    out = {}
    for m, tree in trees.items():
        calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                continue
            if m in made.get(node.attr, ()) or node.attr not in made:
                continue  # its own, or not an attribute of the package's objects (a module's function, a stdlib one)
            if id(node) in calls and node.attr in VERBS:
                continue
            if node.attr in READABLE and not isinstance(node.ctx, ast.Store):
                continue
            out.setdefault(m, set()).add("%s:%s" % (node.attr, "W" if isinstance(node.ctx, ast.Store) else "R"))
    return out


def test_private_state_is_reached_only_through_its_owners_verbs():
    reached = _reached()
    new = {m: sorted(v - KNOWN.get(m, set())) for m, v in reached.items() if v - KNOWN.get(m, set())}
    assert not new, ("these modules reach private state another module owns; add a verb to the owner (and to VERBS "
                     "and docs/DESIGN.md) instead: %s" % new)
    gone = {m: sorted(v - reached.get(m, set())) for m, v in KNOWN.items() if v - reached.get(m, set())}
    assert not gone, "no longer reached: delete from KNOWN (the list only shrinks): %s" % gone


def test_the_ring_and_the_reader_have_one_module_each():
    # the reply ring, the future pool and the Future states are client.py's alone; the reader's buffer and scan
    # state, with its fast path, resp.py's alone: no other module reaches them
    reached = _reached()
    ring = {"_fut", "_conv", "_into", "_sent", "_allow", "_name", "_key", "_head", "_pending", "_unsent", "_last",
            "_pool", "_pool_n", "_pool_head", "_mark", "_mark_flushes", "_cap", "_state", "_value"}
    scan = {"_scanned", "_ilen", "_ipos", "_skip", "_pend", "_need", "_searched", "_counts", "_kind", "_view"}
    for m, v in reached.items():
        attrs = {x.split(":")[0] for x in v}
        if m not in ("retryon", "cache", "aio"):  # (KNOWN says why)
            assert not attrs & ring, (m, sorted(attrs & ring))
        if m not in ("msginto", "rare"):
            assert not attrs & scan, (m, sorted(attrs & scan))
    assert not [w for w in sorted(reached.get("client", ()))], reached.get("client")
