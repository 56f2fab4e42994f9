/* trace-synth RUN_DIR [STEPS]: writes the synthetic run of
 * tests/unit/trace/synth.h (run.db and per-NIC pcaps) into RUN_DIR, then
 * RUN_DIR/report.html through trace_report_write().  Used by the report's
 * browser test and the pcap/tshark test. */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "tests/unit/trace/synth.h"
#include "trace/trace.h"

int main(int argc, char **argv)
{
    int steps = argc == 3 ? atoi(argv[2]) : 200;
    if (argc < 2 || argc > 3 || steps < 8) {
        fprintf(stderr, "usage: trace-synth RUN_DIR [STEPS >= 8]\n");
        return 2;
    }
    struct synth_counts n;
    if (!synth_run_steps(argv[1], steps, &n)) {
        return 1;
    }
    struct fl_error *err = NULL;
    if (!trace_report_write(argv[1], &err)) {
        fprintf(stderr, "trace-synth: %s\n", err->msg);
        fl_error_free(err);
        return 1;
    }
    printf("frames=%zu sends=%zu dropped_partition=%zu dropped_loss=%zu lost_writes=%zu\n",
           n.frames, n.sends, n.dropped_partition, n.dropped_loss, n.lost_writes);
    return 0;
}
