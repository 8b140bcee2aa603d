/*
 * fuzz_rest.c - the REST API end to end, without a network: request line,
 * query string, headers and body of any route, through libmicrohttpd's HTTP
 * parsing, the router (src/rest/router.c), the body parser (json.c), the route
 * handlers' field readers and the commands behind them, which run for real
 * against the service core on a temporary data directory (fuzz_util.h).
 * Uploads take the streaming path, multipart/form-data bodies included
 * (libmicrohttpd's post processor feeding src/rest/files.c).
 *
 * HOW
 * The real REST server (src/rest/server.c), started without a listening
 * socket (ds_rest_start_unlistened), gets one end of a socketpair per input
 * (ds_rest_add_connection); the harness writes the request to the other end,
 * reads the answer until the server closes, and waits until the server holds
 * no connection (ds_rest_connections), so every input's request state is
 * freed before the next one begins.
 *
 * INPUT: "METHOD target\n", then header lines "Name: value\n", an empty line
 * and the body. Host, Connection: close and Content-Length are added; the
 * admin key is sent as a bearer token unless the input carries its own
 * Authorization or X-StorageApi-Token header. FUZZ_VERBOSE=1 prints the
 * start of each answer (to check that seeds reach the handlers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/buf.h"
#include "fuzz_util.h"
#include "rest/rest.h"

/*
 * The real server (src/rest/server.c: event loop, request lifecycle, worker
 * pool, parking, streaming), started without a listening socket. One event
 * loop and two workers keep the runs reproducible enough and cheap.
 */
static void start(void)
{
    signal(SIGPIPE, SIG_IGN);
    fz_service();
    fz_cfg.http_threads = 1;
    fz_cfg.http_workers = 2;
    fz_cfg.http_project_workers = 2;
    fz_cfg.idle_timeout = 30;
    ds_err_t err = {0};
    if (ds_rest_start_unlistened(&fz_cfg, &err) != DS_OK) {
        fprintf(stderr, "fuzz: cannot start the REST server: %s\n", err.message);
        abort();
    }
}

/* Appends the input's line [p, end) without CR or LF bytes. */
static void line(ds_buf_t *b, const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != '\r' && *p != '\n')
            ds_buf_append(b, p, 1);
}

/* Builds the HTTP request for the input; returns false when the input has no request line. */
static bool build(const uint8_t *data, size_t size, ds_buf_t *out)
{
    const char *s = (const char *)data, *end = s + size;
    const char *nl = memchr(s, '\n', size);
    if (!nl || nl == s)
        return false;
    line(out, s, nl);
    ds_buf_printf(out, "%s", " HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    bool has_key = false;
    const char *p = nl + 1;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        if (e == p || (e == p + 1 && *p == '\r')) {
            p = e + 1;
            break;
        }
        if (memchr(p, ':', (size_t)(e - p))) {
            if ((e - p > 14 && strncasecmp(p, "Authorization:", 14) == 0) ||
                (e - p > 19 && strncasecmp(p, "X-StorageApi-Token:", 19) == 0))
                has_key = true;
            if (!(e - p > 15 && strncasecmp(p, "Content-Length:", 15) == 0)) {
                line(out, p, e);
                ds_buf_printf(out, "%s", "\r\n");
            }
        }
        p = e + 1;
    }
    if (!has_key)
        ds_buf_printf(out, "%s", "Authorization: Bearer " FZ_ADMIN "\r\n");
    size_t body = p < end ? (size_t)(end - p) : 0;
    ds_buf_printf(out, "Content-Length: %zu\r\n\r\n", body);
    if (body)
        ds_buf_append(out, p, body);
    return !ds_buf_failed(out);
}

/*
 * poll for up to ms milliseconds in all. A signal is no answer: libFuzzer's
 * -timeout watchdog (SIGALRM) lands on any thread, this one too, and the
 * interrupted poll was once taken for a request that hung.
 */
static int wait_ready(struct pollfd *pfd, int ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long left = ms - fz_ms_since(&t0);
        int ready = poll(pfd, 1, left > 0 ? (int)left : 0);
        if (ready >= 0 || errno != EINTR)
            return ready;
    }
}

/*
 * Everything is sent and no answer came: the request may be incomplete (a
 * chunked body without its end, say), and then the server waits for bytes
 * that never come. Returns poll's result, or 0 once the server had no request
 * at work (queued, running or parked) for 50 ms in a row, or after a second:
 * the caller then ends the stream. Not at once: the server refuses a request
 * whose client closed before it ran.
 */
static int wait_answer(struct pollfd *pfd)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int idle_ms = 0;
    while (fz_ms_since(&t0) < 1000) {
        int ready = wait_ready(pfd, 5);
        if (ready != 0)
            return ready;
        idle_ms = ds_rest_at_work() > 0 ? 0 : idle_ms + 5;
        if (idle_ms >= 50)
            return 0;
    }
    return 0;
}

/* What the server holds while a request goes unanswered: the hang's first clue. */
static void hang_report(void)
{
    ds_holds_t h = {0};
    ds_service_holds(&h);
    ds_buf_t m = {0};
    ds_metrics_render(&m);
    const char *text = ds_buf_cstr(&m);
    fprintf(stderr, "fuzz: no answer for 30 s (pid %d): %lld write slot(s) held, %lld waiting, %lld project pin(s), "
            "%lld backend call(s); gauges:\n", (int)getpid(), (long long)h.slots, (long long)h.waiting,
            (long long)h.pins, (long long)h.calls);
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        if (n && *l != '#' && !memchr(l, '{', n))
            fprintf(stderr, "  %.*s\n", (int)n, l);
        l = e ? e + 1 : l + n;
    }
    ds_buf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long runs;
    if (runs++ == 0)
        start();
    else if (runs % 32 == 0)
        fz_fixture();
    ds_buf_t http = {0};
    if (!build(data, size, &http)) {
        ds_buf_free(&http);
        return 0;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ds_err_t err = {0};
    if (ds_rest_add_connection(sv[1], (const struct sockaddr *)&peer, sizeof(peer), &err) != DS_OK)
        abort();
    /* Write and read at once: the daemon may answer (and close) before it read the whole body. */
    size_t off = 0, got = 0;
    char buf[65536], head[200];
    bool eof = false, shut = false, said_slow = false;
    while (!eof) {
        struct pollfd pfd = {.fd = sv[0], .events = POLLIN | (off < http.len ? POLLOUT : 0)};
        bool brief = off >= http.len && !shut; /* everything sent: the request may be incomplete */
        int ready = brief ? wait_answer(&pfd) : wait_ready(&pfd, 30000);
        if (ready == 0 && !brief && !said_slow) {
            /* Half a minute without an answer: say what the server holds (a debugger can attach now). */
            said_slow = true;
            hang_report();
            ready = wait_ready(&pfd, 30000);
        }
        if (ready == 0 && off >= http.len && !shut) {
            shutdown(sv[0], SHUT_WR);
            shut = true;
            continue;
        }
        if (ready <= 0)
            abort(); /* no answer within a minute: a hang */
        if (pfd.revents & POLLIN || pfd.revents & POLLHUP) {
            ssize_t n = read(sv[0], buf, sizeof(buf));
            if (n <= 0)
                eof = true;
            else if (got < sizeof(head) - 1) {
                size_t k = (size_t)n < sizeof(head) - 1 - got ? (size_t)n : sizeof(head) - 1 - got;
                memcpy(head + got, buf, k);
                got += k;
            }
        }
        if (!eof && off < http.len && pfd.revents & POLLOUT) {
            ssize_t n = send(sv[0], http.data + off, http.len - off, MSG_NOSIGNAL);
            if (n < 0)
                off = http.len; /* the daemon closed its end early: nothing more to send */
            else
                off += (size_t)n;
        }
        if (pfd.revents & (POLLERR | POLLNVAL))
            eof = true;
    }
    close(sv[0]);
    head[got] = '\0';
    if (getenv("FUZZ_VERBOSE")) /* the answer's status line and start, to check seeds reach the handlers */
        fprintf(stderr, "fuzz_rest: %s\n", head);
    if (strncmp(head, "HTTP/1.1 500", 12) == 0) {
        /* Bad input gets a 4xx naming the problem; a 500 is the server's own failure. */
        fprintf(stderr, "fuzz_rest: the server failed on this input:\n%s\n", head);
        abort();
    }
    /* The input ends only when the server let go of everything it held for it (a minute at most). */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ds_rest_connections() > 0)
        if (fz_pause(&t0) >= 60000)
            abort();
    fz_check_holds();
    ds_buf_free(&http);
    return 0;
}
