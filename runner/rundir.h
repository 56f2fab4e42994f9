/* runner/rundir.c: the run directory and the files written into it
 * (events.log, junit.xml, summary.json). */
#ifndef FL_RUNNER_RUNDIR_H
#define FL_RUNNER_RUNDIR_H

#include "runner/internal.h"

/* --out must be a new path or an empty directory. */
bool rn_dir_check_out(const char *path, struct fl_error **errp);
/* Claims the run directory, creates its tree and events.log (a sink of
 * run->log). */
bool rn_dir_create(struct run *run, struct fl_error **errp);
/* runs/<YYYYmmdd-HHMMSS>-<name>[-N]: a new directory, made (the mkdir is
 * the test of a free name); NULL with *errp. */
char *rn_dir_make_default(const char *name, struct fl_error **errp);
/* The "latest" symbolic link next to dir (in its parent) made to point at
 * dir's name, atomically (a new link renamed over the old one).  A
 * "latest" that is not a symbolic link is left alone; failures are
 * logged, never fatal (false). */
bool rn_dir_link_latest(const char *dir);
bool rn_write_junit(struct run *run, struct fl_error **errp);
bool rn_write_summary(struct run *run, struct fl_error **errp);

#endif /* FL_RUNNER_RUNDIR_H */
