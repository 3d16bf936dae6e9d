/* auth.h - bearer tokens of zraftd's front ends: loading them (from a file
 * or the environment, never from a flag, never logged) and comparing them
 * in constant time. One token guards the key-value API (/kv and the RESP
 * port), another the admin endpoints (/cluster/...). */
#ifndef ZRAFT_SERVER_AUTH_H
#define ZRAFT_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The longest token accepted (a file holding more is refused). */
#define AUTH_TOKEN_MAX 1024

/* A token: NULL/0 when none is configured (the endpoints it guards are
 * open). */
typedef struct {
    char *token; /* NUL-terminated, owned */
    size_t len;
} auth_token;

/* Loads a token: from the file `path` if it is not empty (its first line,
 * without the line end), else from the environment variable `env` if set.
 * An empty result leaves *t empty. -1 with a message in why (a file that
 * cannot be read, an empty file, one too long, one with a control
 * character); the token itself is never put in the message. */
int auth_token_load(auth_token *t, const char *path, const char *env, char *why,
                    size_t whylen);
/* Wipes and frees; NULL-safe. */
void auth_token_free(auth_token *t);

/* True if `got` (len bytes, not NUL-terminated) equals the token. The time
 * taken depends on the token's length only, not on where they differ. */
bool auth_token_equal(const auth_token *t, const char *got, size_t len);

/* True if the header value `authorization` ("Bearer <token>", the scheme
 * in any case) carries the token. NULL header: false. */
bool auth_bearer_ok(const auth_token *t, const char *authorization);

#endif
