/* runner/checks.c: checks, execs and waits, run in guests through
 * run->guest; a wait or a foreground exec holds the run clock. */
#ifndef FL_RUNNER_CHECKS_H
#define FL_RUNNER_CHECKS_H

#include "runner/internal.h"

void rn_check_start(struct run *run, const struct topo_check *check, const struct topo_event *ev);
void rn_exec_start(struct run *run, const struct topo_event *ev);
void rn_wait_start(struct run *run, const struct topo_event *ev);
void rn_end_checks(struct run *run);
bool rn_checks_busy(const struct run *run); /* any result-bearing check still running */
void rn_checks_abort(struct run *run, const char *why);

#endif /* FL_RUNNER_CHECKS_H */
