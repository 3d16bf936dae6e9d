/* curve.c - CurveZMQ keys, admission table and ZAP handler (see curve.h).
 *
 * The ZAP handler speaks ZeroMQ RFC 27: libzmq sends each CURVE handshake
 * it receives, as a request on inproc://zeromq.zap.01, to the REP socket of
 * this thread and waits (without blocking its I/O thread) for the answer.
 * Request: version "1.0", request id, domain, address, routing id,
 * mechanism, and for CURVE the client's 32-byte public key. Reply: version,
 * request id, status "200" or "400", status text, user id, metadata. The
 * user id we give is the client's key in Z85, so that every frame that
 * later arrives on that connection can be checked against the current
 * table (curve_auth_check), not only the table at handshake time.
 *
 * The thread also polls an eventfd that curve_auth_destroy() writes, so
 * that it stops at once (a descriptor, unlike a socket, may be used from
 * any thread). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "transport/curve.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN   "zraft"
/* Refused keys logged one by one, at most; later ones are only counted. */
#define LOGGED_MAX 64

typedef struct {
    uint64_t id;
    char key[ZRAFT_KEY_MAX];
} entry;

struct curve_auth {
    void *zctx;
    uint64_t self;
    char pub[ZRAFT_KEY_MAX], sec[ZRAFT_KEY_MAX];
    pthread_t thread;
    int stop_fd; /* eventfd: written to stop the thread */

    pthread_mutex_t lock; /* guards everything below */
    entry *known;         /* from configuration */
    size_t n_known;
    entry admitted[2 * ZRAFT_MAX_MEMBERS];
    size_t n_admitted;
    char logged[LOGGED_MAX][ZRAFT_KEY_MAX]; /* refused keys logged */
    size_t n_logged;
    _Atomic uint64_t refused;

    /* Start-up handshake with the thread. */
    pthread_mutex_t slock;
    pthread_cond_t scond;
    int started; /* 0 pending, 1 bound, -1 failed */
};

/* ------------------------------------------------------------- keys */

bool curve_available(void)
{
    return zmq_has("curve") != 0;
}

bool curve_key_valid(const char *z85)
{
    uint8_t raw[32];
    return z85 != NULL && strnlen(z85, ZRAFT_KEY_MAX) == ZRAFT_KEY_LEN &&
           zmq_z85_decode(raw, z85) != NULL;
}

int curve_keypair(char pub[ZRAFT_KEY_MAX], char sec[ZRAFT_KEY_MAX])
{
    return zmq_curve_keypair(pub, sec) == 0 ? 0 : ZRAFT_EINVAL;
}

int curve_public_of(const char *sec, char pub[ZRAFT_KEY_MAX])
{
    if (!curve_key_valid(sec)) {
        return ZRAFT_EINVAL;
    }
    return zmq_curve_public(pub, sec) == 0 ? 0 : ZRAFT_EINVAL;
}

/* ------------------------------------------------------------ table */

/* The key configured for `id`, or NULL. Under lock. */
static const char *s_known(const curve_auth *a, uint64_t id)
{
    for (size_t i = 0; i < a->n_known; i++) {
        if (a->known[i].id == id) {
            return a->known[i].key;
        }
    }
    return NULL;
}

/* The key a member is admitted with: its entry's, else the configured one.
 * Under lock. */
static const char *s_member_key(const curve_auth *a, const zraft_member *m)
{
    if (curve_key_valid(m->key)) {
        return m->key;
    }
    return s_known(a, m->id);
}

static void s_admit(curve_auth *a, uint64_t id, const char *key)
{
    if (key == NULL || !curve_key_valid(key)) {
        return;
    }
    for (size_t i = 0; i < a->n_admitted; i++) {
        if (a->admitted[i].id == id && strcmp(a->admitted[i].key, key) == 0) {
            return;
        }
    }
    if (a->n_admitted < sizeof a->admitted / sizeof a->admitted[0]) {
        entry *e = &a->admitted[a->n_admitted++];
        e->id = id;
        memcpy(e->key, key, ZRAFT_KEY_MAX);
    }
}

void curve_auth_update(curve_auth *a, const zraft_membership *effective,
                       const zraft_membership *committed)
{
    pthread_mutex_lock(&a->lock);
    a->n_admitted = 0;
    const zraft_membership *ms[2] = {effective, committed};
    bool members = false;
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; ms[k] != NULL && i < ms[k]->n; i++) {
            const zraft_member *m = &ms[k]->members[i];
            s_admit(a, m->id, s_member_key(a, m));
            members = true;
        }
    }
    if (!members) {
        for (size_t i = 0; i < a->n_known; i++) {
            s_admit(a, a->known[i].id, a->known[i].key);
        }
    }
    pthread_mutex_unlock(&a->lock);
}

bool curve_auth_check(curve_auth *a, uint64_t from, const char *user_id)
{
    if (user_id == NULL) {
        return false;
    }
    bool ok = false;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_admitted && !ok; i++) {
        ok = a->admitted[i].id == from &&
             strcmp(a->admitted[i].key, user_id) == 0;
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

uint64_t curve_auth_refused(curve_auth *a)
{
    return atomic_load(&a->refused);
}

/* Under lock: true if `key` (Z85) is admitted. */
static bool s_admitted(const curve_auth *a, const char *key)
{
    for (size_t i = 0; i < a->n_admitted; i++) {
        if (strcmp(a->admitted[i].key, key) == 0) {
            return true;
        }
    }
    return false;
}

/* Counts a refusal and logs the key the first time it is refused. */
static void s_refuse(curve_auth *a, const char *key, const char *addr)
{
    atomic_fetch_add(&a->refused, 1);
    pthread_mutex_lock(&a->lock);
    bool seen = false;
    for (size_t i = 0; i < a->n_logged && !seen; i++) {
        seen = strcmp(a->logged[i], key) == 0;
    }
    bool log = !seen && a->n_logged < LOGGED_MAX;
    if (log) {
        memcpy(a->logged[a->n_logged++], key, ZRAFT_KEY_MAX);
    }
    pthread_mutex_unlock(&a->lock);
    if (log) {
        fprintf(stderr,
                "zraft node %llu: refused a peer from %s: public key %s is "
                "not in the configuration%s\n",
                (unsigned long long)a->self, addr, key[0] ? key : "(not CURVE)",
                a->n_logged == LOGGED_MAX ? " (further keys are not logged)"
                                          : "");
    }
}

/* -------------------------------------------------------------- ZAP */

/* Receives one multi-part request into parts (at most 8, each copied up
 * to 255 bytes with its size): the number of parts, or -1. */
typedef struct {
    unsigned char data[256];
    size_t len;
} part;

static int s_recv_request(void *sock, part *p, int max)
{
    int n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        if (n < max) {
            size_t len = zmq_msg_size(&m);
            p[n].len = len < sizeof p[n].data ? len : sizeof p[n].data - 1;
            memcpy(p[n].data, zmq_msg_data(&m), p[n].len);
            p[n].data[p[n].len] = '\0';
            n++;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return n;
}

static void s_reply(void *sock, const part *reqid, const char *status,
                    const char *text, const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, reqid->data, reqid->len, ZMQ_SNDMORE);
    zmq_send(sock, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

/* Answers one ZAP request. */
static void s_handle(curve_auth *a, void *sock)
{
    part p[8];
    int n = s_recv_request(sock, p, 8);
    if (n < 0) {
        return;
    }
    static const part none = {{0}, 0};
    const part *reqid = n >= 2 ? &p[1] : &none;
    /* 0 version, 1 request id, 2 domain, 3 address, 4 routing id,
     * 5 mechanism, 6 public key. Anything else is refused. */
    char key[ZRAFT_KEY_MAX] = "";
    const char *addr = n >= 4 ? (const char *)p[3].data : "?";
    bool curve = n == 7 && strcmp((const char *)p[0].data, "1.0") == 0 &&
                 strcmp((const char *)p[5].data, "CURVE") == 0 &&
                 p[6].len == 32;
    if (curve) {
        zmq_z85_encode(key, p[6].data, 32);
    }
    bool ok = false;
    if (curve) {
        pthread_mutex_lock(&a->lock);
        ok = s_admitted(a, key);
        pthread_mutex_unlock(&a->lock);
    }
    if (ok) {
        s_reply(sock, reqid, "200", "OK", key);
        return;
    }
    s_refuse(a, key, addr);
    s_reply(sock, reqid, "400", "key not in the configuration", "");
}

static void *s_thread(void *arg)
{
    curve_auth *a = arg;
    void *zap = zmq_socket(a->zctx, ZMQ_REP);
    int linger = 0;
    int ok = zap != NULL &&
             zmq_setsockopt(zap, ZMQ_LINGER, &linger, sizeof linger) == 0 &&
             zmq_bind(zap, ZAP_ENDPOINT) == 0;
    pthread_mutex_lock(&a->slock);
    a->started = ok ? 1 : -1;
    pthread_cond_broadcast(&a->scond);
    pthread_mutex_unlock(&a->slock);
    while (ok) {
        zmq_pollitem_t items[2] = {{zap, 0, ZMQ_POLLIN, 0},
                                   {NULL, a->stop_fd, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR) {
                continue;
            }
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            break; /* stop */
        }
        if (items[0].revents & ZMQ_POLLIN) {
            s_handle(a, zap);
        }
    }
    if (zap != NULL) {
        zmq_close(zap);
    }
    return NULL;
}

curve_auth *curve_auth_new(void *zctx, uint64_t self, const char *sec,
                           const zraft_member *known, size_t n,
                           const char **why)
{
    if (!curve_available()) {
        *why = "this libzmq has no CURVE support (libsodium)";
        return NULL;
    }
    curve_auth *a = calloc(1, sizeof(*a));
    if (a == NULL || (n > 0 && (a->known = calloc(n, sizeof(entry))) == NULL)) {
        free(a);
        *why = "out of memory";
        return NULL;
    }
    if (curve_public_of(sec, a->pub) != 0) {
        free(a->known);
        free(a);
        *why = "the secret key is not a Z85 CURVE key (40 characters)";
        return NULL;
    }
    memcpy(a->sec, sec, ZRAFT_KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        if (curve_key_valid(known[i].key)) {
            a->known[a->n_known].id = known[i].id;
            memcpy(a->known[a->n_known].key, known[i].key, ZRAFT_KEY_MAX);
            a->n_known++;
        }
    }
    a->zctx = zctx;
    a->self = self;
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->slock, NULL);
    pthread_cond_init(&a->scond, NULL);
    curve_auth_update(a, NULL, NULL);
    a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->stop_fd < 0) {
        *why = "cannot create the ZAP handler's eventfd";
        goto err_after_init;
    }
    if (pthread_create(&a->thread, NULL, s_thread, a) != 0) {
        *why = "cannot start the ZAP handler's thread";
        goto err_after_init;
    }
    pthread_mutex_lock(&a->slock);
    while (a->started == 0) {
        pthread_cond_wait(&a->scond, &a->slock);
    }
    pthread_mutex_unlock(&a->slock);
    if (a->started < 0) {
        pthread_join(a->thread, NULL);
        *why = "cannot bind the ZAP handler (another one in this context?)";
        goto err_after_init;
    }
    return a;

err_after_init:
    if (a->stop_fd >= 0) {
        close(a->stop_fd);
    }
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->slock);
    pthread_cond_destroy(&a->scond);
    free(a->known);
    free(a);
    return NULL;
}

void curve_auth_destroy(curve_auth **ap)
{
    if (ap == NULL || *ap == NULL) {
        return;
    }
    curve_auth *a = *ap;
    uint64_t one = 1;
    while (write(a->stop_fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    pthread_join(a->thread, NULL);
    close(a->stop_fd);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->slock);
    pthread_cond_destroy(&a->scond);
    /* The secret key is not left in freed memory. */
    memset(a->sec, 0, sizeof a->sec);
    free(a->known);
    free(a);
    *ap = NULL;
}

/* ---------------------------------------------------------- sockets */

int curve_server_setup(curve_auth *a, void *sock)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->sec, ZRAFT_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) !=
            0) {
        return ZRAFT_EINVAL;
    }
    return 0;
}

int curve_client_setup(curve_auth *a, void *sock, uint64_t peer)
{
    char server[ZRAFT_KEY_MAX] = "";
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_admitted && server[0] == '\0'; i++) {
        if (a->admitted[i].id == peer) {
            memcpy(server, a->admitted[i].key, ZRAFT_KEY_MAX);
        }
    }
    const char *k = server[0] == '\0' ? s_known(a, peer) : NULL;
    if (k != NULL) {
        memcpy(server, k, ZRAFT_KEY_MAX);
    }
    pthread_mutex_unlock(&a->lock);
    if (server[0] == '\0') {
        return ZRAFT_ENOTFOUND;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, ZRAFT_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, a->pub, ZRAFT_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->sec, ZRAFT_KEY_LEN) != 0) {
        return ZRAFT_EINVAL;
    }
    return 0;
}
