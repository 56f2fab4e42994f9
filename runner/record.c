/*
 * The recorded nodes of a run and their segments (runner/record.h):
 *
 *   <run>/rr/<node>/<segment>/  segment.json   command lines, QEMU, image, end, icount
 *                               replay.log.zst the QEMU record/replay log (zstd)
 *                               disk-<i>.img   each disk as it was when the segment began
 *                               console.log    the console bytes of this segment
 *                               agent.log      the guest's bytes on the agent channel
 *
 * A segment is one QEMU process: the first boot, then each restart.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/record.h"
#include "runner/record.h"

struct rn_rec_node {
    bool on;
    bool active; /* a segment is open */
    unsigned next;
    char *dir;
    struct hv_rr_segment seg;
    int64_t start_ns;
};

struct rn_record {
    struct hv_qemu_info qemu;
    enum hv_rr_flavor flavor;
    char *dir;
    struct rn_rec_node *nodes;
    size_t n;
};

static bool node_named(const struct run *run, const char *name, size_t len, size_t *idx)
{
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        if (strlen(run->scen->nodes[i].name) == len &&
            !strncmp(run->scen->nodes[i].name, name, len)) {
            *idx = i;
            return true;
        }
    }
    return false;
}

/* The rules live in topology (faultline validate applies them to run.record). */
static bool check_node(struct run *run, size_t i, struct fl_error **errp)
{
    const struct topo_scenario *s = run->scen;
    struct topo_record_problem *p;
    size_t n = topo_record_problems(s, (uint32_t)i, &p);
    if (n) {
        fl_error_setf(errp, EINVAL, "%s:%u:%u: %s", s->file, p[0].loc.line, p[0].loc.col, p[0].msg);
    }
    topo_record_problems_free(p, n);
    return n == 0;
}

bool rn_record_check(struct run *run, struct fl_error **errp)
{
    const char *spec = run->opts->record;
    bool from_scenario = false;
    if (!spec) {
        /* run.record of the scenario; --record on the command line wins. */
        for (size_t i = 0; i < run->scen->n_nodes && !from_scenario; i++) {
            from_scenario = run->scen->nodes[i].recorded;
        }
        if (!from_scenario) {
            return true;
        }
        spec = "-";
    }
    if (run->opts->accel && !strcmp(run->opts->accel, "kvm")) {
        fl_error_setf(errp, EINVAL,
                      "%s with --accel kvm: QEMU's record/replay needs TCG (recording "
                      "forces TCG; use --accel auto or tcg)",
                      from_scenario ? "run.record" : "--record");
        return false;
    }
    struct rn_record *rec = fl_xcalloc(1, sizeof *rec);
    rec->n = run->scen->n_nodes;
    rec->nodes = fl_xcalloc(rec->n + 1, sizeof *rec->nodes);
    run->record = rec;
    if (from_scenario) {
        for (size_t i = 0; i < rec->n; i++) {
            rec->nodes[i].on = run->scen->nodes[i].recorded;
        }
        spec = "";
    } else if (!*spec) {
        for (size_t i = 0; i < rec->n; i++) {
            rec->nodes[i].on = true;
        }
    }
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",");
        size_t idx;
        if (!len) {
            fl_error_setf(errp, EINVAL, "--record '%s': an empty node name", spec);
            return false;
        }
        if (!node_named(run, p, len, &idx)) {
            struct fl_buf names = {0};
            for (size_t i = 0; i < run->scen->n_nodes; i++) {
                fl_buf_printf(&names, "%s%s", i ? ", " : "", run->scen->nodes[i].name);
            }
            fl_error_setf(errp, EINVAL, "--record: the scenario %s has no node '%.*s' (nodes: %s)",
                          run->scen->file, (int)len, p, names.data ? names.data : "none");
            fl_buf_free(&names);
            return false;
        }
        rec->nodes[idx].on = true;
        p += len;
        p += *p == ',';
    }
    for (size_t i = 0; i < rec->n; i++) {
        if (rec->nodes[i].on && !check_node(run, i, errp)) {
            return false;
        }
    }
    return true;
}

bool rn_record_on(const struct run *run, size_t i)
{
    return run->record && i < run->record->n && run->record->nodes[i].on;
}

int rn_record_segment_now(const struct run *run, size_t i)
{
    if (!rn_record_on(run, i)) {
        return -1;
    }
    const struct rn_rec_node *rn = &run->record->nodes[i];
    return rn->active ? (int)rn->seg.index : rn->next ? (int)rn->next - 1 : 0;
}

bool rn_record_setup(struct run *run, struct fl_error **errp)
{
    struct rn_record *rec = run->record;
    if (!rec) {
        return true;
    }
    if (!hv_qemu_probe(NULL, &rec->qemu, errp) ||
        !hv_rr_flavor_for(rec->qemu.major, rec->qemu.minor, &rec->flavor, errp)) {
        fl_error_prepend(errp, "--record: ");
        return false;
    }
    rec->dir = fl_xasprintf("%s/rr", run->dir);
    if (!fl_mkdir_p(rec->dir, 0755, errp)) {
        return false;
    }
    struct fl_buf names = {0};
    for (size_t i = 0; i < rec->n; i++) {
        if (rec->nodes[i].on) {
            fl_buf_printf(&names, "%s%s", names.size ? ", " : "", run->scen->nodes[i].name);
        }
    }
    rn_log(&run->log, "record", "%s recorded into %s (QEMU %s, %s; TCG, icount)", names.data,
           rec->dir, rec->qemu.version, hv_rr_flavor_name(rec->flavor));
    fl_buf_free(&names);
    return true;
}

static void seg_fail(struct run *run, struct rn_rec_node *rn, const char *what,
                     const struct fl_error *err)
{
    rn_log(&run->log, "error", "record %s segment %u: %s: %s", rn->seg.node, rn->seg.index, what,
           err->msg);
}

bool rn_record_segment_start(struct run *run, size_t i, struct fl_error **errp)
{
    struct rn_record *rec = run->record;
    if (!rec || i >= rec->n || !rec->nodes[i].on) {
        return true;
    }
    struct rn_rec_node *rn = &rec->nodes[i];
    struct rn_node *n = &run->nodes[i];
    const struct topo_node *tn = n->topo;
    if (rn->active) {
        /* The previous segment never saw its exit: close it as it is. */
        rn_record_segment_end(run, i, 0);
    }
    hv_rr_segment_clear(&rn->seg);
    free(rn->dir);
    unsigned k = rn->next++;
    rn->dir = fl_xasprintf("%s/%s/%u", rec->dir, tn->name, k);
    if (!fl_mkdir_p(rn->dir, 0755, errp)) {
        return false;
    }
    struct hv_rr_segment *s = &rn->seg;
    s->node = fl_xstrdup(tn->name);
    s->index = k;
    s->qemu_path = fl_xstrdup(rec->qemu.path);
    s->qemu_version = fl_xstrdup(rec->qemu.version);
    s->qemu_package = fl_xstrdup(rec->qemu.package);
    s->qemu_hash = rec->qemu.hash;
    s->flavor = rec->flavor;
    s->image_key = fl_xstrdup(n->image && n->image->key ? n->image->key : "");
    s->log = fl_xstrdup(HV_RR_LOG_FILE);
    s->started_unix = (int64_t)time(NULL);
    s->disks = fl_xcalloc(tn->n_disks + 1, sizeof *s->disks);
    const char **disk_files = fl_xcalloc(tn->n_disks + 1, sizeof *disk_files);
    bool ok = true;
    for (size_t d = 0; d < tn->n_disks && ok; d++) {
        const struct topo_disk *td = &tn->disks[d];
        /* Reads must see what the disk holds: the file, once blkback's
         * volatile cache is written to it (empty at a first boot; after a
         * crash the crash policy already decided). */
        struct bb_disk *bd = bb_disk_find(run->bb, tn->name, td->name);
        if (bd) {
            int r = bb_disk_flush(bd);
            if (r < 0) {
                fl_error_setf_errno(errp, -r, "disk %s:%s: flush before the segment", tn->name,
                                    td->name);
                ok = false;
                break;
            }
        }
        char *src = fl_xasprintf("%s/disks/%s-%s.img", run->dir, tn->name, td->name);
        s->disks[d].name = fl_xstrdup(td->name);
        s->disks[d].file = fl_xasprintf("disk-%zu.img", d);
        s->disks[d].size = bd ? bb_disk_size(bd) : td->size_bytes;
        s->n_disks++;
        disk_files[d] = s->disks[d].file;
        char *dst = fl_xasprintf("%s/%s", rn->dir, s->disks[d].file);
        ok = hv_rr_copy_file(src, dst, errp);
        free(src);
        free(dst);
    }
    if (ok) {
        struct hv_rr_argv_opts ro = {
            .mode = HV_RR_REPLAY,
            .flavor = rec->flavor,
            .rrfile = HV_RR_LOG_FILE,
            .console = HV_RR_CONSOLE_FILE,
            .agent = HV_RR_AGENT_FILE,
            .disks = disk_files,
            .n_disks = tn->n_disks,
        };
        s->replay_argv = hv_node_rr_argv(n->hv, &ro, errp);
        ok = s->replay_argv != NULL;
    }
    free(disk_files);
    struct hv_rr_segment_opts so = {.dir = rn->dir, .flavor = rec->flavor};
    if (ok) {
        ok = hv_node_record_next(n->hv, &so, errp);
    }
    if (ok) {
        const char *const *argv = hv_node_argv(n->hv);
        size_t len = hv_rr_argv_len(argv);
        s->record_argv = fl_xcalloc(len + 1, sizeof *s->record_argv);
        for (size_t a = 0; a < len; a++) {
            s->record_argv[a] = fl_xstrdup(argv[a]);
        }
        char *meta = fl_xasprintf("%s/" HV_RR_SEGMENT_FILE, rn->dir);
        ok = hv_rr_segment_write(meta, s, errp);
        free(meta);
    }
    if (!ok) {
        fl_error_prepend(errp, "record %s segment %u: ", tn->name, k);
        return false;
    }
    rn->active = true;
    rn->start_ns = fl_clock_mono_ns();
    return true;
}

void rn_record_segment_end(struct run *run, size_t i, int wait_status)
{
    struct rn_record *rec = run->record;
    if (!rec || i >= rec->n || !rec->nodes[i].active) {
        return;
    }
    struct rn_rec_node *rn = &rec->nodes[i];
    struct hv_rr_segment *s = &rn->seg;
    rn->active = false;
    s->duration_ns = fl_clock_mono_ns() - rn->start_ns;
    struct hv_node *hv = run->nodes[i].hv;
    s->has_icount = hv && hv_node_record_icount(hv, &s->icount);
    if (s->has_icount) {
        s->end = HV_RR_END_QUIT;
    } else if (WIFEXITED(wait_status)) {
        s->end = HV_RR_END_EXITED;
    } else {
        s->end = HV_RR_END_KILLED;
    }
    struct fl_error *err = NULL;
    char *raw = fl_xasprintf("%s/" HV_RR_LOG_FILE, rn->dir);
    char *zst = fl_xasprintf("%s/" HV_RR_LOG_ZST, rn->dir);
    if (access(raw, F_OK) == 0) {
        if (hv_rr_zstd(true, raw, zst, &err)) {
            free(s->log);
            s->log = fl_xstrdup(HV_RR_LOG_ZST);
        } else {
            seg_fail(run, rn, "compressing the log (kept raw)", err);
            fl_error_free(err);
            err = NULL;
        }
    }
    free(raw);
    free(zst);
    char *meta = fl_xasprintf("%s/" HV_RR_SEGMENT_FILE, rn->dir);
    if (!hv_rr_segment_write(meta, s, &err)) {
        seg_fail(run, rn, "writing segment.json", err);
        fl_error_free(err);
    }
    free(meta);
    if (run->db && run->nodes[i].trace_id > 0) {
        struct trace_rr_segment row = {
            .node_id = run->nodes[i].trace_id,
            .segment = s->index,
            .start_ns = rn->start_ns,
            .end_ns = rn->start_ns + s->duration_ns,
            .ended = hv_rr_end_name(s->end),
            .has_icount = s->has_icount,
            .icount = s->icount,
        };
        int r = trace_rr_segment(run->db, &row);
        if (r < 0) {
            rn_log(&run->log, "error", "record %s segment %u: run.db: %s", s->node, s->index,
                   strerror(-r));
        }
    }
    if (s->end == HV_RR_END_QUIT) {
        rn_log(&run->log, "record", "%s segment %u: %llu instructions in %.1fs", s->node, s->index,
               (unsigned long long)s->icount, (double)s->duration_ns / 1e9);
    } else {
        rn_log(&run->log, "error", "record %s segment %u ended '%s': it will not replay", s->node,
               s->index, hv_rr_end_name(s->end));
    }
}

void rn_record_stop_all(struct run *run)
{
    struct rn_record *rec = run->record;
    if (!rec || !run->nodes) {
        return;
    }
    for (size_t i = 0; i < rec->n; i++) {
        struct rn_node *n = &run->nodes[i];
        if (!rec->nodes[i].on || !n->hv || hv_node_pid(n->hv) <= 0) {
            continue;
        }
        n->expect_exit = true;
        struct fl_error *err = NULL;
        if (!hv_node_record_end(n->hv, 10 * FL_NS_PER_SEC, &err)) {
            rn_log(&run->log, "error", "%s", err->msg);
            fl_error_free(err);
        }
    }
}

void rn_record_free(struct run *run)
{
    struct rn_record *rec = run->record;
    if (!rec) {
        return;
    }
    for (size_t i = 0; i < rec->n; i++) {
        hv_rr_segment_clear(&rec->nodes[i].seg);
        free(rec->nodes[i].dir);
    }
    free(rec->nodes);
    free(rec->dir);
    hv_qemu_info_clear(&rec->qemu);
    free(rec);
    run->record = NULL;
}
