/*
 * The pcap writer (libpcap's format, Ethernet, nanosecond timestamps):
 * netback's per-NIC captures and the merged pcap of `faultline trace
 * --pcap`.
 */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/internal.h"

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
 * A failed write (a full disk) is kept in p->fail (first error, failed
 * writes, packets not in the file; logged once): later buffers are not
 * written and every trace_pcap_write() returns the error.
 */
#define TRACE_PCAP_BUF_SIZE   ((size_t)256 << 10)
#define TRACE_PCAP_MAX_QUEUED 64
#define TRACE_PCAP_MAX_FREE   4
#define TRACE_PCAP_SNAPLEN    262144

struct pcap_buf {
    struct pcap_buf *next;
    size_t len, cap;
    uint64_t npackets;
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
    uint64_t pushed, written; /* buffers handed over / written (or skipped) */
    struct trace_failure fail;
    atomic_int failed_err; /* fail.err, for trace_pcap_write() without the lock */
    struct trace_thread thread;
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
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->thread.stopping) {
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
        bool failed = p->fail.err != 0;
        pthread_mutex_unlock(&p->mu);

        int e = failed ? 0 : write_all(p->fd, b->data, b->len);

        pthread_mutex_lock(&p->mu);
        if (e) {
            trace_failure_note(&p->fail, e, b->npackets, "%s: writing the pcap: %s", p->path,
                               strerror(e));
            atomic_store_explicit(&p->failed_err, p->fail.err, memory_order_relaxed);
        } else if (failed) {
            p->fail.lost += b->npackets;
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
    while (p->queued >= TRACE_PCAP_MAX_QUEUED && !p->fail.err) {
        pthread_cond_wait(&p->done, &p->mu);
    }
    struct pcap_buf *b = NULL;
    if (need <= TRACE_PCAP_BUF_SIZE && p->free_list) {
        b = p->free_list;
        p->free_list = b->next;
        p->n_free--;
    }
    int err = p->fail.err;
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        size_t cap = FL_MAX(need, TRACE_PCAP_BUF_SIZE);
        b = fl_xmalloc(sizeof(*b) + cap);
        b->cap = cap;
    }
    b->len = 0;
    b->npackets = 0;
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
    if (!trace_thread_start(&p->thread, pcap_writer_main, p, "fl-trace-pcap")) {
        fl_error_setf(errp, EAGAIN, "%s: cannot start the pcap writer thread", path);
        trace_pcap_destroy(p);
        return NULL;
    }
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

/* A packet not taken because the writer failed: counted, and the error. */
static int refuse(struct trace_pcap *p, int err)
{
    pthread_mutex_lock(&p->mu);
    p->fail.lost++;
    pthread_mutex_unlock(&p->mu);
    return -err;
}

int trace_pcap_write(struct trace_pcap *p, int64_t wall_ns, const void *data, size_t size)
{
    if (!p || (!data && size) || size > TRACE_PCAP_SNAPLEN || wall_ns < 0) {
        return -EINVAL;
    }
    int e = atomic_load_explicit(&p->failed_err, memory_order_relaxed);
    if (e) {
        return refuse(p, e);
    }
    size_t need = sizeof(struct pcap_record_hdr) + size;
    if (!p->cur || p->cur->len + need > p->cur->cap) {
        pcap_push(p);
        e = pcap_take(p, need);
        if (e) {
            return refuse(p, e);
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
    p->cur->npackets++;
    return 0;
}

int trace_pcap_flush(struct trace_pcap *p)
{
    if (!p) {
        return -EINVAL;
    }
    pcap_push(p);
    pthread_mutex_lock(&p->mu);
    int r = trace_thread_wait(&p->thread, &p->mu, &p->done, &p->written, p->pushed, &p->fail);
    pthread_mutex_unlock(&p->mu);
    return r;
}

bool trace_pcap_ok(struct trace_pcap *p, struct fl_error **errp)
{
    if (!p) {
        fl_error_setf(errp, EINVAL, "trace_pcap_ok: no pcap");
        return false;
    }
    return trace_failure_get_locked(&p->fail, &p->mu, "packets", errp);
}

void trace_pcap_destroy(struct trace_pcap *p)
{
    trace_pcap_finish(p, NULL);
}

bool trace_pcap_finish(struct trace_pcap *p, struct fl_error **errp)
{
    if (!p) {
        return true;
    }
    if (p->thread.started) {
        trace_pcap_flush(p);
        trace_thread_stop(&p->thread, &p->mu, &p->work);
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
    if (p->fd >= 0 && close(p->fd) != 0) {
        int e = errno;
        trace_failure_note(&p->fail, e, 0, "%s: closing the pcap: %s", p->path, strerror(e));
    }
    bool ok = trace_failure_get(&p->fail, "packets", errp);
    trace_failure_free(&p->fail);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->path);
    free(p);
    return ok;
}
