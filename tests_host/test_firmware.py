"""Firmware with microredis frozen in: the QEMU MPS2_AN385 board (32-bit Cortex-M3, no sockets, a 140 KB heap) runs
the protocol and zero-allocation suites through mpremote, and the frozen unix port runs the smoke test. Built from
Debian's micropython sources by firmware/build.sh when its dependencies can be installed; skipped with its reason if
not. The commands are taken from firmware/README.md's "Build and test here" block and run exactly as written there,
so the README's examples cannot rot."""
import os
import re
import shlex
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "firmware", "README.md")


def readme_commands():
    """The command lines of the first sh block after "## Build and test here", comments stripped."""
    text = open(README, encoding="utf-8").read()
    section = text.split("## Build and test here", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _run(cmd):
    argv = shlex.split(cmd)
    env = dict(os.environ)
    while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):  # leading VAR=value assignments
        k, v = argv.pop(0).split("=", 1)
        env[k] = v
    p = subprocess.run(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=1800)
    out = p.stdout + p.stderr
    for line in out.splitlines():
        if line.startswith("SKIP:"):
            pytest.skip("firmware: " + line[5:].strip())
    return p.returncode, out


def test_readme_block_is_what_this_test_runs():
    cmds = readme_commands()
    assert cmds[:3] == ["make firmware", "make test-firmware",
                        "bash firmware/test.sh tests_device:t_resp,t_encoder,t_alloc_core"], cmds
    assert cmds[3:] == ["FIRMWARE_RP2=1 bash firmware/build.sh"], cmds  # documented, not run here (minutes more)


@pytest.mark.parametrize("cmd", readme_commands()[:3])
def test_firmware_readme_command(cmd):
    rc, out = _run(cmd)
    assert rc == 0, out[-4000:]
    if cmd == "make firmware":
        # the flash size the README states is the build's (within 10 %: it grows with the library)
        m = re.search(r"qemu-mps2-an385\.elf: flash \(text\+data\) (\d+) B", out)
        if m:  # arm-none-eabi-size is there
            said = re.search(r"`qemu-mps2-an385\.elf` \| QEMU MPS2_AN385 \(Cortex-M3\): about (\d+) KB of flash \(text\+data "
                             r"([\d,]+) B", open(README, encoding="utf-8").read())
            assert said, "firmware/README.md: the flash size of qemu-mps2-an385.elf"
            built = int(m.group(1))
            assert abs(int(said.group(1)) * 1000 - built) <= 0.1 * built, (said.group(0), built)
            assert abs(int(said.group(2).replace(",", "")) - built) <= 0.1 * built, (said.group(0), built)
    assert "FAIL" not in out.replace("0 failed", ""), out[-4000:]
    if cmd.startswith("bash firmware/test.sh tests_device:"):
        # the protocol and zero-allocation suites ran on the board, in the README's order
        for m in cmd.split(":", 1)[1].split(","):
            assert m in out, out[-4000:]
        assert re.search(r"PASS qemu: tests_device:\S+ \(\d+ passed, 0 failed", out), out[-4000:]
