/*
 * Trace records: one I/O record per completed (or, at a crash, never
 * completed) request, and one outcome per cached write at a crash,
 * pointing at its I/O record through the tag table.
 */
#include "blkback/internal.h"
#include "trace/trace.h"

void bb_record_io(struct bb_disk *d, struct bb_req *r, int64_t complete_ns)
{
    struct trace_db *db = d->bb->trace;
    if (!db || d->trace_id <= 0) {
        return;
    }
    struct trace_io io = {
        .disk_id = d->trace_id,
        .submit_ns = r->submit_ns,
        .complete_ns = complete_ns,
        .offset = r->off,
        .length = r->len,
        .op = r->cmd->trace_op,
        .fault = r->fault,
        .fua = (r->flags & NBD_CMD_FLAG_FUA) != 0,
        .result = r->error < 0 ? -r->error : r->error,
    };
    int64_t id = trace_io(db, &io);
    if (id > 0 && r->error == 0 && !(r->flags & NBD_CMD_FLAG_FUA) && r->cmd->writes) {
        bb_tags_put(d, r->tag, id);
    }
}

void bb_record_crash(void *arg, const struct bb_cache_rec *rec, int outcome, uint64_t kept)
{
    struct bb_crash_ctx *x = arg;
    int64_t io_id = bb_tags_get(x->d, rec->tag);
    if (x->crash_id > 0 && io_id > 0) {
        trace_crash_write(x->d->bb->trace, x->crash_id, io_id,
                          outcome == BB_OUTCOME_LOST   ? TRACE_CRASH_LOST
                          : outcome == BB_OUTCOME_TORN ? TRACE_CRASH_TORN
                                                       : TRACE_CRASH_KEPT,
                          kept);
    }
}
