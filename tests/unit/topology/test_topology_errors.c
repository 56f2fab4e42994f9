/* Every error message of the scenario loader: each case is a small
 * scenario that must be rejected with a message containing the expected
 * text (and, where given, at the expected FILE:LINE:COL and key path). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "topology/topology.h"

#define N3 "nodes: {n1: {}, n2: {}, n3: {}}\n"

struct ecase {
    const char *yaml; /* "@SRC@" is replaced by the source directory */
    const char *want; /* substring of the error text */
};

static const struct ecase cases[] = {
    /* --- YAML level --- */
    {"nodes: [a\n", "YAML syntax error"},
    {"nodes: {n1: {}}\n---\nnodes: {}\n",
     "a second YAML document ('---'); a scenario is one document"},
    {"a: &x {b: *x}\n", "an alias refers to a node that contains it (recursive structure)"},
    {"nodes: {n1: {<<: 5}}\n", "a merge key '<<' takes a mapping or a list of mappings"},
    {"nodes: {n1: {<<: [5]}}\n", "a merge key '<<' takes a mapping or a list of mappings"},
    {"", "the scenario is empty: it needs at least 'nodes:'"},
    {"- a\n- b\n", "this document is a list"},
    {"hello\n", "this document is a single value"},
    {N3 "version: 2\n",
     "version: '2' is not a scenario format version this faultline reads (valid: 1)"},
    {N3 "nodse: {}\n", "nodse: unknown key 'nodse' in the scenario; did you mean 'nodes'?"},
    {N3 "zzzzzzzz: {}\n", "unknown key 'zzzzzzzz' in the scenario (valid: version, run"},
    {N3 "name: demo\n",
     "name: unknown key 'name' in the scenario; it belongs under 'run:' (run: {name: ...})"},
    {N3 "seed: 7\n", "unknown key 'seed' in the scenario; it belongs under 'run:'"},
    {N3 "checks: [{name: c, on: n1, command: 'true'}]\n",
     "checks[0].on: unknown key 'on' in a check; did you mean 'node'?"},
    {N3 "checks: [{name: c, node: n1, cmd: 'true'}]\n",
     "checks[0].cmd: unknown key 'cmd' in a check; did you mean 'command'?"},
    {"nodes: {n1: {mem: 256MiB}}\n", "unknown key 'mem' in a node; did you mean 'memory'?"},
    {N3 "packages: [redis-server]\n",
     "unknown key 'packages' in the scenario; it belongs under 'image:'"},
    {N3 "run: {name: a, name: b}\n", "run.name: key 'name' is given twice (first at t.yaml:2:7)"},
    {N3 "{[a]: 1}: 2\n", "a key must be a plain word, not a mapping"},
    {N3 "run: [1]\n", "run: a list is not a mapping: run is a mapping with keys name, description"},
    {"nodes: {n1: {env: {A: \"x\\0y\"}}}\n", "is not an environment value"},
    {N3 "run: {name: \"a\\0b\"}\n", "contains a NUL byte; expected run name"},
    /* --- run --- */
    {N3 "run: {seed: abc}\n",
     "run.seed: 'abc' is not a seed (valid: a whole number 0..18446744073709551615, or random)"},
    {N3 "run: {seed: 99999999999999999999}\n",
     "'99999999999999999999' is not a whole number in 0..18446744073709551615"},
    {N3 "run: {seed: [1]}\n",
     "run.seed: a list is not a seed (valid: a whole number 0..18446744073709551615, or random)"},
    {N3 "run: {duration: 0s}\n",
     "run.duration: '0s' is not a run duration (valid: more than 0s, at most 24h)"},
    {N3 "run: {duration: 10 parsecs}\n", "'10 parsecs' is not a duration"},
    {N3 "run: {boot-timeout: 100ms}\n", "is not a boot timeout (valid: 1s..1h)"},
    {N3 "run: {name: \"a b\"}\n", "run.name: 'a b' is not a valid run name: use 1 to 64 letters"},
    {N3 "run: {description: [x]}\n", "run.description: a list is not a text value"},
    /* --- image --- */
    {N3 "image: {packages: etcd}\n", "is not a list of Debian package names"},
    {N3 "image: {packages: [Etcd]}\n", "image.packages[0]: 'Etcd' is not a Debian package name"},
    {N3 "image: {files: x}\n", "image.files: 'x' is not a list of files"},
    {N3 "image: {files: [nocolon]}\n", "is not 'HOST_PATH:GUEST_PATH'"},
    {N3 "image: {files: [\"@SRC@/README.md:relative\"]}\n", "is not 'HOST_PATH:GUEST_PATH'"},
    {N3 "image: {files: [{src: \"@SRC@/README.md\", dst: rel/x}]}\n",
     "guest path 'rel/x' is not absolute (or contains '..')"},
    {N3 "image: {files: [{src: \"@SRC@/README.md\", dst: /a/../b}]}\n", "contains '..'"},
    {N3 "image: {files: [{src: x}]}\n",
     "a file copy needs 'src' (host path) and 'dst' (guest path)"},
    {N3 "image: {files: [\"/nonexistent/zz:/x\"]}\n",
     "does not exist on this machine (looked for /nonexistent/zz)"},
    {N3 "image: {files: [\"@SRC@/README.md:/x\", \"@SRC@/CMakeLists.txt:/x\"]}\n",
     "image.files[1]: guest path '/x' is the destination of two files (other at t.yaml:2:17)"},
    /* --- networks --- */
    {N3 "networks: [lan]\n", "networks: a list is not a mapping of network names to subnets"},
    {N3 "networks: {}\n", "no networks are defined; leave 'networks' out"},
    {N3 "networks: {lan: 10.0.1.0}\n",
     "'10.0.1.0' is not a subnet: expected an IPv4 prefix A.B.C.D/LEN"},
    {N3 "networks: {lan: 10.0.1.300/24}\n", "is not a subnet"},
    {N3 "networks: {lan: 10.0.1.0/31}\n", "has a prefix length of /31 (valid: /8 to /30"},
    {N3 "networks: {lan: 10.0.1.7/24}\n",
     "networks.lan: '10.0.1.7/24' has host bits set; did you mean '10.0.1.0/24'?"},
    {N3 "networks: {a: 10.0.0.0/16, b: 10.0.5.0/24}\n",
     "networks.b: '10.0.5.0/24' overlaps the subnet of network 'a' (at t.yaml:2:12)"},
    {N3 "networks: {a: 10.0.0.0/16, b: }\n", "no free default subnet 10.0.N.0/24 is left"},
    {N3 "networks: {a: {mtu: 20}}\n",
     "networks.a.mtu: '20' is not an MTU (valid: 68..65535 bytes)"},
    {N3 "networks: {a: [1]}\n", "networks.a: a list is not a network: give a subnet"},
    {N3 "networks: {a: {learning: maybe}}\n",
     "networks.a.learning: 'maybe' is not a boolean (valid: true, false)"},
    {N3 "networks: {a: {learning: [true]}}\n",
     "networks.a.learning: a list is not a boolean (valid: true, false)"},
    {N3 "networks: {a: {learnig: true}}\n",
     "networks.a.learnig: unknown key 'learnig' in a network; did you mean 'learning'?"},
    {N3 "networks: {a: {}, a: {}}\n", "networks.a: 'a' is defined twice (first at t.yaml:2:12)"},
    {N3 "networks: {\"a b\": {}}\n", "is not a valid network name"},
    {N3 "networks: {a: {subnet: 10.0.0.0/24, mtux: 1}}\n",
     "networks.a.mtux: unknown key 'mtux' in a network; did you mean 'mtu'?"},
    {"networks: {a: 10.0.0.0/30}\nnodes: {n1: {}, n2: {}, n3: {}}\n",
     "subnet 10.0.0.0/30 has room for 2 host addresses but 3 nodes are attached"},
    /* --- nodes --- */
    {"run: {}\n", "no nodes are defined: a scenario needs 'nodes:'"},
    {"nodes: {}\n", "no nodes are defined: a scenario needs at least one node"},
    {"nodes: [n1]\n", "nodes: a list is not a mapping of node names to nodes"},
    {"nodes: {n1: {}, n1: {}}\n", "nodes.n1: 'n1' is defined twice (first at t.yaml:1:9)"},
    {"nodes: {all: {}}\n", "is a reserved word (in heal/partition)"},
    {"nodes: {-x: {}}\n", "is not a valid node name"},
    {"nodes: {n1: 5}\n", "nodes.n1: '5' is not a node: give a mapping"},
    {"nodes: {n1: {vcpu: 2}}\n",
     "nodes.n1.vcpu: unknown key 'vcpu' in a node; did you mean 'vcpus'?"},
    {"nodes: {n1: {vcpus: 0}}\n", "nodes.n1.vcpus: '0' is not a whole number in 1..64"},
    {"nodes: {n1: {vcpus: two}}\n", "'two' is not a whole number in 1..64"},
    {"nodes: {n1: {memory: 32MiB}}\n",
     "'32MiB' is not a guest memory size (valid: 64MiB..64GiB, whole MiB)"},
    {"nodes: {n1: {memory: lots}}\n", "is not a size"},
    {"nodes: {n1: {networks: [wan]}}\n",
     "nodes.n1.networks[0]: 'wan' is not a network; did you mean 'lan'? (valid: lan)"},
    {"networks: {a: {}, b: {}}\nnodes: {n1: {networks: [zzzz]}}\n",
     "'zzzz' is not a network (valid: a, b)"},
    {"nodes: {n1: {networks: [lan, lan]}}\n", "'lan' is listed twice (first at t.yaml:1:25)"},
    {"nodes: {n1: {networks: 5}}\n", "'5' is not a network (valid: lan)"},
    {"nodes: {n1: {networks: [{lan: {ipp: 1}}]}}\n",
     "unknown key 'ipp' in a network attachment; did you mean 'ip'?"},
    {"nodes: {n1: {networks: {lan: {ip: 10.0.1}}}}\n",
     "nodes.n1.networks.lan.ip: '10.0.1' is not an IPv4 address"},
    {"nodes: {n1: {networks: {lan: {ip: 10.0.2.1}}}}\n",
     "'10.0.2.1' is outside network 'lan' (10.0.1.0/24)"},
    {"nodes: {n1: {networks: {lan: {ip: 10.0.1.0}}}}\n",
     "'10.0.1.0' is the network address of 10.0.1.0/24, not a host address"},
    {"nodes: {n1: {networks: {lan: {ip: 10.0.1.255}}}}\n",
     "is the broadcast address of 10.0.1.0/24"},
    {"nodes: {n1: {networks: {lan: {ip: 10.0.1.9}}}, n2: {networks: {lan: {ip: 10.0.1.9}}}}\n",
     "nodes.n2.networks.lan.ip: '10.0.1.9' is also the address of n1 on 'lan' (at t.yaml:1:35)"},
    {"nodes: {n1: {networks: {lan: {mac: 52:54}}}}\n", "'52:54' is not a MAC address"},
    {"nodes: {n1: {networks: {lan: {mac: \"01:00:00:00:00:01\"}}}}\n",
     "is a multicast MAC address"},
    {"nodes: {n1: {networks: {lan: {mac: \"00:00:00:00:00:00\"}}}}\n", "is the zero MAC address"},
    {"nodes: {n1: {networks: {lan: {mac: \"02:00:00:00:00:01\"}}}, n2: {networks: {lan: {mac: "
     "\"02:00:00:00:00:01\"}}}}\n",
     "nodes.n2.networks.lan.mac: '02:00:00:00:00:01' is also the MAC address of n1 eth0 (at "
     "t.yaml:1:36)"},
    {"nodes: {n1: {networks: {lan: {mac: \"52:54:00:00:01:00\"}}}, n2: {}}\n",
     "'52:54:00:00:01:00' is also the MAC address of n2 eth0"},
    {"nodes: {n1: {disks: [a]}}\n",
     "nodes.n1.disks: a list is not a mapping of disk names to disks"},
    {"nodes: {n1: {disks: {d: [1]}}}\n", "nodes.n1.disks.d: a list is not a disk: give a size"},
    {"nodes: {n1: {disks: {d: {}, d: {}}}}\n", "nodes.n1.disks.d: 'd' is defined twice"},
    {"nodes: {n1: {disks: {d: 100}}}\n",
     "'100' is not a disk size (valid: 1MiB..4TiB, a multiple of 512)"},
    {"nodes: {n1: {disks: {d: {sise: 1GiB}}}}\n",
     "unknown key 'sise' in a disk; did you mean 'size'?"},
    {"nodes: {n1: {disks: {d: {cache: writearound}}}}\n",
     "'writearound' is not valid here (valid: writeback, writethrough)"},
    {"nodes: {n1: {disks: {d: {crash-policy: lose-unflushd}}}}\n",
     "'lose-unflushd' is not valid here; did you mean 'lose-unflushed'? (valid: keep, "
     "lose-unflushed, lose-random, tear)"},
    {"nodes: {n1: {disks: {d: {cache: writethrough, crash-policy: tear}}}}\n",
     "nodes.n1.disks.d.crash-policy: 'tear' contradicts cache: writethrough (at t.yaml:1:33)"},
    {"nodes: {n1: {disks: {d: {size: 1GiB, capacity: 2GiB}}}}\n",
     "capacity 2147483648 bytes is larger than the disk"},
    {"nodes: {n1: {disks: {d: {mount: data}}}}\n", "'data' is not a mount point"},
    {"nodes: {n1: {disks: {d: {mount: /}}}}\n", "'/' is not a mount point"},
    {"nodes: {n1: {disks: {d: {mount: none, format: true}}}}\n",
     "format: true needs a mount point (mount is none)"},
    {"nodes: {n1: {disks: {d: {format: maybe}}}}\n",
     "'maybe' is not a boolean (valid: true, false)"},
    {"nodes: {n1: {disks: {a: {mount: /d}, b: {mount: /d}}}}\n",
     "mount point '/d' is also the mount point of disk 'a'"},
    {"nodes: {n1: {disks: {d: {base: \"@SRC@\"}}}}\n", "is not a regular file"},
    {"nodes: {n1: {disks: {d: {base: \"@SRC@/README.md\"}}}}\n",
     "not a multiple of 512: a disk image is made of 512-byte sectors"},
    {"nodes: {n1: {disks: {d: {faults: {latency: fast}}}}}\n",
     "nodes.n1.disks.d.faults.latency: 'fast' is not a duration"},
    {"nodes: {n1: {disks: {d: {faults: {flush: {range: [0, 1MiB]}}}}}}\n",
     "a flush has no byte range"},
    {"nodes: {n1: {disks: {d: {faults: {write: {corrupt: 1%}}}}}}\n",
     "'corrupt' applies to reads only"},
    {"nodes: {n1: {disks: {d: {faults: {range: 5}}}}}\n",
     "'5' is not a byte range: expected [START, END]"},
    {"nodes: {n1: {disks: {d: {faults: {range: [1MiB, 1MiB]}}}}}\n",
     "byte range [1048576, 1048576) is empty"},
    {"nodes: {n1: {disks: {d: {faults: {error: 1%, errno: EWHAT}}}}}\n", "EWHAT"},
    {"nodes: {n1: {disks: {d: {faults: {errno: [1]}}}}}\n",
     "is not an errno name (e.g. EIO, ENOSPC)"},
    {"nodes: {n1: {disks: {d: {faults: {read: {latencyy: 1ms}}}}}}\n",
     "unknown key 'latencyy' in faults of one request type; did you mean 'latency'?"},
    {"nodes: {n1: {disks: {d: {faults: {distribution: normal}}}}}\n", "needs a jitter"},
    {"nodes: {n1: {command: [{restart: true}]}}\n", "a command needs 'run' (the shell command)"},
    {"nodes: {n1: {command: [{run: x, restart: often}]}}\n", "'often' is not a boolean"},
    {"nodes: {n1: {command: [[x]]}}\n", "nodes.n1.command[0]: a list is not a text value"},
    {"nodes: {n1: {env: [A]}}\n",
     "nodes.n1.env: a list is not a mapping of variable names to values"},
    {"nodes: {n1: {env: {1A: x}}}\n", "'1A' is not an environment variable name"},
    {"nodes: {n1: {image: {packages: [Bad]}}}\n",
     "nodes.n1.image.packages[0]: 'Bad' is not a Debian package name"},
    /* --- links --- */
    {N3 "links: [a]\n", "links: a list is not a mapping of link selectors to parameters"},
    {N3 "links: {lan: {delay: 10 parsecs}}\n", "links.lan.delay: '10 parsecs' is not a duration"},
    {N3 "links: {lan: {dealy: 1ms}}\n",
     "links.lan.dealy: unknown key 'dealy' in link parameters; did you mean 'delay'?"},
    {N3 "links: {\"n1 -> n2\": {loss: 150%}}\n",
     "links[\"n1 -> n2\"].loss: '150%' is not a probability"},
    {N3 "links: {lan: {reorder: 5%}}\n", "links.lan: link lan:n1->n2: reorder requires a delay"},
    {N3 "links: {lan: {jitter: 5ms, delay: 10ms, distribution: gaussian}}\n",
     "'gaussian' is not a distribution (valid: uniform, normal"},
    {N3 "links: {lan: {jitter: 5ms, delay: 10ms, distribution: normall}}\n",
     "did you mean 'normal'?"},
    {N3 "links: {lan: {delay: 10ms, jitter: 1ms, distribution: /nonexistent/x.dist}}\n",
     "does not exist on this machine"},
    {N3 "links: {lan: {delay: 10ms, jitter: 1ms, distribution: \"@SRC@/README.md.dist\"}}\n",
     "does not exist"},
    {N3 "links: {lan: {loss: {model: random}}}\n", "loss model 'random' needs 'p'"},
    {N3 "links: {lan: {loss: {model: fancy, p: 1%}}}\n",
     "'fancy' is not valid here (valid: random, gilbert-elliott, 4-state)"},
    {N3 "links: {lan: {loss: {model: random, p: 1%, p13: 2%}}}\n",
     "key 'p13' does not apply to loss model 'random' (its keys: p, correlation)"},
    {N3 "links: {lan: {loss: {model: 4-state, p13: 10%, p14: 95%}}}\n", "p13 + p14"},
    {N3 "links: {lan: {loss: {p: 1%, pp: 1}}}\n", "unknown key 'pp' in loss"},
    {N3 "links: {lan: {loss-correlation: 25%}}\n",
     "loss-correlation applies to a random loss given beside it"},
    {N3 "links: {lan: {mtu: 10}}\n", "'10' is not a link MTU (valid: 68..65535 bytes)"},
    {N3 "links: {lan: {cell-size: 1MiB}}\n", "is too large a cell size (valid: 0..65535 bytes)"},
    {N3 "links: {lan: {packet-overhead: x}}\n", "'x' is not a whole number in -65535..65535"},
    {N3 "links: {lan: {gap: -1}}\n", "'-1' is not a whole number in 0..4294967295"},
    {N3 "links: {lan: {rate: 100}}\n", "links.lan.rate: '100'"},
    {N3 "links: {lan: {limit-bytes: big}}\n", "links.lan.limit-bytes: 'big' is not a size"},
    {N3 "links: {lan: {delay: 1ms}, \"*\": {}, \"n1 <-> n2\": {delay: 2ms}, \"n2 <-> n1\": {delay: "
        "3ms}}\n",
     "sets 'delay' of link lan:n1->n2, which 'n1 <-> n2' (at t.yaml:2:37) also sets with the same "
     "precedence"},
    {N3 "links: {\"n1 -> n9\": {}}\n",
     "'n1 -> n9' names 'n9', which is not a node; did you mean 'n1'?"},
    {N3 "links: {\"n1 -> zzzz\": {}}\n", "names 'zzzz', which is not a node (valid: n1, n2, n3)"},
    {N3 "links: {\"n1 -> \": {}}\n", "is missing a node name on one side of the arrow"},
    {N3 "links: {\"* -> *\": {}}\n", "has '*' on both sides; write '*' alone for every link"},
    {N3 "links: {\"n1 -> n1\": {}}\n", "links a node to itself"},
    {N3 "links: {\"n1 -> n2 @ wan\": {}}\n",
     "names network 'wan', which does not exist; did you mean 'lan'?"},
    {N3 "links: {\"n1 -> n2 @ lann\": {}}\n",
     "names network 'lann', which does not exist; did you mean 'lan'?"},
    {N3 "links: {\"lan @ lan\": {}}\n", "uses '@ NETWORK' without a node pair"},
    {N3 "links: {n1: {}}\n", "'n1' is a node, not a network; for a node's links write 'n1 <-> *'"},
    {N3 "links: {lam: {}}\n", "'lam' is not a network; did you mean 'lan'?"},
    {N3 "links: {zzzzzz: {}}\n", "'zzzzzz' is not a network or a link"},
    {N3 "links: {[a]: {}}\n", "links[\"?\"]: a list is not a link selector"},
    {N3 "links: {\"n1 -> n2 @ zzzzz\": {}}\n",
     "names network 'zzzzz', which does not exist (valid: lan)"},
    {"networks: {a: {}, b: {}}\nnodes: {n1: {networks: [a]}, n2: {networks: [b]}}\nlinks: {\"n1 "
     "<-> n2\": {}}\n",
     "joins 'n1' and 'n2', which share no network (no link exists between them)"},
    {"networks: {a: {}, b: {}}\nnodes: {n1: {networks: [a]}, n2: {networks: [a]}}\nlinks: {\"n1 "
     "<-> n2 @ b\": {}}\n",
     "names network 'b', which node 'n1' is not on"},
    {"networks: {a: {}, b: {}}\nnodes: {n1: {networks: [a]}, n2: {networks: [a]}}\nlinks: {\"n1 -> "
     "* @ b\": {}}\n",
     "names network 'b', which node 'n1' is not on"},
    /* --- timeline: structure and timing --- */
    {N3 "timeline: {at: 1s}\n", "timeline: a mapping is not a list of events"},
    {N3 "timeline: [5]\n", "timeline[0]: '5' is not a mapping: a timeline event is a mapping"},
    {N3 "timeline: [{at: 1s}]\n", "timeline[0]: an event needs one kind: partition, isolate"},
    {N3 "timeline: [{at: 1s, crash: n1, pause: n2}]\n",
     "has two event kinds ('crash' at t.yaml:2:21 and 'pause')"},
    {N3 "timeline: [{at: 1s, crsh: n1}]\n",
     "timeline[0].crsh: unknown key 'crsh' in a timeline event; did you mean 'crash'?"},
    {N3 "timeline: [{crash: n1}]\n", "an event needs a time: 'at' (e.g. at: 10s) or 'after'"},
    {N3 "timeline: [{at: 1s, after: x, crash: n1}]\n", "give either 'at' or 'after', not both"},
    {N3 "timeline: [{at: soon, crash: n1}]\n", "timeline[0].at: 'soon' is not a duration"},
    {N3 "timeline: [{at: 1s, for: 5s, mark: x}]\n", "'for' limits a repetition: it needs 'every'"},
    {N3 "timeline: [{at: 1s, every: 2s, for: 5s, times: 2, mark: x}]\n",
     "give either 'for' or 'times', not both"},
    {N3 "timeline: [{at: 1s, every: 1ms, mark: x}]\n",
     "'1ms' is too short a period (valid: 10ms or more)"},
    {N3 "timeline: [{at: 1s, every: 1s, times: 0, mark: x}]\n",
     "'0' is not a whole number in 1..100000"},
    {N3 "timeline: [{at: 1s, duration: 5s, mark: x}]\n",
     "'duration' (undo the event after a while) does not apply to mark"},
    {N3 "timeline: [{at: 1s, duration: 0s, crash: n1}]\n", "'0s' is not a duration for a fault"},
    {N3 "timeline: [{at: 1s, every: 2s, duration: 2s, isolate: n1}]\n",
     "lasts as long as or longer than the period (every) it repeats with"},
    {N3 "run: {duration: 30s}\ntimeline: [{at: 30s, mark: x}]\n",
     "timeline[0].at: the event is at 30s, at or after the end of the run (run.duration: 30s)"},
    {N3 "run: {duration: 30s}\ntimeline: [{at: 10s, every: 10s, times: 3, mark: x}]\n",
     "repetition 3 would be at 30s, at or after the end of the run"},
    {N3 "run: {duration: 30s}\ntimeline: [{at: 25s, isolate: n1, duration: 10s}]\n",
     "timeline[0].duration: the event would end at 35s, after the end of the run"},
    {N3 "timeline: [{after: nope, mark: x}]\n",
     "timeline[0].after: 'nope' is not the name of a timeline event"},
    {N3 "timeline: [{name: cutt, at: 1s, mark: x}, {after: cut, mark: y}]\n",
     "'cut' is not the name of a timeline event; did you mean 'cutt'?"},
    {N3 "timeline: [{name: a, after: a, mark: x}]\n", "an event cannot come after itself"},
    {N3 "timeline: [{name: a, after: b, mark: x}, {name: b, after: a, mark: y}]\n",
     "'after' chain loops back to"},
    {N3 "timeline: [{name: a, at: 1s, every: 2s, mark: x}, {after: a, mark: y}]\n",
     "'a' repeats (every), so 'after' would be ambiguous"},
    {N3 "timeline: [{after: \"a + soon\", mark: x}]\n", "is not 'NAME' or 'NAME + DURATION'"},
    {N3 "timeline: [{after: \"+ 5s\", mark: x}]\n", "is not 'NAME' or 'NAME + DURATION'"},
    {N3 "timeline: [{name: a, at: 1s, mark: x}, {name: a, at: 2s, mark: y}]\n",
     "timeline[1].name: 'a' is the name of another event too (at t.yaml:2:19)"},
    {N3 "timeline: [{name: \"a b\", at: 1s, mark: x}]\n", "is not a valid event name"},
    {N3 "timeline: [{at: 1s, mark: [x]}]\n", "timeline[0].mark: a list is not a text value"},
    /* --- partitions --- */
    {N3 "timeline: [{at: 1s, partition: [[n1, n2], [n2, n3]]}]\n",
     "timeline[0].partition[1][0]: 'n2' is in two groups of one partition (also at t.yaml:2:38)"},
    {N3 "timeline: [{at: 1s, partition: [[n1]]}]\n",
     "is not a list of at least two groups of nodes"},
    {N3 "timeline: [{at: 1s, partition: [[n1], []]}]\n",
     "is not a group of nodes (a node or a non-empty list of nodes)"},
    {N3 "timeline: [{at: 1s, partition: [[n1], [n7]]}]\n",
     "'n7' is not a node; did you mean 'n1'?"},
    {N3 "timeline: [{at: 1s, partition: quarters}]\n",
     "'quarters' is not valid here (valid: halves, majority-minority, isolate, ring, bridge)"},
    {N3 "timeline: [{at: 1s, partition: {shape: ring}}]\n",
     "shape 'ring' needs at least 4 nodes, but it would apply to 3"},
    {N3 "timeline: [{at: 1s, partition: {shape: halves, groups: [[n1], [n2]]}}]\n",
     "a partition is given by exactly one of"},
    {N3 "timeline: [{at: 1s, partition: {groups: [[n1], [n2]], nodes: [n1]}}]\n",
     "'nodes'/'node' apply to a 'shape', not to 'groups'"},
    {N3 "timeline: [{at: 1s, partition: {from: n1}}]\n",
     "a one-way partition needs both 'from' and 'to'"},
    {N3 "timeline: [{at: 1s, partition: {from: n1, to: n2, node: n3}}]\n",
     "'nodes'/'node' apply to a 'shape', not to from/to"},
    {N3 "timeline: [{at: 1s, partition: {from: [n1, n2], to: [n2]}}]\n",
     "node 'n2' is on both sides of a one-way partition"},
    {N3 "timeline: [{at: 1s, partition: {from: [], to: [n2]}}]\n",
     "is not a node or a non-empty list of nodes"},
    {N3 "timeline: [{at: 1s, partition: {shape: halves, node: n1}}]\n",
     "'node' names the node of shape 'isolate'; shape 'halves' takes 'nodes'"},
    {N3 "timeline: [{at: 1s, partition: {shape: isolate, nodes: [n1, n2], node: n3}}]\n",
     "'n3' is not among the partition's 'nodes'"},
    {N3 "timeline: [{at: 1s, partition: {shape: halves, nodes: [n1, n1]}}]\n",
     "'n1' is listed twice"},
    {N3 "timeline: [{at: 1s, partition: {shap: halves}}]\n", "unknown key 'shap' in a partition"},
    {N3 "timeline: [{at: 1s, isolate: n4}]\n", "timeline[0].isolate: 'n4' is not a node"},
    {"nodes: {n1: {}}\ntimeline: [{at: 1s, isolate: n1}]\n",
     "shape 'isolate' needs at least 2 nodes"},
    {N3 "timeline: [{at: 1s, heal: cut}]\n",
     "timeline[0].heal: 'cut' is not the name of a partition event (give the partition a 'name:', "
     "or heal: all)"},
    {N3 "timeline: [{name: cutt, at: 1s, isolate: n1}, {at: 2s, heal: cut}]\n",
     "'cut' is not the name of a partition event; did you mean 'cutt'?"},
    {N3 "timeline: [{at: 1s, heal: {a: b}}]\n",
     "is not what to heal (valid: all, or the name of a partition event"},
    {N3 "timeline: [{at: 1s, heal: all}]\n",
     "timeline[0]: heal: nothing to heal at 1s (no partition is in force)"},
    {N3 "timeline: [{name: a, at: 1s, isolate: n1}, {name: b, at: 2s, isolate: n2}, {at: 3s, heal: "
        "a}, {at: 4s, heal: a}]\n",
     "heal: nothing to heal at 4s (no partition it names is in force)"},
    /* --- link events --- */
    {N3 "timeline: [{at: 1s, link: {}}]\n", "is not a mapping of link selectors to parameters"},
    {N3 "timeline: [{at: 1s, link: {lan: {reorder: 10%}}}]\n",
     "link lan:n1->n2: reorder requires a delay"},
    {N3 "timeline: [{at: 1s, link: {\"n1 -> n5\": {delay: 1ms}}}]\n",
     "names 'n5', which is not a node"},
    {N3 "timeline: [{at: 1s, link-clear: {a: b}}]\n",
     "is not a link selector, a list of them, or all"},
    {N3 "timeline: [{at: 1s, link-clear: [5x]}]\n", "'5x' is not a network or a link"},
    {N3 "timeline: [{at: 1s, link-clear: \"n1 -> n2\"}]\n",
     "link-clear: no link event changed 'n1 -> n2' before 1s, so there is nothing to clear"},
    /* --- node events --- */
    {N3 "timeline: [{at: 1s, crash: {node: n1, nodes: [n2]}}]\n",
     "give exactly one of 'node' or 'nodes'"},
    {N3 "timeline: [{at: 1s, pause: {node: n1, policy: keep}}]\n",
     "'policy' (what unflushed writes become) applies to crash only"},
    {N3 "timeline: [{at: 1s, crash: {node: n1, policy: tearr}}]\n",
     "'tearr' is not valid here; did you mean 'tear'?"},
    {N3 "timeline: [{at: 1s, crash: {node: n1, polcy: keep}}]\n",
     "unknown key 'polcy' in a node event; did you mean 'policy'?"},
    {N3 "timeline: [{at: 1s, crash: []}]\n", "is not a node or a non-empty list of nodes"},
    {N3 "timeline: [{at: 1s, crash: n1}, {at: 2s, crash: n1}]\n",
     "timeline[1].crash: 'n1' is crashed at 2s (since timeline[0] at 1s, see t.yaml:2:12); crash "
     "needs a running or paused node"},
    {N3 "timeline: [{at: 1s, restart: n1}]\n",
     "timeline[0].restart: 'n1' is running at 1s; restart needs a crashed or shut down node"},
    {N3 "timeline: [{at: 1s, resume: n2}]\n", "'n2' is running at 1s; resume needs a paused node"},
    {N3 "timeline: [{at: 1s, pause: n2}, {at: 2s, pause: n2}]\n",
     "'n2' is paused at 2s (since timeline[0] at 1s"},
    {N3 "timeline: [{at: 1s, shutdown: n2}, {at: 2s, reboot: n2}]\n",
     "'n2' is shut down at 2s (since timeline[0] at 1s, see t.yaml:2:12); reboot needs a running "
     "node"},
    {N3 "timeline: [{at: 1s, pause: n2}, {at: 2s, shutdown: n2}]\n",
     "shutdown needs a running node"},
    {N3 "timeline: [{at: 1s, crash: n2}, {at: 2s, exec: {node: n2, command: x}}]\n",
     "timeline[1].exec: 'n2' is crashed at 2s (since timeline[0] at 1s, see t.yaml:2:12); running "
     "a command needs a running node"},
    {N3 "timeline: [{at: 1s, crash: n2}, {at: 2s, clock: {node: n2, skew: 1s}}]\n",
     "setting a clock needs a running node"},
    {N3 "timeline: [{at: 1s, crash: n2}]\nchecks: [{node: n2, command: x}]\n",
     "checks[0].node: 'n2' is crashed at the end of the run (since timeline[0] at 1s, see "
     "t.yaml:2:12); a check at the end runs a command"},
    {N3 "timeline: [{at: 1s, pause: n2, duration: 5s}]\nchecks: [{at: 3s, node: n2, command: x}]\n",
     "checks[0].node: 'n2' is paused at 3s"},
    /* --- clock --- */
    {N3 "timeline: [{at: 1s, clock: n1}]\n",
     "timeline[0].clock: 'n1' is not a mapping: a clock event"},
    {N3 "timeline: [{at: 1s, clock: {node: n1}}]\n",
     "give exactly one of 'skew' (the guest clock's offset"},
    {N3 "timeline: [{at: 1s, clock: {skew: 1s}}]\n", "give exactly one of 'node' or 'nodes'"},
    {N3 "timeline: [{at: 1s, clock: {node: n1, skew: 5 minutes}}]\n",
     "'5 minutes' is not a signed duration"},
    /* --- disk events --- */
    {N3 "timeline: [{at: 1s, disk: n1}]\n", "timeline[0].disk: 'n1' is not a disk event"},
    {N3 "timeline: [{at: 1s, disk: {latency: 1ms}}]\n",
     "a disk event needs 'node' (and 'disk' when the node has several)"},
    {N3 "timeline: [{at: 1s, disk: {node: n1, latency: 1ms}}]\n",
     "'n1' has no disks (add one under nodes.n1.disks)"},
    {"nodes: {n1: {disks: {a: {mount: /a}, b: {mount: /b}}}}\ntimeline: [{at: 1s, disk: {node: n1, "
     "latency: 1ms}}]\n",
     "node 'n1' has 2 disks; say which with 'disk' (valid: a, b)"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk: {node: n1, disk: date, latency: "
     "1ms}}]\n",
     "'date' is not a disk of node 'n1'; did you mean 'data'? (valid: data)"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk: {node: n1, disk: zzzzz, latency: "
     "1ms}}]\n",
     "'zzzzz' is not a disk of node 'n1' (valid: data)"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk: {node: n1, stall: perhaps}}]\n",
     "'perhaps' is not a boolean"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk: {node: n1, capacity: lots}}]\n",
     "'lots' is not a size"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk: {node: n1, distribution: "
     "pareto}}]\n",
     "needs a jitter"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk: {node: n1, latncy: 1ms}}]\n",
     "unknown key 'latncy'"},
    {"nodes: {n1: {disks: {a: {mount: /a}, b: {mount: /b}}}}\ntimeline: [{at: 1s, disk-clear: "
     "n1}]\n",
     "'n1' has 2 disks; use the long form {node: n1, disk: NAME}"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk-clear: n1}]\n",
     "disk-clear: no disk event changed disk 'data' of node 'n1' before 1s, so there is nothing to "
     "clear"},
    {"nodes: {n1: {disks: {data: {}}}}\ntimeline: [{at: 1s, disk-clear: {nod: n1}}]\n",
     "unknown key 'nod' in a disk-clear event; did you mean 'node'?"},
    /* --- exec / wait --- */
    {N3 "timeline: [{at: 1s, exec: {node: n1}}]\n", "an exec needs 'node' and 'command'"},
    {N3 "timeline: [{at: 1s, wait: {command: x}}]\n", "a wait needs 'node' and 'command'"},
    {N3 "timeline: [{at: 1s, wait: {node: n1, command: x, interval: 1ms}}]\n",
     "'1ms' is too short a polling interval"},
    {N3 "timeline: [{at: 1s, wait: {node: n1, command: x, timeout: 0s}}]\n",
     "'0s' is not a timeout (valid: more than 0s)"},
    {N3 "timeline: [{at: 1s, wait: {node: n1, command: x, exit: 0}}]\n",
     "unknown key 'exit' in a wait"},
    {N3 "timeline: [{at: 1s, exec: {node: n1, command: x, exit: maybe}}]\n",
     "'maybe' is not an expected exit status (valid: 0..255, nonzero, any)"},
    {N3 "timeline: [{at: 1s, exec: {node: n1, command: x, exit: 300}}]\n",
     "'300' is not a whole number in 0..255"},
    {N3 "timeline: [{at: 1s, exec: {node: n1, command: x, output: \"(\"}}]\n",
     "is not a POSIX extended regular expression"},
    {N3 "timeline: [{at: 1s, exec: {node: n1, command: x, background: sure}}]\n",
     "'sure' is not a boolean"},
    /* --- checks --- */
    {N3 "checks: {a: b}\n", "checks: a mapping is not a list of checks"},
    {N3 "checks: [{node: n1}]\n", "a check needs 'node' and 'command'"},
    {N3 "checks: [{node: n9, command: x}]\n",
     "checks[0].node: 'n9' is not a node; did you mean 'n1'?"},
    {N3 "checks: [{node: n1, command: x, comand: y}]\n",
     "unknown key 'comand' in a check; did you mean 'command'?"},
    {N3 "checks: [{name: a, node: n1, command: x}, {name: a, node: n1, command: x}]\n",
     "checks[1].name: 'a' is the name of another check too"},
    {N3 "checks: [{node: n1, command: x, timeout: 0s}]\n", "'0s' is not a timeout"},
    {N3 "checks: [{node: n1, command: x, interval: 1ms}]\n", "'1ms' is too short a retry interval"},
    {N3 "checks: [{node: n1, command: x, within: forever}]\n", "'forever' is not a duration"},
    {N3 "run: {duration: 10s}\nchecks: [{at: 10s, node: n1, command: x}]\n",
     "the check is at 10s, at or after the end of the run (run.duration: 10s); use 'at: end'"},
    {N3 "checks: [{after: zz, node: n1, command: x}]\n",
     "checks[0].after: 'zz' is not the name of a timeline event"},
    {N3 "checks: [{at: soon, node: n1, command: x}]\n", "checks[0].at: 'soon' is not a duration"},
    /* --- nemesis --- */
    {N3 "nemesis: [a]\n", "nemesis: a list is not a mapping of schedule names to schedules"},
    {N3 "nemesis: {c: {every: 10s}}\n", "a nemesis needs 'faults' (e.g. [partition, crash])"},
    {N3 "nemesis: {c: {faults: [partition]}}\n", "a nemesis needs 'every'"},
    {N3 "nemesis: {c: {faults: [partitoin], every: 10s}}\n",
     "'partitoin' is not valid here; did you mean 'partition'?"},
    {N3 "nemesis: {c: {faults: {a: 1}, every: 10s}}\n", "is not a fault kind or a list of them"},
    {N3 "nemesis: {c: {faults: crash, every: 10ms}}\n",
     "'10ms' is too short a spacing (valid: 100ms or more)"},
    {N3 "nemesis: {c: {faults: crash, every: 20s-10s}}\n",
     "is not a range: its lower bound is above its upper bound"},
    {N3 "nemesis: {c: {faults: crash, every: often}}\n",
     "'often' is not a duration or a range of durations"},
    {N3 "nemesis: {c: {faults: crash, every: 10s, duration: 10s}}\n",
     "is not shorter than the smallest spacing (every)"},
    {N3 "nemesis: {c: {faults: crash, every: 10s, duration: 0s}}\n",
     "'0s' is not a fault duration (valid: more than 0s)"},
    {N3 "run: {duration: 30s}\nnemesis: {c: {faults: crash, every: 10s, stop: 40s}}\n",
     "'40s' is after the end of the run (run.duration: 30s)"},
    {N3 "nemesis: {c: {faults: crash, every: 10s, start: 50s, stop: 40s}}\n",
     "the nemesis window is empty: start is not before stop"},
    {N3 "nemesis: {c: {faults: clock, every: 10s, clock-skew: 0s}}\n", "is not a clock skew bound"},
    {N3 "nemesis: {c: {faults: ring, every: 10s}}\n",
     "fault 'ring' needs at least 4 nodes, but the nemesis has 3"},
    {N3 "nemesis: {c: {faults: crash, every: 10s}, c: {faults: crash, every: 10s}}\n",
     "is defined twice (first at"},
    {N3 "nemesis: {c: {faults: crash, every: 10s, evry: 1s}}\n", "unknown key 'evry' in a nemesis"},
    {N3 "nemesis: {c: {faults: crash, every: 10s, nodes: [n1, n9]}}\n",
     "nemesis.c.nodes[1]: 'n9' is not a node"},
    /* --- limits --- */
    {N3 "timeline: [{at: 0s, every: 10ms, times: 100000, mark: a}, {at: 0s, every: 10ms, times: "
        "100000, mark: b}]\nrun: {duration: 1h}\n",
     "the timeline expands to too much: more than 100000 events"},
};

static char *substitute(const char *yaml)
{
    const char *src = getenv("FL_SOURCE_DIR");
    if (!src) {
        src = ".";
    }
    struct fl_buf b = {0};
    for (const char *p = yaml; *p;) {
        const char *at = strstr(p, "@SRC@");
        if (!at) {
            fl_buf_puts(&b, p);
            break;
        }
        fl_buf_append(&b, p, (size_t)(at - p));
        fl_buf_puts(&b, src);
        p = at + 5;
    }
    if (!b.data) {
        fl_buf_puts(&b, "");
    }
    return fl_buf_steal(&b);
}

static void test_every_error(void **state)
{
    size_t failures = 0;
    for (size_t i = 0; i < FL_ARRAY_LEN(cases); i++) {
        char *yaml = substitute(cases[i].yaml);
        struct fl_error *err = NULL;
        struct topo_scenario *s = topo_load_string("t.yaml", yaml, strlen(yaml), &err);
        if (s || !err) {
            fprintf(stderr, "case %zu: accepted, expected an error with: %s\n---\n%s---\n", i,
                    cases[i].want, yaml);
            failures++;
        } else if (!strstr(err->msg, cases[i].want)) {
            fprintf(stderr, "case %zu: wanted: %s\n     got:\n%s\n---\n%s---\n", i, cases[i].want,
                    err->msg, yaml);
            failures++;
        } else if (strncmp(err->msg, "t.yaml:", 7) != 0) {
            fprintf(stderr, "case %zu: message does not start with the file name: %s\n", i,
                    err->msg);
            failures++;
        }
        topo_scenario_free(s);
        fl_error_free(err);
        free(yaml);
    }
    assert_int_equal(failures, 0);
}

/* All errors are reported, each on its own line, sorted by position. */
static void test_all_errors_reported(void **state)
{
    const char *yaml = "run: {duraton: 30s}\n"
                       "nodes:\n"
                       "  n1: {vcpu: 2}\n"
                       "  n2: {memory: 1MiB}\n"
                       "timeline:\n"
                       "  - {at: 10s, resume: n1}\n";
    struct fl_error *err = NULL;
    assert_null(topo_load_string("s.yaml", yaml, strlen(yaml), &err));
    assert_non_null(err);
    const char *want =
        "s.yaml:1:7: run.duraton: unknown key 'duraton' in run; did you mean 'duration'? (valid: "
        "name, description, seed, duration, boot-timeout, record)\n"
        "s.yaml:3:8: nodes.n1.vcpu: unknown key 'vcpu' in a node; did you mean 'vcpus'? (valid: "
        "vcpus, memory, networks, disks, command, env, image)\n"
        "s.yaml:4:16: nodes.n2.memory: '1MiB' is not a guest memory size (valid: 64MiB..64GiB, "
        "whole MiB)\n"
        "s.yaml:6:5: timeline[0].resume: 'n1' is running at 10s; resume needs a paused node";
    assert_string_equal(err->msg, want);
    fl_error_free(err);
}

static void test_error_cap(void **state)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "nodes:\n");
    for (int i = 0; i < 150; i++) {
        fl_buf_printf(&b, "  n%d: {vcpus: 0, memory: 1MiB}\n", i);
    }
    struct fl_error *err = NULL;
    assert_null(topo_load_string("cap.yaml", b.data, b.size, &err));
    assert_non_null(strstr(err->msg, "and 100 more errors"));
    fl_error_free(err);
    fl_buf_free(&b);
}

/* Big clusters with many partitions stay bounded in time and memory. */
static void test_work_budget(void **state)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "run: {duration: 24h}\nnodes: {");
    for (int i = 0; i < 254; i++) {
        fl_buf_printf(&b, "%sn%d: {}", i ? ", " : "", i);
    }
    fl_buf_puts(&b, "}\ntimeline:\n"
                    "  - {at: 0s, every: 10ms, partition: halves}\n"
                    "  - {at: 0s, every: 10ms, link: {lan: {delay: 1ms}}}\n");
    struct fl_error *err = NULL;
    int64_t t0 = fl_clock_mono_ns();
    assert_null(topo_load_string("t.yaml", b.data, b.size, &err));
    assert_true(fl_clock_mono_ns() - t0 < 20 * FL_NS_PER_SEC);
    assert_non_null(strstr(err->msg, "the timeline expands to too much"));
    fl_error_free(err);
    fl_buf_free(&b);
}

static void test_deep_nesting(void **state)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-deep: ");
    for (int i = 0; i < 70; i++) {
        fl_buf_puts(&b, "[");
    }
    for (int i = 0; i < 70; i++) {
        fl_buf_puts(&b, "]");
    }
    fl_buf_puts(&b, "\nnodes: {n1: {}}\n");
    struct fl_error *err = NULL;
    assert_null(topo_load_string("t.yaml", b.data, b.size, &err));
    assert_non_null(strstr(err->msg, "nesting deeper than 64 levels"));
    fl_error_free(err);
    fl_buf_free(&b);
}

/* The limit stops the parser where it is crossed: 100 000 unclosed '['
 * under an x- key end in the nesting error at the 65th level (1:73), not
 * in the syntax error at the end of the file that a parser which read the
 * whole document (and built its tree) first would report, after ~40 s. */
static void test_deep_nesting_stops_parsing(void **state)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-deep: ");
    for (int i = 0; i < 100000; i++) {
        fl_buf_puts(&b, "[");
    }
    fl_buf_puts(&b, "\nnodes: {n1: {}}\n");
    struct fl_error *err = NULL;
    assert_null(topo_load_string("t.yaml", b.data, b.size, &err));
    assert_string_equal(err->msg, "t.yaml:1:73: nesting deeper than 64 levels");
    fl_error_free(err);
    fl_buf_free(&b);
}

/* Exponential alias expansion ("billion laughs") stays cheap: aliases are
 * shared, never copied. */
static void test_alias_bomb(void **state)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "x-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 30; i++) {
        fl_buf_printf(&b,
                      "x-%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                      i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    }
    fl_buf_puts(&b, "nodes: {n1: {}}\ntimeline: *a29\n");
    struct fl_error *err = NULL;
    int64_t t0 = fl_clock_mono_ns();
    assert_null(topo_load_string("t.yaml", b.data, b.size, &err));
    assert_true(fl_clock_mono_ns() - t0 < 5 * FL_NS_PER_SEC);
    assert_non_null(strstr(err->msg, "is not a mapping: a timeline event"));
    fl_error_free(err);
    fl_buf_free(&b);
}

static void test_missing_file(void **state)
{
    struct fl_error *err = NULL;
    assert_null(topo_load_file("/nonexistent/scenario.yaml", &err));
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "/nonexistent/scenario.yaml"));
    fl_error_free(err);
}

static void test_nul_and_null_args(void **state)
{
    struct fl_error *err = NULL;
    assert_null(topo_load_string(NULL, NULL, 0, &err));
    assert_non_null(strstr(err->msg, "<string>:1:1: the scenario is empty"));
    fl_error_free(err);
    /* errp NULL: no crash, still fails */
    assert_null(topo_load_string("x", "nodes: 5", 8, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error),       cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_error_cap),         cmocka_unit_test(test_work_budget),
        cmocka_unit_test(test_deep_nesting),      cmocka_unit_test(test_deep_nesting_stops_parsing),
        cmocka_unit_test(test_alias_bomb),        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_nul_and_null_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
