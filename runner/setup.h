/* runner/setup.c: wiring a run's scenario into trace, hv, netback and
 * blkback, before boot. */
#ifndef FL_RUNNER_SETUP_H
#define FL_RUNNER_SETUP_H

#include "runner/internal.h"

/* run.db: the run, its networks, nodes, NICs, disks and links. */
bool rn_setup_trace(struct run *run, struct fl_error **errp);
/* One image per distinct node image (cached by hv); stops on SIGINT. */
bool rn_build_images(struct run *run, struct fl_error **errp);
/* The switch, its ports and the links' baseline; events: run.c's. */
bool rn_setup_net(struct run *run, const struct nb_events *events, struct fl_error **errp);
/* One export per scenario disk; on_host_error: run.c's (the host failed
 * under a disk's backing file). */
bool rn_setup_disks(struct run *run, bb_host_error_cb *on_host_error, struct fl_error **errp);
/* One hv node per scenario node (not booted); callbacks: run.c's. */
bool rn_setup_nodes(struct run *run, const struct hv_callbacks *callbacks, struct fl_error **errp);

#endif /* FL_RUNNER_SETUP_H */
