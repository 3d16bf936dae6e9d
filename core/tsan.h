/* tsan.h - happens-before annotations for ThreadSanitizer.
 *
 * TSan sees the synchronization of instrumented code, pthreads and the
 * system calls it intercepts, but not that of libzmq (not instrumented: its
 * lock-free pipes are invisible to it). Where a ZeroMQ message hands memory
 * from one thread to another, the sender calls TSAN_RELEASE(addr) before the
 * send and the receiver TSAN_ACQUIRE(addr) after the receive, on an address
 * both sides name (see actor.c and transport/rpc.c for which one and why).
 *
 * ZRAFT_TSAN_ON is 1 only when the translation unit is compiled with
 * -fsanitize=thread (clang or gcc); otherwise the macros are empty and cost
 * nothing. `addr` is only a name for a synchronization object: it is never
 * read or written. */
#ifndef ZRAFT_CORE_TSAN_H
#define ZRAFT_CORE_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define ZRAFT_TSAN_ON 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZRAFT_TSAN_ON 1
#endif
#endif
#ifndef ZRAFT_TSAN_ON
#define ZRAFT_TSAN_ON 0
#endif

#if ZRAFT_TSAN_ON
#include <sanitizer/tsan_interface.h>
#define TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#define TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
#define TSAN_RELEASE(addr) ((void)0)
#define TSAN_ACQUIRE(addr) ((void)0)
#endif

#endif
