"""Firmware with microredis frozen in: the QEMU MPS2_AN385 board (32-bit Cortex-M3, no sockets) runs the protocol
and zero-allocation suites through mpremote, and the frozen unix port runs the smoke test. Built from Debian's
micropython sources by firmware/build.sh when its dependencies can be installed; skipped with its reason if not."""
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_firmware_runs_protocol_and_zero_allocation_suites():
    p = subprocess.run(["bash", os.path.join(REPO, "firmware", "test.sh"),
                        "tests_device:t_resp,t_encoder,t_alloc_core"],
                       cwd=REPO, capture_output=True, text=True, timeout=1800)
    out = p.stdout + p.stderr
    for line in out.splitlines():
        if line.startswith("SKIP:"):
            pytest.skip("firmware: " + line[5:].strip())
    assert p.returncode == 0, out[-4000:]
    assert "FAIL" not in out.replace("0 failed", ""), out[-4000:]
    assert "t_alloc_core" in out and "t_resp" in out, out[-4000:]
