/* resolver.h - host names of peers, resolved off ZeroMQ's I/O thread.
 *
 * ZeroMQ resolves the host of a "tcp://name:port" endpoint with a blocking
 * getaddrinfo on its I/O thread, at every connection attempt. When the name
 * server does not answer (a node cut off from its network: Docker's embedded
 * DNS then times out after 20 s), that one thread stops, and with it every
 * socket of the node: the ROUTER accepts nothing and no reply is read, long
 * after the network is back.
 *
 * So the transport hands ZeroMQ numeric addresses only. A resolver owns one
 * lookup thread and a cache of "host:port" -> "tcp://a.b.c.d:port"; callers
 * never block on it: they get the cached answer, or ZRAFT_EAGAIN while the
 * first lookup runs. A failed lookup keeps the last good answer (a name
 * server's hiccup does not drop a working peer). Numeric hosts never reach
 * the thread. IPv4 only, as ZeroMQ sockets without ZMQ_IPV6.
 *
 * Thread-safe. The lookup thread is detached: destroying a resolver never
 * waits for a lookup that hangs; the thread frees the shared state when it
 * finishes. */
#ifndef ZRAFT_TRANSPORT_RESOLVER_H
#define ZRAFT_TRANSPORT_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct resolver resolver;

/* A resolver with its lookup thread; NULL when out of memory or threads.
 * `refresh_ms`: a refresh request starts a new lookup only when the last
 * one is at least this old. */
resolver *resolver_new(uint32_t refresh_ms);
void resolver_destroy(resolver **r);

/* The endpoint of `addr` ("host:port") into out ("tcp://IP:port"):
 *   0               filled (a numeric host, or the cached answer);
 *   ZRAFT_EAGAIN    no answer yet, a lookup is under way;
 *   ZRAFT_ENOTFOUND the name did not resolve (and none ever did); while
 *                   it never has, any call at least refresh_ms after the
 *                   last lookup starts another (a peer whose DNS record
 *                   does not exist yet, e.g. a pod starting in parallel);
 *   ZRAFT_EINVAL    not host:port, or out too small.
 * `refresh`: also look the name up again (in the background) if the last
 * lookup is older than refresh_ms: the peer may have moved. */
int resolver_endpoint(resolver *r, const char *addr, bool refresh, char *out,
                      size_t cap);

/* Lookups finished since creation (for tests). */
uint64_t resolver_lookups(resolver *r);

#endif
