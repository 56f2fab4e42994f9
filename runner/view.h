/* runner/view.c: the live view, a sink of the event log (runner/log.h).
 * On a terminal a status block stays at the bottom; plain lines otherwise. */
#ifndef FL_RUNNER_VIEW_H
#define FL_RUNNER_VIEW_H

#include "runner/internal.h"

/* Registers the view as a log sink (not in quiet mode). */
void rn_view_start(struct run *run);
/* Erases the status block; later lines print plain. */
void rn_view_stop(struct run *run);

#endif /* FL_RUNNER_VIEW_H */
