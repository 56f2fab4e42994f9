/*
 * hv/ record and replay (issue 15, docs/record-replay.md): one node's QEMU
 * process (a *segment*) recorded with QEMU's record/replay, and replayed
 * alone afterwards, instruction-exact, with no netback, no blkback and no
 * other node: the log feeds the frames, the disk is the copy taken when
 * the segment started.
 *
 *   record:  hv_node_record_next(node, seg)   the next boot is recorded into seg->dir
 *            ... run ...                       crash/poweroff/teardown end it cleanly:
 *                                              QMP stop ▸ query-replay (icount) ▸ quit
 *            hv_rr_segment_write(seg.json)     (runner/record.c does the files)
 *   replay:  hv_rr_replay(seg dir)             QEMU -icount rr=replay, -S, replay-break
 *                                              at the recorded icount, console/agent out
 *
 * The record and replay command lines are derived from the node's plain
 * command line (node.c) by hv_rr_argv(), which knows every option node.c
 * writes and refuses any other, so a new option cannot silently break
 * recording.  What QEMU needs differs by version (hv_rr_flavor).
 */
#ifndef FL_HV_RECORD_H
#define FL_HV_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "hv/hv.h"

/* ---- QEMU version ---- */

struct hv_qemu_info {
    char *path;    /* resolved binary path (PATH lookup done) */
    char *version; /* "7.2.22" */
    char *package; /* "(Debian 1:7.2+dfsg-7+deb12u18+b3)" or "" */
    unsigned major, minor, micro;
    uint64_t hash; /* fl_hash64 of the binary's bytes */
};
void hv_qemu_info_clear(struct hv_qemu_info *q);
/* Parses the first line of `qemu-system-x86_64 --version`
 * ("QEMU emulator version 7.2.22 (Debian ...)"). */
bool hv_qemu_version_parse(const char *text, struct hv_qemu_info *out, struct fl_error **errp);
/* Runs `binary --version` (NULL: $FAULTLINE_QEMU, else
 * qemu-system-x86_64 from PATH) and hashes the binary. */
bool hv_qemu_probe(const char *binary, struct hv_qemu_info *out, struct fl_error **errp);

/* What the recording command line needs, by QEMU version (measured, the
 * issue's numbers): 7.2 needs `tx=timer` on virtio-net (its default TX
 * path is not recorded) and `-rtc clock=vm`; 10.0+ needs neither, and
 * `-rtc clock=vm` makes every replay on 10.0.2 fail.  8.x and 9.x were
 * never measured: refused. */
enum hv_rr_flavor { HV_RR_QEMU72, HV_RR_QEMU10 };
const char *hv_rr_flavor_name(enum hv_rr_flavor f); /* "qemu-7.2" | "qemu-10" */
bool hv_rr_flavor_parse(const char *s, enum hv_rr_flavor *out);
bool hv_rr_flavor_for(unsigned major, unsigned minor, enum hv_rr_flavor *out,
                      struct fl_error **errp);

/* ---- command lines ---- */

enum hv_rr_mode { HV_RR_RECORD, HV_RR_REPLAY };

struct hv_rr_argv_opts {
    enum hv_rr_mode mode;
    enum hv_rr_flavor flavor;
    /* RECORD: absolute paths in the segment directory.  REPLAY: the names
     * the replay uses in its working directory (relative paths; QEMU runs
     * there). */
    const char *rrfile;  /* the log QEMU writes (record) or reads (replay) */
    const char *console; /* the segment's console bytes (chardev logfile) */
    const char *agent;   /* the guest's bytes on the agent channel (logfile) */
    /* REPLAY: disk i is the file disks[i] (a copy of the disk as it was
     * when the segment started). */
    const char *const *disks;
    size_t n_disks;
    /* Measurement knobs (docs/record-replay.md, idle strategy): more
     * -icount suboptions ("sleep=off", "align=on") and kernel command
     * line words ("idle=poll"), the same in record and replay.  NULL:
     * none.  hv_node_rr_argv takes them from $FAULTLINE_RR_ICOUNT and
     * $FAULTLINE_RR_APPEND when unset. */
    const char *icount_extra;
    const char *append_extra;
    /* REPLAY: extra options appended (-S is always added; e.g. -gdb). */
    const char *const *extra;
    size_t n_extra;
};

/* From the plain argv node.c builds (NULL-terminated), the record or
 * replay argv (NULL-terminated, caller frees with hv_argv_free).  Errors
 * name the option: more than one vCPU, KVM, an option it does not know,
 * a disk without a file in REPLAY mode. */
char **hv_rr_argv(const char *const *plain, const struct hv_rr_argv_opts *o,
                  struct fl_error **errp);
void hv_rr_argv_free(char **argv);
size_t hv_rr_argv_len(const char *const *argv);

/* ---- recording a node (node.c) ---- */

struct hv_rr_segment_opts {
    const char *dir; /* existing segment directory; files are written there */
    enum hv_rr_flavor flavor;
    /* A running guest whose instruction count does not move this long
     * is reported through on_fail (ETIMEDOUT): a hung recording is never
     * silent.  0: 30 s. */
    int64_t stuck_ns;
};
/* The node's next hv_node_boot is recorded into o->dir (replay.log,
 * console.log, agent.log).  Forces TCG: an explicit KVM accelerator is an
 * error, as is more than 1 vCPU.  The node must be OFF.  While recorded,
 * hv_node_crash and hv_node_poweroff end QEMU with QMP stop ▸ query-replay
 * ▸ quit (never SIGKILL, which leaves a log QEMU cannot replay), and
 * hv_node_reset is refused (QEMU 7.2's replay stops at a system_reset). */
bool hv_node_record_next(struct hv_node *node, const struct hv_rr_segment_opts *o,
                         struct fl_error **errp);
/* The node's command line in record or replay form (TCG), as
 * hv_rr_argv makes it from the node's plain one; for the segment's
 * metadata.  NULL-terminated, caller frees (hv_argv_free). */
char **hv_node_rr_argv(struct hv_node *node, const struct hv_rr_argv_opts *o,
                       struct fl_error **errp);
/* Whether the node's current/last QEMU process is recorded. */
bool hv_node_recording(const struct hv_node *node);
/* The instruction count QMP query-replay reported when the recorded QEMU
 * was stopped to end its segment; false when none came (killed). */
bool hv_node_record_icount(const struct hv_node *node, uint64_t *icount);
/* Ends a recorded QEMU cleanly (stop ▸ query-replay ▸ quit) and spins the
 * loop until it exited (on_exit runs, unexpected == false) or timeout_ns
 * passed (then it is killed: the segment is not replayable).  A node
 * that is off: true at once. */
bool hv_node_record_end(struct hv_node *node, int64_t timeout_ns, struct fl_error **errp);

/* ---- segment metadata: <segment>/segment.json ---- */

#define HV_RR_SEGMENT_FILE "segment.json"
#define HV_RR_LOG_FILE     "replay.log"     /* raw while recording */
#define HV_RR_LOG_ZST      "replay.log.zst" /* after the segment ended */
#define HV_RR_CONSOLE_FILE "console.log"
#define HV_RR_AGENT_FILE   "agent.log"

struct hv_rr_disk {
    char *name; /* scenario disk name */
    char *file; /* relative to the segment directory: "disk-0.img" */
    uint64_t size;
};

/* How a segment ended. */
#define HV_RR_ENDS(X)                                                                              \
    X(RUNNING, "running") /* not ended (yet): the controller died?  not replayable */              \
    X(QUIT, "quit")       /* stopped and quit cleanly: replayable */                               \
    X(KILLED, "killed")   /* SIGKILL or died: QEMU wrote no log header, not replayable */          \
    X(EXITED, "exited")   /* QEMU exited on its own (guest poweroff): replayable */

enum hv_rr_end {
#define HV_RR_END_ENUM(name, str) HV_RR_END_##name,
    HV_RR_ENDS(HV_RR_END_ENUM)
#undef HV_RR_END_ENUM
};
const char *hv_rr_end_name(enum hv_rr_end e);

struct hv_rr_segment {
    char *node;
    unsigned index;
    char *qemu_path, *qemu_version, *qemu_package;
    uint64_t qemu_hash;
    enum hv_rr_flavor flavor;
    char *image_key;
    char **record_argv; /* exactly as QEMU was started (NULL-terminated) */
    char **replay_argv; /* relative names, run in the replay directory */
    struct hv_rr_disk *disks;
    size_t n_disks;
    char *log; /* HV_RR_LOG_ZST or HV_RR_LOG_FILE */
    enum hv_rr_end end;
    bool has_icount;
    uint64_t icount;      /* instructions executed when it ended */
    int64_t started_unix; /* CLOCK_REALTIME seconds */
    int64_t duration_ns;  /* wall time of the segment */
};
void hv_rr_segment_clear(struct hv_rr_segment *s);
/* Writes atomically (temporary file + rename). */
bool hv_rr_segment_write(const char *path, const struct hv_rr_segment *s, struct fl_error **errp);
/* Every error names the file and the field. */
bool hv_rr_segment_read(const char *path, struct hv_rr_segment *s, struct fl_error **errp);

/* ---- files ---- */

/* Copies src to dst (created, must not exist): a reflink when the file
 * system can, else a sparse copy (holes stay holes). */
bool hv_rr_copy_file(const char *src, const char *dst, struct fl_error **errp);
/* zstd -q (compress: src -> dst, src removed) or -d (dst written). */
bool hv_rr_zstd(bool compress, const char *src, const char *dst, struct fl_error **errp);
/* Runs argv (a tool on $PATH), stdin /dev/null; stdout to *out (may be
 * NULL: discarded), stderr into *err_text (last 4 KiB, may be NULL).
 * Returns the wait status, or -1 when it could not be started (errno). */
int hv_rr_run_tool(const char *const *argv, char **out, size_t *out_size, char **err_text);

/* ---- bundles (faultline bundle) ---- */

/* A bundle is one tar file (zstd-compressed when its name ends in .zst
 * or .tzst) holding what replaying some recorded nodes of a run needs:
 *
 *   faultline-bundle.json   {"format":"faultline-bundle","version":1,
 *                            "run":..., "nodes":[...], "image":bool}
 *   rr/<node>/<segment>/    each recorded node's segments, as in the run
 *   image/<key>/<file>      the guest kernel and initrd the segments boot
 *                           (unless left out), so that another machine
 *                           replays without the image cache
 *
 * Unpacked, it is a directory `faultline replay` reads like a run. */
#define HV_RR_BUNDLE_MARK "faultline-bundle.json"
/* The recorded nodes under rr_dir (sorted names) and the segment numbers
 * under rr/<node> (sorted); NULL with *n = 0 when none. */
char **hv_rr_list_nodes(const char *rr_dir, size_t *n);
unsigned *hv_rr_list_segments(const char *node_dir, size_t *n);
void hv_rr_list_free(char **v, size_t n);
struct hv_rr_bundle_opts {
    const char *run_dir;
    const char *const *nodes; /* NULL: every recorded node */
    size_t n_nodes;
    const char *out; /* the bundle file to write (replaced if it exists) */
    bool no_image;   /* leave out the kernel and initrd */
};
/* false with *errp naming the run, the node or the file. */
bool hv_rr_bundle_pack(const struct hv_rr_bundle_opts *o, struct fl_error **errp);
/* Unpacks `bundle` into a new directory under $TMPDIR (*dir; remove it
 * with fl_rm_rf) and points each segment at the bundled kernel and
 * initrd.  false with *errp naming the file when it is not a bundle, is
 * truncated or cannot be read; nothing is left behind then. */
bool hv_rr_bundle_unpack(const char *bundle, char **dir, struct fl_error **errp);

/* ---- replay ---- */

struct hv_replay_opts {
    const char *segment_dir;
    /* Working directory for the replay (decompressed log, disk copies,
     * outputs); NULL: a fresh one under $TMPDIR, removed afterwards. */
    const char *work_dir;
    /* Console bytes are copied here as they come (-1: not). */
    int console_fd;
    /* Stop at this instruction count instead of the segment's end
     * (0: the end). */
    uint64_t until_icount;
    /* Give up when the instruction count stops advancing this long
     * (0: 60 s): a replay that waits forever is reported, never silent. */
    int64_t stall_ns;
    /* Extra QEMU options (e.g. "-gdb", "tcp::1234"). */
    const char *const *extra;
    size_t n_extra;
    /* At the stop point: called with the paused QEMU's pid; the replay
     * then quits QEMU (for --gdb: wait for the user).  NULL: quit at once. */
    void (*at_stop)(void *arg, uint64_t icount);
    void *at_stop_arg;
};

struct hv_replay_result {
    bool reached;    /* stopped at the requested instruction count */
    uint64_t icount; /* where it stopped (query-replay) */
    char *console;   /* what the guest wrote on its console */
    size_t console_size;
    char *agent; /* what the guest wrote on the agent channel */
    size_t agent_size;
    char *qemu_stderr; /* QEMU's own messages (the last 4 KiB) */
};
void hv_replay_result_clear(struct hv_replay_result *r);
/* Replays one segment.  false with *errp when it could not start or did
 * not reach the stop point (QEMU failed, diverged, stalled); *res is
 * filled as far as it got either way. */
bool hv_rr_replay(const struct hv_replay_opts *o, struct hv_replay_result *res,
                  struct fl_error **errp);

#endif /* FL_HV_RECORD_H */
