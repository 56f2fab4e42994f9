/*
 * `faultline net serve` end to end, with synthetic guests: it creates the
 * sockets it prints, forwards frames with the configured impairment
 * (a 200 ms delay one way, none the other), writes pcaps, rejects a bad
 * --link with exit 2, and exits 0 on SIGINT removing its sockets.
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

static pid_t spawn(char *const argv[], const char *out)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(out, "w", stdout);
        (void)f;
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int run_wait(char *const argv[], const char *out)
{
    int st;
    pid_t pid = spawn(argv, out);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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

int main(void)
{
    const char *bin = getenv("FAULTLINE");
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
    char sockdir[128], pcapdir[128], out[128], n1[160], n2[160];
    snprintf(sockdir, sizeof sockdir, "%s/s", dir);
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
    server = spawn(argv, out);
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

    kill(server, SIGINT);
    int st;
    waitpid(server, &st, 0);
    server = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT: clean exit 0");
    struct stat sb;
    CHECK(stat(n1, &sb) != 0 && stat(n2, &sb) != 0, "sockets removed at exit");
    char p1[200];
    snprintf(p1, sizeof p1, "%s/n1-eth0.pcap", pcapdir);
    CHECK(stat(p1, &sb) == 0 && sb.st_size > 24, "pcap of n1 written (%lld bytes)",
          (long long)sb.st_size);
    FILE *f = fopen(out, "r");
    char line[512];
    bool printed = false;
    while (f && fgets(line, sizeof line, f)) {
        printed |= strstr(line, n1) != NULL;
    }
    if (f) {
        fclose(f);
    }
    CHECK(printed, "the socket paths are printed");
    close(c1);
    close(c2);
    return failures ? 1 : 0;
}
