/*
 * trace/ — the run database (run.db, SQLite in WAL mode), pcap helpers,
 * queries (`faultline trace`) and the HTML report (`faultline report`).
 *
 * trace/ depends only on core/ (plus SQLite and libpcap).  netback/ and
 * blkback/ call the record writers directly; runner/ uses the setup and
 * run-level writers and calls trace_report_write() at the end of a run.
 * The schema is documented in docs/run-database.md.
 *
 * Layout
 * ------
 *   trace.h          this API
 *   internal.h       what trace's files share (schema SQL, the frame
 *                    selection, time formatting); db-internal.h: the
 *                    run database writer's own structures (db-*.c only)
 *   db-records.c     the record writers below (trace_node_id() ... trace_host_error())
 *   db-staging.c     staging batches, the queue to the writer thread, interning
 *   db-writer.c      the writer thread: one transaction per batch
 *   db-vtab.c        trace_frame_batch: the virtual table frames go in through
 *   db-schema.c      every SQL text the writer runs (schema, indexes, inserts)
 *   db-open.c        open, flush, close;  db-reader.c: read-only opening
 *   enum-names.c     names of the enums below;  frame-hash.c: trace_frame_hash()
 *   pcap-writer.c    trace_pcap_*;  pcap-merge.c: trace_pcap_merge()
 *   writer-thread.c  the life of the writer threads (run.db, pcaps): start, wait, stop
 *   writer-failure.c their sticky failure record (first error, counts; logged once)
 *   query.c          `faultline trace`;  time-format.c: its times and durations
 *   report.c         `faultline report` (report.css, report.js inlined)
 * Includes point one way: *.c -> db-internal.h -> internal.h -> trace.h.
 *
 * How records flow
 * ----------------
 *
 *   event-loop thread(s)                        writer thread (one per db)
 *   trace_frame()/trace_io()/...  ──copy──▶ staging batch
 *                                  (mutex,     │ full (batch_records) or
 *                                   ~50 ns)    │ older than batch_interval
 *                                              ▼
 *                                         queue of batches ──▶ BEGIN; INSERT ...; COMMIT
 *
 * Every writer copies its arguments (strings included) into the staging
 * batch and returns: no SQLite call, no allocation in the common case,
 * no system call.  The writer thread commits one transaction per batch.
 * It runs 10 nice levels below the thread that opened the database (so
 * do the pcap writer threads): it catches up when a CPU is free instead
 * of preempting the event loop.
 * Records reach the database in the order the writers were called.  A
 * process killed with SIGKILL leaves a database that opens and holds every
 * batch committed so far (WAL, synchronous=NORMAL).  If the writer thread
 * falls behind by more than TRACE_MAX_QUEUED_BATCHES batches, writers
 * block until it catches up (nothing is dropped; the stall time is counted
 * in the meta table as "stall_ns").  A write that fails (a full disk) is
 * not hidden: the first failure is logged once, nothing is written after
 * it, and trace_db_ok()/trace_db_finish() tell the owner how many records
 * the database does not hold (the pcap writers do the same).
 *
 * Every writer is thread-safe.  After trace_db_close() nothing may be
 * called on the db.
 *
 * Time
 * ----
 * Writers take CLOCK_MONOTONIC ns (fl_clock_mono_ns(), fl_loop_now() of a
 * real loop).  The database stores times on the *run clock*: ns since the
 * run's time zero, set by the runner with trace_db_set_epoch() (the
 * monotonic instant when all nodes were ready).  Until the epoch is set it
 * defaults to the instant of trace_db_open(); when it is set, rows already
 * written are shifted so that every time in the database is on the same
 * clock.  Times before time zero (boot) are negative.  TRACE_NO_TIME
 * (INT64_MIN) means "none" wherever a time is optional and is stored as
 * SQL NULL.
 *
 * Ids
 * ---
 * Setup-time interning functions return small positive int64 ids
 * (1, 2, ...) immediately (they are assigned in memory; the row is written
 * with the next batch).  Asking twice for the same key returns the same id.
 * They return a negative errno on bad arguments (NULL/empty name: -EINVAL,
 * unknown id: -ENOENT, db closed/failed: -EIO).  Id 0 means "none" in
 * every record field that takes an id.
 */
#ifndef FL_TRACE_H
#define FL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "impair/impair.h" /* IMPAIR_DROP_REASONS */

/* Version of the schema written by this code: PRAGMA user_version and
 * meta.schema_version.  Bumped on every incompatible change. */
#define TRACE_SCHEMA_VERSION 1

#define TRACE_NO_TIME INT64_MIN

/* Default batching: a batch is handed to the writer thread when it holds
 * this many records or its oldest record is this old. */
#define TRACE_DEFAULT_BATCH_RECORDS  4096
#define TRACE_DEFAULT_BATCH_INTERVAL (100 * FL_NS_PER_MS)
#define TRACE_MAX_QUEUED_BATCHES     64

struct trace_db;

/* ------------------------------------------------------------------ */
/* Opening and closing                                                 */
/* ------------------------------------------------------------------ */

/* Creates (or opens, to append) the run database at `path` (normally
 * <rundir>/run.db): WAL mode, schema created if absent, schema version
 * checked if present (a database written by another schema version is an
 * error naming both versions).  Starts the writer thread. */
struct trace_db *trace_db_open(const char *path, struct fl_error **errp);

/* Hands the staging batch to the writer thread, waits until everything
 * written so far is committed, creates the query indexes, checkpoints the
 * WAL and closes.  Accepts NULL.  The same as trace_db_finish(db, NULL). */
void trace_db_close(struct trace_db *db);

/* trace_db_close() that says whether the database holds everything it was
 * given: true, or false and errp as trace_db_ok() says it (including the
 * steps of closing: statistics, indexes, WAL checkpoint).  Accepts NULL
 * (true).  The owner of a run calls this, not trace_db_close(). */
bool trace_db_finish(struct trace_db *db, struct fl_error **errp);

/* Commits everything written so far and waits for it.  0, or -errno if the
 * writer thread failed (e.g. -ENOSPC); after a failure every writer returns
 * -EIO. */
int trace_db_flush(struct trace_db *db);

/* Whether every write so far succeeded: true, or false and errp (code:
 * the first failure's errno, e.g. ENOSPC) with
 *   "PATH: writing a batch of 4096 records: database or disk is full;
 *    N records not written, M failed writes"
 * where N counts every record the database will not hold (the failed
 * batches, the batches after them, and the records writers were refused
 * since: -EIO).  A failure is sticky, logged once (room "trace", error)
 * and then only counted.  Does not wait: call trace_db_flush() first to
 * judge everything written so far.  Thread-safe. */
bool trace_db_ok(struct trace_db *db, struct fl_error **errp);

/* Tuning (tests, benchmarks).  records >= 1, interval_ns >= 1 ms;
 * otherwise -EINVAL. */
int trace_db_set_batch(struct trace_db *db, size_t records, int64_t interval_ns);

/* The run clock's time zero, in CLOCK_MONOTONIC ns (see "Time" above).
 * May be called more than once; the last call wins for every row. */
int trace_db_set_epoch(struct trace_db *db, int64_t mono_ns);
int64_t trace_db_epoch(const struct trace_db *db);

/* Statistics of this writer since open (for benchmarks and logs). */
struct trace_db_stats {
    uint64_t records;   /* records accepted by writers */
    uint64_t committed; /* records committed to the database */
    uint64_t batches;   /* transactions committed */
    int64_t stall_ns;   /* time writers spent blocked on a full queue */
};
void trace_db_get_stats(struct trace_db *db, struct trace_db_stats *stats);

/* ------------------------------------------------------------------ */
/* Setup-time interning (cheap ids for the hot-path records)           */
/* ------------------------------------------------------------------ */

int64_t trace_node_id(struct trace_db *db, const char *name);
int64_t trace_network_id(struct trace_db *db, const char *name);
/* nic_name: the guest-facing name ("eth0"); mac: "52:54:00:12:34:56" or
 * NULL.  Key: (node, nic_name). */
int64_t trace_nic_id(struct trace_db *db, int64_t node_id, int64_t network_id, const char *nic_name,
                     const char *mac);
/* A directed link src_node -> dst_node on a network.  Key: all three. */
int64_t trace_link_id(struct trace_db *db, int64_t network_id, int64_t src_node_id,
                      int64_t dst_node_id);
/* size_bytes: the disk's size as exported (0 if unknown).  Key: (node, name). */
int64_t trace_disk_id(struct trace_db *db, int64_t node_id, const char *disk_name,
                      uint64_t size_bytes);

/* ------------------------------------------------------------------ */
/* Run-level records                                                   */
/* ------------------------------------------------------------------ */

struct trace_run_info {
    const char *scenario_name; /* required */
    const char *scenario_path; /* may be NULL */
    const char *scenario_text; /* the scenario file's bytes; may be NULL */
    uint64_t seed;
    const char *faultline_version; /* NULL: FL_VERSION of this build */
    const char *host;              /* NULL: gethostname() */
    const char *accel;             /* "kvm" / "tcg" / NULL */
    int64_t started_wall_ns;       /* CLOCK_REALTIME; 0: now */
};
/* Once per database; a second call is -EEXIST. */
int trace_run_begin(struct trace_db *db, const struct trace_run_info *info);

/* verdict: "pass", "fail", "error" or "interrupted"; detail: one line or
 * NULL.  end_mono_ns: CLOCK_MONOTONIC instant of the end (TRACE_NO_TIME:
 * now). */
int trace_run_end(struct trace_db *db, const char *verdict, const char *detail,
                  int64_t end_mono_ns);

/* Link parameter history: the parameters in force on link_id from t_ns on,
 * in the scenario's own notation ("delay=10ms jitter=1ms loss=1%"); a
 * partition is written as "partitioned" by the runner (and an event). */
int trace_link_params(struct trace_db *db, int64_t link_id, int64_t t_ns, const char *params);

/*
 * Events: the timeline as it was executed and everything unexpected
 * (a node exiting, a guest disconnecting, a malformed frame).  kind is a
 * short lowercase word; the report knows these (others are shown as is):
 *   boot ready partition heal link crash restart pause resume exit
 *   disconnect check disk clock note error
 * node_id: the node concerned or 0 (whole run).  detail: free text (one
 * line; JSON is fine) or NULL.  Returns the event id (> 0) or -errno.
 *
 * A window (a partition, a fault that lasts) is an event whose end is set
 * later with trace_event_end(); the report shades [t_ns, end) on the
 * node's timeline row (all rows when node_id is 0).
 */
int64_t trace_event(struct trace_db *db, int64_t t_ns, const char *kind, int64_t node_id,
                    const char *detail);
int trace_event_end(struct trace_db *db, int64_t event_id, int64_t end_ns);

struct trace_check {
    const char *name;    /* required */
    int64_t node_id;     /* 0: run on the controller */
    const char *command; /* may be NULL */
    int exit_status;     /* exit code, or 128+signal; -1: did not run */
    const char *out;     /* stdout (truncated by the caller as it likes) */
    const char *err;     /* stderr */
    bool passed;
    int64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
};
int trace_check(struct trace_db *db, const struct trace_check *check);

/* A recorded node's segment (docs/record-replay.md): one QEMU process of
 * the node, replayable with `faultline replay RUN NODE --segment N`.
 * One row of rr_segments, written when the segment ends. */
struct trace_rr_segment {
    int64_t node_id;          /* required */
    uint32_t segment;         /* 0: the first boot, then each restart */
    int64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
    const char *ended;        /* required: quit | killed | exited | running */
    bool has_icount;
    uint64_t icount; /* instructions it ran (QMP query-replay at its end) */
};
int trace_rr_segment(struct trace_db *db, const struct trace_rr_segment *segment);

/* ------------------------------------------------------------------ */
/* Frames (netback hot path)                                           */
/* ------------------------------------------------------------------ */

#define TRACE_FATES(X)                                                                             \
    X(DELIVERED, "delivered")                                                                      \
    X(DROPPED, "dropped")

enum trace_fate {
#define TRACE_FATE_ENUM(name, str) TRACE_FATE_##name,
    TRACE_FATES(TRACE_FATE_ENUM)
#undef TRACE_FATE_ENUM
        TRACE_FATE_COUNT
};

/* Why a copy was dropped (TRACE_DROP_NONE when delivered): impair's one
 * list (impair/impair.h IMPAIR_DROP_REASONS), shared with netback; the
 * strings are what run.db stores. */
#define TRACE_DROP_REASONS(X) IMPAIR_DROP_REASONS(X)

enum trace_drop_reason {
#define TRACE_DROP_ENUM(name, str) TRACE_DROP_##name,
    TRACE_DROP_REASONS(TRACE_DROP_ENUM)
#undef TRACE_DROP_ENUM
        TRACE_DROP_COUNT
};

/*
 * One copy of a frame from one source NIC to one destination NIC, as
 * netback decided it.  Written once, when its fate is final (delivered to
 * the destination port, or dropped).  A broadcast/flooded frame is one
 * record per destination; a duplicated frame is one record per copy
 * (copy = 0 for the original, 1.. for duplicates).
 */
struct trace_frame {
    int64_t sent_ns;         /* CLOCK_MONOTONIC: read from the source port */
    int64_t delivered_ns;    /* CLOCK_MONOTONIC: written to the destination port;
                                TRACE_NO_TIME when dropped */
    int64_t link_id;         /* trace_link_id(); required (> 0) */
    int64_t src_nic_id;      /* trace_nic_id() of the sender; 0: unknown */
    int64_t dst_nic_id;      /* of the receiver; 0: unknown */
    int64_t pcap_index;      /* 0-based index of this frame's packet in the source
                                NIC's pcap (<rundir>/pcap/<node>-<nic>.pcap) as
                                written by netback; -1: unknown (the merged pcap
                                then matches packets by hash, in order) */
    uint32_t size;           /* bytes of the Ethernet frame (no FCS) */
    uint32_t hash;           /* trace_frame_hash() of the bytes as sent */
    uint8_t fate;            /* enum trace_fate */
    uint8_t reason;          /* enum trace_drop_reason */
    uint8_t reordered;       /* 1: delivered after a frame sent later on the link */
    uint8_t corrupt_mask;    /* bits flipped at corrupt_offset; 0: not corrupted */
    uint16_t copy;           /* 0: original, n: n-th duplicate */
    uint32_t corrupt_offset; /* byte offset of the flipped bits */
};

/* 0, or -EINVAL (bad fate/reason, link_id <= 0, delivered without a time),
 * -EIO (db failed). */
int trace_frame(struct trace_db *db, const struct trace_frame *frame);

/* The frame hash stored in trace_frame.hash (joins a record with its
 * packet in the pcaps).  A fast word-wise hash, defined exactly in
 * docs/run-database.md ("frame hash") with known answers in
 * tests/unit/trace/test_db.c; stable across hosts and runs. */
uint32_t trace_frame_hash(const void *data, size_t size);

const char *trace_fate_name(enum trace_fate fate);
const char *trace_drop_reason_name(enum trace_drop_reason reason);
/* -1 if unknown. */
int trace_fate_parse(const char *name);
int trace_drop_reason_parse(const char *name);

/* ------------------------------------------------------------------ */
/* Block I/O (blkback hot path)                                        */
/* ------------------------------------------------------------------ */

#define TRACE_IO_OPS(X)                                                                            \
    X(READ, "read")                                                                                \
    X(WRITE, "write")                                                                              \
    X(FLUSH, "flush")                                                                              \
    X(TRIM, "trim")                                                                                \
    X(WRITE_ZEROES, "write-zeroes")

enum trace_io_op {
#define TRACE_IO_OP_ENUM(name, str) TRACE_IO_##name,
    TRACE_IO_OPS(TRACE_IO_OP_ENUM)
#undef TRACE_IO_OP_ENUM
        TRACE_IO_OP_COUNT
};

/* A fault injected into this request by the disk's impairment. */
#define TRACE_IO_FAULTS(X)                                                                         \
    X(NONE, "none")                                                                                \
    X(ERROR, "error")     /* failed with an injected errno */                                      \
    X(LATENCY, "latency") /* delayed by injected latency */                                        \
    X(FULL, "full")       /* ENOSPC from a "disk full" fault */

enum trace_io_fault {
#define TRACE_IO_FAULT_ENUM(name, str) TRACE_IO_FAULT_##name,
    TRACE_IO_FAULTS(TRACE_IO_FAULT_ENUM)
#undef TRACE_IO_FAULT_ENUM
        TRACE_IO_FAULT_COUNT
};

struct trace_io {
    int64_t disk_id;     /* trace_disk_id(); required (> 0) */
    int64_t submit_ns;   /* CLOCK_MONOTONIC: request read from the socket */
    int64_t complete_ns; /* CLOCK_MONOTONIC: reply sent; TRACE_NO_TIME if never
                            (crash before the reply) */
    uint64_t offset;     /* bytes */
    uint64_t length;     /* bytes (0 for flush) */
    uint8_t op;          /* enum trace_io_op */
    uint8_t fault;       /* enum trace_io_fault */
    uint8_t fua;         /* write with FUA: durable when acknowledged */
    int32_t result;      /* 0 or the positive errno returned to the guest */
};

/* Returns the I/O's id (> 0; used by trace_crash_write) or -errno. */
int64_t trace_io(struct trace_db *db, const struct trace_io *io);

/*
 * Crashes and what they did to unflushed writes.  At a crash (power cut,
 * `crash` timeline action) blkback records one crash per disk, then one
 * outcome per write that was still in the volatile cache (acknowledged but
 * neither flushed nor FUA), using the ids trace_io() returned:
 *
 *   int64_t c = trace_crash(db, disk, now, "lose-unflushed");
 *   for each unflushed write w: trace_crash_write(db, c, w.io_id, outcome, kept_bytes);
 */
#define TRACE_CRASH_OUTCOMES(X)                                                                    \
    X(LOST, "lost") /* none of the write reached the medium */                                     \
    X(TORN, "torn") /* only kept_bytes of it did (a torn write) */                                 \
    X(KEPT, "kept") /* it survived although unflushed */

enum trace_crash_outcome {
#define TRACE_CRASH_OUTCOME_ENUM(name, str) TRACE_CRASH_##name,
    TRACE_CRASH_OUTCOMES(TRACE_CRASH_OUTCOME_ENUM)
#undef TRACE_CRASH_OUTCOME_ENUM
        TRACE_CRASH_OUTCOME_COUNT
};

/* policy: the crash policy's name as in the scenario. Returns the crash id
 * (> 0) or -errno. */
int64_t trace_crash(struct trace_db *db, int64_t disk_id, int64_t t_ns, const char *policy);
int trace_crash_write(struct trace_db *db, int64_t crash_id, int64_t io_id,
                      enum trace_crash_outcome outcome, uint64_t kept_bytes);

const char *trace_io_op_name(enum trace_io_op op);
const char *trace_io_fault_name(enum trace_io_fault fault);
const char *trace_crash_outcome_name(enum trace_crash_outcome outcome);

/* ------------------------------------------------------------------ */
/* Host errors                                                         */
/* ------------------------------------------------------------------ */

/*
 * A failure of the host, not of the guest or of an injected fault: the
 * file system under a disk's backing file returned ENOSPC or EIO, say.
 * Each is one row of host_errors (its parts, for queries) and one event
 * of kind "error" on the node's timeline whose detail reads
 *   host error on disk data (/srv/data.img): ENOSPC (No space left on device): MESSAGE
 * so `faultline trace --events` and the report show it.  The caller
 * records each distinct failure (e.g. the first per file and errno, and
 * its count when the disk closes), not every failed request.
 */
struct trace_host_error {
    int64_t t_ns;        /* CLOCK_MONOTONIC; TRACE_NO_TIME: now */
    const char *what;    /* required: what failed, "disk" for a disk's backing file */
    int64_t node_id;     /* the node concerned; 0: the disk's node, or the whole run */
    int64_t disk_id;     /* trace_disk_id() when a disk's file failed; 0: none */
    const char *name;    /* its name as the scenario says it ("data"); may be NULL */
    const char *path;    /* the host file; may be NULL */
    int errnum;          /* required: the positive errno (ENOSPC, EIO, ...) */
    const char *message; /* one line: what was being done; may be NULL */
};
/* Returns the host error's id (> 0), -EINVAL (what empty, errnum <= 0),
 * -ENOENT (unknown node or disk id) or -EIO (db failed). */
int64_t trace_host_error(struct trace_db *db, const struct trace_host_error *error);

/* ------------------------------------------------------------------ */
/* pcap helpers                                                        */
/* ------------------------------------------------------------------ */

/* netback's per-NIC capture path: "<run_dir>/pcap/<node>-<nic>.pcap"
 * (caller frees). */
char *trace_pcap_path(const char *run_dir, const char *node, const char *nic);

/* A pcap writer (libpcap file format, DLT_EN10MB, nanosecond timestamps).
 * trace_pcap_write() copies the packet into an in-memory buffer (no system
 * call, no lock); full 256 KiB buffers are written to the file by the
 * pcap's own writer thread, so the page-cache copy does not run on the
 * caller's thread.  If the writer falls 16 MiB behind, trace_pcap_write()
 * waits for it (packets are never dropped).  Unlike the database writers,
 * one pcap is used by one thread at a time (no locking on the per-packet
 * path). */
struct trace_pcap;
/* path "-": standard output. */
struct trace_pcap *trace_pcap_create(const char *path, struct fl_error **errp);
/* wall_ns: CLOCK_REALTIME ns of the packet.  0 or -errno. */
int trace_pcap_write(struct trace_pcap *pcap, int64_t wall_ns, const void *data, size_t size);
/* Writes buffered packets to the file and waits until they are there
 * (call this periodically, e.g. every second, so a killed controller
 * loses little).  0 or -errno of the first failed write (sticky: after a
 * failure every trace_pcap_write() returns it too). */
int trace_pcap_flush(struct trace_pcap *pcap);
/* Whether every packet so far is in the file: true, or false and errp
 * (code: the first failure's errno) with
 *   "PATH: writing the pcap: No space left on device; N packets not written, M failed writes"
 * (N: the packets of the failed buffers, of the buffers after them, and
 * those trace_pcap_write() refused since).  A failure is sticky, logged
 * once (room "trace", error) and then only counted.  Does not wait: call
 * trace_pcap_flush() first to judge everything written so far.  May be
 * called from any thread. */
bool trace_pcap_ok(struct trace_pcap *pcap, struct fl_error **errp);
/* Flushes and closes: true, or false and errp as trace_pcap_ok() says it
 * (including a failed close(2)).  Accepts NULL (true). */
bool trace_pcap_finish(struct trace_pcap *pcap, struct fl_error **errp);
/* trace_pcap_finish(pcap, NULL); accepts NULL. */
void trace_pcap_destroy(struct trace_pcap *pcap);

/* ------------------------------------------------------------------ */
/* Reading: `faultline trace` and `faultline report`                   */
/* ------------------------------------------------------------------ */

/* run: a run directory containing run.db, or the path of a run.db. */
struct trace_db *trace_db_open_readonly(const char *run, struct fl_error **errp);

/* What `faultline trace` selects.  Zero-initialize, then set fields. */
enum trace_query_kind {
    TRACE_QUERY_FRAMES = 0,
    TRACE_QUERY_IOS,    /* block requests */
    TRACE_QUERY_LOST,   /* writes lost or torn at crashes */
    TRACE_QUERY_EVENTS, /* timeline and unexpected events */
    TRACE_QUERY_LINKS,  /* per-link statistics of the frames the filters select */
};

/* Extra frame conditions (trace_query.fate_flags). */
#define TRACE_Q_DELIVERED  0x01u
#define TRACE_Q_DROPPED    0x02u
#define TRACE_Q_DUPLICATED 0x04u /* copy > 0 */
#define TRACE_Q_CORRUPTED  0x08u
#define TRACE_Q_REORDERED  0x10u

struct trace_query {
    enum trace_query_kind kind;
    const char *from_node;     /* frames sent by this node; NULL: any */
    const char *to_node;       /* frames sent to this node */
    const char *node;          /* frames from or to it; ios/events/lost of it */
    unsigned fate_flags;       /* OR of TRACE_Q_*; all must hold; 0: any */
    int reason;                /* enum trace_drop_reason, or -1/0: any */
    int64_t delayed_beyond_ns; /* delivered - sent > this; <= 0: any */
    bool has_since, has_until;
    int64_t since_ns, until_ns; /* run-clock window [since, until) */
    const char *disk;           /* ios/lost: this disk name only */
    size_t limit;               /* 0: no limit */
    bool json;                  /* JSON lines instead of a table */
};

/* Runs the query and prints the rows (a table with a header, or one JSON
 * object per line) to out.  *rows receives the row count.  false + errp on
 * an unknown node/disk name (with the valid names) or a database error. */
bool trace_query_print(struct trace_db *db, const struct trace_query *q, FILE *out, size_t *rows,
                       struct fl_error **errp);

/* Writes a merged pcap of the frames a TRACE_QUERY_FRAMES query selects,
 * in sent order, with the bytes as sent (read from the per-NIC pcaps of
 * run_dir) and timestamps on the wall clock of the run.  *written receives
 * the packets written; frames whose packet cannot be found in the per-NIC
 * pcaps are counted in *missing. */
bool trace_pcap_merge(struct trace_db *db, const char *run_dir, const struct trace_query *q,
                      const char *out_path, size_t *written, size_t *missing,
                      struct fl_error **errp);

/* Reads <run_dir>/run.db and writes <run_dir>/report.html: one
 * self-contained file (inline CSS/JS/SVG, no network fetches).  Opens the
 * database read-only: may be called after trace_db_close(). */
bool trace_report_write(const char *run_dir, struct fl_error **errp);
/* Same, with an explicit database path and output path. */
bool trace_report_write_to(const char *db_path, const char *html_path, struct fl_error **errp);

#endif /* FL_TRACE_H */
