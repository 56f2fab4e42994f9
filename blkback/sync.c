/*
 * The fdatasync worker.  Reads and writes to the backing file are
 * synchronous in the loop (they hit the host page cache: microseconds).
 * fdatasync() is not: it took 3.7 ms (p50) to 15 ms here, so FLUSH and FUA
 * write to the file in the loop, the file layer's sync hook says a sync is
 * owed (disk.c), and the sync runs on one worker thread per struct
 * blkback; the reply waits for it (docs/blkback.md has the measurements).
 *
 *   loop:   FLUSH ─▶ destage cache (pwrite) ─▶ job ─┐          ┌─▶ reply
 *   worker:                                         └▶ fdatasync ─▶ eventfd
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blkback/internal.h"

/* fdatasync of the file and, when set, of the cowmap.  0 or -errno. */
static int sync_files(int fd, const char *map_path)
{
    int r = fdatasync(fd) < 0 ? -errno : 0;
    if (map_path) {
        int mfd = open(map_path, O_RDONLY | O_CLOEXEC);
        if (mfd >= 0) {
            if (fdatasync(mfd) < 0 && r == 0) {
                r = -errno;
            }
            close(mfd);
        }
    }
    return r;
}

static void *sync_worker(void *arg)
{
    struct blkback *bb = arg;
    pthread_mutex_lock(&bb->mu);
    for (;;) {
        while (!bb->queue && !bb->stop) {
            pthread_cond_wait(&bb->cv, &bb->mu);
        }
        if (!bb->queue) {
            break;
        }
        struct sync_job *j = bb->queue;
        bb->queue = j->next;
        if (!bb->queue) {
            bb->queue_tail = NULL;
        }
        pthread_mutex_unlock(&bb->mu);
        j->result = sync_files(j->fd, j->map_path);
        pthread_mutex_lock(&bb->mu);
        j->next = bb->done;
        bb->done = j;
        j->disk->sync_inflight--;
        pthread_cond_broadcast(&bb->done_cv);
        uint64_t one = 1;
        ssize_t w = write(bb->efd, &one, sizeof(one));
        (void)w; /* the counter only wakes the loop; saturation cannot happen */
    }
    pthread_mutex_unlock(&bb->mu);
    return NULL;
}

/* Completes finished jobs (in the loop thread). */
static void sync_reap(struct blkback *bb)
{
    pthread_mutex_lock(&bb->mu);
    struct sync_job *done = bb->done;
    bb->done = NULL;
    /* detach requests under the lock; they cannot go away after this */
    for (struct sync_job *j = done; j; j = j->next) {
        if (j->req) {
            j->req->job = NULL;
        }
    }
    pthread_mutex_unlock(&bb->mu);
    while (done) {
        struct sync_job *j = done;
        done = j->next;
        struct bb_req *r = j->req;
        if (j->result < 0) {
            bb_host_error(j->disk, j->map_path ? j->map_path : bb_file_path(j->disk->file),
                          "fdatasync", -j->result);
        }
        if (r) {
            struct bb_conn *c = r->conn;
            if (j->result < 0 && r->error == 0) {
                r->error = j->result;
            }
            bb_req_schedule(r);
            bb_conn_flush_out(c);
            bb_conn_reap(c);
        }
        free(j->map_path);
        free(j);
    }
}

static void sync_efd_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    uint64_t n;
    ssize_t rd = read(fd, &n, sizeof(n));
    (void)rd;
    sync_reap(arg);
}

/* Hands the disk's owed fdatasync (if any: the file layer's sync hook
 * said so during the request) to the worker; the reply of r (may be NULL)
 * waits for it. */
void bb_sync_submit(struct bb_disk *d, struct bb_req *r)
{
    struct blkback *bb = d->bb;
    if (!d->sync_owed) {
        return;
    }
    int fd = d->sync_fd;
    char *map = d->sync_map;
    d->sync_owed = false;
    d->sync_map = NULL;
    struct sync_job *j = fl_xcalloc(1, sizeof(*j));
    j->disk = d;
    j->req = r;
    j->fd = fd;
    j->map_path = map;
    if (r) {
        r->job = j;
    }
    pthread_mutex_lock(&bb->mu);
    if (!bb->worker_started) {
        bb->worker_started = pthread_create(&bb->worker, NULL, sync_worker, bb) == 0;
    }
    if (!bb->worker_started) {
        pthread_mutex_unlock(&bb->mu);
        /* no thread: sync in place (slow but correct) */
        j->result = sync_files(fd, map);
        if (j->result < 0) {
            bb_host_error(d, bb_file_path(d->file), "fdatasync", -j->result);
        }
        if (r) {
            r->job = NULL;
            if (j->result < 0 && r->error == 0) {
                r->error = j->result;
            }
        }
        free(j->map_path);
        free(j);
        return;
    }
    d->sync_inflight++;
    if (bb->queue_tail) {
        bb->queue_tail->next = j;
    } else {
        bb->queue = j;
    }
    bb->queue_tail = j;
    pthread_cond_signal(&bb->cv);
    pthread_mutex_unlock(&bb->mu);
}

/* Waits until no job of d is queued or running, then completes them. */
void bb_sync_drain(struct bb_disk *d)
{
    struct blkback *bb = d->bb;
    pthread_mutex_lock(&bb->mu);
    while (d->sync_inflight > 0) {
        pthread_cond_wait(&bb->done_cv, &bb->mu);
    }
    pthread_mutex_unlock(&bb->mu);
    sync_reap(bb);
}

bool bb_sync_init(struct blkback *bb, struct fl_error **errp)
{
    bb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bb->efd < 0) {
        fl_error_setf_errno(errp, errno, "blkback: eventfd");
        return false;
    }
    int e = fl_loop_add_fd(bb->loop, bb->efd, EPOLLIN, sync_efd_cb, bb);
    if (e < 0) {
        fl_error_setf_errno(errp, -e, "blkback: watching the sync eventfd");
        close(bb->efd);
        return false;
    }
    pthread_mutex_init(&bb->mu, NULL);
    pthread_cond_init(&bb->cv, NULL);
    pthread_cond_init(&bb->done_cv, NULL);
    return true;
}

/* Stops the worker once the queue is empty, completes what it did. */
void bb_sync_fini(struct blkback *bb)
{
    pthread_mutex_lock(&bb->mu);
    bb->stop = true;
    pthread_cond_signal(&bb->cv);
    pthread_mutex_unlock(&bb->mu);
    if (bb->worker_started) {
        pthread_join(bb->worker, NULL);
    }
    sync_reap(bb);
    fl_loop_del_fd(bb->loop, bb->efd);
    close(bb->efd);
    pthread_mutex_destroy(&bb->mu);
    pthread_cond_destroy(&bb->cv);
    pthread_cond_destroy(&bb->done_cv);
}
