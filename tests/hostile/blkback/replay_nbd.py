#!/usr/bin/env python3
"""Hostile NBD inputs replayed against `faultline disk serve` (issue 14).

    replay_nbd.py CASE        (FAULTLINE = the binary; exit 77 = skipped)

Cases:
  malformed     bad magics, unknown flags, oversize options and requests,
                out-of-range and unknown commands, a half-closed client, a
                client gone mid-payload, 200 idle connections: each closes
                or answers as docs/blkback.md says, and a good client is
                served after every one of them.
  umask         under umask 000 the socket is still 0600.
  emfile        with RLIMIT_NOFILE reached, accept() does not spin the
                server (CPU time stays low), it says so once, and serves
                again once connections close.
  tmpfs-full    `disk serve` on an 8 MiB tmpfs with a 1 MiB cache, 48
                writes of 256 KiB without flush: every acknowledged write
                reads back, every refused one reads old data, the host's
                ENOSPC is logged once naming the file (root: mounts a
                tmpfs; skipped when mounting is not allowed).
"""
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

FAULTLINE = os.environ.get("FAULTLINE", "build/cli/faultline")

NBD_MAGIC = 0x4E42444D41474943
OPT_MAGIC = 0x49484156454F5054
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
OPT_EXPORT_NAME = 1
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
EPERM, EIO, EINVAL, ENOSPC, EOVERFLOW = 1, 5, 22, 28, 75


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


SERVERS = []  # stopped on every exit, failures included


class Server:
    def __init__(self, tmp, args, size="4M", preexec=None, image=None):
        SERVERS.append(self)
        self.sock = os.path.join(tmp, "d.sock")
        self.img = image or os.path.join(tmp, "d.img")
        self.log = open(os.path.join(tmp, "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [FAULTLINE, "disk", "serve", self.img, "--size", size, "--socket", self.sock] + args,
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec)
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        fail("disk serve did not start: " + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.output()


def connect(srv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(srv.sock)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def closed_by_server(s):
    """True when the server closed the connection (EOF, maybe after replies)."""
    try:
        while True:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def greet(s):
    g = recv_exact(s, 18)
    magic, opt, flags = struct.unpack(">QQH", g)
    if magic != NBD_MAGIC or opt != OPT_MAGIC:
        fail("bad greeting")
    return flags


def go(srv):
    """A good client: handshake with EXPORT_NAME "", returns the socket."""
    s = connect(srv)
    greet(s)
    s.sendall(struct.pack(">IQII", 3, OPT_MAGIC, OPT_EXPORT_NAME, 0))
    size, _ = struct.unpack(">QH", recv_exact(s, 10))
    return s, size


def req(s, cmd, handle, off, length, payload=b"", flags=0):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, cmd, handle, off, length) + payload)


def reply(s, handle, length=0):
    magic, err, h = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != SIMPLE_MAGIC or h != handle:
        fail("bad reply: magic %#x handle %d (want %d)" % (magic, h, handle))
    data = recv_exact(s, length) if err == 0 and length else b""
    return err, data


def good_client_works(srv, what):
    if not srv.alive():
        fail("%s: the server died: %s" % (what, srv.output()))
    s, size = go(srv)
    req(s, CMD_WRITE, 1, 4096, 512, b"\x5a" * 512)
    req(s, CMD_READ, 2, 4096, 512)
    if reply(s, 1)[0] != 0 or reply(s, 2, 512) != (0, b"\x5a" * 512):
        fail("%s: a good client is not served afterwards" % what)
    req(s, CMD_DISC, 3, 0, 0)
    s.close()


def case_malformed(tmp):
    srv = Server(tmp, ["--no-sync"])
    size = 4 << 20
    # handshake-level garbage: the connection closes, nothing else happens
    hostile = {
        "unknown client flags": struct.pack(">I", 0xFFFF0000),
        "bad option magic": struct.pack(">I", 3) + b"X" * 16,
        "option over 64 KiB": struct.pack(">IQII", 3, OPT_MAGIC, 7, 1 << 30),
        "unknown export name": struct.pack(">IQII", 3, OPT_MAGIC, OPT_EXPORT_NAME, 4) + b"nope",
    }
    for what, data in hostile.items():
        s = connect(srv)
        greet(s)
        s.sendall(data)
        if not closed_by_server(s):
            fail(what + ": the connection stays open")
        s.close()
        good_client_works(srv, what)
    # transmission: each answered with its errno, the stream stays in step
    s, _ = go(srv)
    cases = [
        ("read over 32 MiB", CMD_READ, 0, 0, 64 << 20, b"", EOVERFLOW),
        ("read beyond the end", CMD_READ, 0, size, 512, b"", EINVAL),
        ("write beyond the end", CMD_WRITE, 0, size - 256, 512, b"\0" * 512, ENOSPC),
        ("zero-length read", CMD_READ, 0, 0, 0, b"", EINVAL),
        ("unknown command", 99, 0, 0, 512, b"", EINVAL),
        ("flush with a length", CMD_FLUSH, 0, 0, 512, b"", EINVAL),
        ("unknown flags", CMD_READ, 0x8000, 0, 512, b"", EINVAL),
        ("write over 32 MiB (payload skipped)", CMD_WRITE, 0, 0, (33 << 20),
         b"\x11" * (33 << 20), EOVERFLOW),
    ]
    for i, (what, cmd, flags, off, length, payload, want) in enumerate(cases):
        req(s, cmd, 100 + i, off, length, payload, flags)
        err, _ = reply(s, 100 + i)
        if err != want:
            fail("%s: error %d, expected %d" % (what, err, want))
    req(s, CMD_READ, 200, 0, 512)
    if reply(s, 200, 512)[0] != 0:
        fail("the stream is out of step after the invalid requests")
    # a bad request magic closes the connection
    s.sendall(b"\xde\xad\xbe\xef" + b"\0" * 24)
    if not closed_by_server(s):
        fail("bad request magic: the connection stays open")
    s.close()
    good_client_works(srv, "bad request magic")
    # half-closed client: its request is still answered, then EOF
    s, _ = go(srv)
    req(s, CMD_READ, 7, 0, 512)
    s.shutdown(socket.SHUT_WR)
    if reply(s, 7, 512)[0] != 0:
        fail("half-closed client: no reply")
    s.close()
    good_client_works(srv, "half-closed client")
    # gone mid-payload
    s, _ = go(srv)
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, CMD_WRITE, 9, 0, 65536) + b"\1" * 1000)
    s.close()
    good_client_works(srv, "client gone mid-payload")
    # many idle connections, some mid-handshake, some mid-request
    many = []
    for i in range(200):
        c = connect(srv)
        if i % 2:
            greet(c)
            c.sendall(struct.pack(">I", 3))
        many.append(c)
    good_client_works(srv, "200 idle connections")
    for c in many:
        c.close()
    good_client_works(srv, "200 connections closed")
    srv.stop()


def case_umask(tmp):
    old = os.umask(0)
    try:
        srv = Server(tmp, ["--no-sync"])
    finally:
        os.umask(old)
    mode = os.stat(srv.sock).st_mode & 0o777
    srv.stop()
    if mode != 0o600:
        fail("socket mode %o under umask 000, expected 600" % mode)


def case_emfile(tmp):
    def low_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    srv = Server(tmp, ["--no-sync"], preexec=low_nofile)
    conns = []
    for _ in range(24):  # more than the server can accept (the rest wait in the backlog)
        try:
            conns.append(connect(srv))
        except BlockingIOError:
            break  # the backlog is full too
    time.sleep(0.5)
    if "Too many open files" not in srv.output():
        fail("the server never ran out of descriptors (%d connections)" % len(conns))
    before = srv.cpu_seconds()
    time.sleep(2.0)
    spent = srv.cpu_seconds() - before
    if spent > 0.5:
        fail("accept() out of descriptors: %.2f s of CPU in 2 s (spinning)" % spent)
    for c in conns:
        c.close()
    time.sleep(1.5)  # the listener comes back (a close, or its 1 s timer)
    good_client_works(srv, "after EMFILE")
    out = srv.stop()
    n = out.count("Too many open files")
    if n != 1:
        fail("EMFILE logged %d times, expected once:\n%s" % (n, out))


def case_tmpfs_full(tmp):
    if os.geteuid() != 0:
        print("SKIP: mounting a tmpfs needs root")
        sys.exit(77)
    mnt = os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                       stderr=subprocess.DEVNULL) != 0:
        print("SKIP: mount -t tmpfs is not allowed here")
        sys.exit(77)
    srv = None
    try:
        img = os.path.join(mnt, "d.img")
        srv = Server(tmp, ["--cache-limit", "1M", "--no-sync"], size="64M", image=img)
        s, _ = go(srv)
        chunk = 256 << 10
        results = []
        for i in range(48):
            data = bytes([i + 1]) * chunk
            req(s, CMD_WRITE, i, i * chunk, chunk, data)
            results.append(reply(s, i)[0])
        acked = [i for i, e in enumerate(results) if e == 0]
        refused = [i for i, e in enumerate(results) if e != 0]
        if not refused:
            fail("no write was refused on an 8 MiB file system")
        if any(results[i] != ENOSPC for i in refused):
            fail("refused writes got %s, expected ENOSPC" % sorted(set(results)))
        for i in range(48):
            req(s, CMD_READ, 1000 + i, i * chunk, chunk)
            err, got = reply(s, 1000 + i, chunk)
            want = bytes([i + 1]) * chunk if i in acked else b"\0" * chunk
            if err != 0 or got != want:
                fail("write %d (%s): reads back %s" %
                     (i, "acknowledged" if i in acked else "refused",
                      "error %d" % err if err else "bytes 0x%02x.." % got[0]))
        req(s, CMD_DISC, 9999, 0, 0)
        s.close()
        out = srv.stop()
        lines = [l for l in out.splitlines() if "host write" in l]
        if len(lines) != 1 or img not in lines[0] or "No space left" not in lines[0]:
            fail("expected one host ENOSPC line naming %s:\n%s" % (img, out))
    finally:
        if srv:
            srv.stop()
        subprocess.call(["umount", mnt])


def main():
    cases = {"malformed": case_malformed, "umask": case_umask, "emfile": case_emfile,
             "tmpfs-full": case_tmpfs_full}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print("usage: replay_nbd.py " + "|".join(cases))
        sys.exit(2)
    if not os.access(FAULTLINE, os.X_OK):
        fail("no faultline binary at " + FAULTLINE)
    with tempfile.TemporaryDirectory(prefix="fl-hostile-blkback-") as tmp:
        try:
            cases[sys.argv[1]](tmp)
        finally:
            for srv in SERVERS:
                srv.stop()
    print("PASS " + sys.argv[1])


if __name__ == "__main__":
    main()
