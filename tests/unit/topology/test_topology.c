/* The resolved model: defaults, addresses, links, disks, the expanded
 * timeline, nemesis determinism, the JSON dump, and every scenario in
 * scenarios/. */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topology/topology.h"

static struct topo_scenario *load_seed(const char *yaml, uint64_t seed)
{
    struct fl_error *err = NULL;
    struct topo_scenario *s = topo_load_string_seed("t.yaml", yaml, strlen(yaml), &seed, &err);
    if (!s) {
        fprintf(stderr, "unexpected error:\n%s\n", err ? err->msg : "?");
        fl_error_free(err);
    }
    assert_non_null(s);
    return s;
}

static struct topo_scenario *load(const char *yaml)
{
    return load_seed(yaml, 1);
}

static char *ip(uint32_t a)
{
    static char buf[4][16];
    static int k;
    k = (k + 1) % 4;
    topo_format_ip(a, buf[k]);
    return buf[k];
}

static const struct topo_event *find_event(const struct topo_scenario *s, enum topo_event_kind kind,
                                           size_t nth)
{
    for (size_t i = 0; i < s->n_events; i++) {
        if (s->events[i].kind == kind && nth-- == 0) {
            return &s->events[i];
        }
    }
    return NULL;
}

static void test_defaults(void **state)
{
    struct topo_scenario *s = load("nodes: {n1: {}, n2: ~}\n");
    assert_string_equal(s->name, "t");
    assert_int_equal(s->duration_ns, 60 * FL_NS_PER_SEC);
    assert_int_equal(s->boot_timeout_ns, 120 * FL_NS_PER_SEC);
    assert_int_equal(s->seed, 1);
    assert_false(s->seed_random);
    assert_int_equal(s->n_networks, 1);
    assert_string_equal(s->networks[0].name, "lan");
    assert_string_equal(ip(s->networks[0].subnet), "10.0.1.0");
    assert_int_equal(s->networks[0].prefix_len, 24);
    assert_int_equal(s->networks[0].mtu, 1500);
    assert_int_equal(s->n_nodes, 2);
    const struct topo_node *n = &s->nodes[1];
    assert_string_equal(n->name, "n2");
    assert_int_equal(n->index, 1);
    assert_int_equal(n->vcpus, 1);
    assert_int_equal(n->memory_bytes, 128u << 20);
    assert_int_equal(n->n_nics, 1);
    assert_string_equal(n->nics[0].ifname, "eth0");
    assert_string_equal(ip(n->nics[0].ip), "10.0.1.2");
    char mac[18];
    topo_format_mac(n->nics[0].mac, mac);
    assert_string_equal(mac, "52:54:00:00:01:00");
    assert_int_equal(n->n_disks, 0);
    assert_int_equal(n->n_commands, 0);
    assert_int_equal(s->n_links, 2);
    assert_string_equal(s->links[0].name, "lan:n1->n2");
    assert_string_equal(s->links[1].name, "lan:n2->n1");
    struct impair_link_params perfect = {0};
    assert_true(impair_link_params_equal(&s->links[0].params, &perfect));
    assert_int_equal(s->n_events, 0);
    assert_int_equal(s->n_checks, 0);
    topo_scenario_free(s);
    topo_scenario_free(NULL);
}

static void test_random_seed_recorded(void **state)
{
    const char *y = "nodes: {n1: {}}\n";
    struct fl_error *err = NULL;
    struct topo_scenario *a = topo_load_string("r.yaml", y, strlen(y), &err);
    struct topo_scenario *b = topo_load_string("r.yaml", y, strlen(y), &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a->seed_random);
    assert_true(b->seed_random);
    /* 64 random bits twice: equal with probability 2^-64. */
    assert_true(a->seed != b->seed);
    topo_scenario_free(a);
    topo_scenario_free(b);
    const char *y2 = "run: {seed: 0xff}\nnodes: {n1: {}}\n";
    a = topo_load_string("r.yaml", y2, strlen(y2), &err);
    assert_int_equal(a->seed, 255);
    assert_false(a->seed_random);
    topo_scenario_free(a);
    const char *y3 = "run: {seed: random}\nnodes: {n1: {}}\n";
    a = topo_load_string("r.yaml", y3, strlen(y3), &err);
    assert_true(a->seed_random);
    topo_scenario_free(a);
    /* The override wins over run.seed (replays). */
    a = load_seed(y2, 77);
    assert_int_equal(a->seed, 77);
    topo_scenario_free(a);
}

static void test_addresses(void **state)
{
    struct topo_scenario *s = load("networks:\n"
                                   "  a: {}\n"
                                   "  b: 192.168.7.0/24\n"
                                   "  c: {subnet: 10.0.1.0/24}\n" /* takes 10.0.1: a skips it */
                                   "nodes:\n"
                                   "  n1: {networks: [a, b]}\n"
                                   "  n2: {networks: {b: {ip: 192.168.7.2}, a: ~}}\n"
                                   "  n3: {networks: {b: {mac: \"02:00:00:00:00:09\"}}}\n"
                                   "  n4: {networks: [c]}\n");
    assert_string_equal(ip(s->networks[0].subnet), "10.0.2.0");
    assert_string_equal(ip(s->networks[1].subnet), "192.168.7.0");
    assert_string_equal(ip(s->networks[2].subnet), "10.0.1.0");
    /* n1: node index 0 -> host 1 on both networks. */
    assert_string_equal(ip(s->nodes[0].nics[0].ip), "10.0.2.1");
    assert_string_equal(ip(s->nodes[0].nics[1].ip), "192.168.7.1");
    assert_string_equal(s->nodes[0].nics[1].ifname, "eth1");
    /* n2 fixed 192.168.7.2 (its own slot anyway), eth order follows the file. */
    assert_int_equal(s->nodes[1].nics[0].network, 1);
    assert_true(s->nodes[1].nics[0].ip_fixed);
    assert_string_equal(ip(s->nodes[1].nics[1].ip), "10.0.2.2");
    /* n3 would be .3 */
    assert_string_equal(ip(s->nodes[2].nics[0].ip), "192.168.7.3");
    char mac[18];
    topo_format_mac(s->nodes[2].nics[0].mac, mac);
    assert_string_equal(mac, "02:00:00:00:00:09");
    assert_true(s->nodes[2].nics[0].mac_fixed);
    topo_format_mac(s->nodes[1].nics[1].mac, mac);
    assert_string_equal(mac, "52:54:00:00:01:01"); /* net 0, node 1, nic 1 */
    assert_string_equal(ip(s->nodes[3].nics[0].ip), "10.0.1.4");
    /* Hosts: n1 sees n2 over a (first shared network), n4 over its only NIC. */
    assert_string_equal(ip(topo_host_address(s, 0, 1)), "10.0.2.2");
    assert_string_equal(ip(topo_host_address(s, 0, 3)), "10.0.1.4");
    assert_string_equal(ip(topo_host_address(s, 2, 0)), "192.168.7.1");
    assert_int_equal(topo_host_address(s, 0, 99), 0);
    /* Networks list their nodes. */
    assert_int_equal(s->networks[1].n_nodes, 3);
    assert_int_equal(s->networks[2].n_nodes, 1);
    /* Links only between nodes sharing a network: a (n1,n2) 2, b (n1,n2,n3) 6, c 0. */
    assert_int_equal(s->n_links, 8);
    assert_int_equal(topo_link_find(s, 1, 2, 0), 6);
    assert_int_equal(topo_link_find(s, 2, 3, 0), -1);
    assert_int_equal(topo_node_find(s, "n3"), 2);
    assert_int_equal(topo_node_find(s, "zz"), -1);
    assert_int_equal(topo_network_find(s, "c"), 2);
    assert_int_equal(topo_network_find(s, "zz"), -1);
    topo_scenario_free(s);
}

static void test_fixed_ip_displaces_auto(void **state)
{
    /* n1 takes .2, which is n2's slot: n2 gets the lowest free address. */
    struct topo_scenario *s = load("nodes:\n"
                                   "  n1: {networks: {lan: {ip: 10.0.1.2}}}\n"
                                   "  n2: {}\n"
                                   "  n3: {}\n");
    assert_string_equal(ip(s->nodes[0].nics[0].ip), "10.0.1.2");
    assert_string_equal(ip(s->nodes[1].nics[0].ip), "10.0.1.1");
    assert_string_equal(ip(s->nodes[2].nics[0].ip), "10.0.1.3");
    topo_scenario_free(s);
}

static void test_link_precedence(void **state)
{
    struct topo_scenario *s = load("nodes: {n1: {}, n2: {}, n3: {}}\n"
                                   "links:\n"
                                   "  \"n1 -> n2\": {loss: 5%}\n"
                                   "  \"n1 <-> n2\": {delay: 20ms, loss: 1%}\n"
                                   "  lan: {delay: 1ms, rate: 100mbit}\n"
                                   "  \"*\": {mtu: 1400}\n"
                                   "  \"n3 -> *\": {duplicate: 1%}\n");
    int l12 = topo_link_find(s, 0, 0, 1), l21 = topo_link_find(s, 0, 1, 0);
    int l13 = topo_link_find(s, 0, 0, 2), l31 = topo_link_find(s, 0, 2, 0);
    const struct impair_link_params *p12 = &s->links[l12].params, *p21 = &s->links[l21].params;
    impair_prob five, one;
    assert_true(impair_parse_prob("5%", &five, NULL));
    assert_true(impair_parse_prob("1%", &one, NULL));
    assert_int_equal(p12->delay.latency_ns, 20 * FL_NS_PER_MS);
    assert_int_equal(p12->loss.model, IMPAIR_LOSS_RANDOM);
    assert_int_equal(p12->loss.p, five);
    assert_int_equal(p12->rate.bits_per_s, 100000000);
    assert_int_equal(p12->mtu, 1400);
    assert_int_equal(p21->loss.p, one);
    assert_int_equal(p21->delay.latency_ns, 20 * FL_NS_PER_MS);
    assert_int_equal(s->links[l13].params.delay.latency_ns, FL_NS_PER_MS);
    assert_int_equal(s->links[l13].params.loss.model, IMPAIR_LOSS_NONE);
    assert_int_equal(s->links[l13].params.duplicate.p, 0);
    assert_int_equal(s->links[l31].params.duplicate.p, one);
    topo_scenario_free(s);
}

static void test_link_models(void **state)
{
    struct topo_scenario *s = load(
        "nodes: {n1: {}, n2: {}}\n"
        "links:\n"
        "  \"n1 -> n2\": {delay: 10ms, jitter: 2ms, delay-correlation: 25%, distribution: pareto,\n"
        "               loss: {model: gilbert-elliott, p: 1%, r: 10%}, reorder: 5%, gap: 3,\n"
        "               corrupt: 0.1%, corrupt-correlation: 5%, duplicate-correlation: 2%,\n"
        "               rate: 1mbit, packet-overhead: -4, cell-size: 53, cell-overhead: 5,\n"
        "               limit: 100, limit-bytes: 64KiB, reorder-correlation: 1%}\n"
        "  \"n2 -> n1\": {loss: {model: 4-state, p13: 1%}}\n");
    const struct impair_link_params *p = &s->links[0].params;
    assert_int_equal(p->delay.dist, IMPAIR_DIST_PARETO);
    assert_int_equal(p->delay.jitter_ns, 2 * FL_NS_PER_MS);
    assert_int_equal(p->loss.model, IMPAIR_LOSS_GEMODEL);
    impair_prob v;
    assert_true(impair_parse_prob("10%", &v, NULL));
    assert_int_equal(p->loss.ge.r, v);
    assert_int_equal(p->loss.ge.one_minus_h, IMPAIR_PROB_MAX);
    assert_int_equal(p->loss.ge.one_minus_k, 0);
    assert_int_equal(p->reorder.gap, 3);
    assert_int_equal(p->rate.packet_overhead, -4);
    assert_int_equal(p->rate.cell_size, 53);
    assert_int_equal(p->limit_frames, 100);
    assert_int_equal(p->limit_bytes, 65536);
    const struct impair_link_params *q = &s->links[1].params;
    assert_int_equal(q->loss.model, IMPAIR_LOSS_STATE);
    assert_true(impair_parse_prob("99%", &v, NULL));
    assert_int_equal(q->loss.state.p31, v);
    assert_int_equal(q->loss.state.p23, IMPAIR_PROB_MAX);
    topo_scenario_free(s);
    /* loss-correlation needs a random loss beside it: 4-state is not. */
    const char *bad = "nodes: {n1: {}, n2: {}}\nlinks: {lan: {loss: {model: 4-state, p13: 1%}, "
                      "loss-correlation: 5%}}\n";
    struct fl_error *err = NULL;
    assert_null(topo_load_string("t.yaml", bad, strlen(bad), &err));
    fl_error_free(err);
}

static void test_link_netem_words(void **state)
{
    /* The netem short form sets whole groups: "loss 5%" on n1 -> n2 keeps
     * the network's delay; "delay 1ms" on n2 -> n1 resets its jitter and
     * distribution too. */
    struct topo_scenario *s =
        load("nodes: {n1: {}, n2: {}}\n"
             "links:\n"
             "  lan: \"delay 40ms 10ms distribution normal loss 2% rate 10mbit\"\n"
             "  \"n1 -> n2\": \"loss 5%\"\n"
             "  \"n2 -> n1\": \"delay 1ms\"\n");
    struct fl_buf a = {0}, b = {0};
    impair_link_params_format(&s->links[0].params, &a);
    impair_link_params_format(&s->links[1].params, &b);
    assert_string_equal(a.data, "delay 40ms 10ms distribution normal loss 5% rate 10mbit");
    assert_string_equal(b.data, "delay 1ms loss 2% rate 10mbit");
    fl_buf_free(&a);
    fl_buf_free(&b);
    topo_scenario_free(s);
}

static void test_disks_commands_env_image(void **state)
{
    const char *src = getenv("FL_SOURCE_DIR");
    assert_non_null(src);
    char *yaml = fl_xasprintf(
        "image:\n"
        "  packages: [redis-server, etcd-server, redis-server]\n"
        "  files: [\"%s/README.md:/etc/readme\"]\n"
        "x-common: &common {vcpus: 2}\n"
        "nodes:\n"
        "  n1:\n"
        "    <<: *common\n"
        "    memory: 1GiB\n"
        "    disks:\n"
        "      data: {size: 256MiB, mount: /data, crash-policy: tear, cache-size: 8MiB,\n"
        "             capacity: 100MiB, faults: {latency: 2ms, write: {error: 1%%, errno: "
        "ENOSPC, range: [0, 1MiB]}, corrupt: 0.01%%}}\n"
        "      raw: {mount: none}\n"
        "      wt: {cache: writethrough}\n"
        "      small: 2MiB\n"
        "    command:\n"
        "      - sleep 1000\n"
        "      - {run: my-daemon, restart: true}\n"
        "    env: {A: 1, B: ~, C: \"x y\"}\n"
        "    image: {packages: [iperf3], files: [{src: \"%s/CMakeLists.txt\", dst: /etc/readme}]}\n"
        "  n2: *common\n",
        src, src);
    struct topo_scenario *s = load(yaml);
    free(yaml);
    assert_int_equal(s->image.n_packages, 2);
    assert_string_equal(s->image.packages[0], "etcd-server");
    assert_string_equal(s->image.packages[1], "redis-server");
    assert_int_equal(s->image.n_files, 1);
    assert_string_equal(s->image.files[0].dst, "/etc/readme");
    assert_true(s->image.files[0].src[0] == '/');
    const struct topo_node *n = &s->nodes[0];
    assert_int_equal(n->vcpus, 2);
    assert_int_equal(s->nodes[1].vcpus, 2);
    assert_int_equal(n->memory_bytes, 1ull << 30);
    assert_int_equal(n->n_disks, 4);
    const struct topo_disk *d = &n->disks[0];
    assert_string_equal(d->name, "data");
    assert_int_equal(d->size_bytes, 256u << 20);
    assert_string_equal(d->mount, "/data");
    assert_true(d->format);
    assert_int_equal(d->crash_policy, TOPO_CRASH_TEAR);
    assert_int_equal(d->cache, TOPO_DISK_CACHE_WRITEBACK);
    assert_int_equal(d->cache_limit_bytes, 8u << 20);
    assert_int_equal(d->capacity_bytes, 100u << 20);
    assert_int_equal(d->faults.op[IMPAIR_IO_READ].latency.latency_ns, 2 * FL_NS_PER_MS);
    assert_int_equal(d->faults.op[IMPAIR_IO_FLUSH].latency.latency_ns, 2 * FL_NS_PER_MS);
    assert_int_equal(d->faults.op[IMPAIR_IO_WRITE].error_errno, 28 /* ENOSPC */);
    assert_int_equal(d->faults.op[IMPAIR_IO_WRITE].range_end, 1u << 20);
    assert_int_equal(d->faults.op[IMPAIR_IO_READ].error_p, 0);
    assert_true(d->faults.op[IMPAIR_IO_READ].corrupt_p > 0);
    assert_int_equal(d->faults.op[IMPAIR_IO_WRITE].corrupt_p, 0);
    assert_null(n->disks[1].mount);
    assert_false(n->disks[1].format);
    assert_int_equal(n->disks[1].size_bytes, 64u << 20);
    assert_int_equal(n->disks[1].crash_policy, TOPO_CRASH_LOSE_UNFLUSHED);
    assert_int_equal(n->disks[2].crash_policy, TOPO_CRASH_KEEP); /* writethrough */
    assert_string_equal(n->disks[2].mount, "/mnt/wt");
    assert_int_equal(n->disks[3].size_bytes, 2u << 20);
    assert_int_equal(n->n_commands, 2);
    assert_string_equal(n->commands[0].command, "sleep 1000");
    assert_false(n->commands[0].restart);
    assert_true(n->commands[1].restart);
    assert_int_equal(n->n_env, 3);
    assert_string_equal(n->env[0].value, "1");
    assert_string_equal(n->env[1].value, "");
    assert_string_equal(n->env[2].value, "x y");
    /* Node image: packages merged and sorted, its own file wins at /etc/readme. */
    assert_int_equal(n->image.n_packages, 3);
    assert_string_equal(n->image.packages[1], "iperf3");
    assert_int_equal(n->image.n_files, 1);
    assert_non_null(strstr(n->image.files[0].src, "CMakeLists.txt"));
    assert_int_equal(s->nodes[1].image.n_packages, 2);
    topo_scenario_free(s);
}

static void test_timeline_expansion(void **state)
{
    struct topo_scenario *s =
        load("run: {duration: 60s}\n"
             "nodes: {n1: {}, n2: {}, n3: {}}\n"
             "timeline:\n"
             "  - {at: 10s, name: cut, partition: [[n1], [n2, n3]]}\n"
             "  - {after: cut + 5s, isolate: n3}\n"
             "  - {at: 20s, heal: cut}\n"
             "  - {at: 21s, heal: all}\n"
             "  - {at: 5s, every: 10s, for: 30s, mark: tick}\n"
             "  - {at: 30s, pause: [n1, n2], duration: 5s}\n"
             "  - {at: 40s, clock: {node: n2, skew: -3s}, duration: 2s}\n"
             "  - {at: 41s, clock: {node: n2, jump: +1s}}\n"
             "  - {at: 45s, crash: {node: n3, policy: keep}, duration: 3s}\n"
             "  - {at: 50s, wait: {node: n3, command: 'true'}}\n"
             "  - {at: 50s, exec: {node: n3, command: bg, background: true}}\n"
             "  - {at: 51s, exec: {node: n1, command: fg, exit: any}}\n");
    size_t marks = 0;
    int64_t last = -1;
    for (size_t i = 0; i < s->n_events; i++) {
        const struct topo_event *e = &s->events[i];
        assert_int_equal(e->seq, i);
        assert_true(e->at_ns >= last); /* sorted */
        last = e->at_ns;
        marks += e->kind == TOPO_EV_MARK;
    }
    assert_int_equal(marks, 3); /* 5s, 15s, 25s (35s is outside the 30s window) */
    const struct topo_event *p0 = find_event(s, TOPO_EV_PARTITION, 0);
    assert_int_equal(p0->at_ns, 10 * FL_NS_PER_SEC);
    assert_string_equal(p0->u.partition.label, "n1 | n2 n3");
    assert_int_equal(p0->u.partition.n_cuts, 4);
    assert_string_equal(p0->name, "cut");
    assert_int_equal(p0->loc.line, 4);
    const struct topo_event *p1 = find_event(s, TOPO_EV_PARTITION, 1);
    assert_int_equal(p1->at_ns, 15 * FL_NS_PER_SEC);
    assert_string_equal(p1->u.partition.label, "isolate n3");
    /* union: n1<->n2, n1<->n3 (from cut), n2<->n3 (isolate) = 6 directions */
    assert_int_equal(p1->u.partition.n_state, 6);
    const struct topo_event *h0 = find_event(s, TOPO_EV_HEAL, 0);
    assert_int_equal(h0->at_ns, 20 * FL_NS_PER_SEC);
    /* healing 'cut' keeps isolate n3: n1<->n3 and n2<->n3 stay (4), n1<->n2 healed (2). */
    assert_int_equal(h0->u.partition.n_state, 4);
    assert_int_equal(h0->u.partition.n_cuts, 2);
    const struct topo_event *h1 = find_event(s, TOPO_EV_HEAL, 1);
    assert_int_equal(h1->u.partition.n_state, 0);
    assert_int_equal(h1->u.partition.n_cuts, 4);
    /* pause of two nodes and their automatic resumes */
    const struct topo_event *pa = find_event(s, TOPO_EV_PAUSE, 1);
    assert_int_equal(pa->u.node.node, 1);
    const struct topo_event *re = find_event(s, TOPO_EV_RESUME, 0);
    assert_int_equal(re->at_ns, 35 * FL_NS_PER_SEC);
    assert_int_equal(re->origin, TOPO_ORIGIN_REVERT);
    /* clock: skew -3s, jump +1s at 41s -> -2s, the skew's undo at 42s restores the offset
     * from before it (0) */
    const struct topo_event *c0 = find_event(s, TOPO_EV_CLOCK, 0);
    const struct topo_event *c1 = find_event(s, TOPO_EV_CLOCK, 1);
    const struct topo_event *c2 = find_event(s, TOPO_EV_CLOCK, 2);
    assert_int_equal(c0->u.clock.offset_ns, -3 * FL_NS_PER_SEC);
    assert_int_equal(c0->u.clock.delta_ns, -3 * FL_NS_PER_SEC);
    assert_int_equal(c1->u.clock.offset_ns, -2 * FL_NS_PER_SEC);
    assert_int_equal(c2->origin, TOPO_ORIGIN_REVERT);
    assert_int_equal(c2->u.clock.delta_ns, 2 * FL_NS_PER_SEC);
    assert_int_equal(c2->u.clock.offset_ns, 0);
    const struct topo_event *cr = find_event(s, TOPO_EV_CRASH, 0);
    assert_true(cr->u.node.has_policy);
    assert_int_equal(cr->u.node.policy, TOPO_CRASH_KEEP);
    const struct topo_event *rs = find_event(s, TOPO_EV_RESTART, 0);
    assert_int_equal(rs->at_ns, 48 * FL_NS_PER_SEC);
    const struct topo_event *w = find_event(s, TOPO_EV_WAIT, 0);
    assert_int_equal(w->u.wait.timeout_ns, 60 * FL_NS_PER_SEC);
    assert_int_equal(w->u.wait.interval_ns, FL_NS_PER_SEC);
    const struct topo_event *bg = find_event(s, TOPO_EV_EXEC, 0);
    assert_true(bg->u.exec.background);
    assert_int_equal(bg->u.exec.timeout_ns, 0);
    assert_false(bg->u.exec.has_expect);
    const struct topo_event *fg = find_event(s, TOPO_EV_EXEC, 1);
    assert_int_equal(fg->u.exec.timeout_ns, 30 * FL_NS_PER_SEC);
    assert_true(fg->u.exec.has_expect);
    assert_int_equal(fg->u.exec.expect.exit, TOPO_EXIT_ANY);
    assert_string_equal(fg->source, "timeline[11]");
    assert_string_equal(find_event(s, TOPO_EV_MARK, 2)->source, "timeline[4] #3");
    topo_scenario_free(s);
}

static void test_clock_reset_by_boot(void **state)
{
    struct topo_scenario *s = load("nodes: {n1: {}}\n"
                                   "timeline:\n"
                                   "  - {at: 1s, clock: {node: n1, skew: +10s}, duration: 10s}\n"
                                   "  - {at: 2s, reboot: n1}\n"
                                   "  - {at: 3s, clock: {node: n1, jump: -1s}}\n");
    const struct topo_event *c0 = find_event(s, TOPO_EV_CLOCK, 0);
    const struct topo_event *c1 = find_event(s, TOPO_EV_CLOCK, 1);
    const struct topo_event *c2 = find_event(s, TOPO_EV_CLOCK, 2);
    assert_int_equal(c0->u.clock.offset_ns, 10 * FL_NS_PER_SEC);
    /* the reboot reset the clock: the jump starts from 0 */
    assert_int_equal(c1->u.clock.offset_ns, -FL_NS_PER_SEC);
    assert_int_equal(c1->u.clock.delta_ns, -FL_NS_PER_SEC);
    /* the skew's undo restores 0 */
    assert_int_equal(c2->u.clock.offset_ns, 0);
    assert_int_equal(c2->u.clock.delta_ns, FL_NS_PER_SEC);
    topo_scenario_free(s);
    /* heal: all with a nemesis is a safety net, not an error. */
    s = load("nodes: {n1: {}, n2: {}}\n"
             "nemesis: {c: {faults: partition, every: 10s, stop: 50s}}\n"
             "timeline: [{at: 55s, heal: all}]\n");
    assert_non_null(find_event(s, TOPO_EV_HEAL, 0));
    topo_scenario_free(s);
}

static void test_same_time_order(void **state)
{
    /* Ties: declaration order, and an event `after` another always comes
     * after it even when declared first. */
    struct topo_scenario *s = load("nodes: {n1: {}, n2: {}}\n"
                                   "timeline:\n"
                                   "  - {after: x, mark: second}\n"
                                   "  - {at: 5s, name: x, mark: first}\n"
                                   "  - {at: 5s, mark: third}\n");
    assert_string_equal(s->events[0].u.mark, "first");
    assert_string_equal(s->events[1].u.mark, "third");
    assert_string_equal(s->events[2].u.mark, "second");
    topo_scenario_free(s);
}

static void test_link_and_disk_events(void **state)
{
    struct topo_scenario *s =
        load("nodes: {n1: {disks: {d: {faults: {latency: 1ms}}}}, n2: {}}\n"
             "links: {lan: {delay: 5ms}}\n"
             "timeline:\n"
             "  - {at: 1s, link: {\"n1 -> n2\": {loss: 50%}}, duration: 2s}\n"
             "  - {at: 5s, link: {lan: {delay: 7ms}}}\n"
             "  - {at: 6s, link-clear: all}\n"
             "  - {at: 7s, disk: {node: n1, write: {error: 100%, errno: EIO}, capacity: 1MiB,\n"
             "                    stall: true}}\n"
             "  - {at: 8s, disk-clear: n1}\n");
    const struct topo_event *l0 = find_event(s, TOPO_EV_LINK_SET, 0);
    assert_int_equal(l0->u.link.n_changes, 1);
    assert_int_equal(l0->u.link.changes[0].link, topo_link_find(s, 0, 0, 1));
    assert_int_equal(l0->u.link.changes[0].params.delay.latency_ns, 5 * FL_NS_PER_MS);
    assert_int_equal(l0->u.link.changes[0].params.loss.model, IMPAIR_LOSS_RANDOM);
    const struct topo_event *lc = find_event(s, TOPO_EV_LINK_CLEAR, 0);
    assert_int_equal(lc->at_ns, 3 * FL_NS_PER_SEC);
    assert_int_equal(lc->origin, TOPO_ORIGIN_REVERT);
    assert_int_equal(lc->u.link.changes[0].params.loss.model, IMPAIR_LOSS_NONE);
    const struct topo_event *l1 = find_event(s, TOPO_EV_LINK_SET, 1);
    assert_int_equal(l1->u.link.n_changes, 2);
    assert_int_equal(l1->u.link.changes[1].params.delay.latency_ns, 7 * FL_NS_PER_MS);
    const struct topo_event *lc2 = find_event(s, TOPO_EV_LINK_CLEAR, 1);
    assert_int_equal(lc2->u.link.n_changes, 2);
    assert_int_equal(lc2->u.link.changes[0].params.delay.latency_ns, 5 * FL_NS_PER_MS);
    const struct topo_event *d0 = find_event(s, TOPO_EV_DISK_SET, 0);
    assert_int_equal(d0->u.disk.faults.op[IMPAIR_IO_WRITE].error_p, IMPAIR_PROB_MAX);
    assert_int_equal(d0->u.disk.faults.op[IMPAIR_IO_WRITE].latency.latency_ns, FL_NS_PER_MS);
    assert_int_equal(d0->u.disk.capacity_bytes, 1u << 20);
    assert_true(d0->u.disk.stall);
    const struct topo_event *d1 = find_event(s, TOPO_EV_DISK_CLEAR, 0);
    assert_int_equal(d1->u.disk.faults.op[IMPAIR_IO_WRITE].error_p, 0);
    assert_int_equal(d1->u.disk.faults.op[IMPAIR_IO_WRITE].latency.latency_ns, FL_NS_PER_MS);
    assert_false(d1->u.disk.stall);
    topo_scenario_free(s);
}

static void test_checks(void **state)
{
    struct topo_scenario *s =
        load("nodes: {n1: {}, n2: {}}\n"
             "timeline: [{at: 3s, name: go, mark: go}]\n"
             "checks:\n"
             "  - {node: n1, command: a}\n"
             "  - {name: b, at: 5s, node: n2, command: b, exit: 3,\n"
             "     output: '^ok', within: 10s, interval: 500ms, timeout: 2s}\n"
             "  - {after: go + 1s, node: n1, command: c, exit: nonzero}\n"
             "  - {at: end, node: n1, command: d}\n");
    assert_int_equal(s->n_checks, 4);
    assert_string_equal(s->checks[0].name, "check-1");
    assert_int_equal(s->checks[0].at_ns, TOPO_AT_END);
    assert_int_equal(s->checks[0].timeout_ns, 10 * FL_NS_PER_SEC);
    assert_int_equal(s->checks[0].expect.exit, TOPO_EXIT_EXACT);
    assert_int_equal(s->checks[0].expect.code, 0);
    assert_string_equal(s->checks[1].name, "b");
    assert_int_equal(s->checks[1].expect.code, 3);
    assert_string_equal(s->checks[1].expect.output, "^ok");
    assert_int_equal(s->checks[1].within_ns, 10 * FL_NS_PER_SEC);
    assert_int_equal(s->checks[1].interval_ns, 500 * FL_NS_PER_MS);
    assert_int_equal(s->checks[2].at_ns, 4 * FL_NS_PER_SEC);
    assert_int_equal(s->checks[2].expect.exit, TOPO_EXIT_NONZERO);
    assert_int_equal(s->checks[3].at_ns, TOPO_AT_END);
    /* Timed checks appear in the timeline, in order. */
    assert_int_equal(s->n_events, 3);
    assert_int_equal(s->events[1].kind, TOPO_EV_CHECK);
    assert_int_equal(s->events[1].u.check, 2);
    assert_int_equal(s->events[2].u.check, 1);
    topo_scenario_free(s);
}

/* ---- shapes and nemesis ---------------------------------------------- */

static bool cut(const struct topo_event *e, uint32_t a, uint32_t b)
{
    for (size_t i = 0; i < e->u.partition.n_cuts; i++) {
        if (e->u.partition.cuts[i].src == a && e->u.partition.cuts[i].dst == b) {
            return true;
        }
    }
    return false;
}

/* Reachability matrix of a partition event: sees[a][b]. */
static void check_shape(const struct topo_event *e, size_t n)
{
    enum topo_partition_shape shape = e->u.partition.shape;
    size_t majority = n / 2 + 1;
    size_t total_cut = 0;
    for (uint32_t a = 0; a < n; a++) {
        size_t sees = 1;
        for (uint32_t b = 0; b < n; b++) {
            if (a != b && !cut(e, a, b)) {
                sees++;
            }
            if (a != b) {
                /* All shapes are symmetric. */
                assert_int_equal(cut(e, a, b), cut(e, b, a));
            }
        }
        total_cut += n - sees;
        if (shape == TOPO_SHAPE_RING) {
            assert_true(sees >= majority);
        }
    }
    assert_true(total_cut > 0);
    if (shape == TOPO_SHAPE_ISOLATE) {
        assert_int_equal(total_cut, 2 * (n - 1));
    }
    if (shape == TOPO_SHAPE_RING) {
        /* No two nodes see the same set. */
        for (uint32_t a = 0; a < n; a++) {
            for (uint32_t b = a + 1; b < n; b++) {
                bool same = true;
                for (uint32_t x = 0; x < n && same; x++) {
                    bool sa = x == a || !cut(e, a, x), sb = x == b || !cut(e, b, x);
                    same = sa == sb;
                }
                assert_false(same);
            }
        }
    }
    if (shape == TOPO_SHAPE_BRIDGE) {
        /* Exactly one node sees everybody. */
        size_t full = 0;
        for (uint32_t a = 0; a < n; a++) {
            bool all = true;
            for (uint32_t b = 0; b < n; b++) {
                all = all && (a == b || !cut(e, a, b));
            }
            full += all;
        }
        assert_int_equal(full, 1);
    }
    if (shape == TOPO_SHAPE_HALVES || shape == TOPO_SHAPE_MAJORITY_MINORITY) {
        /* Two cliques; the smaller is a minority. */
        size_t side0 = 1;
        for (uint32_t b = 1; b < n; b++) {
            side0 += !cut(e, 0, b);
        }
        size_t small = side0 < n - side0 ? side0 : n - side0;
        assert_true(small >= 1);
        assert_true(small < majority);
        if (shape == TOPO_SHAPE_HALVES) {
            assert_int_equal(small, n / 2);
        }
    }
}

static void test_shapes(void **state)
{
    static const char *const shapes[] = {"halves", "majority-minority", "isolate", "ring",
                                         "bridge"};
    for (size_t n = 4; n <= 7; n++) {
        for (size_t k = 0; k < FL_ARRAY_LEN(shapes); k++) {
            struct fl_buf b = {0};
            fl_buf_puts(&b, "nodes: {");
            for (size_t i = 0; i < n; i++) {
                fl_buf_printf(&b, "%sn%zu: {}", i ? ", " : "", i);
            }
            fl_buf_printf(&b,
                          "}\ntimeline: [{at: 1s, every: 1s, times: 20, partition: %s, "
                          "duration: 500ms}]\n",
                          shapes[k]);
            struct topo_scenario *s = load(b.data);
            size_t seen = 0;
            for (size_t i = 0; i < s->n_events; i++) {
                if (s->events[i].kind == TOPO_EV_PARTITION) {
                    check_shape(&s->events[i], n);
                    seen++;
                }
            }
            assert_int_equal(seen, 20);
            topo_scenario_free(s);
            fl_buf_free(&b);
        }
    }
}

static const char nemesis_yaml[] = "run: {duration: 120s}\n"
                                   "nodes: {n1: {}, n2: {}, n3: {}, n4: {}, n5: {}}\n"
                                   "timeline:\n"
                                   "  - {at: 30s, crash: n1, duration: 10s}\n"
                                   "  - {at: 50s, exec: {node: n2, command: x, timeout: 5s}}\n"
                                   "checks: [{at: 60s, node: n3, command: y, within: 5s}]\n"
                                   "nemesis:\n"
                                   "  chaos:\n"
                                   "    faults: [partition, one-way, crash, pause, reboot, clock]\n"
                                   "    every: 2s-4s\n"
                                   "    duration: 500ms-1500ms\n"
                                   "    stop: 110s\n"
                                   "  second: {faults: pause, every: 3s, nodes: [n4, n5]}\n";

static char *event_list(const struct topo_scenario *s)
{
    struct fl_buf b = {0};
    for (size_t i = 0; i < s->n_events; i++) {
        const struct topo_event *e = &s->events[i];
        fl_buf_printf(&b, "%" PRId64 " %s %s", e->at_ns, topo_event_kind_name(e->kind), e->source);
        if (e->kind == TOPO_EV_PARTITION || e->kind == TOPO_EV_HEAL) {
            fl_buf_printf(&b, " %s", e->u.partition.label);
        } else if (e->kind == TOPO_EV_CLOCK) {
            fl_buf_printf(&b, " %u %" PRId64, e->u.clock.node, e->u.clock.offset_ns);
        } else if (e->kind >= TOPO_EV_CRASH && e->kind <= TOPO_EV_REBOOT) {
            fl_buf_printf(&b, " %u", e->u.node.node);
        }
        fl_buf_puts(&b, "\n");
    }
    return fl_buf_steal(&b);
}

static void test_nemesis_determinism(void **state)
{
    struct topo_scenario *a = load_seed(nemesis_yaml, 42);
    struct topo_scenario *b = load_seed(nemesis_yaml, 42);
    struct topo_scenario *c = load_seed(nemesis_yaml, 43);
    char *la = event_list(a), *lb = event_list(b), *lc = event_list(c);
    assert_string_equal(la, lb);
    assert_string_not_equal(la, lc);
    assert_true(a->nemeses[0].n_drawn > 20);
    assert_int_equal(a->nemeses[0].stream, impair_stream_id("nemesis:chaos"));
    /* The nemesis never touches a node the timeline uses at the same time:
     * n1 is crashed during [30s, 40s], n2 runs a command in [50s, 55s], n3
     * a check in [60s, 75s]; and the whole timeline stays consistent
     * (the loader would have rejected a contradiction). */
    for (size_t i = 0; i < a->n_events; i++) {
        const struct topo_event *e = &a->events[i];
        if (e->origin != TOPO_ORIGIN_NEMESIS) {
            continue;
        }
        if (strstr(e->source, "nemesis.chaos")) {
            assert_true(e->at_ns < 110 * FL_NS_PER_SEC);
        }
        uint32_t node = UINT32_MAX;
        if (e->kind >= TOPO_EV_CRASH && e->kind <= TOPO_EV_REBOOT) {
            node = e->u.node.node;
        } else if (e->kind == TOPO_EV_CLOCK) {
            node = e->u.clock.node;
        }
        int64_t t = e->at_ns;
        if (node == 0) {
            assert_false(t >= 30 * FL_NS_PER_SEC && t <= 40 * FL_NS_PER_SEC);
        } else if (node == 1) {
            assert_false(t >= 50 * FL_NS_PER_SEC && t <= 55 * FL_NS_PER_SEC);
        } else if (node == 2) {
            assert_false(t >= 60 * FL_NS_PER_SEC && t <= 75 * FL_NS_PER_SEC);
        }
    }
    /* Nemesis "second" only pauses n4/n5; ends with every node resumed. */
    size_t pauses = 0, resumes = 0;
    for (size_t i = 0; i < a->n_events; i++) {
        const struct topo_event *e = &a->events[i];
        if (e->source && strstr(e->source, "nemesis.second")) {
            assert_true(e->kind == TOPO_EV_PAUSE || e->kind == TOPO_EV_RESUME);
            assert_true(e->u.node.node == 3 || e->u.node.node == 4);
            pauses += e->kind == TOPO_EV_PAUSE;
            resumes += e->kind == TOPO_EV_RESUME;
        }
    }
    assert_true(pauses > 0);
    assert_int_equal(pauses + a->nemeses[1].n_skipped, a->nemeses[1].n_drawn);
    assert_int_equal(pauses, resumes);
    /* The final partition state is empty and clock offsets return to 0. */
    for (size_t i = 0; i < a->n_events; i++) {
        const struct topo_event *e = &a->events[i];
        if (e->kind == TOPO_EV_CLOCK && e->origin == TOPO_ORIGIN_NEMESIS &&
            e->u.clock.delta_ns != 0) {
            assert_true(llabs(e->u.clock.offset_ns) <= 10 * FL_NS_PER_SEC);
        }
    }
    const struct topo_event *last_heal = NULL;
    for (size_t i = 0; i < a->n_events; i++) {
        if (a->events[i].kind == TOPO_EV_HEAL) {
            last_heal = &a->events[i];
        }
    }
    assert_non_null(last_heal);
    assert_int_equal(last_heal->u.partition.n_state, 0);
    free(la);
    free(lb);
    free(lc);
    topo_scenario_free(a);
    topo_scenario_free(b);
    topo_scenario_free(c);
}

static void test_random_shape_in_timeline_seeded(void **state)
{
    const char *y =
        "nodes: {n1: {}, n2: {}, n3: {}, n4: {}, n5: {}}\n"
        "timeline: [{at: 1s, every: 1s, times: 10, partition: halves, duration: 1ms}]\n";
    struct topo_scenario *a = load_seed(y, 5), *b = load_seed(y, 5), *c = load_seed(y, 6);
    char *la = event_list(a), *lb = event_list(b), *lc = event_list(c);
    assert_string_equal(la, lb);
    assert_string_not_equal(la, lc);
    free(la);
    free(lb);
    free(lc);
    topo_scenario_free(a);
    topo_scenario_free(b);
    topo_scenario_free(c);
}

/* ---- dump ------------------------------------------------------------- */

/* learning: off by default (port security), on where written; the dump
 * says which. */
static void test_network_learning(void **state)
{
    struct topo_scenario *s = load("networks: {lan: {}, vrrp: {learning: true}, "
                                   "off: {subnet: 10.9.0.0/24, learning: no}}\n"
                                   "nodes: {n1: {}, n2: {}}\n");
    assert_int_equal(s->n_networks, 3);
    assert_false(s->networks[0].learning);
    assert_true(s->networks[1].learning);
    assert_false(s->networks[2].learning);
    struct fl_buf b = {0};
    assert_true(topo_dump_json(s, &b));
    assert_non_null(strstr(b.data, "\"name\":\"lan\",\"subnet\":\"10.0.1.0/24\",\"mtu\":1500,"
                                   "\"learning\":false,"));
    assert_non_null(strstr(b.data, "\"name\":\"vrrp\",\"subnet\":\"10.0.2.0/24\",\"mtu\":1500,"
                                   "\"learning\":true,"));
    fl_buf_free(&b);
    topo_scenario_free(s);
    s = load("nodes: {n1: {}}\n");
    assert_false(s->networks[0].learning);
    topo_scenario_free(s);
}

static void test_dump_json(void **state)
{
    struct topo_scenario *s =
        load("run: {name: demo, description: \"a \\\"quoted\\\" demo\"}\n"
             "nodes: {n1: {disks: {d: 1GiB}, env: {K: v}}, n2: {}}\n"
             "links: {lan: {delay: 10ms, jitter: 1ms, loss: 1%}}\n"
             "timeline:\n"
             "  - {at: 1s, isolate: n2, duration: 2s}\n"
             "  - {at: 4s, exec: {node: n1, command: 'echo \"hi\"', exit: 0}}\n"
             "checks: [{at: 5s, node: n2, command: x}, {node: n1, command: y}]\n"
             "nemesis: {c: {faults: pause, every: 10s}}\n");
    struct fl_buf b = {0};
    assert_true(topo_dump_json(s, &b));
    assert_non_null(b.data);
    assert_true(b.data[0] == '{' && b.data[b.size - 1] == '}');
    assert_non_null(strstr(b.data, "\"name\":\"demo\""));
    assert_non_null(strstr(b.data, "\"description\":\"a \\\"quoted\\\" demo\""));
    assert_non_null(strstr(b.data, "\"seed\":1,\"seed_random\":false"));
    assert_non_null(strstr(b.data, "\"subnet\":\"10.0.1.0/24\""));
    assert_non_null(strstr(b.data, "\"mac\":\"52:54:00:00:01:00\",\"ip\":\"10.0.1.2\""));
    assert_non_null(strstr(b.data, "\"params\":\"delay 10ms 1ms loss 1%\""));
    assert_non_null(strstr(b.data, "\"label\":\"isolate n2\""));
    assert_non_null(strstr(b.data, "\"cut_after\":[[\"n1\",\"n2\"],[\"n2\",\"n1\"]]"));
    assert_non_null(strstr(b.data, "\"command\":\"echo \\\"hi\\\"\""));
    assert_non_null(strstr(b.data, "\"at\":\"end\",\"at_ns\":null"));
    assert_non_null(strstr(b.data, "\"hosts\":{\"n1\":\"10.0.1.1\",\"n2\":\"10.0.1.2\"}"));
    assert_non_null(strstr(b.data, "\"crash_policy\":\"lose-unflushed\""));
    assert_non_null(strstr(b.data, "\"nemesis\":[{\"name\":\"c\""));
    /* Balanced braces/brackets outside strings: a cheap well-formedness check
     * (the CLI test pipes it through a JSON parser). */
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < b.size; i++) {
        char ch = b.data[i];
        if (in_str) {
            if (ch == '\\') {
                i++;
            } else if (ch == '"') {
                in_str = false;
            }
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            assert_true(depth >= 0);
        }
    }
    assert_int_equal(depth, 0);
    assert_false(in_str);
    fl_buf_free(&b);
    topo_scenario_free(s);
}

/* ---- scenarios/ --------------------------------------------------------- */

static void test_every_scenario_is_valid(void **state)
{
    const char *src = getenv("FL_SOURCE_DIR");
    assert_non_null(src);
    char *dir = fl_xasprintf("%s/scenarios", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t count = 0;
    bool quickstart = false;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml")) {
            continue;
        }
        char *path = fl_xasprintf("%s/%s", dir, de->d_name);
        struct fl_error *err = NULL;
        struct topo_scenario *s = topo_load_file(path, &err);
        if (!s) {
            fprintf(stderr, "%s\n", err->msg);
        }
        assert_non_null(s);
        assert_true(s->n_nodes >= 1);
        assert_true(s->n_checks >= 1); /* every shipped scenario has a verdict */
        struct fl_buf b = {0};
        topo_dump_json(s, &b);
        assert_true(b.size > 0);
        fl_buf_free(&b);
        if (!strcmp(de->d_name, "quickstart.yaml")) {
            quickstart = true;
            assert_int_equal(s->n_nodes, 3);
            assert_true(s->duration_ns >= 30 * FL_NS_PER_SEC);
            assert_true(s->duration_ns <= 40 * FL_NS_PER_SEC);
            const struct topo_event *p = find_event(s, TOPO_EV_PARTITION, 0);
            assert_non_null(p);
            assert_string_equal(p->u.partition.label, "isolate n3");
            assert_non_null(find_event(s, TOPO_EV_HEAL, 0));
        }
        topo_scenario_free(s);
        fl_error_free(err);
        free(path);
        count++;
    }
    closedir(d);
    free(dir);
    assert_true(quickstart);
    assert_true(count >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_random_seed_recorded),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_fixed_ip_displaces_auto),
        cmocka_unit_test(test_link_precedence),
        cmocka_unit_test(test_link_models),
        cmocka_unit_test(test_link_netem_words),
        cmocka_unit_test(test_disks_commands_env_image),
        cmocka_unit_test(test_timeline_expansion),
        cmocka_unit_test(test_clock_reset_by_boot),
        cmocka_unit_test(test_same_time_order),
        cmocka_unit_test(test_link_and_disk_events),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_nemesis_determinism),
        cmocka_unit_test(test_random_shape_in_timeline_seeded),
        cmocka_unit_test(test_dump_json),
        cmocka_unit_test(test_network_learning),
        cmocka_unit_test(test_every_scenario_is_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
