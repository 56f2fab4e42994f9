/* A synthetic run written through the trace/ writer API, shared by the
 * query, pcap and report tests and by the report's browser test.
 *
 * Three nodes n1, n2, n3 on network "lan" (NIC eth0 each).  Time zero is
 * an arbitrary monotonic instant; the run lasts 20 s:
 *   - every 100 ms each node pings every other node (a 98-byte frame),
 *     the reply comes back on the reverse link; one-way delay 1 ms +
 *     0..1 ms, n1->n2 has 10 ms delay from 8 s on (link params change);
 *   - a partition isolates n3 from n1 and n2 during [5 s, 10 s): every
 *     frame to or from n3 in that window is dropped (reason partition);
 *   - n1->n2 loses frames number 7, 17, 27, ... (reason loss);
 *   - a few duplicates, one corrupted frame, one reordered frame;
 *   - n1 has disk "data": writes every 50 ms, a flush every second until
 *     the crash; the node crashes at 12.5 s: the writes since the last
 *     flush are lost (the last one torn), restarts at 13 s;
 *   - checks: "cluster-healthy" passed, "data-durable" failed.
 * Per-NIC pcaps hold the bytes of every frame each NIC sent. */
#ifndef FL_TRACE_TEST_SYNTH_H
#define FL_TRACE_TEST_SYNTH_H

#include <stdbool.h>
#include <stddef.h>

struct synth_counts {
    size_t frames;             /* frame records written */
    size_t sends;              /* distinct sends (pcap packets) */
    size_t dropped_partition;  /* dropped with reason partition */
    size_t dropped_loss;       /* dropped with reason loss */
    size_t duplicated;         /* copy > 0 */
    size_t corrupted;          /* corrupt_mask != 0 */
    size_t reordered;          /* reordered = 1 */
    size_t delayed_beyond_5ms; /* delivered with delay > 5 ms */
    size_t n1_to_n2;           /* frames on link n1->n2 */
    size_t to_n3_dropped;      /* frames to n3 dropped */
    size_t ios;                /* io records */
    size_t lost_writes;        /* crash_writes lost + torn */
    size_t events;
};

/* Creates run_dir (and run_dir/pcap), writes run.db and the pcaps.
 * Returns false and prints why on failure. */
bool synth_run(const char *run_dir, struct synth_counts *counts);
/* The same run with `steps` rounds of frames (>= 8) spread over the 20 s
 * instead of 200: fewer frames, same faults. */
bool synth_run_steps(const char *run_dir, int steps, struct synth_counts *counts);

#endif
