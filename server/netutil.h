/* netutil.h - what zraftd's two front ends (http_loop.c, resp.c) share: the
 * clock their loops run on, the listening socket, eventfd wake-ups, loop
 * time-outs and the drain wait. */
#ifndef ZRAFT_SERVER_NETUTIL_H
#define ZRAFT_SERVER_NETUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults of the front ends' options when they are 0. */
#define NETUTIL_MAX_CONNECTIONS 16384 /* open connections */
#define NETUTIL_OP_TIMEOUT_MS   10000 /* a backend call, until answered */

/* Milliseconds on the monotonic clock. */
uint64_t netutil_now_ms(void);

/* Opens a non-blocking IPv4 listening socket (SO_REUSEADDR, backlog 4096)
 * on `addr`, "host:port" (an empty host: every interface). `what` names the
 * option in the message ("http_addr", "resp_addr"). Returns the descriptor
 * (caller owns it), or -1 with why filled in (bad address, unknown host,
 * socket/bind/listen failed). */
int netutil_listen(const char *addr, const char *what, char *why,
                   size_t whylen);

/* The local port a bound IPv4 socket listens on. */
uint16_t netutil_port(int fd);

/* Wakes the thread that polls eventfd `efd` (never blocks: a counter that
 * is already non-zero wakes it anyway). */
void netutil_wake(int efd);

/* Resets a non-blocking eventfd after a wake-up. */
void netutil_wake_clear(int efd);

/* The earlier of two loop time-outs: `t` (ms, -1 for none) and the time
 * left until `when` (0 if past). */
int64_t netutil_sooner(int64_t t, uint64_t when, uint64_t now);

/* Waits, holding `lock` (the caller locked it; it is still locked on
 * return), until `*outstanding` is 0 or wait_ms passed; `cond` must be
 * broadcast whenever `*outstanding` may have dropped to 0. */
void netutil_wait_outstanding(pthread_cond_t *cond, pthread_mutex_t *lock,
                              _Atomic size_t *outstanding, uint32_t wait_ms);

#endif
