/* trace/ internals shared by db.c, query.c, pcap.c and report.c. */
#ifndef FL_TRACE_DB_INTERNAL_H
#define FL_TRACE_DB_INTERNAL_H

#include <sqlite3.h>

#include "trace/trace.h"

/* The schema (db.c).  Tables first, then the query indexes, which the
 * writer creates at close (inserting into indexed tables at hot-path rates
 * would cost the writer thread most of its time) and readers create when
 * missing (a run killed before close). */
extern const char trace_schema_sql[];
extern const char trace_index_sql[];

/* How much nicer than their creator trace's writer threads (run.db,
 * pcaps) run; applied by trace_writer_thread_setup() at their start. */
#define TRACE_WRITER_NICE 10
void trace_writer_thread_setup(void);

/* The connection of a db (readers use it directly). */
sqlite3 *trace_db_sqlite(struct trace_db *db);

/* Opens path (a run dir or a run.db) read-only for queries, creating the
 * indexes first if the file is writable.  Sets *db_path_out (caller
 * frees) to the run.db path and *run_dir_out to its directory. */
struct trace_db *trace_db_open_reader(const char *run, char **db_path_out, char **run_dir_out,
                                      struct fl_error **errp);

/* Run-clock formatting: "12.345678s" / "-0.5s". */
void trace_fmt_time(struct fl_buf *b, int64_t ns);
/* Duration: "850us", "12.3ms", "1.20s". */
void trace_fmt_duration(struct fl_buf *b, int64_t ns);

#endif
