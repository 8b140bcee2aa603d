/*
 * server.c - the duckstore process under test, and REST helpers.
 *
 * DESIGN
 * `duckstore serve` runs as a child with a fresh data directory, free
 * loopback ports for REST and gRPC, a random admin key, and the caller's
 * environment minus every DUCKSTORE_* variable (so nothing from the shell
 * changes the defaults being measured) plus what the phase asks for. Its
 * stdout and stderr go to a log file. It is ready when /health answers 200
 * and, for gRPC, when an InitBackendCommand succeeds (gRPC is reported as
 * unavailable otherwise, not as an error). Stopping sends SIGTERM and
 * requires exit status 0: a benchmark that crashes the server has found a bug.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Servers still running, so a failing run stops them (bench_die -> bench_server_kill_all). */
static pid_t live[8];

static void remember(pid_t pid, bool add)
{
    for (int i = 0; i < 8; i++)
        if (add ? live[i] == 0 : live[i] == pid) {
            live[i] = add ? pid : 0;
            return;
        }
}

void bench_server_kill_all(void)
{
    for (int i = 0; i < 8; i++)
        if (live[i] > 0) {
            kill(live[i], SIGTERM);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
}

static void random_key(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    FILE *f = fopen("/dev/urandom", "rb");
    unsigned char b[32];
    if (!f || fread(b, 1, sizeof(b), f) != sizeof(b))
        bench_die("cannot read /dev/urandom");
    fclose(f);
    size_t i = 0;
    for (; i < sizeof(b) && 2 * i + 2 < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * i] = '\0';
}

static void log_tail(const char *path)
{
    char *text = bench_read_file(path);
    if (!text)
        return;
    size_t n = strlen(text);
    fprintf(stderr, "---- last lines of %s ----\n%s\n----\n", path, n > 3000 ? text + n - 3000 : text);
    free(text);
}

void bench_server_start(bench_server_t *s, const char *binary, const char *data_dir, const char *log_path,
                        const char *const *env)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->data_dir, sizeof(s->data_dir), "%s", data_dir);
    snprintf(s->log_path, sizeof(s->log_path), "%s", log_path);
    random_key(s->key, sizeof(s->key));
    s->http_port = bench_free_port();
    s->grpc_port = bench_free_port();
    snprintf(s->grpc_target, sizeof(s->grpc_target), "127.0.0.1:%d", s->grpc_port);
    bench_rmtree(data_dir);
    bench_mkdirs(data_dir);

    char http_addr[64];
    snprintf(http_addr, sizeof(http_addr), "127.0.0.1:%d", s->http_port);
    size_t n_env = 0;
    for (char **e = environ; *e; e++)
        n_env++;
    for (const char *const *e = env; e && *e; e++)
        n_env++;
    char **envp = bench_xmalloc((n_env + 3) * sizeof(char *));
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "DUCKSTORE_", 10) != 0)
            envp[k++] = *e;
    char *admin = bench_fmt("DUCKSTORE_ADMIN_KEY=%s", s->key);
    envp[k++] = admin;
    for (const char *const *e = env; e && *e; e++)
        envp[k++] = (char *)*e;
    /* The bench's clients keep one connection across a long import on another: no idle close meanwhile (a
     * phase's own value, listed before, wins). */
    envp[k++] = "DUCKSTORE_IDLE_TIMEOUT=3600";
    envp[k] = NULL;
    char *argv[] = {(char *)binary, "serve",        "--data-dir", (char *)data_dir, "--http-addr", http_addr,
                    "--grpc-addr",  s->grpc_target, NULL};

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* The server ends with the benchmark, however the benchmark ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execve(binary, argv, envp);
        _exit(127);
    }
    free(envp);
    free(admin);
    s->pid = pid;
    remember(pid, true);

    bench_http_t *h = bench_http_open(s->http_port);
    double deadline = bench_now() + 60;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            log_tail(log_path);
            bench_die("duckstore exited during startup (status %d); log: %s", st, log_path);
        }
        bench_http_resp_t r;
        char err[256];
        if (bench_http_request(h, "GET", "/health", NULL, NULL, 0, &r, err, sizeof(err)) == 0 && r.status == 200)
            break;
        if (bench_now() > deadline) {
            log_tail(log_path);
            bench_die("duckstore did not answer /health within 60 s; log: %s", log_path);
        }
        bench_sleep_ms(50);
    }
    bench_http_close(&h);

    bench_grpc_t *g = bench_grpc_open(s->grpc_target);
    bench_bytes_t req = bench_drv_init_backend(s->key);
    bench_grpc_resp_t r;
    s->grpc_ok = bench_grpc_call(g, req.data, req.len, 15, &r) == 0;
    if (!s->grpc_ok)
        bench_note("gRPC on %s does not answer InitBackendCommand (status %d: %s); gRPC figures will be n/a",
                   s->grpc_target, r.code, r.message);
    bench_grpc_resp_free(&r);
    bench_bytes_free(&req);
    bench_grpc_close(&g);
}

void bench_server_stop(bench_server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int st = 0;
    double deadline = bench_now() + 120;
    for (;;) {
        pid_t w = waitpid(s->pid, &st, WNOHANG);
        if (w == s->pid)
            break;
        if (bench_now() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            remember(s->pid, false);
            log_tail(s->log_path);
            bench_die("duckstore did not stop within 120 s of SIGTERM");
        }
        bench_sleep_ms(20);
    }
    remember(s->pid, false);
    s->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        log_tail(s->log_path);
        bench_die("duckstore ended with %s %d after SIGTERM (expected exit 0); log: %s",
                  WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                  s->log_path);
    }
}

/* ---- REST ---- */

json_t *bench_rest(bench_http_t *h, const char *key, const char *method, const char *path, json_t *body, int expect)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    bench_http_resp_t r;
    char err[256];
    if (bench_http_request(h, method, path, key, text, text ? strlen(text) : 0, &r, err, sizeof(err)) != 0)
        bench_die("%s %s: %s", method, path, err);
    if (r.status != expect)
        bench_die("%s %s answered %d (expected %d): %.2000s\n  request body: %.500s", method, path, r.status, expect,
                  r.body, text ? text : "");
    free(text);
    if (r.len == 0)
        return NULL;
    json_error_t je;
    json_t *out = json_loadb(r.body, r.len, 0, &je);
    if (!out)
        bench_die("%s %s: the answer is not JSON (%s): %.300s", method, path, je.text, r.body);
    return out;
}

void bench_rest_create_project(bench_http_t *h, const char *key, const char *project)
{
    json_decref(bench_rest(h, key, "POST", "/projects", json_pack("{s:s}", "id", project), 201));
}

void bench_rest_create_bucket(bench_http_t *h, const char *key, const char *project, const char *stage,
                              const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "/projects/%s/buckets", project);
    json_decref(bench_rest(h, key, "POST", path, json_pack("{s:s,s:s}", "stage", stage, "name", name), 201));
}

void bench_rest_create_bench_table(bench_http_t *h, const char *key, const char *project, const char *bucket,
                                   const char *table)
{
    json_t *cols = json_array();
    for (size_t i = 0; i < bench_n_cols; i++) {
        json_t *c = json_pack("{s:s}", "name", bench_cols[i].name);
        if (bench_cols[i].type)
            json_object_set_new(c, "type", json_string(bench_cols[i].type));
        if (i == 0)
            json_object_set_new(c, "nullable", json_false());
        json_array_append_new(cols, c);
    }
    char path[256];
    snprintf(path, sizeof(path), "/projects/%s/buckets/%s/tables", project, bucket);
    json_decref(bench_rest(h, key, "POST", path,
                           json_pack("{s:s,s:o,s:[s]}", "name", table, "columns", cols, "primary_key", "id"), 201));
}

char *bench_rest_upload(bench_http_t *h, const char *key, const char *project, const char *name, const char *file,
                        double *seconds)
{
    char path[512];
    snprintf(path, sizeof(path), "/projects/%s/files?name=%s&overwrite=true", project, name);
    bench_http_resp_t r;
    char err[256];
    double t0 = bench_now();
    if (bench_http_post_file(h, path, key, file, &r, err, sizeof(err)) != 0)
        bench_die("upload of %s: %s", file, err);
    if (seconds)
        *seconds = bench_now() - t0;
    if (r.status != 201)
        bench_die("upload of %s answered %d: %.1000s", file, r.status, r.body);
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id)
        bench_die("upload of %s: no id in %.300s", file, r.body);
    int64_t size = json_integer_value(json_object_get(j, "size"));
    if (size != bench_file_size(file))
        bench_die("upload of %s: the server stored %lld bytes of %lld", file, (long long)size,
                  (long long)bench_file_size(file));
    char *out = bench_xstrdup(id);
    json_decref(j);
    return out;
}
