/* hop_floor.c - zraft-hopfloor: what the thread hand-offs of one write cost
 * on this machine, with no Raft work at all.
 *
 * A write at 1 client crosses these threads in zraft (docs/runtime.md):
 *
 *   client -> core -> stream A -> follower A's core -> stream A -> core
 *                  \> stream B -> follower B's core -> stream B /
 *   core -> state machine (whose callback issues the next write)
 *
 * This program builds exactly that chain of threads over ZeroMQ inproc
 * PUSH/PULL sockets, each thread sleeping in zmq_poll() as the actors do,
 * and passes one 16-byte message round it per write: the core answers the
 * client at the first acknowledgement (a majority of 3), as a leader
 * commits. What it measures is the floor the thread structure puts under
 * zraft-bench --clients 1 on this machine: zraft can only be slower.
 *
 *   --extra K  adds K idle sockets to the poll sets of the cores (a vote
 *              or forwarding DEALER that is polled but silent), to see
 *              what each socket in a poll set costs a wake-up;
 *   --cpu C    pins every thread to CPU C (all hand-offs on one CPU).
 *
 * Output: rounds/s, p50 and p99 of a round in microseconds, and the CPU
 * time (user + system) per round of the whole process. */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

#define MAX_EXTRA 8

static void *s_ctx;
static int s_rounds = 30000;
static int s_extra;
static int s_cpu = -1;
static pthread_barrier_t s_ready; /* every socket bound before any send */

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void s_pin(void)
{
    if (s_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(s_cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
}

static void *s_pull(const char *name)
{
    void *s = zmq_socket(s_ctx, ZMQ_PULL);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://%s", name);
    if (s == NULL || zmq_bind(s, ep) != 0) {
        fprintf(stderr, "zraft-hopfloor: bind %s: %s\n", ep,
                zmq_strerror(zmq_errno()));
        exit(1);
    }
    return s;
}

static void *s_push(const char *name)
{
    void *s = zmq_socket(s_ctx, ZMQ_PUSH);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://%s", name);
    if (s == NULL || zmq_connect(s, ep) != 0) {
        fprintf(stderr, "zraft-hopfloor: connect %s: %s\n", ep,
                zmq_strerror(zmq_errno()));
        exit(1);
    }
    return s;
}

static void s_send(void *s)
{
    char buf[16] = {0};
    if (zmq_send(s, buf, sizeof buf, 0) != (int)sizeof buf) {
        fprintf(stderr, "zraft-hopfloor: send: %s\n",
                zmq_strerror(zmq_errno()));
        exit(1);
    }
}

/* Sleeps in zmq_poll() on `n` sockets (the first `live` can carry
 * messages, the rest are idle); returns the index of a ready one. */
static int s_wait(zmq_pollitem_t *items, int n, int live)
{
    for (;;) {
        zmq_poll(items, n, 100);
        for (int i = 0; i < live; i++) {
            if (items[i].revents & ZMQ_POLLIN) {
                char buf[16];
                zmq_recv(items[i].socket, buf, sizeof buf, 0);
                return i;
            }
        }
    }
}

/* Idle sockets for a poll set: bound, never sent to. */
static void s_extras(zmq_pollitem_t *items, const char *owner)
{
    for (int i = 0; i < s_extra; i++) {
        char name[48];
        snprintf(name, sizeof name, "%s-idle-%d", owner, i);
        items[i] = (zmq_pollitem_t){s_pull(name), 0, ZMQ_POLLIN, 0};
    }
}

/* A follower's core: an AppendEntries in, its answer out. */
static void *s_follower(void *arg)
{
    long i = (long)arg;
    char in_name[32], out_name[32], owner[32];
    snprintf(in_name, sizeof in_name, "follower-%ld", i);
    snprintf(out_name, sizeof out_name, "stream-ack-%ld", i);
    snprintf(owner, sizeof owner, "follower-%ld", i);
    s_pin();
    zmq_pollitem_t items[1 + MAX_EXTRA];
    items[0] = (zmq_pollitem_t){s_pull(in_name), 0, ZMQ_POLLIN, 0};
    s_extras(items + 1, owner);
    pthread_barrier_wait(&s_ready);
    void *out = s_push(out_name);
    for (int k = 0; k < s_rounds; k++) {
        s_wait(items, 1 + s_extra, 1);
        s_send(out);
    }
    return NULL;
}

/* A replication stream: the core's update out to the follower, the
 * follower's answer back to the core. */
static void *s_stream(void *arg)
{
    long i = (long)arg;
    char in_name[32], ack_name[32], f_name[32];
    snprintf(in_name, sizeof in_name, "stream-%ld", i);
    snprintf(ack_name, sizeof ack_name, "stream-ack-%ld", i);
    snprintf(f_name, sizeof f_name, "follower-%ld", i);
    s_pin();
    zmq_pollitem_t items[2] = {{s_pull(in_name), 0, ZMQ_POLLIN, 0},
                               {s_pull(ack_name), 0, ZMQ_POLLIN, 0}};
    pthread_barrier_wait(&s_ready);
    void *to_follower = s_push(f_name);
    void *to_core = s_push("core-matched");
    for (int k = 0; k < 2 * s_rounds; k++) {
        s_send(s_wait(items, 2, 2) == 0 ? to_follower : to_core);
    }
    return NULL;
}

/* The leader's core: a write out to both streams; at the first answer, the
 * state machine's APPLY. */
static void *s_core(void *arg)
{
    (void)arg;
    s_pin();
    zmq_pollitem_t items[2 + MAX_EXTRA];
    items[0] = (zmq_pollitem_t){s_pull("core"), 0, ZMQ_POLLIN, 0};
    items[1] = (zmq_pollitem_t){s_pull("core-matched"), 0, ZMQ_POLLIN, 0};
    s_extras(items + 2, "core");
    pthread_barrier_wait(&s_ready);
    void *a = s_push("stream-1"), *b = s_push("stream-2"), *sm = s_push("sm");
    int acks = 0;
    for (int k = 0; k < 3 * s_rounds; k++) {
        if (s_wait(items, 2 + s_extra, 2) == 0) {
            s_send(a);
            s_send(b);
            acks = 0;
        } else if (++acks == 1) {
            s_send(sm);
        }
    }
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--extra") == 0 && i + 1 < argc) {
            s_extra = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) {
            s_cpu = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            s_rounds = atoi(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: zraft-hopfloor [--rounds N] [--extra K] [--cpu C]\n"
                    "Passes a message round the thread chain of one zraft "
                    "write at 1 client\n(client, core, 2 streams, 2 "
                    "followers, state machine), no Raft work.\n");
            return 2;
        }
    }
    if (s_extra < 0 || s_extra > MAX_EXTRA || s_rounds < 100) {
        fprintf(stderr, "zraft-hopfloor: --extra 0..%d, --rounds >= 100\n",
                MAX_EXTRA);
        return 2;
    }
    s_ctx = zmq_ctx_new();
    pthread_barrier_init(&s_ready, NULL, 6);
    pthread_t t[5];
    pthread_create(&t[0], NULL, s_core, NULL);
    pthread_create(&t[1], NULL, s_stream, (void *)1L);
    pthread_create(&t[2], NULL, s_stream, (void *)2L);
    pthread_create(&t[3], NULL, s_follower, (void *)1L);
    pthread_create(&t[4], NULL, s_follower, (void *)2L);
    s_pin();
    zmq_pollitem_t sm = {s_pull("sm"), 0, ZMQ_POLLIN, 0};
    pthread_barrier_wait(&s_ready);
    void *core = s_push("core");
    double *lat = malloc((size_t)s_rounds * sizeof(double));
    if (lat == NULL) {
        return 1;
    }
    double cpu0 = s_cpu_us(), t0 = s_now_us();
    for (int k = 0; k < s_rounds; k++) {
        double a = s_now_us();
        s_send(core);
        s_wait(&sm, 1, 1);
        lat[k] = s_now_us() - a;
    }
    double wall = s_now_us() - t0, cpu = s_cpu_us() - cpu0;
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
    }
    qsort(lat, (size_t)s_rounds, sizeof(double), s_cmp);
    printf("rounds/s %.0f  p50_us %.1f  p99_us %.1f  cpu_us_per_round %.1f  "
           "(extra sockets %d, cpu %s)\n",
           s_rounds / (wall / 1e6), lat[s_rounds / 2],
           lat[(size_t)s_rounds * 99 / 100], cpu / s_rounds, s_extra,
           s_cpu >= 0 ? "pinned" : "any");
    free(lat);
    /* The sockets die with the process: closing each in its own thread
     * would only add code to a measurement tool. */
    return 0;
}
