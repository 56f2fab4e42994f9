/*
 * One run, start to finish: wiring topology into trace, netback, blkback
 * and hv; booting; handing over to the timeline; teardown and the files
 * that outlive the run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/checks.h"
#include "runner/rundir.h"
#include "runner/timeline.h"
#include "runner/view.h"

static const char *const result_names[] = {
#define RUNNER_RESULT_NAME(name, str) str,
    RUNNER_RESULTS(RUNNER_RESULT_NAME)
#undef RUNNER_RESULT_NAME
};

const char *runner_result_name(enum runner_result result)
{
    return (size_t)result < FL_ARRAY_LEN(result_names) ? result_names[result] : "?";
}

void runner_outcome_clear(struct runner_outcome *out)
{
    if (out) {
        free(out->run_dir);
        free(out->report);
        memset(out, 0, sizeof *out);
    }
}

static char *node_str(struct rn_node *n, char *s)
{
    n->strings = fl_xgrow(n->strings, &n->strings_alloc, n->n_strings + 1, sizeof *n->strings);
    n->strings[n->n_strings++] = s;
    return s;
}

/* Every phase change of a run goes through here. */
static void set_phase(struct run *run, enum rn_phase phase)
{
    run->phase = phase;
    if (phase == RN_DONE) {
        fl_loop_stop(run->loop);
    }
}

/* Takes err; ends the run. */
static void infra_error(struct run *run, struct fl_error *err)
{
    rn_log(&run->log, "error", "%s", err->msg);
    if (run->db) {
        trace_event(run->db, fl_clock_mono_ns(), "error", 0, err->msg);
    }
    if (!run->infra) {
        run->infra = err;
    } else {
        fl_error_free(err);
    }
    set_phase(run, RN_DONE);
}

/* The checks' hook: the run ends when the end checks are done. */
static void maybe_finish(struct run *run)
{
    if (run->phase == RN_END_CHECKS && !rn_checks_busy(run)) {
        set_phase(run, RN_DONE);
    }
}

/* The timeline's hook. */
static void timeline_over(struct run *run)
{
    set_phase(run, RN_END_CHECKS);
    rn_log(&run->log, "end", "timeline over; running end checks");
    rn_end_checks(run);
    maybe_finish(run);
}

/* ---- hv callbacks ---- */

static void on_ready(struct hv_node *hv, void *arg)
{
    struct rn_node *n = arg;
    struct run *run = n->run;
    double secs = (double)(fl_loop_now(run->loop) - n->boot_start_ns) / 1e9;
    n->ready = true;
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "ready", n->trace_id, NULL);
    }
    if (run->phase == RN_BOOT) {
        rn_log(&run->log, "ready", "%s (booted in %.1fs)", n->topo->name, secs);
        if (++run->nodes_ready == run->scen->n_nodes) {
            fl_timer_destroy(run->boot_timer);
            run->boot_timer = NULL;
            run->clock.t0 = fl_loop_now(run->loop);
            if (run->db) {
                trace_db_set_epoch(run->db, run->clock.t0);
            }
            rn_log(&run->log, "start", "all %zu nodes ready in %.1fs: time zero; timeline of %.1fs",
                   run->scen->n_nodes, (double)(run->clock.t0 - run->boot_start_ns) / 1e9,
                   (double)run->scen->duration_ns / 1e9);
            set_phase(run, RN_TIMELINE);
            rn_timeline_start(run);
        }
        return;
    }
    if (n->window_event > 0 && run->db) {
        trace_event_end(run->db, n->window_event, fl_loop_now(run->loop));
    }
    n->window_event = 0;
    n->restarting = false;
    rn_log(&run->log, "ready", "%s (up again in %.1fs)", n->topo->name, secs);
}

static void on_exit_cb(struct hv_node *hv, bool unexpected, int status, void *arg)
{
    struct rn_node *n = arg;
    struct run *run = n->run;
    n->ready = false;
    if (!unexpected || n->expect_exit) {
        return;
    }
    char *msg = fl_xasprintf("QEMU of %s exited unexpectedly (status 0x%x); its console log is "
                             "%s/console/%s.log",
                             n->topo->name, status, run->dir, n->topo->name);
    if (run->phase == RN_BOOT) {
        struct fl_error *err = NULL;
        fl_error_setf(&err, EIO, "%s", msg);
        free(msg);
        infra_error(run, err);
        return;
    }
    n->down = true;
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "exit", n->trace_id, msg);
    }
    rn_log(&run->log, "exit", "%s", msg);
    free(msg);
}

static void on_fail(struct hv_node *hv, const struct fl_error *e, void *arg)
{
    struct rn_node *n = arg;
    struct run *run = n->run;
    if (run->phase == RN_BOOT || n->restarting) {
        struct fl_error *err = NULL;
        fl_error_setf(&err, e->code ? e->code : EIO, "%s: %s (console log: %s/console/%s.log)",
                      n->topo->name, e->msg, run->dir, n->topo->name);
        infra_error(run, err);
        return;
    }
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "error", n->trace_id, e->msg);
    }
    rn_log(&run->log, "error", "%s: %s", n->topo->name, e->msg);
}

static void on_state(struct hv_node *hv, enum hv_node_state state, void *arg)
{
    struct rn_node *n = arg;
    if (state == HV_NODE_PAUSED || state == HV_NODE_READY) {
        fl_log(FL_LOG_DEBUG, "runner", "%s is %s", n->topo->name, hv_node_state_name(state));
    }
}

static const struct hv_callbacks node_callbacks = {
    .on_ready = on_ready,
    .on_exit = on_exit_cb,
    .on_fail = on_fail,
    .on_state = on_state,
};

/* ---- netback callbacks ---- */

static void on_port_connected(void *arg, const char *network, const char *node, const char *nic)
{
    fl_log(FL_LOG_DEBUG, "runner", "%s/%s connected on %s", node, nic, network);
}

static void on_port_disconnected(void *arg, const char *network, const char *node, const char *nic,
                                 enum nb_disconnect_reason reason, const char *detail)
{
    struct run *run = arg;
    if (reason == NB_DISCONNECT_REMOVED) {
        return;
    }
    int idx = topo_node_find(run->scen, node);
    if (reason == NB_DISCONNECT_EOF && idx >= 0 && run->nodes[idx].expect_exit) {
        return; /* the timeline crashed or stopped it */
    }
    char *msg = fl_xasprintf("%s/%s on %s: %s (%s)", node, nic, network,
                             nb_disconnect_reason_name(reason), detail);
    if (run->db) {
        trace_event(run->db, fl_loop_now(run->loop), "disconnect",
                    idx >= 0 ? run->nodes[idx].trace_id : 0, msg);
    }
    if (reason == NB_DISCONNECT_MALFORMED) {
        rn_log(&run->log, "disconnect", "%s", msg);
    }
    free(msg);
}

static const struct nb_events nb_events = {
    .port_connected = on_port_connected,
    .port_disconnected = on_port_disconnected,
};

/* ---- setup ---- */

static void progress(void *arg, const char *stage, const char *item, uint64_t done, uint64_t total)
{
    struct run *run = arg;
    if (!run->live) {
        return;
    }
    printf("\r\033[K  image: %s %s", stage, item ? item : "");
    if (total) {
        printf(" (%llu/%llu)", (unsigned long long)done, (unsigned long long)total);
    }
    fflush(stdout);
}

/* An image build takes up to a minute before the loop runs: SIGINT and
 * SIGTERM stop it. */
static bool build_cancelled(void *arg)
{
    struct run *run = arg;
    fl_loop_poll_signals(run->loop);
    return run->interrupted;
}

static bool same_image(const struct topo_image *a, const struct topo_image *b)
{
    if (a->n_packages != b->n_packages || a->n_files != b->n_files) {
        return false;
    }
    for (size_t i = 0; i < a->n_packages; i++) {
        if (strcmp(a->packages[i], b->packages[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < a->n_files; i++) {
        if (strcmp(a->files[i].src, b->files[i].src) || strcmp(a->files[i].dst, b->files[i].dst)) {
            return false;
        }
    }
    return true;
}

static bool build_images(struct run *run, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    run->images = fl_xcalloc(s->n_nodes, sizeof *run->images);
    const struct topo_image **specs = fl_xcalloc(s->n_nodes, sizeof *specs);
    bool ok = true;
    for (size_t i = 0; i < s->n_nodes && ok; i++) {
        const struct topo_image *want = &s->nodes[i].image;
        size_t k;
        for (k = 0; k < run->n_images; k++) {
            if (same_image(specs[k], want)) {
                break;
            }
        }
        if (k == run->n_images) {
            struct hv_image_file *files = fl_xcalloc(want->n_files + 1, sizeof *files);
            for (size_t f = 0; f < want->n_files; f++) {
                files[f].src = want->files[f].src;
                files[f].dst = want->files[f].dst;
            }
            struct hv_image_spec spec = {
                .packages = (const char *const *)want->packages,
                .n_packages = want->n_packages,
                .files = files,
                .n_files = want->n_files,
                .cache_dir = run->opts->cache_dir,
                .cancelled = build_cancelled,
                .cancel_arg = run,
            };
            ok = hv_image_build(&spec, &run->images[k], progress, run, errp);
            free(files);
            if (run->live) {
                printf("\r\033[K");
            }
            if (!ok) {
                /* A Ctrl-C also reaches apt-get directly, which then fails
                 * on its own: the signal decides what this was. */
                build_cancelled(run);
                fl_error_prepend(errp, "building the guest image: ");
                break;
            }
            specs[k] = want;
            run->n_images++;
            rn_log(&run->log, "image", "%s %s (%s%s%s)", run->images[k].key,
                   run->images[k].cache_hit ? "from the cache" : "built",
                   want->n_packages ? "packages: " : "base image",
                   want->n_packages ? want->packages[0] : "", want->n_packages > 1 ? ", ..." : "");
        }
        run->nodes[i].image = &run->images[k];
    }
    free(specs);
    return ok;
}

static bool setup_trace(struct run *run, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    char *path = fl_xasprintf("%s/run.db", run->dir);
    run->db = trace_db_open(path, errp);
    free(path);
    if (!run->db) {
        return false;
    }
    const char *why = NULL;
    enum hv_accel accel = HV_ACCEL_AUTO;
    if (run->opts->accel) {
        hv_accel_parse(run->opts->accel, &accel, NULL);
    }
    accel = hv_accel_resolve(accel, &why);
    struct trace_run_info info = {
        .scenario_name = s->name,
        .scenario_path = s->file,
        .scenario_text = run->scenario_text,
        .seed = s->seed,
        .accel = hv_accel_name(accel),
    };
    trace_run_begin(run->db, &info);
    rn_log(&run->log, "accel", "%s: %s", hv_accel_name(accel), why ? why : "as requested");
    run->network_ids = fl_xcalloc(s->n_networks + 1, sizeof *run->network_ids);
    for (size_t i = 0; i < s->n_networks; i++) {
        run->network_ids[i] = trace_network_id(run->db, s->networks[i].name);
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct topo_node *n = &s->nodes[i];
        run->nodes[i].trace_id = trace_node_id(run->db, n->name);
        for (size_t k = 0; k < n->n_nics; k++) {
            char mac[18];
            topo_format_mac(n->nics[k].mac, mac);
            trace_nic_id(run->db, run->nodes[i].trace_id, run->network_ids[n->nics[k].network],
                         n->nics[k].ifname, mac);
        }
        for (size_t d = 0; d < n->n_disks; d++) {
            trace_disk_id(run->db, run->nodes[i].trace_id, n->disks[d].name,
                          n->disks[d].size_bytes);
        }
    }
    run->link_ids = fl_xcalloc(s->n_links + 1, sizeof *run->link_ids);
    struct fl_buf words = {0};
    for (size_t i = 0; i < s->n_links; i++) {
        const struct topo_link *l = &s->links[i];
        run->link_ids[i] = trace_link_id(run->db, run->network_ids[l->network],
                                         run->nodes[l->src].trace_id, run->nodes[l->dst].trace_id);
        fl_buf_reset(&words);
        impair_link_params_format(&l->params, &words);
        trace_link_params(run->db, run->link_ids[i], fl_clock_mono_ns(),
                          words.size ? words.data : "none");
    }
    fl_buf_free(&words);
    return true;
}

static bool setup_net(struct run *run, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    char *pcap_dir = run->opts->no_pcap ? NULL : fl_xasprintf("%s/pcap", run->dir);
    struct nb_config cfg = {
        .seed = s->seed,
        .pcap_dir = pcap_dir,
        .trace = run->opts->no_frames ? NULL : run->db,
        .events = &nb_events,
        .events_arg = run,
    };
    run->nb = nb_create(run->loop, &cfg, errp);
    free(pcap_dir);
    if (!run->nb) {
        return false;
    }
    for (size_t i = 0; i < s->n_networks; i++) {
        if (!nb_network_add(run->nb, s->networks[i].name, errp)) {
            return false;
        }
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct topo_node *n = &s->nodes[i];
        for (size_t k = 0; k < n->n_nics; k++) {
            char *sock = fl_xasprintf("%s/%s-%s.sock", run->sock_dir, n->name, n->nics[k].ifname);
            struct nb_port *port =
                nb_port_add(run->nb, s->networks[n->nics[k].network].name, n->name,
                            n->nics[k].ifname, n->nics[k].mac, sock, errp);
            free(sock);
            if (!port) {
                return false;
            }
        }
    }
    for (size_t i = 0; i < s->n_links; i++) {
        const struct topo_link *l = &s->links[i];
        struct impair_link_params none;
        memset(&none, 0, sizeof none);
        if (impair_link_params_equal(&l->params, &none)) {
            continue;
        }
        if (!nb_link_set(run->nb, s->networks[l->network].name, s->nodes[l->src].name,
                         s->nodes[l->dst].name, &l->params, errp)) {
            fl_error_prepend(errp, "link %s: ", l->name);
            return false;
        }
    }
    return true;
}

static bool setup_disks(struct run *run, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    struct bb_config cfg = {.seed = s->seed, .trace = run->db};
    run->bb = bb_create(run->loop, &cfg, errp);
    if (!run->bb) {
        return false;
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct topo_node *n = &s->nodes[i];
        for (size_t d = 0; d < n->n_disks; d++) {
            const struct topo_disk *td = &n->disks[d];
            char *path = fl_xasprintf("%s/disks/%s-%s.img", run->dir, n->name, td->name);
            char *sock = fl_xasprintf("%s/%s-%s.nbd", run->sock_dir, n->name, td->name);
            enum bb_crash_policy policy = BB_CRASH_KEEP;
            bb_crash_policy_parse(topo_crash_policy_name(td->crash_policy), &policy, NULL);
            struct bb_disk_config dc = {
                .node = n->name,
                .name = td->name,
                .path = path,
                .base = td->base_image,
                .size = td->size_bytes,
                .socket_path = sock,
                .export_name = td->name,
                .crash_policy = policy,
                .faults = &td->faults,
                .capacity = td->capacity_bytes,
                .cache_limit = td->cache_limit_bytes,
            };
            struct bb_disk *disk = bb_disk_add(run->bb, &dc, errp);
            free(path);
            free(sock);
            if (!disk) {
                fl_error_prepend(errp, "disk %s:%s: ", n->name, td->name);
                return false;
            }
        }
    }
    return true;
}

static bool setup_nodes(struct run *run, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    enum hv_accel accel = HV_ACCEL_AUTO;
    if (run->opts->accel && !hv_accel_parse(run->opts->accel, &accel, errp)) {
        return false;
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct topo_node *tn = &s->nodes[i];
        struct rn_node *n = &run->nodes[i];
        struct hv_nic_config *nics = fl_xcalloc(tn->n_nics + 1, sizeof *nics);
        for (size_t k = 0; k < tn->n_nics; k++) {
            char mac[18], ip[16];
            topo_format_mac(tn->nics[k].mac, mac);
            topo_format_ip(tn->nics[k].ip, ip);
            nics[k].socket_path = node_str(
                n, fl_xasprintf("%s/%s-%s.sock", run->sock_dir, tn->name, tn->nics[k].ifname));
            nics[k].mac = node_str(n, fl_xstrdup(mac));
            nics[k].ip_cidr = node_str(n, fl_xasprintf("%s/%u", ip, tn->nics[k].prefix_len));
        }
        struct hv_disk_config *disks = fl_xcalloc(tn->n_disks + 1, sizeof *disks);
        for (size_t d = 0; d < tn->n_disks; d++) {
            disks[d].kind = HV_DISK_NBD;
            disks[d].path = node_str(
                n, fl_xasprintf("%s/%s-%s.nbd", run->sock_dir, tn->name, tn->disks[d].name));
            disks[d].export_name = tn->disks[d].name;
            disks[d].mount_point = tn->disks[d].mount;
            disks[d].format_if_blank = tn->disks[d].format;
        }
        struct hv_host_entry *hosts = fl_xcalloc(s->n_nodes + 1, sizeof *hosts);
        size_t n_hosts = 0;
        for (size_t j = 0; j < s->n_nodes; j++) {
            uint32_t addr = topo_host_address(s, (uint32_t)i, (uint32_t)j);
            if (!addr) {
                continue;
            }
            char ip[16], mac[18];
            topo_format_ip(addr, ip);
            hosts[n_hosts].name = s->nodes[j].name;
            hosts[n_hosts].ip = node_str(n, fl_xstrdup(ip));
            /* With the MAC, the guest gets a permanent neighbor entry, so
             * ARP never decides a partition's outcome (a one-way cut must
             * not also cut the ARP replies the other way). */
            for (size_t k = 0; k < s->nodes[j].n_nics; k++) {
                if (s->nodes[j].nics[k].ip == addr) {
                    topo_format_mac(s->nodes[j].nics[k].mac, mac);
                    hosts[n_hosts].mac = node_str(n, fl_xstrdup(mac));
                }
            }
            n_hosts++;
        }
        struct hv_command *cmds = fl_xcalloc(tn->n_commands + 1, sizeof *cmds);
        for (size_t c = 0; c < tn->n_commands; c++) {
            cmds[c].cmd = tn->commands[c].command;
            cmds[c].restart = tn->commands[c].restart;
        }
        const char **env = fl_xcalloc(tn->n_env + 1, sizeof *env);
        for (size_t e = 0; e < tn->n_env; e++) {
            env[e] = node_str(n, fl_xasprintf("%s=%s", tn->env[e].name, tn->env[e].value));
        }
        char *console = fl_xasprintf("%s/console/%s.log", run->dir, tn->name);
        struct hv_node_config cfg = {
            .name = tn->name,
            .vcpus = tn->vcpus,
            .memory_mib = (unsigned)(tn->memory_bytes >> 20),
            .kernel = n->image->kernel,
            .initrd = n->image->initrd,
            .run_dir = run->dir,
            .accel = accel,
            .nics = nics,
            .n_nics = tn->n_nics,
            .disks = disks,
            .n_disks = tn->n_disks,
            .hosts = hosts,
            .n_hosts = n_hosts,
            .commands = cmds,
            .n_commands = tn->n_commands,
            .env = env,
            .n_env = tn->n_env,
            .console_log = console,
            .ready_timeout_ns = s->boot_timeout_ns,
        };
        n->hv = hv_node_create(run->loop, &cfg, &node_callbacks, n, errp);
        free(console);
        free(nics);
        free(disks);
        free(hosts);
        free(cmds);
        free(env);
        if (!n->hv) {
            fl_error_prepend(errp, "node %s: ", tn->name);
            return false;
        }
    }
    return true;
}

static void on_boot_timeout(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct run *run = arg;
    struct fl_buf slow = {0};
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        if (!run->nodes[i].ready) {
            fl_buf_printf(&slow, "%s%s", slow.size ? ", " : "", run->nodes[i].topo->name);
        }
    }
    struct fl_error *err = NULL;
    fl_error_setf(&err, ETIMEDOUT,
                  "not every node was ready within run.boot-timeout %.0fs (not ready: %s); see "
                  "the console logs in %s/console/",
                  (double)run->scen->boot_timeout_ns / 1e9, slow.data ? slow.data : "?", run->dir);
    fl_buf_free(&slow);
    infra_error(run, err);
}

static bool boot_all(struct run *run, struct fl_error **errp)
{
    set_phase(run, RN_BOOT);
    run->boot_start_ns = fl_loop_now(run->loop);
    /* hv enforces each node's ready timeout; this one covers the fleet. */
    run->boot_timer = fl_timer_create(run->loop, on_boot_timeout, run);
    fl_timer_arm(run->boot_timer, run->boot_start_ns + run->scen->boot_timeout_ns + FL_NS_PER_SEC);
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        run->nodes[i].boot_start_ns = fl_loop_now(run->loop);
        if (!hv_node_boot(run->nodes[i].hv, errp)) {
            return false; /* hv's messages name the node */
        }
        if (run->db) {
            trace_event(run->db, fl_loop_now(run->loop), "boot", run->nodes[i].trace_id, NULL);
        }
    }
    rn_log(&run->log, "boot", "%zu node%s booting", run->scen->n_nodes,
           run->scen->n_nodes == 1 ? "" : "s");
    return true;
}

static void on_signal(struct fl_loop *loop, int signo, void *arg)
{
    struct run *run = arg;
    if (run->interrupted) {
        return;
    }
    run->interrupted = true;
    rn_log(&run->log, "interrupt", "%s: tearing down (partial results are kept)", strsignal(signo));
    set_phase(run, RN_DONE);
}

/* ---- loading ---- */

static bool load(struct run *run, struct fl_error **errp)
{
    const struct runner_options *o = run->opts;
    const char *path = o->scenario_path;
    uint64_t seed = o->seed;
    bool has_seed = o->has_seed;
    char *replay_path = NULL;
    if (o->replay_of) {
        char *seed_file = fl_xasprintf("%s/seed", o->replay_of);
        char *text = fl_read_file(seed_file, NULL, errp);
        free(seed_file);
        if (!text) {
            fl_error_prepend(errp, "--replay-of '%s' is not a run directory: ", o->replay_of);
            return false;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text) {
            fl_error_setf(errp, EINVAL, "--replay-of '%s': seed file holds '%s', not a number",
                          o->replay_of, text);
            free(text);
            return false;
        }
        free(text);
        if (!has_seed) {
            seed = v;
            has_seed = true;
        }
        if (!path) {
            replay_path = fl_xasprintf("%s/scenario.yaml", o->replay_of);
            path = replay_path;
        }
    }
    if (!path) {
        fl_error_setf(errp, EINVAL, "no scenario file given (faultline run FILE)");
        return false;
    }
    run->scenario_text = fl_read_file(path, &run->scenario_size, errp);
    if (!run->scenario_text) {
        free(replay_path);
        return false;
    }
    run->scen = topo_load_file_seed(path, has_seed ? &seed : NULL, errp);
    free(replay_path);
    return run->scen != NULL;
}

/* ---- teardown ---- */

static void teardown(struct run *run)
{
    rn_checks_abort(run, run->interrupted ? "interrupted before it finished"
                                          : "the run ended before it finished");
    fl_timer_destroy(run->timeline_timer);
    fl_timer_destroy(run->boot_timer);
    fl_timer_destroy(run->drain_timer);
    run->timeline_timer = run->boot_timer = run->drain_timer = NULL;
    if (run->nodes) {
        for (size_t i = 0; i < run->scen->n_nodes; i++) {
            hv_node_destroy(run->nodes[i].hv);
            run->nodes[i].hv = NULL;
        }
    }
    if (run->db && run->partition_event > 0) {
        trace_event_end(run->db, run->partition_event, fl_clock_mono_ns());
    }
    nb_destroy(run->nb);
    run->nb = NULL;
    bb_destroy(run->bb);
    run->bb = NULL;
    if (run->sock_dir_owned && run->sock_dir) {
        fl_rm_rf(run->sock_dir);
    }
}

static void free_run(struct run *run)
{
    if (run->nodes) {
        for (size_t i = 0; i < run->scen->n_nodes; i++) {
            for (size_t k = 0; k < run->nodes[i].n_strings; k++) {
                free(run->nodes[i].strings[k]);
            }
            free(run->nodes[i].strings);
        }
    }
    free(run->nodes);
    for (size_t i = 0; i < run->n_images; i++) {
        hv_image_clear(&run->images[i]);
    }
    free(run->images);
    for (size_t i = 0; i < run->n_results; i++) {
        struct rn_result *r = &run->results[i];
        free(r->name);
        free(r->node);
        free(r->command);
        free(r->source);
        free(r->out);
        free(r->err);
        free(r->message);
    }
    free(run->results);
    free(run->pending);
    free(run->link_ids);
    free(run->network_ids);
    free(run->partition_label);
    if (run->events_log) {
        fclose(run->events_log);
    }
    fl_loop_destroy(run->loop);
    topo_scenario_free(run->scen);
    free(run->scenario_text);
    free(run->dir);
    free(run->sock_dir);
    fl_error_free(run->infra);
}

static void print_summary(struct run *run)
{
    if (run->quiet) {
        return;
    }
    size_t failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    printf("\n%s: %s", run->scen->name, runner_result_name(run->result));
    if (run->n_results) {
        printf(" (%zu of %zu check%s passed)", run->n_results - failed, run->n_results,
               run->n_results == 1 ? "" : "s");
    }
    printf("\n");
    for (size_t i = 0; i < run->n_results; i++) {
        const struct rn_result *r = &run->results[i];
        printf("  %s %-28s %s%s%s\n", r->passed ? "PASS" : "FAIL", r->name, r->node,
               r->passed ? "" : ": ", r->passed ? "" : r->message);
    }
    if (run->infra) {
        printf("  error: %s\n", run->infra->msg);
    }
    printf("run directory: %s\n", run->dir);
    printf("report:        %s/report.html\n", run->dir);
    printf("replay:        faultline run --replay-of %s\n", run->dir);
}

bool runner_run(const struct runner_options *opts, struct runner_outcome *out,
                struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    struct run runv = {0}, *run = &runv;
    run->opts = opts;
    run->clock.run_start_ns = fl_clock_mono_ns();
    rn_log_init(&run->log, &run->clock);
    run->guest = &rn_guest_hv;
    run->check_done = maybe_finish;
    run->timeline_over = timeline_over;
    run->result = RUNNER_ERROR;
    struct fl_error *err = NULL;

    if (!load(run, &err)) {
        out->result = RUNNER_INVALID;
        fl_error_propagate(errp, err);
        free_run(run);
        return false;
    }
    if (opts->out_dir && !rn_dir_check_out(opts->out_dir, &err)) {
        out->result = RUNNER_INVALID;
        fl_error_propagate(errp, err);
        free_run(run);
        return false;
    }
    run->loop = fl_loop_create(NULL, &err);
    run->clock.loop = run->loop;
    if (!run->loop || !rn_dir_create(run, &err)) {
        out->result = RUNNER_ERROR;
        fl_error_propagate(errp, err);
        out->run_dir = run->dir ? fl_xstrdup(run->dir) : NULL;
        free_run(run);
        return false;
    }
    out->run_dir = fl_xstrdup(run->dir);
    run->nodes = fl_xcalloc(run->scen->n_nodes + 1, sizeof *run->nodes);
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        run->nodes[i].run = run;
        run->nodes[i].topo = &run->scen->nodes[i];
    }
    /* SIGPIPE never kills the controller; SIGINT/SIGTERM tear down. */
    signal(SIGPIPE, SIG_IGN);
    fl_loop_add_signal(run->loop, SIGINT, on_signal, run);
    fl_loop_add_signal(run->loop, SIGTERM, on_signal, run);
    rn_view_start(run);
    rn_log(&run->log, "scenario", "%s (%s), seed %llu%s", run->scen->name, run->scen->file,
           (unsigned long long)run->scen->seed, run->scen->seed_random ? " (drawn)" : "");
    rn_log(&run->log, "run-dir", "%s", run->dir);

    bool ok = setup_trace(run, &err) && build_images(run, &err) && setup_net(run, &err) &&
              setup_disks(run, &err) && setup_nodes(run, &err) && boot_all(run, &err);
    if (!ok && run->interrupted) {
        fl_error_free(err); /* a setup step stopped by the signal: not an error */
        err = NULL;
    } else if (!ok) {
        infra_error(run, err);
        err = NULL;
    } else if (!run->interrupted) {
        int r = fl_loop_run(run->loop);
        if (r < 0 && !run->infra) {
            fl_error_setf(&run->infra, -r, "event loop failed: %s", strerror(-r));
        }
    }

    /* Verdict. */
    size_t failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    if (run->interrupted) {
        run->result = RUNNER_INTERRUPTED;
    } else if (run->infra) {
        run->result = RUNNER_ERROR;
    } else {
        run->result = failed ? RUNNER_FAIL : RUNNER_PASS;
    }
    rn_view_stop(run);
    teardown(run);
    rn_checks_abort(run, "the run ended before it finished");
    failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    if (run->result == RUNNER_PASS && failed) {
        run->result = RUNNER_FAIL;
    }
    rn_log(&run->log, "verdict", "%s", runner_result_name(run->result));

    if (run->db) {
        trace_run_end(run->db, runner_result_name(run->result), run->infra ? run->infra->msg : NULL,
                      TRACE_NO_TIME);
        trace_db_close(run->db);
        run->db = NULL;
    }
    struct fl_error *ferr = NULL;
    if (!rn_write_junit(run, &ferr) || !rn_write_summary(run, &ferr)) {
        rn_log(&run->log, "error", "%s", ferr->msg);
        fl_error_free(ferr);
        ferr = NULL;
    }
    if (!opts->no_report) {
        if (trace_report_write(run->dir, &ferr)) {
            out->report = fl_xasprintf("%s/report.html", run->dir);
        } else {
            rn_log(&run->log, "error", "report: %s", ferr ? ferr->msg : "?");
            fl_error_free(ferr);
        }
    }
    print_summary(run);
    out->result = run->result;
    out->checks = run->n_results;
    out->checks_failed = failed;
    bool completed = run->result == RUNNER_PASS || run->result == RUNNER_FAIL;
    if (!completed) {
        if (run->infra) {
            fl_error_setf(errp, run->infra->code, "%s", run->infra->msg);
        } else {
            fl_error_setf(errp, EINTR, "interrupted");
        }
    }
    free_run(run);
    return completed;
}
