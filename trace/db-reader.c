/*
 * Opening a run database read-only, for `faultline trace` and the report.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/db-internal.h"

struct trace_db *trace_db_open_reader(const char *run, char **db_path_out, char **run_dir_out,
                                      struct fl_error **errp)
{
    if (!run || !*run) {
        fl_error_setf(errp, EINVAL, "no run given (a run directory or a run.db file)");
        return NULL;
    }
    char *path, *dir;
    size_t n = strlen(run);
    if (n >= 3 && !strcmp(run + n - 3, ".db")) {
        path = fl_xstrdup(run);
        const char *slash = strrchr(run, '/');
        dir = slash ? fl_xstrndup(run, (size_t)(slash - run)) : fl_xstrdup(".");
        if (!*dir) {
            free(dir);
            dir = fl_xstrdup("/");
        }
    } else {
        dir = fl_xstrdup(run);
        path = fl_xasprintf("%s/run.db", run);
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        fl_error_setf_errno(errp, e, "'%s': not a run directory containing run.db, nor a run.db",
                            run);
        free(path);
        free(dir);
        return NULL;
    }
    struct trace_db *db = fl_xcalloc(1, sizeof(*db));
    db->path = path;
    db->readonly = true;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->wake_writer, NULL);
    pthread_cond_init(&db->progress, NULL);
    /* Create missing indexes when we may (a run killed before close has
     * none), and keep that read-write connection so closing it also
     * removes the WAL files; a read-only file is queried as it is.  The
     * reader never writes anything else. */
    int rc = SQLITE_CANTOPEN;
    if (access(path, W_OK) == 0) {
        rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db->conn, 2000);
            /* never while the run is being written: building an index
             * holds the write lock and would stall the emulator */
            int64_t pid =
                trace_sql_int(db->conn, "SELECT value FROM meta WHERE key = 'writer_pid'", 0);
            bool live = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
            if (!live &&
                trace_sql_int(db->conn, "PRAGMA user_version", 0) == TRACE_SCHEMA_VERSION) {
                sqlite3_exec(db->conn, trace_index_sql, NULL, NULL, NULL);
            }
        } else {
            sqlite3_close_v2(db->conn);
            db->conn = NULL;
        }
    }
    if (rc != SQLITE_OK) {
        rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READONLY, NULL);
    }
    if (rc != SQLITE_OK) {
        fl_error_setf(errp, EIO, "%s: cannot open: %s", path,
                      db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        free(dir);
        trace_db_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->conn, 5000);
    int64_t v = trace_sql_int(db->conn, "PRAGMA user_version", -1);
    if (v < 0) {
        fl_error_setf(errp, EPROTO, "%s: not an SQLite database: %s", path,
                      sqlite3_errmsg(db->conn));
        free(dir);
        trace_db_close(db);
        return NULL;
    }
    if (v != TRACE_SCHEMA_VERSION) {
        fl_error_setf(errp, EPROTO,
                      "%s: run database schema version %" PRId64
                      " is not supported (this faultline reads version %d)",
                      path, v, TRACE_SCHEMA_VERSION);
        free(dir);
        trace_db_close(db);
        return NULL;
    }
    if (db_path_out) {
        *db_path_out = fl_xstrdup(path);
    }
    if (run_dir_out) {
        *run_dir_out = dir;
    } else {
        free(dir);
    }
    return db;
}

struct trace_db *trace_db_open_readonly(const char *run, struct fl_error **errp)
{
    return trace_db_open_reader(run, NULL, NULL, errp);
}
