/*
 * http_client.c - a minimal keep-alive HTTP/1.1 client for the benchmark.
 *
 * DESIGN
 * Why not libcurl: the request loops compare duckstore with a constant
 * answer from the same server library, 64 clients at a time on a 2-core
 * machine that also runs the server, so the client's own cost must be small
 * and exactly the same for both; this client does one writev (or
 * header + sendfile for uploads) and reads into one reused buffer, and it
 * needs no new dependency. It speaks only what the benchmark needs: requests
 * with a Content-Length body, responses framed by Content-Length or chunked
 * transfer coding, keep-alive, and one reconnect when the server closed an
 * idle connection before the request reached it.
 *
 * One bench_http_t is one TCP connection, used by one thread at a time.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct bench_http {
    int port;
    int fd;
    char *buf; /* received bytes; the response body is decoded in place */
    size_t cap, len;
};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Imports of large files answer only when done: allow half an hour. */
    struct timeval tv = {.tv_sec = 1800};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bench_http_t *bench_http_open(int port)
{
    bench_http_t *h = bench_xmalloc(sizeof(*h));
    memset(h, 0, sizeof(*h));
    h->port = port;
    h->fd = -1;
    h->cap = 64 * 1024;
    h->buf = bench_xmalloc(h->cap);
    return h;
}

void bench_http_close(bench_http_t **hp)
{
    if (!hp || !*hp)
        return;
    if ((*hp)->fd >= 0)
        close((*hp)->fd);
    free((*hp)->buf);
    free(*hp);
    *hp = NULL;
}

static bool send_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return true;
}

/* Reads more bytes into h->buf; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t fill(bench_http_t *h)
{
    if (h->cap - h->len < 16 * 1024) {
        h->cap *= 2;
        h->buf = bench_xrealloc(h->buf, h->cap);
    }
    for (;;) {
        ssize_t r = recv(h->fd, h->buf + h->len, h->cap - h->len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0)
            h->len += (size_t)r;
        return r;
    }
}

static const char *find_header(const char *head, size_t head_len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = head + head_len;
    const char *p = memchr(head, '\n', head_len);
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

/*
 * Reads one response. Returns 0, -1 on error, -2 when the connection was
 * closed before any byte of a response arrived (the caller may retry).
 */
static int read_response(bench_http_t *h, bench_http_resp_t *resp, char *err, size_t errsz)
{
    h->len = 0;
    char *hend = NULL;
    for (;;) {
        ssize_t r = fill(h);
        if (r == 0 && h->len == 0)
            return -2;
        if (r <= 0) {
            snprintf(err, errsz, "connection %s while reading the response head", r == 0 ? "closed" : strerror(errno));
            return -1;
        }
        h->buf[h->len] = '\0';
        hend = strstr(h->buf, "\r\n\r\n");
        if (hend)
            break;
    }
    size_t head_len = (size_t)(hend - h->buf) + 4;
    int status = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(err, errsz, "malformed status line");
        return -1;
    }
    size_t vlen;
    const char *te = find_header(h->buf, head_len, "Transfer-Encoding", &vlen);
    bool chunked = te && vlen >= 7 && strncasecmp(te, "chunked", 7) == 0;
    const char *cl = find_header(h->buf, head_len, "Content-Length", &vlen);
    const char *conn = find_header(h->buf, head_len, "Connection", &vlen);
    bool close_after = conn && vlen >= 5 && strncasecmp(conn, "close", 5) == 0;
    size_t body_start = head_len;
    if (!chunked) {
        size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
        bool to_eof = !cl && status != 204 && status != 304;
        while (to_eof || h->len - body_start < want) {
            ssize_t r = fill(h);
            if (r == 0 && to_eof)
                break;
            if (r <= 0) {
                snprintf(err, errsz, "connection %s while reading the body", r == 0 ? "closed" : strerror(errno));
                return -1;
            }
        }
        if (to_eof)
            close_after = true;
        else
            h->len = body_start + want;
    } else {
        /* Decode in place: chunk data is moved down to out. */
        size_t in = body_start, out = body_start;
        for (;;) {
            char *crlf;
            while (!(crlf = memmem(h->buf + in, h->len - in, "\r\n", 2))) {
                if (fill(h) <= 0) {
                    snprintf(err, errsz, "connection closed inside a chunked body");
                    return -1;
                }
            }
            size_t n = (size_t)strtoull(h->buf + in, NULL, 16);
            in = (size_t)(crlf - h->buf) + 2;
            if (n == 0) {
                /* Trailers (none expected) end with an empty line. */
                while (!memmem(h->buf + in, h->len - in, "\r\n", 2))
                    if (fill(h) <= 0)
                        break;
                break;
            }
            while (h->len - in < n + 2)
                if (fill(h) <= 0) {
                    snprintf(err, errsz, "connection closed inside a chunk");
                    return -1;
                }
            memmove(h->buf + out, h->buf + in, n);
            out += n;
            in += n + 2;
        }
        h->len = out;
    }
    h->buf[h->len] = '\0';
    resp->status = status;
    resp->body = h->buf + body_start;
    resp->len = h->len - body_start;
    if (close_after) {
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}

static int ensure_connected(bench_http_t *h, char *err, size_t errsz)
{
    if (h->fd >= 0)
        return 0;
    h->fd = connect_to(h->port);
    if (h->fd < 0) {
        snprintf(err, errsz, "cannot connect to 127.0.0.1:%d: %s", h->port, strerror(errno));
        return -1;
    }
    return 0;
}

static int head_of(char *head, size_t sz, const char *method, const char *path, const char *key, size_t body_len,
                   bool has_body)
{
    int n = snprintf(head, sz, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    if (key)
        n += snprintf(head + n, sz - (size_t)n, "Authorization: Bearer %s\r\n", key);
    if (has_body)
        n += snprintf(head + n, sz - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    n += snprintf(head + n, sz - (size_t)n, "\r\n");
    return n;
}

int bench_http_request(bench_http_t *h, const char *method, const char *path, const char *key, const void *body,
                       size_t body_len, bench_http_resp_t *resp, char *err, size_t errsz)
{
    char head[2048];
    bool has_body = body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    int hn = head_of(head, sizeof(head), method, path, key, body_len, has_body);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure_connected(h, err, errsz) != 0)
            return -1;
        struct iovec iov[2] = {{head, (size_t)hn}, {(void *)body, body_len}};
        if (!send_all(h->fd, iov, body_len ? 2 : 1)) {
            close(h->fd);
            h->fd = -1;
            continue;
        }
        int rc = read_response(h, resp, err, errsz);
        if (rc == -2) { /* an idle keep-alive connection the server had closed */
            close(h->fd);
            h->fd = -1;
            continue;
        }
        if (rc != 0) {
            close(h->fd);
            h->fd = -1;
        }
        return rc;
    }
    snprintf(err, errsz, "the server closed the connection twice");
    return -1;
}

int bench_http_post_file(bench_http_t *h, const char *path, const char *key, const char *file, bench_http_resp_t *resp,
                         char *err, size_t errsz)
{
    int in = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0) {
        snprintf(err, errsz, "cannot open %s: %s", file, strerror(errno));
        if (in >= 0)
            close(in);
        return -1;
    }
    char head[2048];
    int hn = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/octet-stream\r\nContent-Length: %lld\r\n\r\n",
                      path, key, (long long)st.st_size);
    int rc = -1;
    if (ensure_connected(h, err, errsz) != 0)
        goto out;
    struct iovec iov = {head, (size_t)hn};
    if (!send_all(h->fd, &iov, 1)) {
        /* A stale keep-alive connection: one fresh try. */
        close(h->fd);
        h->fd = -1;
        if (ensure_connected(h, err, errsz) != 0)
            goto out;
        iov = (struct iovec){head, (size_t)hn};
        if (!send_all(h->fd, &iov, 1)) {
            snprintf(err, errsz, "cannot send the request head: %s", strerror(errno));
            goto out;
        }
    }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t w = sendfile(h->fd, in, &off, (size_t)(st.st_size - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errsz, "sendfile failed after %lld bytes: %s", (long long)off, strerror(errno));
            close(h->fd);
            h->fd = -1;
            goto out;
        }
    }
    rc = read_response(h, resp, err, errsz);
    if (rc == -2) {
        snprintf(err, errsz, "the server closed the connection without answering the upload");
        rc = -1;
    }
    if (rc != 0 && h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
out:
    close(in);
    return rc;
}

double bench_gauge(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

double bench_metric(bench_http_t *h, const char *key, const char *name)
{
    bench_http_resp_t r;
    char err[256];
    if (bench_http_request(h, "GET", "/metrics", key, NULL, 0, &r, err, sizeof(err)) != 0 || r.status != 200)
        return -1;
    return bench_gauge(r.body, name);
}
