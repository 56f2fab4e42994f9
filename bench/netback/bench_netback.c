/*
 * netback benchmark: frames/s and latency through netback against a raw
 * stream relay measured in the same run with the same synthetic guests.
 *
 *   sender thread ──unix socket──▶ relay (main thread) ──unix socket──▶ receiver thread
 *   (one write() per frame,        raw: read 256 KiB, write it on      (reads 256 KiB at a
 *    as QEMU does)                 netback: ports + switch + impair     time, reassembles)
 *
 * Prints one JSON object per line (DESIGN.md), then a human summary.
 *   bench_netback [--quick]
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "impair/impair.h"
#include "netback/netback.h"
#include "netback/reassembly.h"
#include "trace/trace.h"

#include "bench/netback/machine.h"

static const uint8_t MAC_A[6] = {0x52, 0x54, 0x00, 0, 0, 1};
static const uint8_t MAC_B[6] = {0x52, 0x54, 0x00, 0, 0, 2};

enum relay_kind { RELAY_RAW, RELAY_NETBACK };

struct run {
    /* what */
    enum relay_kind kind;
    size_t frame_size;
    long frames;
    int64_t pace_ns;  /* 0: as fast as possible; else one frame per pace_ns */
    const char *link; /* impairment words for a->b, NULL: none */
    bool tracing;
    bool own_delays; /* run.db (no pcaps) to read netback's own view of each delay */
    /* results */
    int64_t *own; /* per delivered frame: delivered_ns - sent_ns from its fate record */
    long n_own;
    long received;
    int64_t trace_stall_ns; /* writers blocked on trace's full queue */
    int64_t first_tx, last_rx;
    int64_t traces_ns;    /* netback: writing the traces still buffered after the run */
    int64_t relay_cpu_ns; /* CPU time of the relay thread (raw relay or netback's loop) */
    int64_t proc_cpu_ns;  /* CPU time of the whole process (every thread) in the same window */
    int64_t sender_cpu_ns, receiver_cpu_ns;
    int64_t db_cpu_ns, pcap_cpu_ns; /* trace's writer threads (run.db, pcaps), same window */
    int64_t *lat;                   /* per received frame: rx - tx */
    /* plumbing */
    char dir[64];
    int tx_fd, rx_fd;
    atomic_bool sender_done, receiver_done;
};

/* CPU time so far of this process's threads named `comm` (trace's
 * writer threads), from /proc/self/task/ * /schedstat. */
static int64_t comm_cpu_ns(const char *comm)
{
    int64_t sum = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], name[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) {
            continue;
        }
        bool match = fgets(name, sizeof name, f) && !strncmp(name, comm, strlen(comm)) &&
                     (name[strlen(comm)] == '\n' || !name[strlen(comm)]);
        fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        long long ns = 0;
        if (match && (f = fopen(path, "r"))) {
            if (fscanf(f, "%lld", &ns) == 1) {
                sum += ns;
            }
            fclose(f);
        }
    }
    if (d) {
        closedir(d);
    }
    return sum;
}

static int64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * FL_NS_PER_SEC + ts.tv_nsec;
}

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror(path);
        exit(3);
    }
    return fd;
}

static int listen_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0) {
        perror(path);
        exit(3);
    }
    return fd;
}

/* A frame from A to B as the stream protocol carries it (length prefix
 * first); the caller frees it. */
static uint8_t *stream_frame(size_t size)
{
    uint8_t *buf = calloc(1, 4 + size);
    buf[0] = (uint8_t)(size >> 24);
    buf[1] = (uint8_t)(size >> 16);
    buf[2] = (uint8_t)(size >> 8);
    buf[3] = (uint8_t)size;
    memcpy(buf + 4, MAC_B, 6);
    memcpy(buf + 10, MAC_A, 6);
    buf[16] = 0x88;
    buf[17] = 0xb5;
    return buf;
}

static void *sender(void *arg)
{
    struct run *r = arg;
    size_t size = r->frame_size;
    uint8_t *buf = stream_frame(size);
    int64_t cpu0 = bench_thread_cpu_ns();
    int64_t next = fl_clock_mono_ns();
    r->first_tx = next;
    for (long i = 0; i < r->frames; i++) {
        if (r->pace_ns) {
            next += r->pace_ns;
            struct timespec ts = {next / FL_NS_PER_SEC, next % FL_NS_PER_SEC};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        int64_t now = fl_clock_mono_ns();
        memcpy(buf + 4 + 14, &i, sizeof i);
        memcpy(buf + 4 + 22, &now, sizeof now);
        size_t off = 0;
        while (off < 4 + size) {
            ssize_t w = write(r->tx_fd, buf + off, 4 + size - off);
            if (w < 0) {
                perror("sender write");
                exit(3);
            }
            off += (size_t)w;
        }
    }
    free(buf);
    r->sender_cpu_ns = bench_thread_cpu_ns() - cpu0;
    atomic_store(&r->sender_done, true);
    return NULL;
}

static int on_rx_frame(void *arg, const uint8_t *frame, size_t size)
{
    struct run *r = arg;
    int64_t tx;
    memcpy(&tx, frame + 22, sizeof tx);
    if (r->received < r->frames) {
        r->lat[r->received] = r->last_rx - tx;
    }
    r->received++;
    return 0;
}

static void *receiver(void *arg)
{
    struct run *r = arg;
    int64_t cpu0 = bench_thread_cpu_ns();
    struct nb_reasm ra;
    nb_reasm_init(&ra);
    uint8_t *buf = malloc(256 << 10);
    int64_t idle_since = 0;
    struct timeval tv = {0, 20000};
    setsockopt(r->rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* Paced (latency) runs poll the socket instead of sleeping in read():
     * a unix stream socket has no receive timestamps, and waking a
     * sleeping thread on this kind of VM takes 20-200 us (an idle vCPU
     * halts), which would be measured as netback's (or the raw relay's)
     * latency.  Polling costs a CPU for the few seconds of these runs. */
    bool poll = r->pace_ns > 0;
    if (poll) {
        /* Under --rt, a SCHED_FIFO thread that never sleeps is throttled
         * by the kernel (50 ms of every second by default), which would
         * be measured as latency: the polling receiver runs as a normal
         * thread, preempted at once by the relay when it has work. */
        struct sched_param sp = {0};
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }
    while (r->received < r->frames) {
        ssize_t n =
            poll ? recv(r->rx_fd, buf, 256 << 10, MSG_DONTWAIT) : read(r->rx_fd, buf, 256 << 10);
        int64_t now = fl_clock_mono_ns();
        if (n < 0 && errno == EAGAIN && poll && !atomic_load(&r->sender_done)) {
            continue;
        }
        if (n > 0) {
            r->last_rx = now;
            idle_since = 0;
            if (nb_reasm_feed(&ra, buf, (size_t)n, on_rx_frame, r) < 0) {
                fprintf(stderr, "receiver: %s\n", ra.error);
                exit(3);
            }
            continue;
        }
        if (n == 0) {
            break;
        }
        /* Timeout: with loss, not every frame arrives. */
        if (atomic_load(&r->sender_done)) {
            if (!idle_since) {
                idle_since = now;
            } else if (now - idle_since > 300 * FL_NS_PER_MS) {
                break;
            }
        }
    }
    nb_reasm_free(&ra);
    free(buf);
    r->receiver_cpu_ns = bench_thread_cpu_ns() - cpu0;
    atomic_store(&r->receiver_done, true);
    return NULL;
}

/* The baseline: bytes from a to b as fast as they come. */
static void relay_raw(struct run *r, int la, int lb)
{
    int a = accept(la, NULL, NULL), b = accept(lb, NULL, NULL);
    fl_set_nonblock(a);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    uint8_t *buf = malloc(256 << 10);
    while (!atomic_load(&r->receiver_done)) {
        struct epoll_event out;
        if (epoll_wait(ep, &out, 1, 5) <= 0) {
            continue;
        }
        ssize_t n = read(a, buf, 256 << 10);
        for (ssize_t off = 0; n > 0 && off < n;) {
            ssize_t w = send(b, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0) {
                perror("relay write");
                exit(3);
            }
            off += w;
        }
    }
    free(buf);
    close(ep);
    close(a);
    close(b);
}

/* netback's own view of each delayed frame, from its fate records: the
 * time it wrote the frame to the receiver's socket minus the time it read
 * it from the sender's (in send order).  Unlike the end-to-end latency it
 * leaves out when the benchmark's receiver thread got to run. */
static void read_own_delays(struct run *r, const char *dbp)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(dbp, &conn, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(conn,
                           "SELECT delivered_ns - sent_ns FROM frames WHERE fate = 'delivered'"
                           " ORDER BY sent_ns",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", dbp, conn ? sqlite3_errmsg(conn) : "cannot open");
        exit(3);
    }
    r->own = calloc((size_t)r->frames, sizeof *r->own);
    r->n_own = 0;
    while (sqlite3_step(st) == SQLITE_ROW && r->n_own < r->frames) {
        r->own[r->n_own++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(conn);
}

/* Where sockets, pcaps and run.db go: NB_BENCH_DIR, else /dev/shm (the
 * captures of 1500-byte frames at full rate are 2 x 1.5 GB/s: on a disk
 * the benchmark would measure the disk's write-back, not netback), else
 * /tmp. */
static const char *bench_base(void)
{
    const char *d = getenv("NB_BENCH_DIR");
    if (d) {
        return d;
    }
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

/* A new directory BASE/PREFIX-XXXXXX for one run's sockets and traces
 * (the base is checked short enough in main()). */
static void make_dir(char *dir, size_t size, const char *prefix)
{
    snprintf(dir, size, "%s/%s-XXXXXX", bench_base(), prefix);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_netback: cannot make a directory in %s: %s\n", bench_base(),
                strerror(errno));
        exit(3);
    }
}

static void run_once(struct run *r)
{
    make_dir(r->dir, sizeof r->dir, "nb-bench");
    char *pa = fl_xasprintf("%s/a.sock", r->dir), *pb = fl_xasprintf("%s/b.sock", r->dir);
    r->lat = calloc((size_t)r->frames, sizeof *r->lat);
    r->received = 0;
    atomic_store(&r->sender_done, false);
    atomic_store(&r->receiver_done, false);
    pthread_t ts, tr;
    struct fl_error *err = NULL;
    if (r->kind == RELAY_RAW) {
        int la = listen_unix(pa), lb = listen_unix(pb);
        r->tx_fd = connect_unix(pa);
        r->rx_fd = connect_unix(pb);
        pthread_create(&tr, NULL, receiver, r);
        pthread_create(&ts, NULL, sender, r);
        int64_t c0 = bench_thread_cpu_ns(), p0 = process_cpu_ns();
        relay_raw(r, la, lb);
        r->relay_cpu_ns = bench_thread_cpu_ns() - c0;
        r->proc_cpu_ns = process_cpu_ns() - p0;
        close(la);
        close(lb);
    } else {
        struct fl_loop *loop = fl_loop_create(NULL, &err);
        char *dbp = fl_xasprintf("%s/run.db", r->dir), *pcaps = fl_xasprintf("%s/pcap", r->dir);
        /* NB_BENCH_TRACE=pcap|db restricts the tracing cases to one sink
         * (to see which costs what). */
        const char *only = getenv("NB_BENCH_TRACE");
        bool want_db = (r->tracing && (!only || !strcmp(only, "db"))) || r->own_delays;
        bool want_pcap = r->tracing && (!only || !strcmp(only, "pcap"));
        struct trace_db *db = want_db ? trace_db_open(dbp, &err) : NULL;
        if (want_db && !db) {
            fprintf(stderr, "trace_db_open: %s\n", err->msg);
            exit(3);
        }
        struct nb_config cfg = {.seed = 1, .trace = db, .pcap_dir = want_pcap ? pcaps : NULL};
        if (getenv("NB_PORT_QUEUE")) {
            cfg.port_queue_size = (size_t)atoll(getenv("NB_PORT_QUEUE"));
        }
        if (getenv("NB_STALL_NS")) {
            cfg.stall_ns = atoll(getenv("NB_STALL_NS"));
        }
        if (getenv("NB_SPIN_NS")) {
            cfg.spin_ns = atoll(getenv("NB_SPIN_NS"));
        }
        struct netback *nb = nb_create(loop, &cfg, &err);
        if (!nb || !nb_network_add(nb, "lan", &err) ||
            !nb_port_add(nb, "lan", "a", "eth0", MAC_A, pa, &err) ||
            !nb_port_add(nb, "lan", "b", "eth0", MAC_B, pb, &err)) {
            fprintf(stderr, "netback: %s\n", err->msg);
            exit(3);
        }
        if (r->link) {
            struct impair_link_params p;
            if (!impair_link_params_parse_string(r->link, NULL, &p, &err) ||
                !nb_link_set(nb, "lan", "a", "b", &p, &err)) {
                fprintf(stderr, "link: %s\n", err->msg);
                exit(3);
            }
            impair_link_params_clear(&p);
        }
        r->tx_fd = connect_unix(pa);
        r->rx_fd = connect_unix(pb);
        fl_loop_run_once(loop, 0);
        fl_loop_run_once(loop, 0);
        pthread_create(&tr, NULL, receiver, r);
        pthread_create(&ts, NULL, sender, r);
        pthread_setname_np(tr, "nb-receiver");
        pthread_setname_np(ts, "nb-sender");
        int64_t c0 = bench_thread_cpu_ns(), p0 = process_cpu_ns();
        int64_t db0 = comm_cpu_ns("fl-trace-db"), pc0 = comm_cpu_ns("fl-trace-pcap");
        while (!atomic_load(&r->receiver_done)) {
            fl_loop_run_once(loop, 5);
        }
        r->relay_cpu_ns = bench_thread_cpu_ns() - c0;
        /* Traces are done when they are in the files: a run of a few
         * hundred thousand frames fits in trace's queues, and a writer
         * that is still busy after the last frame arrived has only
         * postponed its cost.  Throughput and CPU count until then. */
        int64_t tf0 = fl_clock_mono_ns();
        int fr = nb_flush(nb);
        int dr = db ? trace_db_flush(db) : 0;
        r->traces_ns = fl_clock_mono_ns() - tf0;
        if (fr < 0 || dr < 0) {
            fprintf(stderr, "flushing the traces failed\n");
            exit(3);
        }
        r->proc_cpu_ns = process_cpu_ns() - p0;
        r->db_cpu_ns = comm_cpu_ns("fl-trace-db") - db0;
        r->pcap_cpu_ns = comm_cpu_ns("fl-trace-pcap") - pc0;
        nb_destroy(nb);
        if (db) {
            /* How long netback waited on trace's writer thread (its queue
             * of batches full): that part of the time is SQLite's. */
            struct trace_db_stats dbst;
            trace_db_get_stats(db, &dbst);
            r->trace_stall_ns = dbst.stall_ns;
        }
        trace_db_close(db);
        if (r->own_delays) {
            read_own_delays(r, dbp);
        }
        fl_loop_destroy(loop);
        free(dbp);
        free(pcaps);
    }
    pthread_join(ts, NULL);
    pthread_join(tr, NULL);
    close(r->tx_fd);
    close(r->rx_fd);
    fl_rm_rf(r->dir);
    free(pa);
    free(pb);
}

/* Frames received per second, from the first send to the last frame
 * received plus the time the traces still needed then.  Frames netback
 * dropped (its output queue full while the receiver thread waited for a
 * CPU, or loss) do not count. */
static double fps(const struct run *r)
{
    return (double)FL_MIN(r->received, r->frames) * 1e9 /
           (double)(r->last_rx + r->traces_ns - r->first_tx);
}

/* Percentile p of v[0..n) minus `minus`, in us, skipping the first 50
 * (warm-up). */
static double pct_of_us(int64_t *v, long n, double p, int64_t minus)
{
    long skip = n > 100 ? 50 : 0;
    v += skip;
    n -= skip;
    if (n <= 0) {
        return 0;
    }
    qsort(v, (size_t)n, sizeof *v, bench_cmp_i64);
    long i = (long)(p * (double)(n - 1) + 0.5);
    return (double)(v[i] - minus) / 1e3;
}

/* Percentile of latencies minus `minus`. */
static double pct_us(struct run *r, double p, int64_t minus)
{
    return pct_of_us(r->lat, FL_MIN(r->received, r->frames), p, minus);
}

#define REPS 5

/*
 * Loop cost: CPU per frame of the relay step alone, on one thread, with
 * no other thread competing (the sender writes a burst without blocking,
 * the relay step runs, the receiver drains; only the relay step is
 * timed).  The throughput cases above depend on how two cores are shared
 * between five threads; this one is what netback itself costs, and it
 * repeats within a few percent.  Tracing adds trace's writer threads'
 * CPU (run until the traces are in their files).
 */
struct loop_cost {
    double loop, db, pcap; /* ns of CPU per frame: the relay step, trace's writer threads */
};

static struct loop_cost loop_cost(enum relay_kind kind, size_t size, long n, bool tracing)
{
    char dir[64];
    make_dir(dir, sizeof dir, "nb-loop");
    char *pa = fl_xasprintf("%s/a.sock", dir), *pb = fl_xasprintf("%s/b.sock", dir);
    char *dbp = fl_xasprintf("%s/run.db", dir), *pcaps = fl_xasprintf("%s/pcap", dir);
    struct fl_error *err = NULL;
    struct fl_loop *loop = NULL;
    struct netback *nb = NULL;
    struct trace_db *db = NULL;
    int la = -1, lb = -1, a = -1, b = -1;
    if (kind == RELAY_RAW) {
        la = listen_unix(pa);
        lb = listen_unix(pb);
    } else {
        loop = fl_loop_create(NULL, &err);
        const char *only = getenv("NB_BENCH_TRACE");
        bool want_db = tracing && (!only || !strcmp(only, "db"));
        bool want_pcap = tracing && (!only || !strcmp(only, "pcap"));
        db = want_db ? trace_db_open(dbp, &err) : NULL;
        struct nb_config cfg = {.seed = 1, .trace = db, .pcap_dir = want_pcap ? pcaps : NULL};
        nb = loop ? nb_create(loop, &cfg, &err) : NULL;
        if (!nb || (want_db && !db) || !nb_network_add(nb, "lan", &err) ||
            !nb_port_add(nb, "lan", "a", "eth0", MAC_A, pa, &err) ||
            !nb_port_add(nb, "lan", "b", "eth0", MAC_B, pb, &err)) {
            fprintf(stderr, "netback: %s\n", err ? err->msg : "?");
            exit(3);
        }
    }
    int tx = connect_unix(pa), rx = connect_unix(pb);
    int ep = -1;
    if (kind == RELAY_RAW) {
        a = accept(la, NULL, NULL);
        b = accept(lb, NULL, NULL);
        fl_set_nonblock(a);
        fl_set_nonblock(b);
        /* Like the throughput relay (and any relay with more than one
         * port), it asks epoll what is readable before reading. */
        ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    } else {
        fl_loop_run_once(loop, 0);
        fl_loop_run_once(loop, 0);
    }
    fl_set_nonblock(tx);
    fl_set_nonblock(rx);
    uint8_t *frame = stream_frame(size), *buf = malloc(256 << 10), *pending = NULL;
    size_t want = (size_t)n * (4 + size), got = 0, npend = 0;
    long sent = 0;
    int64_t relay_ns = 0;
    int64_t db0 = comm_cpu_ns("fl-trace-db"), pc0 = comm_cpu_ns("fl-trace-pcap");
    struct loop_cost c = {0};
    while (got < want) {
        for (int k = 0; k < 64 && sent < n; k++) {
            if (send(tx, frame, 4 + size, MSG_DONTWAIT) < 0) {
                break;
            }
            sent++;
        }
        int64_t c0 = bench_thread_cpu_ns();
        if (kind == RELAY_RAW) {
            /* Read what came, write it; keep what the socket refused. */
            struct epoll_event ev;
            if (!npend && epoll_wait(ep, &ev, 1, 0) == 1) {
                ssize_t r = read(a, buf, 256 << 10);
                npend = r > 0 ? (size_t)r : 0;
                pending = buf;
            }
            ssize_t w = npend ? send(b, pending, npend, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
            if (w > 0) {
                pending += w;
                npend -= (size_t)w;
            }
        } else {
            fl_loop_run_once(loop, 0);
        }
        relay_ns += bench_thread_cpu_ns() - c0;
        for (ssize_t r; (r = recv(rx, buf, 256 << 10, MSG_DONTWAIT)) > 0;) {
            got += (size_t)r;
        }
    }
    if (nb) {
        int64_t c0 = bench_thread_cpu_ns();
        if (nb_flush(nb) < 0 || (db && trace_db_flush(db) < 0)) {
            fprintf(stderr, "flushing the traces failed\n");
            exit(3);
        }
        relay_ns += bench_thread_cpu_ns() - c0;
        c.db = (double)(comm_cpu_ns("fl-trace-db") - db0) / (double)n;
        c.pcap = (double)(comm_cpu_ns("fl-trace-pcap") - pc0) / (double)n;
        nb_destroy(nb);
        trace_db_close(db);
        fl_loop_destroy(loop);
    } else {
        close(ep);
        close(a);
        close(b);
        close(la);
        close(lb);
    }
    close(tx);
    close(rx);
    fl_rm_rf(dir);
    free(frame);
    free(buf);
    free(pa);
    free(pb);
    free(dbp);
    free(pcaps);
    c.loop = (double)relay_ns / (double)n;
    return c;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmpd);
    return v[n / 2];
}

static void json_line_vs(const char *bench, const char *c, double value, const char *unit,
                         const char *base_name, double base)
{
    printf("{\"bench\":\"%s\",\"case\":\"%s\",\"value\":%.1f,\"unit\":\"%s\","
           "\"baseline\":\"%s\",\"baseline_value\":%.1f,\"ratio\":%.3f}\n",
           bench, c, value, unit, base_name, base, base > 0 ? value / base : 0.0);
    fflush(stdout);
}

static void json_line(const char *bench, const char *c, double value, const char *unit, double base,
                      bool higher_is_better)
{
    json_line_vs(bench, c, value, unit, "raw-relay", base);
    (void)higher_is_better;
}

/* The targets, as they came out in this run: one line each. */
static struct fl_buf targets;
static int targets_held, targets_checked;

static void target(const char *what, double v, bool at_least, double limit, const char *unit)
{
    bool held = at_least ? v >= limit : v <= limit;
    targets_checked++;
    targets_held += held;
    fl_buf_printf(&targets, "    %-32s %8.2f%s  %s %g%s  %s\n", what, v, unit,
                  at_least ? ">=" : "<=", limit, unit, held ? "held" : "MISSED");
}

/* The summary, last (DESIGN.md): what was measured, then the targets. */
static void print_summary(const struct fl_buf *summary, bool rt)
{
    double load[3] = {0};
    getloadavg(load, 3);
    printf("netback benchmark summary; traces in %s; load average %.2f%s:\n%s", bench_base(),
           load[0], rt ? "; SCHED_FIFO" : "", summary->data ? summary->data : "");
    if (targets_checked) {
        printf("  targets: %d of %d held\n%s", targets_held, targets_checked, targets.data);
    }
}

/* NB_BENCH_CASE=substring: run only the cases whose name contains it. */
static bool selected(const char *name)
{
    const char *only = getenv("NB_BENCH_CASE");
    return !only || strstr(name, only);
}

int main(int argc, char **argv)
{
    bool quick = false, rt = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else if (!strcmp(argv[i], "--rt")) {
            rt = true;
        } else {
            bool help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            fprintf(help ? stdout : stderr,
                    "usage: bench_netback [--quick] [--rt]\n"
                    "  --quick  fewer frames (a smoke test, noisier)\n"
                    "  --rt     run the sender and the relay SCHED_FIFO (needs root): on a\n"
                    "           shared machine the tails otherwise measure other tenants\n"
                    "environment:\n"
                    "  NB_BENCH_DIR=DIR      sockets and traces (default /dev/shm, else /tmp)\n"
                    "  NB_BENCH_CASE=TEXT    only the cases whose name contains TEXT (64B,\n"
                    "                        1500B tracing, loop, machine pagecache, latency)\n"
                    "  NB_BENCH_TRACE=pcap|db  trace into that sink only\n"
                    "  NB_PORT_QUEUE, NB_STALL_NS, NB_SPIN_NS  netback's options\n"
                    "Prints one JSON line per case, then a summary ending with the targets.\n"
                    "See docs/netback.md, \"Performance\".\n");
            return help ? 0 : 2;
        }
    }
    if (rt) {
        struct sched_param sp = {.sched_priority = 10};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) {
            perror("sched_setscheduler(SCHED_FIFO)");
            return 3;
        }
    }
    /* Socket paths are BASE/nb-bench-XXXXXX/a.sock in 64 bytes. */
    if (strlen(bench_base()) > 40) {
        fprintf(stderr,
                "bench_netback: NB_BENCH_DIR '%s' is too long: the sockets in it need a "
                "path of at most 40 characters\n",
                bench_base());
        return 2;
    }
    long n64 = quick ? 50000 : 300000, n1500 = quick ? 20000 : 100000;
    long nlat = quick ? 1000 : 3000;
    struct fl_buf summary = {0};

    /* The machine's page cache, for reading the traced cases (machine.c). */
    struct machine_pagecache pc;
    if (selected("machine pagecache") || selected("1500B tracing") ||
        selected("loop 1500B tracing")) {
        if (machine_pagecache(bench_base(), (size_t)n1500 * 3072, &pc) == 0) {
            json_line_vs("netback.machine", "page cache write 3KB new pages", pc.fresh_ns, "ns",
                         "overwrite", pc.overwrite_ns);
            fl_buf_printf(&summary,
                          "  machine: writing 3 KB into the page cache (%s) costs %.0f ns of CPU "
                          "into new pages, %.0f ns over old ones; the traced 1500 B cases write "
                          "3 KB per frame (this wrote as much as one of their runs)\n",
                          bench_base(), pc.fresh_ns, pc.overwrite_ns);
        } else {
            fprintf(stderr, "bench_netback: cannot write a file in %s: %s\n", bench_base(),
                    strerror(errno));
        }
    }

    /* Throughput.  The machine may be shared: each case runs REPS times
     * alternating with the raw relay, and the medians are compared. */
    struct {
        size_t size;
        long n;
    } sizes[] = {{64, n64}, {1500, n1500}};
    for (size_t k = 0; k < 2; k++) {
        struct {
            const char *name;
            const char *link;
            bool tracing;
        } cases[] = {
            {"", NULL, false},
            {" delay 1ms loss 1%", "delay 1ms loss 1%", false},
            {" tracing", NULL, true},
        };
        for (size_t c = 0; c < FL_ARRAY_LEN(cases); c++) {
            char name[64];
            snprintf(name, sizeof name, "%zuB%s", sizes[k].size, cases[c].name);
            if (!selected(name)) {
                continue;
            }
            double vb[REPS], vn[REPS], stall_ms = 0, cpu_b = 0, cpu_n = 0, pcpu_b = 0, pcpu_n = 0;
            double snd_n = 0, rcv_n = 0, db_n = 0, pcap_n = 0, got_n = 0;
            for (int rep = 0; rep < REPS; rep++) {
                struct run raw = {
                    .kind = RELAY_RAW, .frame_size = sizes[k].size, .frames = sizes[k].n};
                run_once(&raw);
                vb[rep] = fps(&raw);
                cpu_b += (double)raw.relay_cpu_ns / (double)raw.frames / REPS;
                pcpu_b += (double)raw.proc_cpu_ns / (double)raw.frames / REPS;
                free(raw.lat);
                struct run nbr = {.kind = RELAY_NETBACK,
                                  .frame_size = sizes[k].size,
                                  .frames = sizes[k].n,
                                  .link = cases[c].link,
                                  .tracing = cases[c].tracing};
                run_once(&nbr);
                vn[rep] = fps(&nbr);
                got_n += (double)FL_MIN(nbr.received, nbr.frames) / (double)nbr.frames / REPS;
                cpu_n += (double)nbr.relay_cpu_ns / (double)nbr.frames / REPS;
                pcpu_n += (double)nbr.proc_cpu_ns / (double)nbr.frames / REPS;
                snd_n += (double)nbr.sender_cpu_ns / (double)nbr.frames / REPS;
                rcv_n += (double)nbr.receiver_cpu_ns / (double)nbr.frames / REPS;
                db_n += (double)nbr.db_cpu_ns / (double)nbr.frames / REPS;
                pcap_n += (double)nbr.pcap_cpu_ns / (double)nbr.frames / REPS;
                stall_ms += (double)nbr.trace_stall_ns / 1e6 / REPS;
                free(nbr.lat);
            }
            double base = median(vb, REPS), v = median(vn, REPS);
            json_line("netback.forward", name, v, "frames/s", base, true);
            if (!cases[c].link) {
                char what[80];
                snprintf(what, sizeof what, "%s vs raw relay", name);
                target(what, v / base, true, cases[c].tracing ? 0.7 : 0.9, "x");
            }
            fl_buf_printf(&summary, "  %-26s %10.0f frames/s  raw relay %10.0f  ratio %.2f", name,
                          v, base, v / base);
            fl_buf_printf(
                &summary,
                "  relay thread CPU %.0f ns/frame (raw %.0f), all threads %.0f (raw %.0f)", cpu_n,
                cpu_b, pcpu_n, pcpu_b);
            if (got_n < 0.9995) {
                fl_buf_printf(&summary, ", %.2f%% delivered", got_n * 100);
            }
            if (cases[c].tracing) {
                fl_buf_printf(&summary,
                              ", blocked on trace's writer %.0f ms/run\n"
                              "  %-26s CPU ns/frame by thread: sender %.0f, receiver %.0f,"
                              " trace db writer %.0f, pcap writers %.0f",
                              stall_ms, "", snd_n, rcv_n, db_n, pcap_n);
            }
            fl_buf_puts(&summary, "\n");
        }
    }

    /* Loop cost, one thread: the median of REPS alternating runs. */
    for (size_t k = 0; k < 2; k++) {
        for (int tracing = 0; tracing < 2; tracing++) {
            char name[64];
            snprintf(name, sizeof name, "loop %zuB%s", sizes[k].size, tracing ? " tracing" : "");
            if (!selected(name)) {
                continue;
            }
            double vb[REPS], vn[REPS], vl[REPS], vd[REPS], vp[REPS];
            for (int rep = 0; rep < REPS; rep++) {
                vb[rep] = loop_cost(RELAY_RAW, sizes[k].size, sizes[k].n, false).loop;
                struct loop_cost c = loop_cost(RELAY_NETBACK, sizes[k].size, sizes[k].n, tracing);
                vn[rep] = c.loop + c.db + c.pcap;
                vl[rep] = c.loop;
                vd[rep] = c.db;
                vp[rep] = c.pcap;
            }
            double base = median(vb, REPS), v = median(vn, REPS);
            json_line("netback.loop_cost", name, v, "ns/frame", base, false);
            fl_buf_printf(&summary, "  %-26s %10.0f ns/frame of CPU  raw relay %6.0f  ratio %.2f",
                          name, v, base, base / v);
            if (tracing) {
                fl_buf_printf(&summary, "  (loop %.0f, run.db writer %.0f, pcap writers %.0f)",
                              median(vl, REPS), median(vd, REPS), median(vp, REPS));
            }
            fl_buf_puts(&summary, "\n");
        }
    }

    if (!selected("latency")) {
        print_summary(&summary, rt);
        fl_buf_free(&summary);
        fl_buf_free(&targets);
        return 0;
    }
    /* The machine's own stalls, for reading the delay error's tail
     * (machine.c): with nothing else running, how often does a thread
     * lose its CPU for longer than the p99 target? */
    struct machine_stalls ms;
    if (machine_stalls(quick ? FL_NS_PER_SEC : 3 * FL_NS_PER_SEC, 150 * FL_NS_PER_US, &ms) == 0) {
        double share = 100.0 * (double)ms.over / (double)ms.windows;
        json_line_vs("netback.machine", "1ms windows with a stall over 150us", share, "%",
                     "p99-budget", 1.0);
        json_line_vs("netback.machine", "longest stall per 1ms window p99", ms.p99_us, "us",
                     "p99-target", 150.0);
        fl_buf_printf(&summary,
                      "  machine: %d threads spinning on the clock for %ld ms lost their CPU for "
                      "over 150 us in %.2f%% of 1 ms windows (the delay error's p99 target "
                      "allows 1%%); longest gap per window p50 %.1f us, p99 %.1f us, max %.0f "
                      "us\n",
                      ms.threads, ms.windows, share, ms.p50_us, ms.p99_us, ms.max_us);
    }
    /* Latency at 1k frames/s, and the error of a 10 ms delay. */
    struct run raw = {.kind = RELAY_RAW, .frame_size = 64, .frames = nlat, .pace_ns = FL_NS_PER_MS};
    run_once(&raw);
    struct run nbr = {
        .kind = RELAY_NETBACK, .frame_size = 64, .frames = nlat, .pace_ns = FL_NS_PER_MS};
    run_once(&nbr);
    struct run dly = {.kind = RELAY_NETBACK,
                      .frame_size = 64,
                      .frames = nlat,
                      .pace_ns = FL_NS_PER_MS,
                      .link = "delay 10ms",
                      .own_delays = true};
    run_once(&dly);
    double raw50 = pct_us(&raw, 0.5, 0), raw99 = pct_us(&raw, 0.99, 0);
    double nb50 = pct_us(&nbr, 0.5, 0), nb99 = pct_us(&nbr, 0.99, 0);
    double d50 = pct_us(&dly, 0.5, 10 * FL_NS_PER_MS), d99 = pct_us(&dly, 0.99, 10 * FL_NS_PER_MS);
    double o50 = pct_of_us(dly.own, dly.n_own, 0.5, 10 * FL_NS_PER_MS);
    double o99 = pct_of_us(dly.own, dly.n_own, 0.99, 10 * FL_NS_PER_MS);
    json_line("netback.latency", "64B 1kfps p50", nb50, "us", raw50, false);
    json_line("netback.latency", "64B 1kfps p99", nb99, "us", raw99, false);
    json_line("netback.delay_error", "10ms 1kfps p50", d50, "us", raw50, false);
    json_line("netback.delay_error", "10ms 1kfps p99", d99, "us", raw99, false);
    json_line("netback.delay_error", "10ms 1kfps netback-side p50", o50, "us", raw50, false);
    json_line("netback.delay_error", "10ms 1kfps netback-side p99", o99, "us", raw99, false);
    fl_buf_printf(&summary,
                  "  latency at 1k frames/s: netback p50 %.1f us p99 %.1f us; raw relay p50 %.1f "
                  "us p99 %.1f us (added: p50 %.1f us, p99 %.1f us)\n",
                  nb50, nb99, raw50, raw99, nb50 - raw50, nb99 - raw99);
    fl_buf_printf(&summary,
                  "  10 ms delay: error p50 %.1f us, p99 %.1f us (measured end to end, including "
                  "the relay path itself: raw relay p50 %.1f us p99 %.1f us); netback's own "
                  "view (socket read to socket write, from its fate records): p50 %.1f us, p99 "
                  "%.1f us\n",
                  d50, d99, raw50, raw99, o50, o99);
    target("10 ms delay error p50", d50, false, 50, " us");
    target("10 ms delay error p99", d99, false, 150, " us");
    print_summary(&summary, rt);
    fl_buf_free(&targets);
    fl_buf_free(&summary);
    free(raw.lat);
    free(nbr.lat);
    free(dly.lat);
    free(dly.own);
    return 0;
}
