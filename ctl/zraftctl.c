/* zraftctl.c - the command-line client of zraftd's HTTP/JSON API (see
 * server/http.h), in the style of etcdctl.
 *
 * Every request goes to the first endpoint of --endpoints that answers;
 * redirects to the leader are followed, and an endpoint that cannot be
 * reached (or answers 503) hands the request to the next one. `status`
 * asks every endpoint. Output is a table (or plain value) by default, JSON
 * with -w json. Exit codes: 0 ok, 1 not found, 2 usage, 3 unavailable (no
 * endpoint could serve the request), 4 refused or failed by the server.
 * JSON from the server is parsed with cJSON and no field is trusted: a
 * missing or ill-typed field shows as "-" (or null).
 *
 * Security (docs/security.md): --cacert makes endpoints without a scheme
 * https:// and checks the server's certificate against that CA (else the
 * system's); --cert/--key present a client certificate; --token goes with
 * /kv requests and --admin-token with /cluster ones, as "Authorization:
 * Bearer". Each also comes from the environment (ZRAFTCTL_CACERT, ...), and
 * a token given as @FILE is read from FILE, so that it need not appear on
 * a command line. Tokens follow redirects to the leader (a redirect from an
 * https endpoint may only lead to https). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

enum { EXIT_OK = 0, EXIT_NOTFOUND = 1, EXIT_USAGE = 2, EXIT_UNAVAIL = 3 };
enum { EXIT_FAILED = 4 };

/* Largest response body accepted (a value or a status). */
#define MAX_BODY      (64u << 20)
#define MAX_ENDPOINTS 64

/* Global options. */
static struct {
    char *endpoints[MAX_ENDPOINTS]; /* "http://host:port", malloc'ed */
    size_t n_endpoints;
    bool json;          /* -w json */
    long timeout_ms;    /* per request (--timeout SECONDS) */
    bool stale;         /* get --stale */
    bool help;          /* --help */
    const char *pos[8]; /* positional arguments, the command first */
    size_t n_pos;
    char **bench_argv; /* bench: zraft-bench's arguments (not parsed here) */
    int bench_argc;
    const char *cacert, *cert, *key; /* TLS files (NULL: none) */
    char *token, *admin_token;       /* bearer tokens, malloc'ed */
} G = {.timeout_ms = 15000};

/* One HTTP answer. */
typedef struct {
    long status; /* 0: no endpoint answered */
    char *body;  /* NUL-terminated, malloc'ed */
    size_t len;
    char err[256]; /* why the last endpoint failed, when status is 0 */
    bool unserved; /* the last endpoint certainly did not act on it */
} s_resp;

/* ------------------------------------------------------------- usage */

static const char *const s_help_main =
    "usage: zraftctl [--endpoints H:P,H:P,...] [-w table|json] [--timeout S] "
    "COMMAND ...\n"
    "\n"
    "Commands:\n"
    "  put KEY VALUE | put KEY -    write a key (- reads the value from "
    "stdin)\n"
    "  get KEY [--stale]            read a key (linearizable unless "
    "--stale)\n"
    "  del KEY                      delete a key\n"
    "  status                       one row per endpoint\n"
    "  member list                  voters and learners\n"
    "  member add-learner ID RAFT_ADDR HTTP_ADDR [PUBLIC_KEY]\n"
    "  member promote ID            make a learner a voter\n"
    "  member remove ID             remove a voter\n"
    "  leader transfer ID           hand leadership to voter ID\n"
    "  snapshot                     take a snapshot on the first endpoint\n"
    "  bench [ZRAFT-BENCH OPTIONS]  zraft-bench --http on the first endpoint\n"
    "\n"
    "Options:\n"
    "  --endpoints LIST  comma-separated zraftd HTTP addresses (default\n"
    "                    $ZRAFTCTL_ENDPOINTS, else 127.0.0.1:8001)\n"
    "  -w, --write-out   table (default) or json\n"
    "  --timeout S       seconds per request (default 15); also how long to\n"
    "                    keep asking while no endpoint can serve it yet\n"
    "  --cacert FILE     CA of the servers' certificates (HTTPS; endpoints\n"
    "                    without a scheme become https://)\n"
    "  --cert FILE --key FILE  client certificate (mutual TLS)\n"
    "  --token T         bearer token for put/get/del (@FILE: read it)\n"
    "  --admin-token T   bearer token for status, member, leader, snapshot\n"
    "                    Each also from $ZRAFTCTL_CACERT, _CERT, _KEY,\n"
    "                    _TOKEN, _ADMIN_TOKEN.\n"
    "  COMMAND --help    help on one command\n"
    "\n"
    "Exit codes: 0 ok, 1 not found, 2 usage, 3 unavailable, 4 refused or\n"
    "failed by the server.\n";

static const struct {
    const char *cmd;
    const char *help;
} s_helps[] = {
    {"put", "usage: zraftctl put KEY VALUE\n"
            "       zraftctl put KEY -     (value from stdin)\n"
            "Writes KEY through the leader. Prints OK.\n"},
    {"get", "usage: zraftctl get KEY [--stale]\n"
            "Prints KEY's value; exit 1 if it does not exist. --stale reads\n"
            "the first endpoint's own state (no leader round trip).\n"},
    {"del", "usage: zraftctl del KEY\nDeletes KEY. Prints OK.\n"},
    {"status", "usage: zraftctl status\n"
               "One row per endpoint: id, address, role, term, leader,\n"
               "commit, applied, last log index and lag (leader's last log\n"
               "index minus this node's). Exit 3 if no endpoint answers.\n"},
    {"member", "usage: zraftctl member list\n"
               "       zraftctl member add-learner ID RAFT_ADDR HTTP_ADDR "
               "[PUBLIC_KEY]\n"
               "       zraftctl member promote ID   (voters + ID)\n"
               "       zraftctl member remove ID    (voters - ID)\n"},
    {"leader", "usage: zraftctl leader transfer ID\n"
               "Asks the leader to hand leadership to voter ID.\n"},
    {"snapshot", "usage: zraftctl snapshot\n"
                 "Takes a snapshot on the first endpoint that answers.\n"},
    {"bench", "usage: zraftctl bench [--clients C] [--duration S] "
              "[--payload B] [--report FILE.html] ...\n"
              "Runs zraft-bench --http against the first endpoint that\n"
              "answers (writes to the leader through redirects); the\n"
              "arguments after bench are zraft-bench's (zraftctl bench\n"
              "--help lists them). zraft-bench is looked for in\n"
              "$ZRAFT_BENCH, beside zraftctl, in ../bench/ (a build tree),\n"
              "then on PATH. Exit: zraft-bench's, or 3 when no endpoint\n"
              "answers or zraft-bench cannot be run.\n"},
};

static int s_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "zraftctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(zraftctl --help for usage)\n");
    return EXIT_USAGE;
}

static int s_print_help(const char *cmd)
{
    for (size_t i = 0; cmd && i < sizeof s_helps / sizeof s_helps[0]; i++) {
        if (!strcmp(cmd, s_helps[i].cmd)) {
            fputs(s_helps[i].help, stdout);
            return EXIT_OK;
        }
    }
    fputs(s_help_main, stdout);
    return EXIT_OK;
}

/* Parses a member id (1 .. 2^53, as the server takes it); 0 if bad. */
static uint64_t s_parse_id(const char *s)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 9000000000000000ull) {
        return 0;
    }
    return (uint64_t)v;
}

static int s_set_endpoints(const char *list)
{
    for (size_t i = 0; i < G.n_endpoints; i++) {
        free(G.endpoints[i]);
    }
    G.n_endpoints = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            if (G.n_endpoints == MAX_ENDPOINTS) {
                return s_usage("more than %s endpoints", "64");
            }
            bool scheme = n > 7 && (!strncmp(p, "http://", 7) ||
                                    !strncmp(p, "https://", 8));
            size_t cap = n + sizeof "https://";
            char *e = malloc(cap);
            if (e == NULL) {
                return s_usage("%s", "out of memory");
            }
            snprintf(e, cap, "%s%.*s",
                     scheme     ? ""
                     : G.cacert ? "https://"
                                : "http://",
                     (int)n, p);
            /* No trailing slash: paths are appended. */
            size_t el = strlen(e);
            while (el > 0 && e[el - 1] == '/') {
                e[--el] = '\0';
            }
            G.endpoints[G.n_endpoints++] = e;
        }
        p += n + (p[n] == ',');
    }
    if (G.n_endpoints == 0) {
        return s_usage("--endpoints needs at least one address%s", "");
    }
    return EXIT_OK;
}

/* Sets a token from T, or from the first line of FILE for "@FILE". */
static int s_set_token(char **dst, const char *what, const char *v)
{
    free(*dst);
    *dst = NULL;
    if (v == NULL || *v == '\0') {
        return EXIT_OK;
    }
    char buf[1100];
    if (v[0] == '@') {
        FILE *f = fopen(v + 1, "r");
        if (f == NULL) {
            return s_usage(what, strerror(errno));
        }
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        v = buf;
    }
    if (strlen(v) > 1024 || strpbrk(v, " \t\r\n") != NULL) {
        return s_usage(what, "longer than 1024 bytes or has a space");
    }
    *dst = strdup(v);
    memset(buf, 0, sizeof buf);
    return *dst ? EXIT_OK : s_usage("%s", "out of memory");
}

/* --NAME VALUE or --NAME=VALUE at argv[*i]: the value (NULL: not this
 * option; "" when the value is missing). */
static const char *s_opt(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '=')) {
        return NULL;
    }
    if (a[n] == '=') {
        return a + n + 1;
    }
    return *i + 1 < argc ? argv[++*i] : "";
}

/* Parses argv into G; EXIT_OK or EXIT_USAGE. */
static int s_parse_args(int argc, char **argv)
{
    const char *eps = getenv("ZRAFTCTL_ENDPOINTS");
    const char *tok = getenv("ZRAFTCTL_TOKEN");
    const char *atok = getenv("ZRAFTCTL_ADMIN_TOKEN");
    G.cacert = getenv("ZRAFTCTL_CACERT");
    G.cert = getenv("ZRAFTCTL_CERT");
    G.key = getenv("ZRAFTCTL_KEY");
    bool dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (dashdash || a[0] != '-' || !strcmp(a, "-")) {
            if (G.n_pos == sizeof G.pos / sizeof G.pos[0]) {
                return s_usage("too many arguments (at %s)", a);
            }
            G.pos[G.n_pos++] = a;
            if (G.n_pos == 1 && !strcmp(a, "bench") && !G.help) {
                /* The rest is zraft-bench's, passed through as is. */
                G.bench_argv = argv + i + 1;
                G.bench_argc = argc - i - 1;
                break;
            }
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            G.help = true;
        } else if (!strcmp(a, "--stale")) {
            G.stale = true;
        } else if ((val = s_opt(argc, argv, &i, "--cacert")) != NULL) {
            G.cacert = val;
        } else if ((val = s_opt(argc, argv, &i, "--cert")) != NULL) {
            G.cert = val;
        } else if ((val = s_opt(argc, argv, &i, "--key")) != NULL) {
            G.key = val;
        } else if ((val = s_opt(argc, argv, &i, "--token")) != NULL) {
            tok = val;
        } else if ((val = s_opt(argc, argv, &i, "--admin-token")) != NULL) {
            atok = val;
        } else if (!strncmp(a, "--endpoints", 11) &&
                   (a[11] == '\0' || a[11] == '=')) {
            val = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            if (val == NULL) {
                return s_usage("%s needs a value", "--endpoints");
            }
            eps = val;
        } else if (!strcmp(a, "-w") || (!strncmp(a, "--write-out", 11) &&
                                        (a[11] == '\0' || a[11] == '='))) {
            val = a[1] == 'w'    ? (i + 1 < argc ? argv[++i] : NULL)
                  : a[11] == '=' ? a + 12
                                 : (i + 1 < argc ? argv[++i] : NULL);
            if (val == NULL) {
                return s_usage("%s needs a value", a);
            }
            if (!strcmp(val, "json")) {
                G.json = true;
            } else if (!strcmp(val, "table")) {
                G.json = false;
            } else {
                return s_usage("-w must be table or json, not %s", val);
            }
        } else if (!strncmp(a, "--timeout", 9) &&
                   (a[9] == '\0' || a[9] == '=')) {
            val = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            char *end;
            double s = val ? strtod(val, &end) : 0;
            if (val == NULL || *val == '\0' || *end != '\0' || !(s > 0) ||
                s > 3600) {
                return s_usage("--timeout needs seconds in (0, 3600], "
                               "not %s",
                               val ? val : "nothing");
            }
            G.timeout_ms = (long)(s * 1000);
            if (G.timeout_ms < 1) {
                G.timeout_ms = 1;
            }
        } else {
            return s_usage("unknown option %s", a);
        }
    }
    if ((G.cacert && !*G.cacert) || (G.cert && !*G.cert) ||
        (G.key && !*G.key)) {
        return s_usage("%s needs a file", "--cacert, --cert or --key");
    }
    if ((G.cert == NULL) != (G.key == NULL)) {
        return s_usage("%s", "--cert and --key go together");
    }
    int rv = s_set_token(&G.token, "--token: %s", tok);
    if (rv == EXIT_OK) {
        rv = s_set_token(&G.admin_token, "--admin-token: %s", atok);
    }
    if (rv != EXIT_OK) {
        return rv;
    }
    return s_set_endpoints(eps && *eps ? eps : "127.0.0.1:8001");
}

/* ------------------------------------------------------------- HTTP */

static size_t s_write_cb(char *data, size_t size, size_t n, void *arg)
{
    s_resp *r = arg;
    size_t add = size * n;
    if (r->len + add > MAX_BODY) {
        return 0; /* curl fails the transfer */
    }
    char *b = realloc(r->body, r->len + add + 1);
    if (b == NULL) {
        return 0;
    }
    memcpy(b + r->len, data, add);
    r->len += add;
    b[r->len] = '\0';
    r->body = b;
    return add;
}

static void s_resp_reset(s_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->status = 0;
}

static long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A 503 whose code says the request was refused before anything was
 * proposed (no leader known, or the node asked was no longer the leader):
 * asking again cannot apply it twice. ELEADERSHIP_LOST and ESHUTDOWN are
 * not here: the request may have been proposed. */
static bool s_refused(const s_resp *r)
{
    cJSON *o = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "code");
    bool refused = cJSON_IsString(code) && code->valuestring != NULL &&
                   (!strcmp(code->valuestring, "ENOTLEADER") ||
                    !strcmp(code->valuestring, "EUNAVAILABLE") ||
                    !strcmp(code->valuestring, "EAGAIN"));
    cJSON_Delete(o);
    return refused;
}

/* One request to one endpoint; redirects followed. true when the endpoint
 * gave an answer other than 503. */
static bool s_request_one(const char *ep, const char *method, const char *path,
                          const char *body, size_t blen, bool follow, s_resp *r)
{
    s_resp_reset(r);
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(r->err, sizeof r->err, "curl_easy_init failed");
        return false;
    }
    size_t ulen = strlen(ep) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (url == NULL) {
        curl_easy_cleanup(c);
        snprintf(r->err, sizeof r->err, "out of memory");
        return false;
    }
    snprintf(url, ulen, "%s%s", ep, path);
    struct curl_slist *h = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    bool tls = !strncmp(ep, "https://", 8);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
                     tls ? "https" : "http,https");
    if (G.cacert != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, G.cacert);
    }
    if (G.cert != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, G.cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, G.key);
    }
    const char *tok = !strncmp(path, "/kv", 3)        ? G.token
                      : !strncmp(path, "/cluster", 8) ? G.admin_token
                                                      : NULL;
    char auth[1100];
    if (tok != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        h = curl_slist_append(h, auth);
        memset(auth, 0, sizeof auth);
        /* The leader a follower redirects to gets the token too (same
         * cluster; https only when the endpoint is https). */
        curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 1L);
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     G.timeout_ms < 2000 ? G.timeout_ms : 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, G.timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        h = curl_slist_append(h, !strcmp(method, "POST")
                                     ? "Content-Type: application/json"
                                     : "Content-Type: "
                                       "application/octet-stream");
        h = curl_slist_append(h, "Expect:");
    }
    if (h != NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    CURLcode rc = curl_easy_perform(c);
    bool answered = false;
    r->unserved = false;
    if (rc != CURLE_OK) {
        snprintf(r->err, sizeof r->err, "%s: %s", ep, curl_easy_strerror(rc));
        r->status = 0;
        r->unserved = rc == CURLE_COULDNT_CONNECT; /* nothing was sent */
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->status == 503) {
            snprintf(r->err, sizeof r->err, "%s: 503 %s", ep,
                     r->body ? r->body : "");
            r->unserved = s_refused(r);
        }
        answered = r->status != 503;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
    return answered;
}

/* The request through the first endpoint that serves it. r->status 0 (or
 * 503) when none did; r->err says why the last one failed. */
static void s_request(const char *method, const char *path, const char *body,
                      size_t blen, s_resp *r)
{
    /* While every endpoint refused it unserved (down, or no leader yet:
     * an election in progress), ask them all again until --timeout, as
     * etcdctl does; anything else is the answer. */
    long t0 = s_now_ms();
    for (;;) {
        bool unserved = true;
        for (size_t i = 0; i < G.n_endpoints; i++) {
            if (s_request_one(G.endpoints[i], method, path, body, blen, true,
                              r)) {
                return;
            }
            unserved = unserved && r->unserved;
        }
        if (!unserved || s_now_ms() - t0 >= G.timeout_ms) {
            return;
        }
        usleep(200 * 1000);
    }
}

/* The server's {"error":"..."} message, or the body itself. */
static void s_server_error(const s_resp *r)
{
    const char *msg = r->body && r->len ? r->body : "(no body)";
    cJSON *o = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsString(e) && e->valuestring != NULL) {
        msg = e->valuestring;
    }
    fprintf(stderr, "zraftctl: server answered %ld: %s\n", r->status, msg);
    cJSON_Delete(o);
}

/* Maps a finished request to an exit code, printing why on failure. */
static int s_check(const s_resp *r)
{
    if (r->status == 0 || r->status == 503 || r->status == 504) {
        if (r->status == 504) {
            s_server_error(r);
        } else {
            fprintf(stderr,
                    "zraftctl: no endpoint could serve the request "
                    "(last: %s)\n",
                    r->err);
        }
        return EXIT_UNAVAIL;
    }
    if (r->status >= 200 && r->status < 300) {
        return EXIT_OK;
    }
    s_server_error(r);
    if (r->status == 404) {
        return EXIT_NOTFOUND;
    }
    return r->status == 400 ? EXIT_USAGE : EXIT_FAILED;
}

/* Prints cJSON o (consumed) on stdout. */
static void s_print_json(cJSON *o)
{
    char *s = o ? cJSON_Print(o) : NULL;
    puts(s ? s : "null");
    free(s);
    cJSON_Delete(o);
}

static int s_ok_output(int rv)
{
    if (rv != EXIT_OK) {
        return rv;
    }
    if (G.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", true);
        s_print_json(o);
    } else {
        puts("OK");
    }
    return EXIT_OK;
}

/* "/kv/" + the percent-encoded key; caller owns the return value. */
static char *s_kv_path(const char *key)
{
    char *esc = curl_easy_escape(NULL, key, (int)strlen(key));
    if (esc == NULL) {
        return NULL;
    }
    size_t n = strlen(esc) + 5;
    char *p = malloc(n);
    if (p != NULL) {
        snprintf(p, n, "/kv/%s", esc);
    }
    curl_free(esc);
    return p;
}

/* --------------------------------------------------------- commands */

static int s_cmd_put(void)
{
    if (G.n_pos != 3) {
        return s_usage("%s", "put needs KEY and VALUE (or -)");
    }
    char *val = NULL;
    size_t vlen = 0;
    if (!strcmp(G.pos[2], "-")) {
        size_t cap = 0;
        for (;;) {
            if (vlen == cap) {
                cap = cap ? cap * 2 : 4096;
                if (cap > MAX_BODY) {
                    free(val);
                    return s_usage("%s", "value on stdin is too large");
                }
                char *b = realloc(val, cap);
                if (b == NULL) {
                    free(val);
                    return s_usage("%s", "out of memory");
                }
                val = b;
            }
            size_t got = fread(val + vlen, 1, cap - vlen, stdin);
            vlen += got;
            if (got == 0) {
                break;
            }
        }
        if (ferror(stdin)) {
            free(val);
            fprintf(stderr, "zraftctl: reading stdin: %s\n", strerror(errno));
            return EXIT_USAGE;
        }
    }
    char *path = s_kv_path(G.pos[1]);
    s_resp r = {0};
    int rv = EXIT_USAGE;
    if (path != NULL) {
        /* The value read from stdin, else the VALUE argument. */
        s_request("PUT", path, val ? val : G.pos[2],
                  val ? vlen : strlen(G.pos[2]), &r);
        rv = s_ok_output(s_check(&r));
    }
    free(val);
    free(path);
    s_resp_reset(&r);
    return rv;
}

static int s_cmd_get(void)
{
    if (G.n_pos != 2) {
        return s_usage("%s", "get needs one KEY");
    }
    char *path = s_kv_path(G.pos[1]);
    if (path == NULL) {
        return s_usage("%s", "out of memory");
    }
    size_t plen = strlen(path) + 32;
    char *full = malloc(plen);
    if (full == NULL) {
        free(path);
        return s_usage("%s", "out of memory");
    }
    snprintf(full, plen, "%s%s", path, G.stale ? "?consistency=stale" : "");
    s_resp r = {0};
    s_request("GET", full, NULL, 0, &r);
    int rv = s_check(&r);
    if (rv == EXIT_OK) {
        if (G.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", G.pos[1]);
            /* A value with a NUL byte is cut there in JSON. */
            cJSON_AddStringToObject(o, "value", r.body ? r.body : "");
            s_print_json(o);
        } else {
            if (r.len > 0) {
                fwrite(r.body, 1, r.len, stdout);
            }
            putchar('\n');
        }
    }
    free(full);
    free(path);
    s_resp_reset(&r);
    return rv;
}

static int s_cmd_del(void)
{
    if (G.n_pos != 2) {
        return s_usage("%s", "del needs one KEY");
    }
    char *path = s_kv_path(G.pos[1]);
    if (path == NULL) {
        return s_usage("%s", "out of memory");
    }
    s_resp r = {0};
    s_request("DELETE", path, NULL, 0, &r);
    int rv = s_ok_output(s_check(&r));
    free(path);
    s_resp_reset(&r);
    return rv;
}

/* A number field of a status object, trusted only if it is a non-negative
 * integer; false otherwise. */
static bool s_num(const cJSON *o, const char *name, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) ||
        v->valuedouble > 9.0e15 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

static const char *s_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* GET /cluster/status of one endpoint (no redirect); the parsed object
 * (caller owns it) or NULL with the reason in why. */
static cJSON *s_status_of(const char *ep, char *why, size_t whylen)
{
    s_resp r = {0};
    cJSON *o = NULL;
    if (!s_request_one(ep, "GET", "/cluster/status", NULL, 0, false, &r) ||
        r.status != 200) {
        if (r.status == 0 || r.status == 503) {
            snprintf(why, whylen, "%s", r.err);
        } else {
            snprintf(why, whylen, "HTTP %ld", r.status);
        }
    } else {
        o = cJSON_ParseWithLength(r.body, r.len);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            o = NULL;
            snprintf(why, whylen, "status is not a JSON object");
        }
    }
    s_resp_reset(&r);
    return o;
}

static void s_cell_num(char *out, size_t cap, const cJSON *o, const char *name)
{
    uint64_t v;
    if (o && s_num(o, name, &v)) {
        snprintf(out, cap, "%" PRIu64, v);
    } else {
        snprintf(out, cap, "-");
    }
}

static int s_cmd_status(void)
{
    if (G.n_pos != 1) {
        return s_usage("%s", "status takes no arguments");
    }
    size_t n = G.n_endpoints;
    cJSON **st = calloc(n, sizeof *st);
    char(*why)[256] = calloc(n, sizeof *why);
    if (st == NULL || why == NULL) {
        free(st);
        free(why);
        return s_usage("%s", "out of memory");
    }
    /* The leader's row: the highest term among nodes that say they lead. */
    const cJSON *leader = NULL;
    uint64_t lterm = 0;
    size_t reachable = 0;
    for (size_t i = 0; i < n; i++) {
        st[i] = s_status_of(G.endpoints[i], why[i], sizeof why[i]);
        if (st[i] == NULL) {
            continue;
        }
        reachable++;
        const char *role = s_str(st[i], "role");
        uint64_t t = 0;
        if (role && !strcmp(role, "leader") && s_num(st[i], "term", &t) &&
            (leader == NULL || t > lterm)) {
            leader = st[i];
            lterm = t;
        }
    }
    uint64_t llast = 0;
    bool have_llast = leader && s_num(leader, "last_log_index", &llast);
    cJSON *arr = G.json ? cJSON_CreateArray() : NULL;
    if (!G.json) {
        printf("%-24s %-6s %-10s %-6s %-6s %-10s %-10s %-10s %s\n", "ENDPOINT",
               "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED",
               "LAST_INDEX", "LAG");
    }
    for (size_t i = 0; i < n; i++) {
        const char *ep = G.endpoints[i];
        const cJSON *o = st[i];
        uint64_t last = 0;
        bool have_lag = o && have_llast && s_num(o, "last_log_index", &last);
        uint64_t lag = have_lag && llast > last ? llast - last : 0;
        if (G.json) {
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "endpoint", ep);
            cJSON_AddBoolToObject(row, "reachable", o != NULL);
            if (o == NULL) {
                cJSON_AddStringToObject(row, "error", why[i]);
            } else {
                static const char *const nums[] = {"id",
                                                   "term",
                                                   "leader",
                                                   "commit_index",
                                                   "last_applied",
                                                   "last_log_index",
                                                   "snapshot_index"};
                for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
                    uint64_t v;
                    if (s_num(o, nums[k], &v)) {
                        cJSON_AddNumberToObject(row, nums[k], (double)v);
                    } else {
                        cJSON_AddNullToObject(row, nums[k]);
                    }
                }
                const char *role = s_str(o, "role");
                const char *addr = s_str(o, "http_addr");
                cJSON_AddStringToObject(row, "role", role ? role : "unknown");
                if (addr) {
                    cJSON_AddStringToObject(row, "http_addr", addr);
                }
                if (have_lag) {
                    cJSON_AddNumberToObject(row, "lag", (double)lag);
                } else {
                    cJSON_AddNullToObject(row, "lag");
                }
            }
            cJSON_AddItemToArray(arr, row);
            continue;
        }
        if (o == NULL) {
            printf("%-24s unreachable: %s\n", ep, why[i]);
            continue;
        }
        char id[24], term[24], ld[24], commit[24], applied[24], lastc[24];
        char lagc[24];
        s_cell_num(id, sizeof id, o, "id");
        s_cell_num(term, sizeof term, o, "term");
        s_cell_num(ld, sizeof ld, o, "leader");
        s_cell_num(commit, sizeof commit, o, "commit_index");
        s_cell_num(applied, sizeof applied, o, "last_applied");
        s_cell_num(lastc, sizeof lastc, o, "last_log_index");
        if (have_lag) {
            snprintf(lagc, sizeof lagc, "%" PRIu64, lag);
        } else {
            snprintf(lagc, sizeof lagc, "-");
        }
        const char *role = s_str(o, "role");
        /* Server strings are printed with a bounded width. */
        printf("%-24s %-6s %-10.10s %-6s %-6s %-10s %-10s %-10s %s\n", ep, id,
               role ? role : "unknown", term, ld, commit, applied, lastc, lagc);
    }
    if (G.json) {
        s_print_json(arr);
    }
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(st[i]);
    }
    free(st);
    free(why);
    if (reachable == 0) {
        fprintf(stderr, "zraftctl: no endpoint answered\n");
        return EXIT_UNAVAIL;
    }
    return EXIT_OK;
}

/* The membership: voters and learners (ids), joint. */
typedef struct {
    uint64_t voters[64], learners[64];
    size_t n_voters, n_learners;
    bool joint;
} s_members;

static bool s_ids(const cJSON *o, const char *name, uint64_t *out, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
    const cJSON *it;
    *n = 0;
    if (!cJSON_IsArray(a)) {
        return false;
    }
    cJSON_ArrayForEach(it, a)
    {
        if (*n == 64 || !cJSON_IsNumber(it) || !(it->valuedouble >= 1) ||
            it->valuedouble > 9.0e15 ||
            it->valuedouble != (double)(uint64_t)it->valuedouble) {
            return false;
        }
        out[(*n)++] = (uint64_t)it->valuedouble;
    }
    return true;
}

static int s_members_get(s_members *m)
{
    /* The leader's view if an endpoint leads (a follower's may lag behind a
     * change just made), else the first reachable endpoint's. */
    char why[256] = "no endpoint";
    cJSON *best = NULL;
    const char *from = NULL;
    for (size_t i = 0; i < G.n_endpoints; i++) {
        cJSON *o = s_status_of(G.endpoints[i], why, sizeof why);
        if (o == NULL) {
            continue;
        }
        const char *role = s_str(o, "role");
        bool leads = role != NULL && !strcmp(role, "leader");
        if (best == NULL || leads) {
            cJSON_Delete(best);
            best = o;
            from = G.endpoints[i];
        } else {
            cJSON_Delete(o);
        }
        if (leads) {
            break;
        }
    }
    if (best == NULL) {
        fprintf(stderr, "zraftctl: no endpoint answered (last: %s)\n", why);
        return EXIT_UNAVAIL;
    }
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(best, "joint");
    bool ok = s_ids(best, "voters", m->voters, &m->n_voters) &&
              s_ids(best, "learners", m->learners, &m->n_learners);
    m->joint = cJSON_IsTrue(j);
    cJSON_Delete(best);
    if (!ok) {
        fprintf(stderr,
                "zraftctl: %s: status has no valid voters and learners "
                "lists\n",
                from);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

static bool s_has(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* POSTs JSON o (consumed) to path; the exit code, OK printed. */
static int s_post(const char *path, cJSON *o)
{
    char *body = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    s_resp r = {0};
    s_request("POST", path, body ? body : "", body ? strlen(body) : 0, &r);
    int rv = s_ok_output(s_check(&r));
    free(body);
    s_resp_reset(&r);
    return rv;
}

static int s_set_voters(const uint64_t *v, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "voters");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    }
    return s_post("/cluster/membership", o);
}

static int s_cmd_member(void)
{
    const char *sub = G.n_pos > 1 ? G.pos[1] : "";
    s_members m;
    int rv;
    if (!strcmp(sub, "list")) {
        if (G.n_pos != 2) {
            return s_usage("%s", "member list takes no arguments");
        }
        if ((rv = s_members_get(&m)) != EXIT_OK) {
            return rv;
        }
        if (G.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON *v = cJSON_AddArrayToObject(o, "voters");
            cJSON *l = cJSON_AddArrayToObject(o, "learners");
            for (size_t i = 0; i < m.n_voters; i++) {
                cJSON_AddItemToArray(v,
                                     cJSON_CreateNumber((double)m.voters[i]));
            }
            for (size_t i = 0; i < m.n_learners; i++) {
                cJSON_AddItemToArray(l,
                                     cJSON_CreateNumber((double)m.learners[i]));
            }
            cJSON_AddBoolToObject(o, "joint", m.joint);
            s_print_json(o);
        } else {
            printf("%-6s %s\n", "ID", "ROLE");
            for (size_t i = 0; i < m.n_voters; i++) {
                printf("%-6" PRIu64 " voter\n", m.voters[i]);
            }
            for (size_t i = 0; i < m.n_learners; i++) {
                printf("%-6" PRIu64 " learner\n", m.learners[i]);
            }
            if (m.joint) {
                puts("(joint configuration: a change is in progress)");
            }
        }
        return EXIT_OK;
    }
    if (!strcmp(sub, "add-learner")) {
        uint64_t id = G.n_pos == 5 || G.n_pos == 6 ? s_parse_id(G.pos[2]) : 0;
        if (id == 0) {
            return s_usage("%s", "member add-learner needs ID (1..9e15), "
                                 "RAFT_ADDR and HTTP_ADDR");
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)id);
        cJSON_AddStringToObject(o, "raft_addr", G.pos[3]);
        cJSON_AddStringToObject(o, "http_addr", G.pos[4]);
        if (G.n_pos == 6) { /* CURVE: the learner's key (zraftd keygen) */
            cJSON_AddStringToObject(o, "key", G.pos[5]);
        }
        return s_post("/cluster/learners", o);
    }
    if (!strcmp(sub, "promote") || !strcmp(sub, "remove")) {
        uint64_t id = G.n_pos == 3 ? s_parse_id(G.pos[2]) : 0;
        if (id == 0) {
            return s_usage("member %s needs one ID (1..9e15)", sub);
        }
        if ((rv = s_members_get(&m)) != EXIT_OK) {
            return rv;
        }
        if (m.joint) {
            fprintf(stderr, "zraftctl: a membership change is in progress; "
                            "retry\n");
            return EXIT_UNAVAIL;
        }
        if (sub[0] == 'p') {
            if (s_has(m.voters, m.n_voters, id)) {
                fprintf(stderr, "zraftctl: %" PRIu64 " is already a voter\n",
                        id);
                return s_ok_output(EXIT_OK);
            }
            if (!s_has(m.learners, m.n_learners, id)) {
                fprintf(stderr,
                        "zraftctl: %" PRIu64 " is not a learner (add it "
                        "with member add-learner first)\n",
                        id);
                return EXIT_NOTFOUND;
            }
            if (m.n_voters == 64) {
                fprintf(stderr, "zraftctl: 64 voters already\n");
                return EXIT_FAILED;
            }
            m.voters[m.n_voters++] = id;
            return s_set_voters(m.voters, m.n_voters);
        }
        if (!s_has(m.voters, m.n_voters, id)) {
            fprintf(stderr, "zraftctl: %" PRIu64 " is not a voter\n", id);
            return EXIT_NOTFOUND;
        }
        size_t k = 0;
        for (size_t i = 0; i < m.n_voters; i++) {
            if (m.voters[i] != id) {
                m.voters[k++] = m.voters[i];
            }
        }
        if (k == 0) {
            fprintf(stderr, "zraftctl: cannot remove the last voter\n");
            return EXIT_FAILED;
        }
        return s_set_voters(m.voters, k);
    }
    return s_usage("member needs list, add-learner, promote or remove%s", "");
}

static int s_cmd_leader(void)
{
    uint64_t id = G.n_pos == 3 && !strcmp(G.pos[1], "transfer")
                      ? s_parse_id(G.pos[2])
                      : 0;
    if (id == 0) {
        return s_usage("%s", "usage: leader transfer ID");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "to", (double)id);
    return s_post("/cluster/transfer-leader", o);
}

static int s_cmd_snapshot(void)
{
    if (G.n_pos != 1) {
        return s_usage("%s", "snapshot takes no arguments");
    }
    return s_post("/cluster/snapshot", NULL);
}

/* bench: exec zraft-bench --http HOST:PORT ARGS... on the first endpoint
 * that answers. Returns only on failure. */
static int s_cmd_bench(void)
{
    const char *target = NULL;
    char why[256] = "no endpoint";
    bool help = false; /* zraft-bench's own help needs no cluster */
    for (int i = 0; i < G.bench_argc; i++) {
        help |= !strcmp(G.bench_argv[i], "--help") ||
                !strcmp(G.bench_argv[i], "-h");
    }
    for (size_t i = 0; i < G.n_endpoints && target == NULL && !help; i++) {
        if (strncmp(G.endpoints[i], "http://", 7) != 0) {
            snprintf(why, sizeof why, "%s: zraft-bench speaks plain HTTP",
                     G.endpoints[i]);
            continue;
        }
        cJSON *o = s_status_of(G.endpoints[i], why, sizeof why);
        if (o != NULL) {
            target = G.endpoints[i] + 7;
            cJSON_Delete(o);
        }
    }
    if (target == NULL && !help) {
        fprintf(stderr, "zraftctl: bench: no endpoint answers (%s)\n", why);
        return EXIT_UNAVAIL;
    }
    char **args = calloc((size_t)G.bench_argc + 4, sizeof(char *));
    if (args == NULL) {
        return s_usage("%s", "out of memory");
    }
    int k = 0;
    args[k++] = "zraft-bench";
    if (target != NULL) {
        args[k++] = "--http";
        args[k++] = (char *)target;
    }
    for (int i = 0; i < G.bench_argc; i++) {
        args[k++] = G.bench_argv[i];
    }
    /* $ZRAFT_BENCH, beside us (installed), ../bench/ (a build tree). */
    char self[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    const char *env = getenv("ZRAFT_BENCH");
    if (env != NULL && *env) {
        execv(env, args);
        fprintf(stderr, "zraftctl: bench: %s: %s\n", env, strerror(errno));
        free(args);
        return EXIT_UNAVAIL;
    }
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            const char *rel[] = {"/zraft-bench", "/../bench/zraft-bench"};
            for (size_t i = 0; i < 2; i++) {
                snprintf(path, sizeof path, "%s%s", self, rel[i]);
                if (access(path, X_OK) == 0) {
                    execv(path, args);
                }
            }
        }
    }
    execvp("zraft-bench", args);
    fprintf(stderr, "zraftctl: bench: cannot run zraft-bench: %s\n",
            strerror(errno));
    free(args);
    return EXIT_UNAVAIL;
}

static int s_run(void)
{
    const char *cmd = G.n_pos ? G.pos[0] : NULL;
    if (G.help && G.bench_argv == NULL) {
        return s_print_help(cmd);
    }
    if (cmd == NULL) {
        fputs(s_help_main, stderr);
        return EXIT_USAGE;
    }
    if (G.stale && strcmp(cmd, "get") != 0) {
        return s_usage("%s", "--stale applies to get only");
    }
    if (!strcmp(cmd, "put")) {
        return s_cmd_put();
    }
    if (!strcmp(cmd, "get")) {
        return s_cmd_get();
    }
    if (!strcmp(cmd, "del")) {
        return s_cmd_del();
    }
    if (!strcmp(cmd, "status")) {
        return s_cmd_status();
    }
    if (!strcmp(cmd, "member")) {
        return s_cmd_member();
    }
    if (!strcmp(cmd, "leader")) {
        return s_cmd_leader();
    }
    if (!strcmp(cmd, "snapshot")) {
        return s_cmd_snapshot();
    }
    if (!strcmp(cmd, "bench")) {
        return s_cmd_bench();
    }
    if (!strcmp(cmd, "help")) {
        return s_print_help(G.n_pos > 1 ? G.pos[1] : NULL);
    }
    return s_usage("unknown command %s", cmd);
}

int main(int argc, char **argv)
{
    int rv = s_parse_args(argc, argv);
    if (rv == EXIT_OK) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            fprintf(stderr, "zraftctl: curl_global_init failed\n");
            return EXIT_UNAVAIL;
        }
        rv = s_run();
        curl_global_cleanup();
    }
    for (size_t i = 0; i < G.n_endpoints; i++) {
        free(G.endpoints[i]);
    }
    free(G.token);
    free(G.admin_token);
    return rv;
}
