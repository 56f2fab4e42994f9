/*
 * core/ — the foundation every other room builds on: errors, logging,
 * clocks, the event loop (epoll + timerfd + signalfd), small containers.
 *
 * core/ depends on no other room.
 *
 * Error conventions (CONVENTIONS.md):
 *   - Data paths return int: 0 or -errno.
 *   - Setup paths return bool/pointer and take `struct fl_error **errp` as
 *     the last parameter.  On failure they set *errp (if errp is not NULL)
 *     with fl_error_setf(); on success they never touch *errp.  Passing NULL
 *     means "the caller does not care about the message".
 */
#ifndef FL_CORE_H
#define FL_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FL_EXPORT       __attribute__((visibility("default")))
#define FL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define FL_UNUSED       __attribute__((unused))

#define FL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FL_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define FL_MAX(a, b)    ((a) > (b) ? (a) : (b))

/* Name tables from X-macro lists whose entries are X(NAME, "string"):
 *   FL_NAME_TABLE(accel_names, HV_ACCELS);
 *   return FL_NAME_OF(accel_names, accel);      ("?" when out of range) */
#define FL_NAME_TABLE_STR_(name, str) str,
#define FL_NAME_TABLE(table, LIST)    static const char *const table[] = {LIST(FL_NAME_TABLE_STR_)}
#define FL_NAME_OF(table, value)                                                                   \
    ((size_t)(value) < FL_ARRAY_LEN(table) ? (table)[(size_t)(value)] : "?")

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define FL_NS_PER_US  INT64_C(1000)
#define FL_NS_PER_MS  INT64_C(1000000)
#define FL_NS_PER_SEC INT64_C(1000000000)

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

struct fl_error {
    int code;  /* errno-style code (positive), or 0 when only a message */
    char *msg; /* heap-allocated, never NULL */
};

/* Sets *errp to a new error unless errp is NULL.  *errp must be NULL on
 * entry (an error is never silently overwritten; a second error is
 * dropped and the first kept). */
void fl_error_setf(struct fl_error **errp, int code, const char *fmt, ...) FL_PRINTF(3, 4);
void fl_error_vsetf(struct fl_error **errp, int code, const char *fmt, va_list ap);
/* Like fl_error_setf, appending ": strerror(code)". */
void fl_error_setf_errno(struct fl_error **errp, int code, const char *fmt, ...) FL_PRINTF(3, 4);
/* Prefix an existing error's message: "<prefix><old message>". */
void fl_error_prepend(struct fl_error **errp, const char *fmt, ...) FL_PRINTF(2, 3);
/* Move src into *dst (if dst is NULL or *dst already set, src is freed). */
void fl_error_propagate(struct fl_error **dst, struct fl_error *src);
void fl_error_free(struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Memory and strings (abort on out-of-memory: the controller cannot   */
/* carry on meaningfully without memory and must not corrupt a trace). */
/* ------------------------------------------------------------------ */

void *fl_xmalloc(size_t size);
void *fl_xcalloc(size_t n, size_t size);
void *fl_xrealloc(void *p, size_t size);
/* Grows an array of n elements of elem_size to at least want elements,
 * doubling; updates *alloc.  Returns the (possibly moved) array. */
void *fl_xgrow(void *p, size_t *alloc, size_t want, size_t elem_size);
char *fl_xstrdup(const char *s);
char *fl_xstrndup(const char *s, size_t n);
char *fl_xasprintf(const char *fmt, ...) FL_PRINTF(1, 2);
char *fl_xvasprintf(const char *fmt, va_list ap);

/* A growable, always NUL-terminated byte string. */
struct fl_buf {
    char *data;  /* NUL-terminated; NULL until the first append */
    size_t size; /* bytes used, not counting the NUL */
    size_t alloc;
};
void fl_buf_append(struct fl_buf *b, const void *data, size_t size);
void fl_buf_puts(struct fl_buf *b, const char *s);
void fl_buf_printf(struct fl_buf *b, const char *fmt, ...) FL_PRINTF(2, 3);
/* Appends s (NULL = "") as a JSON string literal, quotes included:
 * fl_text_json(), so invalid UTF-8 becomes U+FFFD. */
void fl_buf_json_string(struct fl_buf *b, const char *s);
/* The same, with '<', '>' and '&' written as \u escapes, so the literal is
 * safe inside an HTML <script> element (no guest text can close it). */
void fl_buf_json_string_script(struct fl_buf *b, const char *s);
void fl_buf_reset(struct fl_buf *b);
/* Returns the string (caller frees) and leaves b empty. */
char *fl_buf_steal(struct fl_buf *b);
void fl_buf_free(struct fl_buf *b);

/* Levenshtein distance, for "did you mean ...?" suggestions. */
size_t fl_edit_distance(const char *a, const char *b);

/* 64-bit FNV-1a over bytes; stable across runs and hosts. */
uint64_t fl_hash64(const void *data, size_t size);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

#define FL_LOG_LEVELS(X)                                                                           \
    X(ERROR, "error")                                                                              \
    X(WARN, "warning")                                                                             \
    X(INFO, "info")                                                                                \
    X(DEBUG, "debug")

enum fl_log_level {
#define FL_LOG_LEVEL_ENUM(name, str) FL_LOG_##name,
    FL_LOG_LEVELS(FL_LOG_LEVEL_ENUM)
#undef FL_LOG_LEVEL_ENUM
};
const char *fl_log_level_name(enum fl_log_level level);

/* Default: FL_LOG_WARN to stderr.  FAULTLINE_LOG=debug|info|warning|error
 * in the environment overrides the default at first use. */
void fl_log_set_level(enum fl_log_level level);
enum fl_log_level fl_log_get_level(void);
/* Redirect log lines (default: stderr).  fn == NULL restores stderr. */
typedef void fl_log_fn(void *arg, enum fl_log_level level, const char *room, const char *line);
void fl_log_set_sink(fl_log_fn *fn, void *arg);
bool fl_log_enabled(enum fl_log_level level);
void fl_log(enum fl_log_level level, const char *room, const char *fmt, ...) FL_PRINTF(3, 4);

/* Rate limiting for packet paths (OVS VLOG_RATE_LIMIT_INIT): at most
 * `burst` messages per `interval_ns`; suppressed messages are counted and
 * reported with the next message that gets through. */
struct fl_ratelimit {
    int64_t interval_ns;
    uint32_t burst;
    uint32_t tokens;
    int64_t last_refill_ns;
    uint64_t suppressed;
};
#define FL_RATELIMIT_INIT(interval_ns_, burst_)                                                    \
    {                                                                                              \
        (interval_ns_), (burst_), (burst_), 0, 0                                                   \
    }
/* Returns true if a message may be logged now; *suppressed receives the
 * count of messages dropped since the last one allowed. */
bool fl_ratelimit_allow(struct fl_ratelimit *rl, int64_t now_ns, uint64_t *suppressed);
#define FL_LOG_RL(rl, level, room, ...)                                                            \
    do {                                                                                           \
        uint64_t fl_rl_supp_;                                                                      \
        if (fl_log_enabled(level) && fl_ratelimit_allow((rl), fl_clock_mono_ns(), &fl_rl_supp_)) { \
            if (fl_rl_supp_) {                                                                     \
                fl_log(level, room, "(%llu similar messages suppressed)",                          \
                       (unsigned long long)fl_rl_supp_);                                           \
            }                                                                                      \
            fl_log(level, room, __VA_ARGS__);                                                      \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* Clocks                                                              */
/* ------------------------------------------------------------------ */

/* CLOCK_MONOTONIC in ns. */
int64_t fl_clock_mono_ns(void);
/* CLOCK_REALTIME in ns (for wall-clock stamps in run records only). */
int64_t fl_clock_real_ns(void);

/* A clock source an event loop runs on.  The real one reads
 * CLOCK_MONOTONIC; a manual one (tests) is frozen until advanced. */
struct fl_clock;
struct fl_clock *fl_clock_manual_create(int64_t start_ns);
void fl_clock_manual_advance(struct fl_clock *clock, int64_t delta_ns);
void fl_clock_manual_set(struct fl_clock *clock, int64_t now_ns);
void fl_clock_destroy(struct fl_clock *clock);      /* accepts NULL */
int64_t fl_clock_now(const struct fl_clock *clock); /* NULL = real monotonic */

/* ------------------------------------------------------------------ */
/* Event loop: epoll for fds, one timerfd (absolute CLOCK_MONOTONIC)   */
/* for all timers, signalfd for signals.  Single-threaded.             */
/* ------------------------------------------------------------------ */

struct fl_loop;
struct fl_timer;

/* events: EPOLLIN/EPOLLOUT/... bits as given to and returned by epoll. */
typedef void fl_fd_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg);
typedef void fl_timer_cb(struct fl_loop *loop, struct fl_timer *timer, void *arg);
typedef void fl_signal_cb(struct fl_loop *loop, int signo, void *arg);

/* clock == NULL: real monotonic clock.  With a manual clock the loop never
 * sleeps on timers: fl_loop_run_once() fires every timer due at the
 * clock's current time. */
struct fl_loop *fl_loop_create(struct fl_clock *clock, struct fl_error **errp);
void fl_loop_destroy(struct fl_loop *loop); /* accepts NULL; does not close fds */
int64_t fl_loop_now(const struct fl_loop *loop);

/* 0 or -errno.  One registration per fd. */
int fl_loop_add_fd(struct fl_loop *loop, int fd, uint32_t events, fl_fd_cb *cb, void *arg);
int fl_loop_mod_fd(struct fl_loop *loop, int fd, uint32_t events);
/* Safe to call from inside any callback, including the fd's own. */
int fl_loop_del_fd(struct fl_loop *loop, int fd);

struct fl_timer *fl_timer_create(struct fl_loop *loop, fl_timer_cb *cb, void *arg);
/* Arms (or re-arms) at an absolute time on the loop's clock. */
void fl_timer_arm(struct fl_timer *timer, int64_t deadline_ns);
void fl_timer_arm_in(struct fl_timer *timer, int64_t delay_ns);
void fl_timer_disarm(struct fl_timer *timer);
bool fl_timer_armed(const struct fl_timer *timer);
int64_t fl_timer_deadline(const struct fl_timer *timer); /* INT64_MAX when disarmed */
/* Safe to call from inside the timer's own callback.  Accepts NULL. */
void fl_timer_destroy(struct fl_timer *timer);

/* Blocks the signal in this thread and delivers it through the loop. */
int fl_loop_add_signal(struct fl_loop *loop, int signo, fl_signal_cb *cb, void *arg);
/* Runs the callbacks of signals already pending, without waiting and
 * without running anything else: for a caller busy outside the loop (a
 * long blocking step) that must still notice SIGINT.  Returns how many. */
int fl_loop_poll_signals(struct fl_loop *loop);

/* One iteration: waits up to timeout_ms (-1: until something happens,
 * 0: poll) and dispatches.  Returns the number of callbacks run, or
 * -errno. */
int fl_loop_run_once(struct fl_loop *loop, int timeout_ms);
/* Runs until fl_loop_stop().  Returns 0 or -errno. */
int fl_loop_run(struct fl_loop *loop);
void fl_loop_stop(struct fl_loop *loop);
bool fl_loop_stopped(const struct fl_loop *loop);

/* ------------------------------------------------------------------ */
/* Files and processes                                                 */
/* ------------------------------------------------------------------ */

/* mkdir -p with the given mode for created components. */
bool fl_mkdir_p(const char *path, mode_t mode, struct fl_error **errp);
/* rm -rf (does not follow symlinks).  Returns 0 or -errno. */
int fl_rm_rf(const char *path);
/* Reads a whole file (NUL-terminated; *size excludes the NUL). */
char *fl_read_file(const char *path, size_t *size, struct fl_error **errp);
bool fl_write_file(const char *path, const void *data, size_t size, struct fl_error **errp);
int fl_set_nonblock(int fd);
int fl_set_cloexec(int fd);
/* lstat-based tests: a link is neither followed nor a directory. */
bool fl_path_exists(const char *path);
bool fl_is_dir(const char *path);
/* mkdir -p of the directory holding `path`, mode 0755. */
bool fl_mkdir_parent(const char *path, struct fl_error **errp);
/* Copies a regular file (replacing dst) and gives it `mode`. */
bool fl_copy_file(const char *src, const char *dst, mode_t mode, struct fl_error **errp);
/* Copies a file, symlink (kept as a link) or directory (recursively,
 * modes kept) to dst; a link never replaces an existing directory, a
 * directory replaces a link; devices and fifos are skipped. */
bool fl_copy_tree(const char *src, const char *dst, struct fl_error **errp);
/* Bytes of the regular files under path (links not followed). */
uint64_t fl_tree_size(const char *path);
/* Creates path (0644) if missing and sets its times to now. */
void fl_touch(const char *path);

/* ------------------------------------------------------------------ */
/* Binary min-heap of (key, seq, data), ordered by key then seq: the   */
/* loop's timers and impair's timer queue (core/heap.c).               */
/* ------------------------------------------------------------------ */

struct fl_heap_entry {
    int64_t key;  /* e.g. a deadline in ns */
    uint64_t seq; /* tie-break: the owner numbers its pushes for FIFO ties */
    void *data;
};
/* Called with an entry's data each time it lands at a new index (push,
 * pop, remove); lets an owner find its entry for fl_heap_remove.  NULL:
 * not needed. */
typedef void fl_heap_moved_fn(void *data, size_t index);
struct fl_heap {
    struct fl_heap_entry *v; /* v[0] is the minimum */
    size_t len, alloc;
    fl_heap_moved_fn *moved;
};

static inline bool fl_heap_before(const struct fl_heap_entry *a, const struct fl_heap_entry *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}
void fl_heap_init(struct fl_heap *h, fl_heap_moved_fn *moved);
void fl_heap_free(struct fl_heap *h); /* frees the array, not the data */
/* Aborts on out-of-memory like fl_xmalloc. */
void fl_heap_push(struct fl_heap *h, int64_t key, uint64_t seq, void *data);
/* The minimum, NULL when empty. */
static inline const struct fl_heap_entry *fl_heap_top(const struct fl_heap *h)
{
    return h->len ? &h->v[0] : NULL;
}
void fl_heap_pop(struct fl_heap *h);                  /* h must not be empty */
void fl_heap_remove(struct fl_heap *h, size_t index); /* index < h->len */
/* Checks the heap property and the length; for tests, O(n).  False with
 * a message naming the broken invariant. */
bool fl_heap_check(const struct fl_heap *h, struct fl_error **errp);

/* ------------------------------------------------------------------ */
/* Untrusted text (core/text.c): guest output made well-formed and     */
/* inert for XML, JSON and terminals.                                  */
/* ------------------------------------------------------------------ */

/* Decodes one UTF-8 character of s[0..size) strictly (RFC 3629: no
 * overlongs, surrogates or values past U+10FFFF).  Returns the bytes
 * consumed (1 for an invalid sequence, which yields U+FFFD in *cp; 0 only
 * when size is 0). */
size_t fl_utf8_decode(const char *s, size_t size, uint32_t *cp);
/* The longest prefix of s[0..size) of at most max bytes that does not
 * split a character. */
size_t fl_utf8_cut(const char *s, size_t size, size_t max);
/* Appends s[0..size) escaped for XML text and attribute values: invalid
 * UTF-8 and the characters XML 1.0 forbids (C0 controls but tab, newline,
 * carriage return; U+FFFE, U+FFFF) become U+FFFD. */
void fl_text_xml(struct fl_buf *b, const char *s, size_t size);
/* Appends s[0..size) as a JSON string literal, quotes included, invalid
 * UTF-8 as U+FFFD; script_safe also escapes '<', '>' and '&' (HTML
 * <script>).  U+2028/U+2029 are escaped for JavaScript. */
void fl_text_json(struct fl_buf *b, const char *s, size_t size, bool script_safe);
/* Appends s[0..size) for a terminal or a log line: C0 controls and DEL as
 * \xNN (\r, \n, \t by name), invalid bytes as \xNN, C1 controls and
 * bidi controls as \uXXXX; everything else unchanged. */
void fl_text_terminal(struct fl_buf *b, const char *s, size_t size);
/* fl_text_terminal of a NUL-terminated string (NULL = ""), newly allocated. */
char *fl_text_terminal_dup(const char *s);
/* Appends s as one word for sh: unchanged when every byte is plain
 * (letters, digits, _ . / - + , : = @ %), else in single quotes (a quote
 * inside as '\''). */
void fl_text_shell(struct fl_buf *b, const char *s);
/* Appends s in single quotes whatever it holds (a quote inside as '\''). */
void fl_text_shell_quoted(struct fl_buf *b, const char *s);
/* Appends code point cp (at most U+10FFFF) as UTF-8. */
void fl_utf8_put(struct fl_buf *b, uint32_t cp);

/* ------------------------------------------------------------------ */
/* Names (name.c)                                                      */
/* ------------------------------------------------------------------ */

/* The one rule for node, network, NIC and disk names, in every room:
 * 1 to max ASCII letters, digits, '-' or '_', the first a letter or digit
 * (no '.', no leading '-').  FL_NAME_RULE says it in messages; it takes
 * max as its one %zu. */
#define FL_NAME_MAX  63 /* the longest: a node name (a host name label) */
#define FL_NAME_RULE "1 to %zu letters, digits, '-' or '_', starting with a letter or digit"
/* NULL and "" are not valid. */
bool fl_name_valid(const char *name, size_t max);
/* fl_name_valid, with an EINVAL error on failure that quotes the name and
 * says what is wrong and what is valid:
 *   network name 'a.b': character '.' at 1 is not allowed (valid: 1 to 63 letters, ...) */
bool fl_name_check(const char *what, const char *name, size_t max, struct fl_error **errp);

/* ------------------------------------------------------------------ */
/* JSON reading (json.c): RFC 8259, strictly; the one reader            */
/* ------------------------------------------------------------------ */

enum fl_json_type {
    FL_JSON_NULL,
    FL_JSON_BOOL,
    FL_JSON_NUM,
    FL_JSON_STR,
    FL_JSON_ARR,
    FL_JSON_OBJ
};
struct fl_json {
    enum fl_json_type type;
    bool b;
    double num;
    char *str;              /* STR: the UTF-8 text; NUM: the number as written */
    struct fl_json **items; /* ARR and OBJ values */
    char **keys;            /* OBJ keys */
    size_t n;
};
/* Parses exactly one value (surrounding whitespace allowed).  Depth (64)
 * and size are bounded; \u0000 is refused (strings are C strings).  NULL
 * with *errp ("JSON: WHAT at offset N") on error. */
struct fl_json *fl_json_parse(const char *text, size_t size, struct fl_error **errp);
void fl_json_free(struct fl_json *j);
/* An object's member, or NULL (also when obj is NULL or not an object). */
const struct fl_json *fl_json_get(const struct fl_json *obj, const char *key);
/* A string member's text, or NULL. */
const char *fl_json_get_str(const struct fl_json *obj, const char *key);
/* An integer member (no fraction or exponent) that fits: true and *out;
 * exact for every 64-bit value, since numbers keep their text. */
bool fl_json_i64(const struct fl_json *obj, const char *key, int64_t *out);
bool fl_json_u64(const struct fl_json *obj, const char *key, uint64_t *out);

#endif /* FL_CORE_H */
