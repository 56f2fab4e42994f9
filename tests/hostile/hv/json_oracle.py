#!/usr/bin/env python3
"""hv's QMP JSON reader against python3's json as a strict RFC 8259 oracle.

usage: json_oracle.py JSON_CHECK [FUZZ_CORPUS_DIR]

Documents: hand-written edge cases (numbers, surrogates, UTF-8), seeded
random valid documents, byte-level mutations of them, and the JSON inputs
of tests/fuzz/hv/corpus (first byte 0).  The oracle: the bytes decode as
strict UTF-8, json.loads accepts them with NaN/Infinity refused, and no
string holds a lone surrogate.  hv's deliberate limits (nesting deeper
than 64, U+0000 in a string) are expected to be rejected.  Any other
disagreement fails the test and is printed.
"""
import json
import os
import random
import struct
import subprocess
import sys

MAX_DEPTH = 64


def _no_constants(name):
    raise ValueError("constant " + name)


def oracle(doc: bytes) -> bool:
    try:
        text = doc.decode("utf-8")  # strict: no surrogates, no overlong forms
        value = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return False
    ok = True

    def walk(v, depth):
        nonlocal ok
        if depth > MAX_DEPTH:
            ok = False
            return
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                ok = False  # a lone surrogate from a \u escape
            if "\0" in v:
                ok = False  # hv's limit: strings are C strings
        elif isinstance(v, list):
            for x in v:
                walk(x, depth + 1)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k, depth + 1)
                walk(x, depth + 1)

    walk(value, 0)
    return ok


FIXED = [
    # numbers
    b"0", b"-0", b"1", b"-1", b"10", b"1.5", b"-0.0", b"1e5", b"1E+5", b"1e-5", b"0.5e0",
    b"123456789012345678901234567890123456789012345678901234567890123456789012345",
    b"1e999", b"01", b"-01", b"00", b"1.", b".5", b"+1", b"-", b"1e", b"1e+", b"1E-",
    b"0x10", b"1.e5", b"-.5", b"1..2", b"1e5.5", b"--1", b"0.", b"NaN", b"Infinity",
    b"-Infinity", b"nan", b"[01]", b"[1.]", b"{\"a\":01}",
    # literals and structure
    b"true", b"false", b"null", b"tru", b"nul", b"True", b"[true]", b"[truex]", b"[1,]",
    b"[,1]", b"{\"a\":1,}", b"{'a':1}", b"{\"a\" 1}", b"[1 2]", b"{}", b"[]", b" [ ] ",
    b"\t\r\n1\n", b"\x0b1", b"\xc2\xa01", b"\xef\xbb\xbf1", b"", b" ", b"1 1", b"[", b"]",
    b"{\"a\":1}}", b"{\"QMP\":{\"version\":{\"qemu\":{\"major\":7}},\"capabilities\":[]}}",
    b"{\"a\":1,\"a\":2}", b"{1:2}", b"{\"a\"}",
    # escapes and surrogates
    b'"\\""', b'"\\\\"', b'"\\/"', b'"\\b\\f\\n\\r\\t"', b'"\\x"', b'"\\u12"', b'"\\u12G4"',
    b'"\\u00e9"', b'"\\u00E9"', b'"\\ud83d\\ude00"', b'"\\uD83D\\uDE00"', b'"\\ud800"',
    b'"\\udc00"', b'"\\ud800x"', b'"\\ud800\\u0041"', b'"\\ud800\\ud800"', b'"\\udbff\\udfff"',
    b'"\\u0000"', b'"\\u0001"', b'"\\uffff"', b'"\\ufffe"',
    # raw bytes in strings
    '"é"'.encode(), '"𝄞"'.encode(), b'"\xef\xbf\xbf"', b'"\xf4\x8f\xbf\xbf"', b'"\xed\xa0\x80"',
    b'"\xed\x9f\xbf"', b'"\xc0\xaf"', b'"\xc1\xbf"', b'"\xe0\x80\xaf"', b'"\xe0\x9f\xbf"',
    b'"\xf0\x80\x80\xaf"', b'"\xf0\x8f\xbf\xbf"', b'"\xf5\x80\x80\x80"', b'"\xf4\x90\x80\x80"',
    b'"\x80"', b'"\xbf"', b'"\xc3"', b'"\xe2\x82"', b'"\xf0\x9d\x84"', b'"\xff"', b'"\xfe"',
    b'"\t"', b'"\x00"', b'"\x1f"', b'"\x7f"', b'"a', b'"\\', b'"\\u',
    # nesting at and past the limit
    b"[" * 65 + b"]" * 65, b"[" * 66 + b"]" * 66, b"[" * 65 + b"1" + b"]" * 65,
    b"[" * 64 + b"1" + b"]" * 64, b'{"a":' * 65 + b"1" + b"}" * 65,
]

ALPHABET = list(b'0123456789.eE+-"\\u{}[],: \t\nabcdfnrtxDdC8') + [
    0x00, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xE0, 0xED, 0xA0, 0xF0, 0xF4, 0x90, 0xFF]


def random_string(rng):
    pool = ["a", "Z", " ", '"', "\\", "/", "\n", "\x01", "é", "€", "𝄞", "\u2028", "\ufeff",
            "\uffff", "\U0010ffff"]
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 6)))


def random_value(rng, depth=0):
    kind = rng.randrange(8 if depth < 5 else 5)
    if kind == 0:
        return rng.choice([True, False, None])
    if kind == 1:
        return rng.randrange(-10**6, 10**6)
    if kind == 2:
        return rng.choice([0.5, -1.25e-7, 3e100, 1.0, -0.0])
    if kind in (3, 4):
        return random_string(rng)
    if kind == 5 or kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {random_string(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def mutate(rng, doc: bytes) -> bytes:
    b = bytearray(doc)
    for _ in range(rng.randrange(1, 3)):
        op = rng.randrange(3)
        pos = rng.randrange(len(b) + 1)
        if op == 0 or not b:
            b[pos:pos] = bytes([rng.choice(ALPHABET)])
        elif op == 1:
            del b[min(pos, len(b) - 1)]
        else:
            b[min(pos, len(b) - 1)] = rng.choice(ALPHABET)
    return bytes(b)


def corpus_docs(path):
    docs = []
    if path and os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            with open(os.path.join(path, name), "rb") as f:
                data = f.read()
            if data[:1] == b"\x00":
                docs.append(data[1:])
    return docs


def main():
    check = sys.argv[1]
    fuzz = corpus_docs(sys.argv[2] if len(sys.argv) > 2 else None)
    rng = random.Random(20261202)
    docs = list(FIXED) + fuzz
    valid = []
    for _ in range(1500):
        v = random_value(rng)
        valid.append(json.dumps(v, ensure_ascii=rng.random() < 0.5).encode("utf-8"))
    docs += valid
    for _ in range(6000):
        docs.append(mutate(rng, rng.choice(valid + list(FIXED))))
    stdin = b"".join(struct.pack("<I", len(d)) + d for d in docs)
    got = subprocess.run([check], input=stdin, capture_output=True, check=True).stdout.strip()
    if len(got) != len(docs):
        print(f"FAIL: {check} answered {len(got)} of {len(docs)} documents")
        return 1
    bad = 0
    accepted = 0
    for doc, answer in zip(docs, got):
        want = oracle(doc)
        accepted += want
        if want != (answer == ord("1")):
            bad += 1
            if bad <= 20:
                print(f"MISMATCH: python3 {'accepts' if want else 'rejects'}, "
                      f"fl_json_parse {'accepts' if answer == ord('1') else 'rejects'}: {doc!r}")
    print(f"{len(docs)} documents ({len(fuzz)} from the fuzz corpus), "
          f"{accepted} valid, {len(docs) - accepted} invalid, {bad} disagreements")
    # a test that cannot fail is a defect: both kinds must be well represented
    if accepted < 1000 or len(docs) - accepted < 1000:
        print("FAIL: the generated corpus is lopsided")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
