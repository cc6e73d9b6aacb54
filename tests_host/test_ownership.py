"""Each base class in the core owns the state it uses (issue 9): a class that others inherit reads only the
attributes and methods it creates itself (in its class body or through `self.x = ...`) or inherits, never ones a
subclass creates. (Sender and Builder did: they are module functions now, bound by the class that owns the state.)
"""

import ast

from conftest import REPO

LIB = REPO / "lib" / "microredis"

# the core and its lazily loaded helpers; the catalogue mixins (commands.py, sets_streams.py) are meant to need
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
