/*
 * The record and replay command lines (hv/record.h): derived from a
 * node's plain one (hv_qemu_cmdline), option by option.  Every option the
 * plain line may hold is known here; any other is refused, so a new one
 * cannot silently break recording.
 *
 *   record: + -icount shift=auto,rr=record,rrfile=F [-rtc clock=vm]
 *           console/agent chardevs + logfile; -serial chardev:agent
 *           per NIC: + -object filter-replay [virtio-net tx=timer]
 *           per disk: the node renamed d<N>-rr under a blkreplay d<N>
 *   replay: the same devices; NICs are hub ports (the log feeds the
 *           frames), disks are the segment's copies, chardevs are files
 *           on /dev/null (open backends) with logfiles; -S
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/internal.h"
#include "hv/record.h"

void hv_rr_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++) {
        free(argv[i]);
    }
    free(argv);
}

size_t hv_rr_argv_len(const char *const *argv)
{
    size_t n = 0;
    while (argv && argv[n]) {
        n++;
    }
    return n;
}

struct argv_out {
    char **v;
    size_t n, alloc;
};

static void out_add(struct argv_out *o, char *s)
{
    o->v = fl_xgrow(o->v, &o->alloc, o->n + 2, sizeof *o->v);
    o->v[o->n++] = s;
    o->v[o->n] = NULL;
}

static void out_dup(struct argv_out *o, const char *s)
{
    out_add(o, fl_xstrdup(s));
}

/* A QEMU option value: ',' is written ',,'. */
static void rr_val(struct fl_buf *b, const char *s)
{
    for (; *s; s++) {
        fl_buf_append(b, s, 1);
        if (*s == ',') {
            fl_buf_append(b, ",", 1);
        }
    }
}

/* The value of `key=` in a QEMU option string (first field may be the
 * driver/backend without a key); NULL when absent.  Caller frees. */
static char *opt_field(const char *opts, const char *key)
{
    size_t klen = strlen(key);
    const char *p = opts;
    while (*p) {
        const char *start = p;
        /* find the end of this field (",," is an escaped comma) */
        while (*p && !(*p == ',' && p[1] != ',')) {
            p += (*p == ',' && p[1] == ',') ? 2 : 1;
        }
        if ((size_t)(p - start) > klen && !strncmp(start, key, klen) && start[klen] == '=') {
            struct fl_buf b = {0};
            for (const char *q = start + klen + 1; q < p; q++) {
                fl_buf_append(&b, q, 1);
                if (*q == ',') {
                    q++;
                }
            }
            return b.data ? fl_buf_steal(&b) : fl_xstrdup("");
        }
        if (*p == ',') {
            p++;
        }
    }
    return NULL;
}

static bool starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

/* "d3" / "f3" / "n3" -> 3 */
static bool index_of(const char *id, char letter, unsigned *k)
{
    if (!id || id[0] != letter || !id[1]) {
        return false;
    }
    char *end;
    unsigned long v = strtoul(id + 1, &end, 10);
    if (*end || v > 1000) {
        return false;
    }
    *k = (unsigned)v;
    return true;
}

static bool has_read_only(const char *v)
{
    char *ro = opt_field(v, "read-only");
    bool r = ro && !strcmp(ro, "on");
    free(ro);
    return r;
}

static bool replay_disk(const struct hv_rr_argv_opts *o, unsigned k, const char **file,
                        struct fl_error **errp)
{
    if (k >= o->n_disks || !o->disks[k]) {
        fl_error_setf(errp, EINVAL,
                      "replay: disk d%u has no saved copy (the segment lists %zu disk%s)", k,
                      o->n_disks, o->n_disks == 1 ? "" : "s");
        return false;
    }
    *file = o->disks[k];
    return true;
}

static void add_blkreplay(struct argv_out *out, unsigned k, bool ro)
{
    out_dup(out, "-blockdev");
    out_add(out, fl_xasprintf("driver=blkreplay,node-name=d%u,image=d%u-rr%s", k, k,
                              ro ? ",read-only=on" : ""));
}

static bool rr_blockdev(struct argv_out *out, const char *v, const struct hv_rr_argv_opts *o,
                        struct fl_error **errp)
{
    char *driver = opt_field(v, "driver");
    char *node = opt_field(v, "node-name");
    bool ro = has_read_only(v);
    unsigned k;
    bool ok = true;
    struct fl_buf b = {0};
    const char *file;
    if (driver && !strcmp(driver, "nbd") && index_of(node, 'd', &k)) {
        if (o->mode == HV_RR_RECORD) {
            /* the same NBD client, renamed under a blkreplay node */
            const char *rest = strstr(v, ",node-name=");
            rest = rest ? strchr(rest + 1, ',') : NULL;
            fl_buf_printf(&b, "driver=nbd,node-name=d%u-rr%s", k, rest ? rest : "");
            out_dup(out, "-blockdev");
            out_add(out, fl_buf_steal(&b));
        } else if ((ok = replay_disk(o, k, &file, errp))) {
            out_dup(out, "-blockdev");
            fl_buf_printf(&b, "driver=file,node-name=f%u-rr,filename=", k);
            rr_val(&b, file);
            fl_buf_puts(&b, ro ? ",read-only=on" : "");
            out_add(out, fl_buf_steal(&b));
            out_dup(out, "-blockdev");
            out_add(out, fl_xasprintf("driver=raw,node-name=d%u-rr,file=f%u-rr%s", k, k,
                                      ro ? ",read-only=on" : ""));
        }
        if (ok) {
            add_blkreplay(out, k, ro);
        }
    } else if (driver && !strcmp(driver, "file") && index_of(node, 'f', &k)) {
        if (o->mode == HV_RR_RECORD) {
            out_dup(out, "-blockdev");
            out_dup(out, v);
        } else if ((ok = replay_disk(o, k, &file, errp))) {
            out_dup(out, "-blockdev");
            fl_buf_printf(&b, "driver=file,node-name=f%u,filename=", k);
            rr_val(&b, file);
            fl_buf_puts(&b, ro ? ",read-only=on" : "");
            out_add(out, fl_buf_steal(&b));
        }
    } else if (driver && !strcmp(driver, "raw") && index_of(node, 'd', &k)) {
        out_dup(out, "-blockdev");
        out_add(out, fl_xasprintf("driver=raw,node-name=d%u-rr,file=f%u%s", k, k,
                                  ro ? ",read-only=on" : ""));
        add_blkreplay(out, k, ro);
    } else {
        fl_error_setf(errp, EINVAL,
                      "recording: -blockdev '%s' is not a disk the recording builder knows "
                      "(nbd d<N>, file f<N>, raw d<N>)",
                      v);
        ok = false;
    }
    fl_buf_free(&b);
    free(driver);
    free(node);
    return ok;
}

static bool rr_chardev(struct argv_out *out, const char *v, const struct hv_rr_argv_opts *o,
                       struct fl_error **errp)
{
    char *id = opt_field(v, "id");
    bool ok = true;
    struct fl_buf b = {0};
    if (id && (!strcmp(id, "con") || !strcmp(id, "agent"))) {
        bool con = !strcmp(id, "con");
        const char *log = con ? o->console : o->agent;
        if (!log) {
            fl_error_setf(errp, EINVAL, "recording: no file for the %s transcript",
                          con ? "console" : "agent");
            ok = false;
        } else {
            /* The bytes the guest writes, whatever the backend: QEMU's
             * logfile sees exactly what the frontend wrote (in replay,
             * what the recorded writes returned). */
            if (o->mode == HV_RR_RECORD) {
                fl_buf_puts(&b, v);
            } else {
                /* An open backend, as in the recording: a `null` chardev
                 * reports itself closed, so the guest's agent port would
                 * see no host and the replay diverges when it opens. */
                fl_buf_printf(&b, "file,id=%s,path=/dev/null", id);
            }
            fl_buf_puts(&b, ",logfile=");
            rr_val(&b, log);
            fl_buf_puts(&b, ",logappend=off");
            out_dup(out, "-chardev");
            out_add(out, fl_buf_steal(&b));
            if (!con) {
                /* A serial port on the agent chardev registers it with
                 * record/replay (the second -serial; the same order in
                 * both): without it the replay stops after HELLO. */
                out_dup(out, "-serial");
                out_dup(out, "chardev:agent");
            }
        }
    } else if (id && !strcmp(id, "qmp")) {
        out_dup(out, "-chardev");
        out_dup(out, v);
    } else {
        fl_error_setf(errp, EINVAL, "recording: -chardev '%s' is not one the builder knows", v);
        ok = false;
    }
    fl_buf_free(&b);
    free(id);
    return ok;
}

char **hv_rr_argv(const char *const *plain, const struct hv_rr_argv_opts *o, struct fl_error **errp)
{
    if (!plain || !plain[0] || !o || !o->rrfile) {
        fl_error_setf(errp, EINVAL, "recording: no command line or no log file");
        return NULL;
    }
    struct argv_out out = {0};
    out_dup(&out, plain[0]);
    static const char *const keep_valued[] = {"-name",    "-M",      "-cpu",    "-m",   "-display",
                                              "-sandbox", "-kernel", "-initrd", "-mon", "-serial"};
    static const char *const keep_flags[] = {"-nodefaults", "-no-user-config"};
    bool ok = true;
    for (size_t i = 1; plain[i] && ok; i++) {
        const char *opt = plain[i];
        bool flag = false;
        for (size_t k = 0; k < FL_ARRAY_LEN(keep_flags); k++) {
            flag |= !strcmp(opt, keep_flags[k]);
        }
        if (flag) {
            out_dup(&out, opt);
            continue;
        }
        const char *v = plain[i + 1];
        if (!v) {
            fl_error_setf(errp, EINVAL, "recording: QEMU option '%s' has no value", opt);
            ok = false;
            break;
        }
        i++;
        bool keep = false;
        for (size_t k = 0; k < FL_ARRAY_LEN(keep_valued); k++) {
            keep |= !strcmp(opt, keep_valued[k]);
        }
        if (keep) {
            out_dup(&out, opt);
            out_dup(&out, v);
        } else if (!strcmp(opt, "-accel")) {
            if (!starts(v, "tcg")) {
                fl_error_setf(errp, EINVAL,
                              "recording needs TCG: QEMU's record/replay does not work with "
                              "-accel %s (use --accel tcg or auto)",
                              v);
                ok = false;
            }
            out_dup(&out, opt);
            out_dup(&out, v);
        } else if (!strcmp(opt, "-smp")) {
            if (strcmp(v, "1")) {
                fl_error_setf(errp, EINVAL,
                              "recording needs 1 vCPU: QEMU's record/replay refuses -smp %s", v);
                ok = false;
            }
            out_dup(&out, opt);
            out_dup(&out, v);
        } else if (!strcmp(opt, "-object")) {
            if (!starts(v, "memory-backend-")) {
                fl_error_setf(errp, EINVAL, "recording: -object '%s' is not one it knows", v);
                ok = false;
            }
            out_dup(&out, opt);
            out_dup(&out, v);
        } else if (!strcmp(opt, "-append")) {
            /* Under icount the guest TSC runs at 1 GHz whatever the host's. */
            struct fl_buf b = {0};
            char *copy = fl_xstrdup(v);
            for (char *save = NULL, *t = strtok_r(copy, " ", &save); t;
                 t = strtok_r(NULL, " ", &save)) {
                if (!starts(t, "tsc_early_khz=")) {
                    fl_buf_printf(&b, "%s%s", b.size ? " " : "", t);
                }
            }
            free(copy);
            fl_buf_printf(&b, "%stsc_early_khz=1000000", b.size ? " " : "");
            if (o->append_extra && *o->append_extra) {
                fl_buf_printf(&b, " %s", o->append_extra);
            }
            out_dup(&out, opt);
            out_add(&out, fl_buf_steal(&b));
            out_dup(&out, "-icount");
            fl_buf_printf(
                &b, "shift=auto,rr=%s,rrfile=", o->mode == HV_RR_RECORD ? "record" : "replay");
            rr_val(&b, o->rrfile);
            if (o->icount_extra && *o->icount_extra) {
                fl_buf_printf(&b, ",%s", o->icount_extra);
            }
            out_add(&out, fl_buf_steal(&b));
            if (o->flavor == HV_RR_QEMU72) {
                out_dup(&out, "-rtc");
                out_dup(&out, "clock=vm");
            }
        } else if (!strcmp(opt, "-chardev")) {
            ok = rr_chardev(&out, v, o, errp);
        } else if (!strcmp(opt, "-netdev")) {
            char *id = opt_field(v, "id");
            unsigned k;
            if (!starts(v, "stream,") || !index_of(id, 'n', &k)) {
                fl_error_setf(errp, EINVAL, "recording: -netdev '%s' is not one it knows", v);
                ok = false;
            } else {
                out_dup(&out, opt);
                if (o->mode == HV_RR_RECORD) {
                    out_dup(&out, v);
                } else {
                    /* No backend: the log feeds the frames.  A hub port
                     * with no other port goes nowhere. */
                    out_add(&out, fl_xasprintf("hubport,id=n%u,hubid=%u", k, k));
                }
                out_dup(&out, "-object");
                out_add(&out, fl_xasprintf("filter-replay,id=rr-n%u,netdev=n%u", k, k));
            }
            free(id);
        } else if (!strcmp(opt, "-device")) {
            if (starts(v, "virtio-net-device,")) {
                out_dup(&out, opt);
                /* 7.2 does not record virtio-net's default (bottom-half)
                 * TX path: replays of networked nodes stop part-way. */
                out_add(&out,
                        fl_xasprintf("%s%s", v, o->flavor == HV_RR_QEMU72 ? ",tx=timer" : ""));
            } else if (starts(v, "virtio-serial-device") || starts(v, "virtserialport,") ||
                       starts(v, "virtio-blk-device,")) {
                out_dup(&out, opt);
                out_dup(&out, v);
            } else {
                fl_error_setf(errp, EINVAL, "recording: -device '%s' is not one it knows", v);
                ok = false;
            }
        } else if (!strcmp(opt, "-blockdev")) {
            ok = rr_blockdev(&out, v, o, errp);
        } else {
            fl_error_setf(errp, EINVAL,
                          "recording: QEMU option '%s %s' is unknown to the recording builder "
                          "(hv/rr-cmdline.c): teach it what record and replay need for it",
                          opt, v);
            ok = false;
        }
    }
    if (ok && o->mode == HV_RR_REPLAY) {
        out_dup(&out, "-S");
        for (size_t i = 0; i < o->n_extra; i++) {
            out_dup(&out, o->extra[i]);
        }
    }
    if (!ok) {
        hv_rr_argv_free(out.v);
        return NULL;
    }
    return out.v;
}
