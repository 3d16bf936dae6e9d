/* resp_proto.h - the Redis protocol (RESP2) as zraftd's RESP port speaks
 * it: a parser of client commands (arrays of bulk strings, or inline
 * commands, as redis-cli and every client library send them) and writers of
 * replies. Pure functions over buffers: no I/O; the only allocations are
 * the argument arrays and the reply buffer. Every length in the input is
 * checked against the limits and the buffer before it is used; the input is
 * never trusted (test/fuzz/fuzz_resp.c). */
#ifndef ZRAFT_SERVER_RESP_PROTO_H
#define ZRAFT_SERVER_RESP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* resp_parse() outcomes. */
enum {
    RESP_NOMEM = -2, /* no memory for the argument arrays */
    RESP_ERROR = -1, /* protocol error: answer it and close (as Redis does) */
    RESP_MORE = 0,   /* incomplete: read more */
    RESP_DONE = 1,   /* one command parsed */
};

/* A parsed command. argv[i] (argl[i] bytes, not NUL-terminated) point into
 * the parsed buffer: borrowed until the buffer changes. */
typedef struct {
    size_t argc;
    const char **argv;
    size_t *argl;
    size_t cap; /* allocated entries of argv and argl */
} resp_cmd;

typedef struct {
    size_t max_bulk;   /* longest bulk string */
    size_t max_args;   /* most arguments in one command */
    size_t max_inline; /* longest inline command line */
} resp_limits;

/* Parses one command at the start of buf[0, len).
 * RESP_DONE: the command is `*used` bytes, its arguments in `cmd` (argc 0
 * for an empty inline line or an empty array: skip it).
 * RESP_MORE: not complete yet; `*used` is how many bytes the command needs
 * at least (more than len): parse again once that many are buffered.
 * RESP_ERROR: `*why` is a static message for the error reply.
 * RESP_NOMEM. The same bytes always give the same answer, however they were
 * split when they arrived. */
int resp_parse(const char *buf, size_t len, const resp_limits *lim,
               resp_cmd *cmd, size_t *used, const char **why);
/* Frees the argument arrays (the struct stays reusable). */
void resp_cmd_free(resp_cmd *cmd);

/* A growing reply buffer. Writers return 0, or -1 when out of memory (the
 * buffer keeps what it had). */
typedef struct {
    char *data;
    size_t len, cap;
} resp_out;

int resp_out_simple(resp_out *o, const char *s); /* +s (no CR or LF in s) */
/* -msg; CR and LF in msg become spaces (a reply must stay one line). */
int resp_out_error(resp_out *o, const char *msg);
int resp_out_int(resp_out *o, int64_t v);
int resp_out_bulk(resp_out *o, const void *p, size_t n);
int resp_out_nil(resp_out *o);
int resp_out_array(resp_out *o, size_t n);
/* Raw bytes (an already encoded reply). */
int resp_out_raw(resp_out *o, const void *p, size_t n);
void resp_out_free(resp_out *o);

/* The Redis Cluster hash slot of a key (CRC16/XMODEM mod 16384, honouring
 * {hash tags}), for -MOVED replies. */
unsigned resp_key_slot(const char *key, size_t len);

#endif
