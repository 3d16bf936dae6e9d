/* resolver.c - peer host names resolved on a lookup thread of their own
 * (resolver.h tells why). */
#include "transport/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "zraft_types.h"

#define HOST_MAX 256

typedef struct {
    char host[HOST_MAX];
    char ip[INET_ADDRSTRLEN]; /* last good answer, "" if none yet */
    bool pending;             /* queued or being looked up */
    bool failed;              /* the last lookup failed */
    uint64_t looked_ms;       /* when the last lookup finished (0: never) */
} entry;

struct resolver {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *e;
    size_t n, cap;
    uint32_t refresh_ms;
    uint64_t lookups;
    int refs; /* the owner's and the thread's */
    bool stop;
};

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Drops one reference under r->mu (held); frees on the last. */
static void s_unref_locked(resolver *r)
{
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r->e);
        free(r);
    }
}

static entry *s_next_pending(resolver *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->e[i].pending) {
            return &r->e[i];
        }
    }
    return NULL;
}

static void *s_thread(void *arg)
{
    resolver *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        entry *e = NULL;
        while (!r->stop && (e = s_next_pending(r)) == NULL) {
            pthread_cond_wait(&r->cv, &r->mu);
        }
        if (r->stop) {
            break;
        }
        char host[HOST_MAX];
        memcpy(host, e->host, sizeof host);
        pthread_mutex_unlock(&r->mu);

        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        char ip[INET_ADDRSTRLEN] = "";
        if (getaddrinfo(host, NULL, &hints, &res) == 0 && res != NULL) {
            const struct sockaddr_in *sa =
                (const struct sockaddr_in *)res->ai_addr;
            inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
        }
        if (res != NULL) {
            freeaddrinfo(res);
        }

        pthread_mutex_lock(&r->mu);
        /* The table may have grown (moved): find the entry again. */
        for (size_t i = 0; i < r->n; i++) {
            if (strcmp(r->e[i].host, host) == 0) {
                e = &r->e[i];
                e->pending = false;
                e->failed = ip[0] == '\0';
                if (!e->failed) {
                    memcpy(e->ip, ip, sizeof ip);
                }
                e->looked_ms = s_now_ms();
                break;
            }
        }
        r->lookups++;
    }
    s_unref_locked(r);
    return NULL;
}

resolver *resolver_new(uint32_t refresh_ms)
{
    resolver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->refresh_ms = refresh_ms;
    r->refs = 2;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rv = pthread_create(&t, &at, s_thread, r);
    pthread_attr_destroy(&at);
    if (rv != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    pthread_setname_np(t, "zraft-resolve");
    return r;
}

void resolver_destroy(resolver **rp)
{
    if (rp == NULL || *rp == NULL) {
        return;
    }
    resolver *r = *rp;
    *rp = NULL;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    s_unref_locked(r);
}

/* Splits "host:port" (the last ':'); false if malformed. */
static bool s_split(const char *addr, char *host, const char **port)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0' ||
        (size_t)(colon - addr) >= HOST_MAX) {
        return false;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = colon + 1;
    return true;
}

static int s_format(char *out, size_t cap, const char *ip, const char *port)
{
    int w = snprintf(out, cap, "tcp://%s:%s", ip, port);
    return w < 0 || (size_t)w >= cap ? ZRAFT_EINVAL : 0;
}

int resolver_endpoint(resolver *r, const char *addr, bool refresh, char *out,
                      size_t cap)
{
    char host[HOST_MAX];
    const char *port;
    if (!s_split(addr, host, &port)) {
        return ZRAFT_EINVAL;
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1 || strcmp(host, "*") == 0) {
        return s_format(out, cap, host, port);
    }
    pthread_mutex_lock(&r->mu);
    entry *e = NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->e[i].host, host) == 0) {
            e = &r->e[i];
            break;
        }
    }
    if (e == NULL) {
        if (r->n == r->cap) {
            size_t cap2 = r->cap ? 2 * r->cap : 8;
            entry *ne = realloc(r->e, cap2 * sizeof(*ne));
            if (ne == NULL) {
                pthread_mutex_unlock(&r->mu);
                return ZRAFT_ENOMEM;
            }
            r->e = ne;
            r->cap = cap2;
        }
        e = &r->e[r->n++];
        memset(e, 0, sizeof(*e));
        memcpy(e->host, host, sizeof e->host);
        e->pending = true;
        pthread_cond_signal(&r->cv);
    } else if (!e->pending && (refresh || e->ip[0] == '\0') &&
               s_now_ms() - e->looked_ms >= r->refresh_ms) {
        /* Again, at most every refresh_ms: on request, or unasked while
         * the name has never resolved. */
        e->pending = true;
        pthread_cond_signal(&r->cv);
    }
    int rv;
    if (e->ip[0] != '\0') {
        rv = s_format(out, cap, e->ip, port);
    } else {
        rv = e->failed && !e->pending ? ZRAFT_ENOTFOUND : ZRAFT_EAGAIN;
    }
    pthread_mutex_unlock(&r->mu);
    return rv;
}

uint64_t resolver_lookups(resolver *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->lookups;
    pthread_mutex_unlock(&r->mu);
    return n;
}
