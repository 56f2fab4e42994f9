#!/usr/bin/env python3
"""Hostile inputs against `faultline net serve` (issue 14 items 12 and 15).

Each check prints PASS/FAIL with what it saw; the script exits 1 if any
failed.  Synthetic guests speak QEMU's stream protocol (4-byte big-endian
length, then the Ethernet frame) on the port sockets.
"""
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

FAULTLINE = os.environ.get("FAULTLINE") or os.path.join(
    os.environ.get("FL_BUILD_DIR", "build"), "cli", "faultline")
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures += 1


def mac(i):
    return bytes([0x52, 0x54, 0, 0, 0, i])


BCAST = b"\xff" * 6


def frame(dst, src, seq, size=64):
    body = dst + src + b"\x88\xb5" + struct.pack(">I", seq)
    return body + b"\0" * (size - len(body))


def stream(f):
    return struct.pack(">I", len(f)) + f


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def read_frames(s, wait=0.3):
    """Every whole frame readable within `wait` seconds of quiet."""
    s.setblocking(False)
    data = b""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
            deadline = time.time() + wait
        except BlockingIOError:
            time.sleep(0.01)
    out = []
    while len(data) >= 4:
        n = struct.unpack(">I", data[:4])[0]
        if len(data) < 4 + n:
            break
        out.append(data[4:4 + n])
        data = data[4 + n:]
    s.setblocking(True)
    return out


def ctl(d, *req, timeout=5):
    p = subprocess.run([FAULTLINE, "net", "ctl", "--dir", d] + list(req),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def stderr_lines(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")


def main():
    d = tempfile.mkdtemp(prefix="fl-hostile-nb-")
    errpath = os.path.join(d, "serve.err")
    errf = open(errpath, "wb")
    serve = subprocess.Popen([FAULTLINE, "net", "serve", "--dir", d, "--port", "n1",
                              "--port", "n2", "--port", "n3", "--seed", "7"],
                             stdout=subprocess.DEVNULL, stderr=errf)
    try:
        for _ in range(200):
            if os.path.exists(os.path.join(d, "control.sock")):
                break
            time.sleep(0.05)
        run(d, errpath, serve)
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
        try:
            rc = serve.wait(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()
            rc = serve.wait()
        check(rc == 0, "net serve exits 0 on SIGTERM after all of it (rc %s)" % rc)
        errf.close()
        subprocess.run(["rm", "-rf", d])
    sys.exit(1 if failures else 0)


def run(d, errpath, serve):
    ctlpath = os.path.join(d, "control.sock")
    sock = {n: os.path.join(d, n + ".sock") for n in ("n1", "n2", "n3")}

    # --- idle control connections must not lock out net ctl ---
    idle = [connect(ctlpath) for _ in range(20)]
    time.sleep(0.2)
    rc, out, err = ctl(d, "stats")
    check(rc == 0 and "port n1" in out,
          "net ctl answers beside 20 idle control connections (rc %d, %s)" % (rc, err.strip()))
    # ... and an idle connection is closed after the idle timeout
    one = connect(ctlpath)
    one.settimeout(10)
    t0 = time.time()
    got = b""
    while True:
        chunk = one.recv(4096)
        if not chunk:
            break
        got += chunk
    waited = time.time() - t0
    check(b"error:" in got and 3 < waited < 9,
          "an idle control connection is answered with an error and closed after %.1f s (%r)"
          % (waited, got[:80]))
    for s in idle + [one]:
        s.close()

    # --- requests with escape sequences are echoed escaped ---
    evil = b"cut \x1b]52;c;SGVsbG8=\x07\x1b[2J\rPASS \xe2\x80\xae n1->n2\n"
    s = connect(ctlpath)
    s.sendall(evil)
    s.settimeout(5)
    while s.recv(4096):
        pass
    s.close()
    time.sleep(0.2)
    text = open(errpath, "rb").read()
    raw = [b for b in (b"\x1b", b"\x07", b"\r", b"\xe2\x80\xae") if b in text]
    check(not raw and b"\\x1b]52;c;" in text,
          "a control request's escape sequences reach stderr escaped (raw bytes found: %r)" % raw)

    # --- a flood of bad guest connections: a bounded number of lines ---
    before = len(stderr_lines(errpath))
    bad = [struct.pack(">I", 0), struct.pack(">I", 13) + b"x" * 13,
           struct.pack(">I", 70000), struct.pack(">I", 100) + b"short", b""]
    for i in range(300):
        s = connect(sock["n3"])
        if bad[i % len(bad)]:
            s.sendall(bad[i % len(bad)])
        s.close()
    time.sleep(0.5)
    added = len(stderr_lines(errpath)) - before
    check(added <= 60, "300 bad connections print %d lines (at most 60)" % added)
    check(serve.poll() is None, "net serve is still running after the connection flood")

    # --- 20 000 spoofed source MACs ---
    g1, g2 = connect(sock["n1"]), connect(sock["n2"])
    time.sleep(0.2)
    g1.sendall(stream(frame(BCAST, mac(1), 1)))  # n1's port takes n1's MAC
    g2.sendall(stream(frame(mac(1), mac(2), 2)))  # and n2's port n2's
    time.sleep(0.2)
    read_frames(g1)
    read_frames(g2)
    spoofer = connect(sock["n3"])
    time.sleep(0.1)
    spoofer.sendall(stream(frame(BCAST, mac(3), 3)))  # its own MAC first
    rng = random.Random(15)
    blob = bytearray()
    for i in range(20000):
        if i % 3 == 0:
            src = mac(1)  # the victim's MAC
        else:
            src = bytes([rng.randrange(256) & 0xfe]) + rng.randbytes(5)  # unicast
        dst = BCAST if i % 2 else mac(1)
        blob += stream(frame(dst, src, 100 + i))
    spoofer.sendall(bytes(blob))
    time.sleep(1.0)
    f1 = read_frames(g1)
    f2 = read_frames(g2)
    from_spoofer = [f for f in f1 + f2 if struct.unpack(">I", f[14:18])[0] >= 100]
    check(not from_spoofer, "no spoofed frame reached n1 or n2 (%d did)" % len(from_spoofer))
    # the victim's MAC did not move: n2 -> n1 still reaches n1 (and only n1)
    g2.sendall(stream(frame(mac(1), mac(2), 50)))
    time.sleep(0.3)
    f1 = read_frames(g1)
    f3 = read_frames(spoofer)
    check(any(struct.unpack(">I", f[14:18])[0] == 50 for f in f1)
          and not any(struct.unpack(">I", f[14:18])[0] == 50 for f in f3),
          "n1's MAC still leads to n1 after 20 000 spoofed frames")
    rc, out, err = ctl(d, "stats")
    m = re.search(r"port n3 .*spoofed (\d+)", out)
    check(rc == 0 and m and int(m.group(1)) == 20000,
          "net ctl stats counts 20000 spoofed frames at n3 (%s)" % (m.group(0) if m else out))

    # --- malformed frames after that: the port is closed, the others carry on ---
    for b in bad[:4]:
        s = connect(sock["n3"])
        s.sendall(stream(frame(BCAST, mac(3), 9)) + b)
        time.sleep(0.05)
        s.close()
    g1.sendall(stream(frame(mac(2), mac(1), 60)))
    time.sleep(0.3)
    f2 = read_frames(g2)
    check(any(struct.unpack(">I", f[14:18])[0] == 60 for f in f2),
          "n1 -> n2 still delivered after malformed input on n3")
    check(serve.poll() is None, "net serve is still running")
    for s in (g1, g2, spoofer):
        s.close()


if __name__ == "__main__":
    main()
