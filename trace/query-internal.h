/* trace/ internals: the frame selection shared by queries, the merged
 * pcap and the report. */
#ifndef FL_TRACE_QUERY_INTERNAL_H
#define FL_TRACE_QUERY_INTERNAL_H

#include <sqlite3.h>

#include "trace/trace.h"

/* Columns of trace_query_frames_stmt() rows. */
enum {
    FRAME_COL_ID,
    FRAME_COL_SENT,
    FRAME_COL_DELIVERED,
    FRAME_COL_SRC_NODE,
    FRAME_COL_DST_NODE,
    FRAME_COL_NETWORK,
    FRAME_COL_SRC_NIC,
    FRAME_COL_DST_NIC,
    FRAME_COL_SIZE,
    FRAME_COL_HASH,
    FRAME_COL_FATE,
    FRAME_COL_REASON,
    FRAME_COL_COPY,
    FRAME_COL_REORDERED,
    FRAME_COL_CORRUPT_OFFSET,
    FRAME_COL_CORRUPT_MASK,
    FRAME_COL_PCAP_INDEX,
    FRAME_COL_SRC_NIC_ID,
};

/* Node and disk names of q exist in the run (errors list valid names). */
bool trace_query_validate(sqlite3 *conn, const struct trace_query *q, struct fl_error **errp);
/* The frames q selects, in sent order. */
sqlite3_stmt *trace_query_frames_stmt(sqlite3 *conn, const struct trace_query *q,
                                      struct fl_error **errp);

#endif
