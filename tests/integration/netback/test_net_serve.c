/*
 * `faultline net serve` end to end, with synthetic guests: it creates the
 * sockets it prints, forwards frames with the configured impairment
 * (a 200 ms delay one way, none the other), writes pcaps, rejects a bad
 * --link with exit 2, takes cut/heal/link/isolate/stats from `net ctl`
 * while it runs, and exits 0 on SIGINT removing its sockets.
 * $FAULTLINE is the binary (set by ctest).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static pid_t server;
static char dir[64];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        bool ok_ = (cond);                                                                         \
        fprintf(stderr, "test_net_serve: %s: ", ok_ ? "ok" : "FAIL");                              \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        failures += !ok_;                                                                          \
    } while (0)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cleanup(void)
{
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = 0;
    }
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "test_net_serve: could not remove %s\n", dir);
        }
    }
}

/* Starts argv with stdout (and with `and_stderr`, stderr too) to `out`. */
static pid_t spawn(char *const argv[], const char *out, bool and_stderr)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(out, "w", stdout);
        (void)f;
        if (and_stderr) {
            dup2(STDOUT_FILENO, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_wait(char *const argv[], const char *out)
{
    return wait_status(spawn(argv, out, false));
}

/* Runs argv with stdout and stderr to `out`; its exit status, and whether
 * `out` then holds `want`. */
static int run_wait_err(char *const argv[], const char *out, const char *want, bool *found)
{
    int status = wait_status(spawn(argv, out, true));
    char text[4096] = "";
    FILE *f = fopen(out, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f) {
        fclose(f);
    }
    *found = strstr(text, want) != NULL;
    if (!*found) {
        fprintf(stderr, "test_net_serve: expected '%s' on stderr, got: %s\n", want, text);
    }
    return status;
}

static int connect_to(const char *path)
{
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            return fd;
        }
        close(fd);
        usleep(20000);
    }
    return -1;
}

static void send_frame(int fd, uint8_t from, uint8_t to, uint8_t tag)
{
    uint8_t buf[4 + 60] = {0, 0, 0, 60};
    uint8_t *f = buf + 4;
    const uint8_t base[6] = {0x52, 0x54, 0, 0, 0, 0};
    memcpy(f, base, 6);
    f[5] = to;
    memcpy(f + 6, base, 6);
    f[11] = from;
    f[12] = 0x88;
    f[13] = 0xb5;
    f[14] = tag;
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
        perror("write");
    }
}

/* Waits up to timeout_ms for one 64-byte record; returns the tag or -1. */
static int recv_frame(int fd, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint8_t buf[64];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    return buf[4 + 14];
}

/* Sends a frame from->to on from_fd; true if it arrives on to_fd within
 * timeout_ms. */
static bool passes(int from_fd, int to_fd, uint8_t from, uint8_t to, uint8_t tag, int timeout_ms)
{
    send_frame(from_fd, from, to, tag);
    return recv_frame(to_fd, timeout_ms) == tag;
}

static const char *bin;
static char sockdir[128], ctlout[160];

/* `faultline net ctl --dir sockdir REQUEST...`; its exit status. */
static int ctl(const char *a, const char *b)
{
    char *argv[] = {(char *)bin, "net", "ctl", "--dir", sockdir, (char *)a, (char *)b, NULL};
    return run_wait(argv, ctlout);
}

static bool file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[512];
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        found |= strstr(line, text) != NULL;
    }
    if (f) {
        fclose(f);
    }
    return found;
}

int main(void)
{
    bin = getenv("FAULTLINE");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "test_net_serve: $FAULTLINE ('%s') is not an executable faultline\n",
                bin ? bin : "");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/nb-serve-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup);
    char pcapdir[128], out[128], n1[160], n2[160];
    snprintf(sockdir, sizeof sockdir, "%s/s", dir);
    snprintf(ctlout, sizeof ctlout, "%s/ctl.txt", dir);
    snprintf(pcapdir, sizeof pcapdir, "%s/pcap", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(n1, sizeof n1, "%s/n1.sock", sockdir);
    snprintf(n2, sizeof n2, "%s/n2.sock", sockdir);

    char *bad[] = {(char *)bin,
                   "net",
                   "serve",
                   "--dir",
                   sockdir,
                   "--port",
                   "n1",
                   "--port",
                   "n2",
                   "--link",
                   "n1->n3: delay 1ms",
                   NULL};
    CHECK(run_wait(bad, out) == 2, "an unknown node in --link exits 2");
    char *twice[] = {(char *)bin, "net", "serve",  "--dir", sockdir,
                     "--port",    "n1",  "--port", "n1",    NULL};
    bool said = false;
    CHECK(run_wait_err(twice, out, "--port 'n1' is given twice", &said) == 2 && said,
          "a --port given twice exits 2, saying so");
    char *help[] = {(char *)bin, "net", "serve", "--help", NULL};
    CHECK(run_wait(help, out) == 0, "--help exits 0");

    char *argv[] = {(char *)bin,
                    "net",
                    "serve",
                    "--dir",
                    sockdir,
                    "--port",
                    "n1",
                    "--port",
                    "n2",
                    "--link",
                    "n1->n2: delay 200ms",
                    "--seed",
                    "3",
                    "--pcap-dir",
                    pcapdir,
                    NULL};
    server = spawn(argv, out, false);
    int c1 = connect_to(n1), c2 = connect_to(n2);
    CHECK(c1 >= 0 && c2 >= 0, "both sockets accept connections");
    if (c1 < 0 || c2 < 0) {
        return 1;
    }
    /* n2 -> n1 (unknown unicast floods to the only other port) is
     * immediate; n1 -> n2 takes 200 ms. */
    int64_t t0 = now_ns();
    send_frame(c2, 2, 1, 7);
    int tag = recv_frame(c1, 2000);
    int64_t back = now_ns() - t0;
    CHECK(tag == 7 && back < 150000000, "n2 -> n1 undelayed (%.1f ms)", back / 1e6);
    t0 = now_ns();
    send_frame(c1, 1, 2, 9);
    tag = recv_frame(c2, 2000);
    int64_t fwd = now_ns() - t0;
    CHECK(tag == 9 && fwd >= 200000000 && fwd < 1000000000, "n1 -> n2 delayed 200 ms (%.1f ms)",
          fwd / 1e6);
    /* Garbage from n1 closes n1 only. */
    if (write(c1, "GET / HTTP/1.1\r\n", 16) != 16) {
        perror("write");
    }
    uint8_t b[8];
    struct timeval tv = {2, 0};
    setsockopt(c1, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK(read(c1, b, sizeof b) == 0, "garbage from n1: its connection is closed");
    send_frame(c2, 2, 1, 11);
    c1 = connect_to(n1);
    send_frame(c1, 1, 2, 12);
    CHECK(recv_frame(c2, 2000) == 12, "n1 reconnects and its frames still reach n2");

    /* Live changes through the control socket. */
    CHECK(ctl("cut", "n2->n1") == 0, "net ctl cut n2->n1: exit 0");
    CHECK(!passes(c2, c1, 2, 1, 20, 400), "n2 -> n1 cut: nothing arrives");
    CHECK(ctl("heal", "all") == 0, "net ctl heal all: exit 0");
    CHECK(passes(c2, c1, 2, 1, 21, 2000), "healed: n2 -> n1 arrives again");
    CHECK(ctl("link", "n1->n2:") == 0, "net ctl link 'n1->n2:' (no impairment): exit 0");
    t0 = now_ns();
    send_frame(c1, 1, 2, 22);
    tag = recv_frame(c2, 2000);
    fwd = now_ns() - t0;
    CHECK(tag == 22 && fwd < 150000000, "n1 -> n2 no longer delayed (%.1f ms)", fwd / 1e6);
    CHECK(ctl("isolate", "n2") == 0, "net ctl isolate n2: exit 0");
    CHECK(!passes(c1, c2, 1, 2, 23, 400), "n2 isolated: n1 -> n2 dropped");
    CHECK(!passes(c2, c1, 2, 1, 24, 400), "n2 isolated: n2 -> n1 dropped");
    CHECK(ctl("heal", "n1<->n2") == 0, "net ctl heal n1<->n2: exit 0");
    CHECK(passes(c1, c2, 1, 2, 25, 2000), "healed both ways: n1 -> n2 arrives");
    CHECK(ctl("cut", "n1->n9") == 2, "net ctl with an unknown node: exit 2");
    CHECK(ctl("link", "n1->n2: delay fast") == 2, "net ctl with bad words: exit 2");
    CHECK(ctl("bogus", NULL) == 2, "an unknown request: exit 2");
    CHECK(ctl("stats", NULL) == 0 && file_has(ctlout, "port n1") && file_has(ctlout, "link n1->n2"),
          "net ctl stats prints port and link counters");
    /* A client that connects and says nothing does not stall the fabric. */
    char ctlsock[200];
    snprintf(ctlsock, sizeof ctlsock, "%s/control.sock", sockdir);
    int idle = connect_to(ctlsock);
    CHECK(idle >= 0 && passes(c1, c2, 1, 2, 26, 2000), "an idle control client stalls nothing");
    CHECK(ctl("heal", "all") == 0, "requests still answered beside an idle client");
    close(idle);

    kill(server, SIGINT);
    int st;
    waitpid(server, &st, 0);
    server = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT: clean exit 0");
    struct stat sb;
    CHECK(stat(n1, &sb) != 0 && stat(n2, &sb) != 0 && stat(ctlsock, &sb) != 0,
          "sockets removed at exit");
    CHECK(ctl("stats", NULL) == 3, "net ctl with no server: exit 3");
    char p1[200];
    snprintf(p1, sizeof p1, "%s/n1-eth0.pcap", pcapdir);
    CHECK(stat(p1, &sb) == 0 && sb.st_size > 24, "pcap of n1 written (%lld bytes)",
          (long long)sb.st_size);
    CHECK(file_has(out, n1), "the socket paths are printed");
    CHECK(file_has(out, "faultline net ctl --dir"), "how to change faults live is printed");
    close(c1);
    close(c2);
    return failures ? 1 : 0;
}
