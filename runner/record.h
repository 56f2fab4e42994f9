/*
 * runner/ record: the recorded nodes of a run (runner_options.record) and
 * their segments under <run>/rr/<node>/<segment>/ (docs/record-replay.md).
 * run.c and timeline.c call these hooks; everything else is here.
 */
#ifndef FL_RUNNER_RECORD_H
#define FL_RUNNER_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "runner/internal.h"

/* After the scenario is loaded: what --record names (or, without
 * --record, the scenario's run.record) exists and can be recorded (1
 * vCPU, not KVM, and topo_record_problems: no disk base image, no disk
 * faults, no reboot of a recorded node).  false: the run is invalid. */
bool rn_record_check(struct run *run, struct fl_error **errp);
/* Whether node i is recorded (after rn_record_check). */
bool rn_record_on(const struct run *run, size_t i);
/* Node i's segment now (the one running, else the last one that ran:
 * what a check that fails now is replayed from); -1: not recorded. */
int rn_record_segment_now(const struct run *run, size_t i);
/* After the nodes exist, before they boot: QEMU's version, rr/. */
bool rn_record_setup(struct run *run, struct fl_error **errp);
/* Right before every hv_node_boot of node `i` (first boot and restarts):
 * a new segment directory, the disks as they are now, the recording
 * command line.  No-op for nodes not recorded. */
bool rn_record_segment_start(struct run *run, size_t i, struct fl_error **errp);
/* From hv's on_exit for node `i`: how the segment ended, its instruction
 * count, the compressed log, segment.json rewritten. */
void rn_record_segment_end(struct run *run, size_t i, int wait_status);
/* At teardown, before the nodes are destroyed: each running recorded
 * QEMU is ended cleanly (never SIGKILL). */
void rn_record_stop_all(struct run *run);
void rn_record_free(struct run *run);

#endif /* FL_RUNNER_RECORD_H */
