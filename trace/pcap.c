/*
 * pcap helpers: a writer (libpcap's format, Ethernet, nanosecond timestamps) and
 * the merged pcap of `faultline trace --pcap`.
 *
 * Merging: the run database holds no frame bytes; netback's per-NIC pcaps
 * do.  For each selected frame the packet is found in its source NIC's
 * pcap either by the index netback recorded (frames.pcap_index) or, when
 * that is unknown, by its hash: the k-th send of hash h by a NIC is the
 * k-th packet with hash h in that NIC's capture.  Copies of one send
 * (duplicates, a flooded frame's destinations) become one packet.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/db-internal.h"
#include "trace/query-internal.h"

/*
 * The writer.  Packets are appended to a 256 KiB buffer in memory by the
 * caller's thread (a memcpy, no system call, no lock); full buffers go to
 * the pcap's own writer thread, which write(2)s them.  At netback's rates
 * the kernel's page-cache copy is most of a capture's cost (about 0.4 us
 * per 1500-byte packet on the development VM): off the event loop, it
 * runs beside it.  trace_pcap_flush() hands over the partial buffer and
 * waits until everything is in the file, so the file is complete when it
 * returns, as before.  At most TRACE_PCAP_MAX_QUEUED buffers wait for the
 * writer; beyond that the caller waits (no packet is ever dropped).
 */
#define TRACE_PCAP_BUF_SIZE   ((size_t)256 << 10)
#define TRACE_PCAP_MAX_QUEUED 64
#define TRACE_PCAP_MAX_FREE   4
#define TRACE_PCAP_SNAPLEN    262144

struct pcap_buf {
    struct pcap_buf *next;
    size_t len, cap;
    uint8_t data[];
};

struct trace_pcap {
    int fd;
    char *path;
    struct pcap_buf *cur; /* being filled by the caller */

    pthread_mutex_t mu;
    pthread_cond_t work; /* to the writer: a buffer queued, or stop */
    pthread_cond_t done; /* from the writer: a buffer written */
    struct pcap_buf *head, *tail;
    size_t queued;
    struct pcap_buf *free_list;
    size_t n_free;
    uint64_t pushed, written; /* buffers handed over / written */
    int err;                  /* positive errno of the first failed write */
    bool stop;
    bool thread_started;
    pthread_t thread;
};

/* A pcap record header as libpcap writes it (host byte order; the file
 * header's magic tells readers which).  With the nanosecond magic the
 * second field is nanoseconds. */
struct pcap_record_hdr {
    uint32_t ts_sec;
    uint32_t ts_frac;
    uint32_t caplen;
    uint32_t len;
};

/* The file header of libpcap's format with nanosecond timestamps (what
 * pcap_dump_open() writes for a PCAP_TSTAMP_PRECISION_NANO handle). */
struct pcap_file_hdr {
    uint32_t magic;
    uint16_t version_major, version_minor;
    int32_t thiszone;
    uint32_t sigfigs;
    uint32_t snaplen;
    uint32_t linktype;
};

char *trace_pcap_path(const char *run_dir, const char *node, const char *nic)
{
    return fl_xasprintf("%s/pcap/%s-%s.pcap", run_dir, node, nic);
}

static int write_all(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static void *pcap_writer_main(void *arg)
{
    struct trace_pcap *p = arg;
    trace_writer_thread_setup();
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) {
            pthread_cond_wait(&p->work, &p->mu);
        }
        if (!p->head) {
            break;
        }
        struct pcap_buf *b = p->head;
        p->head = b->next;
        if (!p->head) {
            p->tail = NULL;
        }
        bool failed = p->err != 0;
        pthread_mutex_unlock(&p->mu);

        int e = failed ? 0 : write_all(p->fd, b->data, b->len);

        pthread_mutex_lock(&p->mu);
        if (e && !p->err) {
            p->err = e;
        }
        p->queued--;
        p->written++;
        if (b->cap == TRACE_PCAP_BUF_SIZE && p->n_free < TRACE_PCAP_MAX_FREE) {
            b->next = p->free_list;
            p->free_list = b;
            p->n_free++;
        } else {
            free(b);
        }
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Hands the current buffer to the writer (if it holds anything). */
static void pcap_push(struct trace_pcap *p)
{
    struct pcap_buf *b = p->cur;
    if (!b || b->len == 0) {
        return;
    }
    p->cur = NULL;
    pthread_mutex_lock(&p->mu);
    b->next = NULL;
    if (p->tail) {
        p->tail->next = b;
    } else {
        p->head = b;
    }
    p->tail = b;
    p->queued++;
    p->pushed++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

/* A buffer with room for `need` bytes as the current one; waits while
 * the writer is TRACE_PCAP_MAX_QUEUED buffers behind.  Positive errno of a
 * failed writer, else 0. */
static int pcap_take(struct trace_pcap *p, size_t need)
{
    pthread_mutex_lock(&p->mu);
    while (p->queued >= TRACE_PCAP_MAX_QUEUED && !p->err) {
        pthread_cond_wait(&p->done, &p->mu);
    }
    struct pcap_buf *b = NULL;
    if (need <= TRACE_PCAP_BUF_SIZE && p->free_list) {
        b = p->free_list;
        p->free_list = b->next;
        p->n_free--;
    }
    int err = p->err;
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        size_t cap = FL_MAX(need, TRACE_PCAP_BUF_SIZE);
        b = fl_xmalloc(sizeof(*b) + cap);
        b->cap = cap;
    }
    b->len = 0;
    p->cur = b;
    return err;
}

struct trace_pcap *trace_pcap_create(const char *path, struct fl_error **errp)
{
    int fd = strcmp(path, "-") ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)
                               : fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        fl_error_setf_errno(errp, errno, "%s: cannot create the pcap", path);
        return NULL;
    }
    struct trace_pcap *p = fl_xcalloc(1, sizeof(*p));
    p->fd = fd;
    p->path = fl_xstrdup(path);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    if (pthread_create(&p->thread, NULL, pcap_writer_main, p) != 0) {
        fl_error_setf(errp, EAGAIN, "%s: cannot start the pcap writer thread", path);
        trace_pcap_destroy(p);
        return NULL;
    }
    p->thread_started = true;
    pthread_setname_np(p->thread, "fl-trace-pcap");
    /* the file header goes with the first buffer: nothing is in the file
     * before the first flush */
    pcap_take(p, TRACE_PCAP_BUF_SIZE);
    struct pcap_file_hdr fh = {
        .magic = 0xa1b23c4d, /* nanosecond timestamps */
        .version_major = 2,
        .version_minor = 4,
        .snaplen = TRACE_PCAP_SNAPLEN,
        .linktype = DLT_EN10MB, /* = LINKTYPE_ETHERNET */
    };
    memcpy(p->cur->data, &fh, sizeof(fh));
    p->cur->len = sizeof(fh);
    return p;
}

int trace_pcap_write(struct trace_pcap *p, int64_t wall_ns, const void *data, size_t size)
{
    if (!p || (!data && size) || size > TRACE_PCAP_SNAPLEN || wall_ns < 0) {
        return -EINVAL;
    }
    size_t need = sizeof(struct pcap_record_hdr) + size;
    if (!p->cur || p->cur->len + need > p->cur->cap) {
        pcap_push(p);
        int e = pcap_take(p, need);
        if (e) {
            return -e;
        }
    }
    struct pcap_record_hdr h = {
        .ts_sec = (uint32_t)(wall_ns / FL_NS_PER_SEC),
        .ts_frac = (uint32_t)(wall_ns % FL_NS_PER_SEC),
        .caplen = (uint32_t)size,
        .len = (uint32_t)size,
    };
    uint8_t *w = p->cur->data + p->cur->len;
    memcpy(w, &h, sizeof(h));
    if (size) {
        memcpy(w + sizeof(h), data, size);
    }
    p->cur->len += need;
    return 0;
}

int trace_pcap_flush(struct trace_pcap *p)
{
    if (!p) {
        return -EINVAL;
    }
    pcap_push(p);
    pthread_mutex_lock(&p->mu);
    while (p->written < p->pushed && p->thread_started) {
        pthread_cond_wait(&p->done, &p->mu);
    }
    int e = p->err;
    pthread_mutex_unlock(&p->mu);
    return e ? -e : 0;
}

void trace_pcap_destroy(struct trace_pcap *p)
{
    if (!p) {
        return;
    }
    if (p->thread_started) {
        int e = trace_pcap_flush(p);
        if (e < 0) {
            fl_log(FL_LOG_WARN, "trace", "%s: writing the pcap failed: %s", p->path, strerror(-e));
        }
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->work);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    free(p->cur);
    while (p->free_list) {
        struct pcap_buf *b = p->free_list;
        p->free_list = b->next;
        free(b);
    }
    while (p->head) { /* only if the thread never started */
        struct pcap_buf *b = p->head;
        p->head = b->next;
        free(b);
    }
    if (p->fd >= 0) {
        close(p->fd);
    }
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->path);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Merging                                                             */
/* ------------------------------------------------------------------ */

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

static int64_t query_int64(sqlite3 *conn, const char *sql, int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            v = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    return v;
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
    int64_t wall0 = query_int64(conn, "SELECT clock_offset_ns + epoch_mono_ns FROM run", 0);

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
