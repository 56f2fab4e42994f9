/* runner/timeline.c: playing the scenario's events on the run clock. */
#ifndef FL_RUNNER_TIMELINE_H
#define FL_RUNNER_TIMELINE_H

#include "runner/internal.h"

/* Starts playing at run->clock.t0; run.c has set the phase to
 * RN_TIMELINE.  When the last event has played and the duration is
 * reached, calls run->timeline_over. */
void rn_timeline_start(struct run *run);

#endif /* FL_RUNNER_TIMELINE_H */
