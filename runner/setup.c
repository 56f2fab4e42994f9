/*
 * Wiring one run's scenario into the rooms: the run database (trace),
 * the guest images (hv), the switch (netback), the disks (blkback) and
 * the guests (hv).  run.c calls these in that order and owns the
 * callbacks they register.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/setup.h"

static char *node_str(struct rn_node *n, char *s)
{
    n->strings = fl_xgrow(n->strings, &n->strings_alloc, n->n_strings + 1, sizeof *n->strings);
    n->strings[n->n_strings++] = s;
    return s;
}

static void progress(void *arg, const char *stage, const char *item, uint64_t done, uint64_t total)
{
    struct run *run = arg;
    if (!run->live) {
        return;
    }
    fprintf(run->human, "\r\033[K  image: %s %s", stage, item ? item : "");
    if (total) {
        fprintf(run->human, " (%llu/%llu)", (unsigned long long)done, (unsigned long long)total);
    }
    fflush(run->human);
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

bool rn_build_images(struct run *run, struct fl_error **errp)
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
                fprintf(run->human, "\r\033[K");
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

bool rn_setup_trace(struct run *run, struct fl_error **errp)
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

bool rn_setup_net(struct run *run, const struct nb_events *events, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    char *pcap_dir = run->opts->no_pcap ? NULL : fl_xasprintf("%s/pcap", run->dir);
    struct nb_config cfg = {
        .seed = s->seed,
        .pcap_dir = pcap_dir,
        .trace = run->opts->no_frames ? NULL : run->db,
        .events = events,
        .events_arg = run,
    };
    run->nb = nb_create(run->loop, &cfg, errp);
    free(pcap_dir);
    if (!run->nb) {
        return false;
    }
    for (size_t i = 0; i < s->n_networks; i++) {
        /* learning: false (the default) keeps port security on: a frame
         * whose source MAC is not its NIC's is dropped as 'spoofed'. */
        if (!nb_network_add(run->nb, s->networks[i].name, errp) ||
            !nb_network_set_learning(run->nb, s->networks[i].name, s->networks[i].learning, errp)) {
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

bool rn_setup_disks(struct run *run, bb_host_error_cb *on_host_error, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    struct bb_config cfg = {
        .seed = s->seed,
        .trace = run->db,
        .on_host_error = on_host_error,
        .on_host_error_arg = run,
    };
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

bool rn_setup_nodes(struct run *run, const struct hv_callbacks *callbacks, struct fl_error **errp)
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
        n->hv = hv_node_create(run->loop, &cfg, callbacks, n, errp);
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
