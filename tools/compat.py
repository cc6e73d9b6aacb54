"""The README's server compatibility table, made by the tests: runs tests_device/t_compat.py against every server of
the matrix (testkit.matrix_servers(): Redis 6.2, Redis 7, Valkey 8.1) on CPython and the MicroPython unix port, and
prints the table its COMPAT lines give; --write puts it into README.md between the compat markers. A server not
installed here keeps the column the README has (say so when you commit: e.g. Redis 7 needs root to install).

    .venv/bin/python tools/compat.py            # prints the table (about 10 s)
    .venv/bin/python tools/compat.py --write    # and rewrites README.md's

tests_host/test_server_matrix.py checks, for each server it can start, that README.md holds what the probes give.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import testkit  # noqa: E402

README = os.path.join(testkit.REPO, "README.md")
BEGIN = "<!-- compat table: tools/compat.py --write -->"
END = "<!-- end of compat table -->"
RUNTIMES = ("cpython", "micropython")

# (the key t_compat prints, the README's row): the table's rows, in order
ROWS = (
    ("resp3", "RESP3 handshake (`HELLO 3`, the default)"),
    ("resp2", "RESP2 (`ConnectionHandler.resp2`: no `HELLO`, RESP2 replies)"),
    ("acl", "ACL user and password (`Credentials.acl`)"),
    ("pubsub", "Pub/sub: `subscribe`, `psubscribe` (RESP2 and RESP3)"),
    ("sharded_pubsub", "Sharded pub/sub: `ssubscribe`"),
    ("streams", "Streams: `Outbox`, `Inbox` (XADD, XINFO, consumer groups)"),
    ("client_cache", "Client-side cache (`CLIENT TRACKING`)"),
    ("transactions", "Transactions (`MULTI`/`EXEC`, `WATCH`)"),
    ("scripts", "Scripts: `register_script` (EVALSHA, EVAL after NOSCRIPT)"),
    ("functions", "Functions: `fcall`, `fcall_ro`"),
    ("expire_flags", "`expire(..., nx/xx/gt/lt)`"),
    ("tls", "TLS (`h.tls(ctx, name)`, certificate checked)"),
)
# the one server whose TLS the tests exercise (tests_host/test_redis7.py): TLS "yes" means that test runs there
TLS_TESTED = "redis7"
TLS_YES = "yes (`tests_host/test_redis7.py`)"
TLS_NONE = "no (this build has no TLS)"


class ProbeFailed(Exception):
    pass


def header(server):
    """The column's heading: "Redis 7.0 (Debian)"."""
    return "%s (%s)" % (server.label(), server.source)


def parse_compat(out):
    """{row key: cell} from the "COMPAT key: cell" lines t_compat printed."""
    return dict(re.findall(r"^COMPAT (\w+): (.*?)\s*$", out, re.M))


def probe(server, address, runtime):
    """t_compat against the server at address on one runtime: {row key: cell} (its "server" key: "Valkey 8.1.8").
    Raises ProbeFailed (with the output) when a test failed."""
    cp = testkit.run_device(["t_compat"], address, runtime, timeout=300)
    found = testkit.run_summary(cp.stdout)
    if cp.returncode != 0 or not found or found[1] or found[0] < len(ROWS):
        raise ProbeFailed("t_compat on %s, %s: rc=%d\n%s%s" % (server.key, runtime, cp.returncode, cp.stdout,
                                                                cp.stderr))
    cells = parse_compat(cp.stdout)
    cells["tls"] = tls_cell(server)
    return cells


def tls_cell(server):
    if not testkit.tls_built_in(server.executable):
        return TLS_NONE
    if server.key != TLS_TESTED:
        raise ProbeFailed("%s has TLS built in but no test runs TLS against it (tests_host/test_redis7.py)"
                          % server.key)
    return TLS_YES


def column(server, runtimes=RUNTIMES):
    """Starts the server, probes it on each runtime; the runtimes must agree. Returns {row key: cell}."""
    with testkit.RedisServer(executable=server.executable) as srv:
        results = [probe(server, srv.address, rt) for rt in runtimes]
    for rt, r in zip(runtimes[1:], results[1:]):
        if r != results[0]:
            raise ProbeFailed("%s: %s and %s disagree:\n%r\n%r" % (server.key, runtimes[0], rt, results[0], r))
    return results[0]


def render(headers, columns):
    """The markdown table: headers (one per server), columns (one {row key: cell} per server)."""
    lines = ["| Feature | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    for key, label in ROWS:
        lines.append("| %s | %s |" % (label, " | ".join(c.get(key, "?") for c in columns)))
    return "\n".join(lines)


def readme_block(text):
    """The table between the markers in the README text (without them); ValueError when they are missing."""
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < i:
        raise ValueError("README.md has no compat table markers (%s ... %s)" % (BEGIN, END))
    return text[i + len(BEGIN):j].strip("\n")


def read_table(text):
    """(headers, columns) of the README's table: columns as {row key: cell}, keyed by the ROWS labels."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in readme_block(text).splitlines()]
    headers = rows[0][1:]
    by_label = dict((label, key) for key, label in ROWS)
    columns = [{} for _ in headers]
    for r in rows[2:]:
        key = by_label.get(r[0])
        if key is None:
            raise ValueError("README compat table: unknown row %r" % r[0])
        for col, cell in zip(columns, r[1:]):
            col[key] = cell
    return headers, columns


def readme_column(text, server):
    """The README's column of a server ({row key: cell}) and its heading; (None, None) when it has none."""
    headers, columns = read_table(text)
    for h, col in zip(headers, columns):
        if h.endswith("(%s)" % server.source):
            return h, col
    return None, None


def main(argv):
    write = "--write" in argv
    with open(README, encoding="utf-8") as f:
        text = f.read()
    headers, columns, kept = [], [], []
    for server in testkit.matrix_servers():
        if server.executable is None:
            h, col = readme_column(text, server)
            if h is None:
                sys.exit("compat: %s is not installed here (%s) and README.md has no column for it"
                         % (server.key, server.how))
            kept.append("%s (not installed here: %s)" % (h, server.how))
        else:
            h, col = header(server), column(server)
            col.pop("server", None)
        headers.append(h)
        columns.append(col)
    table = render(headers, columns)
    print(table)
    for k in kept:
        print("compat: kept README.md's column for " + k, file=sys.stderr)
    if write:
        block = readme_block(text)
        with open(README, "w", encoding="utf-8") as f:
            f.write(text.replace(block, table, 1))
        print("compat: README.md %s" % ("unchanged" if block == table else "updated"), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
