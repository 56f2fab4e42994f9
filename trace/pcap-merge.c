/*
 * The merged pcap of `faultline trace --pcap`.
 *
 * The run database holds no frame bytes; netback's per-NIC pcaps do.  For
 * each selected frame the packet is found in its source NIC's pcap either
 * by the index netback recorded (frames.pcap_index) or, when that is
 * unknown, by its hash: the k-th send of hash h by a NIC is the k-th
 * packet with hash h in that NIC's capture.  Copies of one send
 * (duplicates, a flooded frame's destinations) become one packet.
 */
#include <errno.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/internal.h"

struct packet {
    uint32_t hash;
    uint32_t size;
    size_t off; /* into nic_capture.bytes */
};

/* One source NIC: its capture and the order of its sends. */
struct send {
    int64_t sent_ns;
    uint32_t hash;
    int64_t packet; /* index into packets, -1 if not found */
};

struct nic_capture {
    int64_t nic_id;
    bool loaded; /* the pcap could be read */
    char *bytes;
    size_t bytes_size, bytes_alloc;
    struct packet *packets;
    size_t npackets, packets_alloc;
    struct send *sends;
    size_t nsends;
};

static void capture_load(struct nic_capture *c, const char *path)
{
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (!p) {
        fl_log(FL_LOG_WARN, "trace", "merging pcaps: %s", ebuf);
        return;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        fl_log(FL_LOG_WARN, "trace", "%s: link type %d is not Ethernet; ignored", path,
               pcap_datalink(p));
        pcap_close(p);
        return;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    while (pcap_next_ex(p, &h, &data) == 1) {
        c->packets = fl_xgrow(c->packets, &c->packets_alloc, c->npackets + 1, sizeof(*c->packets));
        c->bytes = fl_xgrow(c->bytes, &c->bytes_alloc, c->bytes_size + h->caplen, 1);
        memcpy(c->bytes + c->bytes_size, data, h->caplen);
        /* a truncated capture still matches on its length and hash only
         * when complete: hash what was captured, keep the real length */
        c->packets[c->npackets++] =
            (struct packet){trace_frame_hash(data, h->caplen), h->caplen, c->bytes_size};
        c->bytes_size += h->caplen;
    }
    pcap_close(p);
    c->loaded = true;
}

/* qsort_r comparators: indexes into the packets / sends arrays, by
 * (hash, position). */
static int cmp_packet(const void *a, const void *b, void *ctx)
{
    const struct packet *packets = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uint32_t hx = packets[x].hash, hy = packets[y].hash;
    return hx != hy ? (hx < hy ? -1 : 1) : (x < y ? -1 : x > y);
}

static int cmp_send(const void *a, const void *b, void *ctx)
{
    const struct send *sends = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    uint32_t hx = sends[x].hash, hy = sends[y].hash;
    return hx != hy ? (hx < hy ? -1 : 1) : (x < y ? -1 : x > y);
}

/* Matches every distinct send of the NIC (in order) to its packet. */
static bool capture_match(struct nic_capture *c, sqlite3 *conn, struct fl_error **errp)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn,
                           "SELECT DISTINCT sent_ns, hash FROM frames WHERE src_nic_id = ?1"
                           " ORDER BY sent_ns",
                           -1, &st, NULL) != SQLITE_OK) {
        fl_error_setf(errp, EIO, "merging pcaps: %s", sqlite3_errmsg(conn));
        return false;
    }
    sqlite3_bind_int64(st, 1, c->nic_id);
    size_t alloc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        c->sends = fl_xgrow(c->sends, &alloc, c->nsends + 1, sizeof(*c->sends));
        c->sends[c->nsends++] =
            (struct send){sqlite3_column_int64(st, 0), (uint32_t)sqlite3_column_int64(st, 1), -1};
    }
    sqlite3_finalize(st);
    /* k-th send of hash h <-> k-th packet of hash h: sort both by
     * (hash, order) and pair them up group by group. */
    size_t *ps = fl_xcalloc(c->npackets + 1, sizeof(*ps));
    size_t *ss = fl_xcalloc(c->nsends + 1, sizeof(*ss));
    for (size_t k = 0; k < c->npackets; k++) {
        ps[k] = k;
    }
    for (size_t k = 0; k < c->nsends; k++) {
        ss[k] = k;
    }
    qsort_r(ps, c->npackets, sizeof(*ps), cmp_packet, c->packets);
    qsort_r(ss, c->nsends, sizeof(*ss), cmp_send, c->sends);
    size_t i = 0, j = 0;
    while (i < c->nsends && j < c->npackets) {
        uint32_t hs = c->sends[ss[i]].hash, hp = c->packets[ps[j]].hash;
        if (hs == hp) {
            c->sends[ss[i++]].packet = (int64_t)ps[j++];
        } else if (hs < hp) {
            i++;
        } else {
            j++;
        }
    }
    free(ps);
    free(ss);
    return true;
}

static int64_t capture_find(const struct nic_capture *c, int64_t sent_ns, uint32_t hash)
{
    size_t lo = 0, hi = c->nsends;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->sends[mid].sent_ns < sent_ns) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t k = lo; k < c->nsends && c->sends[k].sent_ns == sent_ns; k++) {
        if (c->sends[k].hash == hash) {
            return c->sends[k].packet;
        }
    }
    return -1;
}

bool trace_pcap_merge(struct trace_db *db, const char *run_dir, const struct trace_query *q,
                      const char *out_path, size_t *written, size_t *missing,
                      struct fl_error **errp)
{
    sqlite3 *conn = trace_db_sqlite(db);
    *written = *missing = 0;
    if (!trace_query_validate(conn, q, errp)) {
        return false;
    }
    struct trace_query fq = *q;
    fq.kind = TRACE_QUERY_FRAMES;
    sqlite3_stmt *st = trace_query_frames_stmt(conn, &fq, errp);
    if (!st) {
        return false;
    }
    struct trace_pcap *out = trace_pcap_create(out_path, errp);
    if (!out) {
        sqlite3_finalize(st);
        return false;
    }
    /* wall time of the run clock's zero: the clock offset at open plus
     * the epoch */
    int64_t wall0 = trace_sql_int(conn, "SELECT clock_offset_ns + epoch_mono_ns FROM run", 0);

    struct nic_capture *caps = NULL;
    size_t ncaps = 0, caps_alloc = 0;
    int64_t last_nic = -1, last_sent = INT64_MIN;
    uint32_t last_hash = 0;
    bool ok = true;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t nic_id = sqlite3_column_type(st, FRAME_COL_SRC_NIC_ID) == SQLITE_NULL
                             ? 0
                             : sqlite3_column_int64(st, FRAME_COL_SRC_NIC_ID);
        int64_t sent = sqlite3_column_int64(st, FRAME_COL_SENT);
        uint32_t hash = (uint32_t)sqlite3_column_int64(st, FRAME_COL_HASH);
        if (nic_id == last_nic && sent == last_sent && hash == last_hash) {
            continue; /* another copy of the same send */
        }
        last_nic = nic_id;
        last_sent = sent;
        last_hash = hash;
        if (nic_id == 0) {
            (*missing)++;
            continue;
        }
        struct nic_capture *c = NULL;
        for (size_t k = 0; k < ncaps; k++) {
            if (caps[k].nic_id == nic_id) {
                c = &caps[k];
            }
        }
        if (!c) {
            caps = fl_xgrow(caps, &caps_alloc, ncaps + 1, sizeof(*caps));
            c = &caps[ncaps++];
            memset(c, 0, sizeof(*c));
            c->nic_id = nic_id;
            char *path =
                trace_pcap_path(run_dir, (const char *)sqlite3_column_text(st, FRAME_COL_SRC_NODE),
                                (const char *)sqlite3_column_text(st, FRAME_COL_SRC_NIC));
            capture_load(c, path);
            free(path);
            if (c->loaded && !capture_match(c, conn, errp)) {
                ok = false;
                break;
            }
        }
        int64_t pi = -1;
        if (c->loaded) {
            if (sqlite3_column_type(st, FRAME_COL_PCAP_INDEX) != SQLITE_NULL) {
                pi = sqlite3_column_int64(st, FRAME_COL_PCAP_INDEX);
                if (pi >= (int64_t)c->npackets || c->packets[pi].hash != hash) {
                    pi = -1; /* stale index: fall back to the hash */
                }
            }
            if (pi < 0) {
                pi = capture_find(c, sent, hash);
            }
        }
        if (pi < 0) {
            (*missing)++;
            continue;
        }
        const struct packet *p = &c->packets[pi];
        int rc = trace_pcap_write(out, FL_MAX(wall0 + sent, 0), c->bytes + p->off, p->size);
        if (rc < 0) {
            fl_error_setf(errp, -rc, "%s: writing a packet failed", out_path);
            ok = false;
            break;
        }
        (*written)++;
    }
    sqlite3_finalize(st);
    for (size_t k = 0; k < ncaps; k++) {
        free(caps[k].bytes);
        free(caps[k].packets);
        free(caps[k].sends);
    }
    free(caps);
    trace_pcap_destroy(out);
    return ok;
}
