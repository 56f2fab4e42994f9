#!/usr/bin/env python3
"""docs/scenario.schema.json against faultline's own validator.

    schema_test.py scenarios FAULTLINE SOURCE_DIR
        The schema is a valid draft-07 schema, and every scenarios/*.yaml
        is valid under it (and under `faultline validate`).

    schema_test.py keys FAULTLINE SOURCE_DIR
        Every key and fixed word topology/*.c accepts (its *_keys[] arrays,
        the X-macro word lists) is in the schema at the matching place, so
        a key added to the loader without the schema fails here at once.
        Keys the schema has and the loader lacks are listed (a key another
        branch is adding), not failed.

    schema_test.py agreement FAULTLINE SOURCE_DIR
        The schema and `faultline validate` agree on the error corpus: the
        cases of tests/unit/topology/test_topology_errors.c and the fuzz
        corpus tests/fuzz/topology/corpus/.  For every input:
          - faultline accepts it  =>  the schema accepts it;
          - faultline rejects it for a reason a schema can express (see
            SCHEMA_KINDS: an unknown key, a value of the wrong YAML type, a
            missing required key, a word not among the fixed ones, a package
            or variable name's syntax)  =>  the schema rejects it.
        The other errors are beyond a schema (BEYOND below) and only
        counted: the schema is for editors, faultline is the authority.

BEYOND, the kinds of errors a JSON Schema cannot express here:
  - YAML itself: syntax errors, several documents, recursive aliases, bad
    merge keys, keys given twice, nesting too deep, NUL bytes (PyYAML
    fails or silently keeps the last of two keys; those inputs are
    skipped);
  - references: a node, network, disk or event name that does not exist,
    `after:` chains and loops, `heal:` of a partition that was not named;
  - values in their unit grammar and range: durations, sizes, rates,
    probabilities, subnets and addresses (overlaps, host bits, duplicates),
    MACs, regular expressions, seeds above 2^64-1, memory and vCPU ranges;
  - the file system: image files and disk bases that must exist;
  - the timeline as a whole: node states along time (resume of a running
    node, ...), events after run.duration, same-precedence link settings
    that contradict, netem combinations (reorder without delay), nemesis
    spacing, shapes needing more nodes, the work budget.
"""
import concurrent.futures
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import jsonschema
    import yaml
except ImportError as e:
    raise SystemExit(f"schema_test.py: {e}: needs python3-jsonschema and python3-yaml "
                     "(deps/install.txt; scripts/install-deps installs them)")

# faultline messages ("FILE:LINE:COL: path: message") whose cause a schema
# expresses: the schema must reject these inputs too.
SCHEMA_KINDS = [
    ("unknown key", re.compile(r"unknown key '")),
    ("wrong type", re.compile(r"(^|: )(a list|a mapping) is not |is not a mapping|is not a list")),
    ("missing key", re.compile(r"needs '|an event needs (one kind|a time)|no nodes are defined"
                               r"|give either 'at' or 'after'")),
    ("not one of the words", re.compile(r"is not valid here")),
    ("name syntax", re.compile(r"is not a Debian package name|is not an environment variable name")),
]


def load_schema(src):
    with open(os.path.join(src, "docs", "scenario.schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def jsonable(v):
    """PyYAML's types as JSON ones, the way an editor's YAML server sees them."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if isinstance(k, bool):
                k = "true" if k else "false"
            elif k is None:
                k = "null"
            out[str(k)] = jsonable(x)
        return out
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)  # dates, timestamps, binary


def yaml_load(data):
    """The document as JSON values, or None where YAML itself is the problem."""
    try:
        docs = list(yaml.safe_load_all(data))
        if len(docs) != 1:
            return None
        return jsonable(docs[0])
    except (yaml.YAMLError, RecursionError, TypeError, ValueError):
        return None


def faultline_validate(faultline, path):
    p = subprocess.run([faultline, "validate", path], capture_output=True, text=True,
                       errors="replace", timeout=60)
    if p.returncode not in (0, 2):
        raise SystemExit(f"{path}: faultline validate exited {p.returncode}: {p.stderr}")
    return p.returncode == 0, [l for l in p.stderr.splitlines() if l.strip()]


def schema_errors(validator, doc):
    try:
        return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:200]}"
                for e in validator.iter_errors(doc)]
    except RecursionError:
        return ["(recursion)"]


def cmd_scenarios(faultline, src):
    validator = load_schema(src)
    files = sorted(glob.glob(os.path.join(src, "scenarios", "*.yaml")))
    if not files:
        raise SystemExit(f"no scenarios in {src}/scenarios")
    bad = 0
    for path in files:
        with open(path, "rb") as f:
            doc = yaml_load(f.read())
        ok, msgs = faultline_validate(faultline, path)
        errs = ["not one YAML document"] if doc is None else schema_errors(validator, doc)
        if not ok:
            print(f"FAIL {path}: faultline rejects it: {msgs}")
            bad += 1
        for e in errs:
            print(f"FAIL {path}: the schema rejects it: {e}")
            bad += bool(errs)
        if ok and not errs:
            print(f"ok   {path}")
    print(f"{len(files)} scenarios, {bad} disagreements")
    return 1 if bad else 0


def c_string_literals(text):
    """The concatenated C string literals of each { ... } case of `cases[]`."""
    macros = dict(re.findall(r'^#define (\w+) ((?:"(?:[^"\\]|\\.)*"\s*)+)$', text, re.M))
    body = text[text.index("cases[] = {"):]
    body = body[body.index("{") + 1:]
    body = body[:re.search(r"^};", body, re.M).start()]
    token = re.compile(r'"((?:[^"\\]|\\.)*)"|(\w+)|(\{)|(\})|(,)|(/\*.*?\*/)|(\s+)', re.S)

    def unescape(s):
        return re.sub(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", lambda m: {
            "n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(
                m.group(1), chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "x"
                else chr(int(m.group(1), 8)) if m.group(1)[0].isdigit() else m.group(1)), s)

    cases, depth, field, fields = [], 0, "", []
    pos = 0
    while pos < len(body):
        m = token.match(body, pos)
        if not m:
            raise SystemExit(f"cannot read test_topology_errors.c near: {body[pos:pos + 60]!r}")
        pos = m.end()
        lit, ident, lb, rb, comma = m.group(1, 2, 3, 4, 5)
        if lb:
            depth += 1
            field, fields = "", []
        elif rb:
            depth -= 1
            fields.append(field)
            cases.append(fields[0])
        elif comma and depth == 1:
            fields.append(field)
            field = ""
        elif lit is not None:
            field += unescape(lit)
        elif ident:
            if ident not in macros:
                raise SystemExit(f"test_topology_errors.c: unknown macro {ident}")
            field += "".join(unescape(x) for x in re.findall(r'"((?:[^"\\]|\\.)*)"', macros[ident]))
    return cases


# topology's key arrays (and word lists) -> where the schema has them.
# Each entry: schema path (JSON pointer below the root), C arrays whose
# union it must cover, what to compare ("keys": properties, "enum").
KEY_MAP = [
    ("", ["top_keys"], "keys"),
    ("definitions/run", ["run_keys"], "keys"),
    ("definitions/image", ["image_keys"], "keys"),
    ("definitions/image/properties/files/items/anyOf/1", ["file_keys"], "keys"),
    ("definitions/networks/additionalProperties/anyOf/2", ["network_keys"], "keys"),
    ("definitions/node", ["node_keys"], "keys"),
    ("definitions/nic", ["nic_keys"], "keys"),
    ("definitions/disk/anyOf/2", ["disk_keys"], "keys"),
    ("definitions/command/anyOf/1", ["command_keys"], "keys"),
    ("definitions/loss/anyOf/1", ["loss_keys"], "keys"),
    ("definitions/disk-op", ["op_keys"], "keys"),
    ("definitions/disk-faults", ["op_keys", "IMPAIR_IO_OPS"], "keys"),
    ("definitions/link-parameters/anyOf/1", ["tc_link_key_names", "+loss-correlation"], "keys"),
    ("definitions/nemesis", ["nemesis_keys"], "keys"),
    ("definitions/event", ["kind_keys", "timing_keys"], "keys"),
    ("definitions/partition/anyOf/2", ["partition_keys"], "keys"),
    ("definitions/node-event/anyOf/1", ["node_event_keys"], "keys"),
    ("definitions/event/properties/clock", ["clock_keys"], "keys"),
    ("definitions/event/properties/disk", ["disk_event_extra", "op_keys", "IMPAIR_IO_OPS"], "keys"),
    ("definitions/event/properties/disk-clear/anyOf/1", ["disk_clear_keys"], "keys"),
    ("definitions/event/properties/exec", ["exec_keys"], "keys"),
    ("definitions/event/properties/wait", ["wait_keys"], "keys"),
    ("definitions/check", ["check_keys"], "keys"),
    ("definitions/loss/anyOf/1/properties/model", ["loss_models"], "enum"),
    ("definitions/partition/anyOf/0", ["random_shape_names"], "enum"),
    ("definitions/partition/anyOf/2/properties/shape", ["random_shape_names"], "enum"),
    ("definitions/nemesis-fault", ["nfault_names"], "enum"),
    ("definitions/crash-policy", ["TOPO_CRASH_POLICIES"], "enum"),
    ("definitions/disk/anyOf/2/properties/cache", ["TOPO_DISK_CACHES"], "enum"),
]


def c_word_lists(src):
    """name -> strings, for `const char *const NAME[...] = {...}` arrays,
    `{key, kind}` struct tables (their first strings) and
    `#define NAME(X) X(A, "a") ...` word lists in topology/ and impair/."""
    lists = {}
    for path in sorted(glob.glob(os.path.join(src, "topology", "*.[ch]")) +
                       glob.glob(os.path.join(src, "impair", "*.h"))):
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r"const char \*const (\w+)\[[^\]]*\] = \{(.*?)\};", text, re.S):
            lists.setdefault(m.group(1), re.findall(r'"([^"]*)"', m.group(2)))
        # {key, kind} tables: `} NAME[] = { {"key", ...}, ... };`, the key first
        for m in re.finditer(r"\}\s*(\w+)\[[^\]]*\]\s*=\s*\{(.*?)\n\};", text, re.S):
            lists.setdefault(m.group(1), re.findall(r'\{\s*"([^"]*)"', m.group(2)))
        for m in re.finditer(r"#define (\w+)\(X\)((?:[^\n]*\\\n)*[^\n]*)", text):
            lists.setdefault(m.group(1), re.findall(r'X\(\w+, "([^"]*)"\)', m.group(2)))
    return lists


def cmd_keys(faultline, src):
    schema = load_schema(src).schema
    lists = c_word_lists(src)
    bad = 0
    for where, names, what in KEY_MAP:
        node = schema
        for part in filter(None, where.split("/")):
            node = node[int(part)] if isinstance(node, list) else node[part]
        want = set()
        for n in names:
            if n.startswith("+"):
                want.add(n[1:])
            elif not lists.get(n):
                print(f"FAIL no word list '{n}' in topology/ or impair/ (renamed? update KEY_MAP)")
                bad += 1
            else:
                want.update(lists[n])
        have = set(node.get("properties", {})) if what == "keys" else set(node.get("enum", []))
        missing, extra = sorted(want - have), sorted(have - want)
        if missing:
            bad += 1
            print(f"FAIL schema {where or '(top)'} lacks {what} {missing} that "
                  f"{' + '.join(names)} accept")
        if extra:
            print(f"note schema {where or '(top)'} has {what} {extra} that {' + '.join(names)} "
                  f"do not (yet) have")
        if not missing:
            print(f"ok   {where or '(top)'}: {len(want)} {what}")
    return 1 if bad else 0



def cmd_agreement(faultline, src):
    validator = load_schema(src)
    inputs = []
    with open(os.path.join(src, "tests", "unit", "topology", "test_topology_errors.c")) as f:
        for i, y in enumerate(c_string_literals(f.read())):
            inputs.append((f"test_topology_errors.c case {i}", y.replace("@SRC@", src).encode()))
    if len(inputs) < 100:
        raise SystemExit(f"only {len(inputs)} cases read from test_topology_errors.c")
    for path in sorted(glob.glob(os.path.join(src, "tests", "fuzz", "topology", "corpus", "*"))):
        with open(path, "rb") as f:
            inputs.append((os.path.relpath(path, src), f.read()))
    counts = {"accepted": 0, "yaml": 0, "beyond": 0}
    counts.update({k: 0 for k, _ in SCHEMA_KINDS})
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        def validate(i):
            path = os.path.join(tmp, f"t{i}.yaml")
            with open(path, "wb") as f:
                f.write(inputs[i][1])
            return faultline_validate(faultline, path)

        # Hundreds of short runs (slow under ASan): a few at a time.
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as ex:
            verdicts = list(ex.map(validate, range(len(inputs))))
        for (what, data), (ok, msgs) in zip(inputs, verdicts):
            doc = yaml_load(data)
            if doc is None:
                counts["yaml"] += 1
                continue
            errs = schema_errors(validator, doc)
            if ok:
                counts["accepted"] += 1
                if errs:
                    bad += 1
                    print(f"FAIL {what}: faultline accepts it, the schema does not: {errs[:3]}\n"
                          f"     input: {data[:300]!r}")
                continue
            kinds = [(k, m) for m in msgs for k, rx in SCHEMA_KINDS if rx.search(m)]
            if not kinds:
                counts["beyond"] += 1
                continue
            counts[kinds[0][0]] += 1
            if not errs:
                bad += 1
                print(f"FAIL {what}: faultline rejects it ({kinds[0][0]}: {kinds[0][1]}), "
                      f"the schema accepts it\n     input: {data[:300]!r}")
    print(f"{len(inputs)} inputs: " + ", ".join(f"{v} {k}" for k, v in counts.items()) +
          f"; {bad} disagreements")
    return 1 if bad else 0


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("scenarios", "keys", "agreement"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd = {"scenarios": cmd_scenarios, "keys": cmd_keys, "agreement": cmd_agreement}[sys.argv[1]]
    return cmd(sys.argv[2], os.path.abspath(sys.argv[3]))


if __name__ == "__main__":
    sys.exit(main())
