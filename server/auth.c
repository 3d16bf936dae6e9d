/* auth.c - bearer tokens (see auth.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

static int s_set(auth_token *t, const char *text, size_t len, const char *what,
                 char *why, size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "%s: the token is empty", what);
        return -1;
    }
    if (len > AUTH_TOKEN_MAX) {
        snprintf(why, whylen, "%s: the token is longer than %d bytes", what,
                 AUTH_TOKEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch <= ' ' || ch == 0x7f) {
            snprintf(why, whylen,
                     "%s: the token holds a space or control character", what);
            return -1;
        }
    }
    t->token = malloc(len + 1);
    if (t->token == NULL) {
        snprintf(why, whylen, "%s: out of memory", what);
        return -1;
    }
    memcpy(t->token, text, len);
    t->token[len] = '\0';
    t->len = len;
    return 0;
}

int auth_token_load(auth_token *t, const char *path, const char *env, char *why,
                    size_t whylen)
{
    t->token = NULL;
    t->len = 0;
    if (path != NULL && path[0] != '\0') {
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            snprintf(why, whylen, "token file %s: %s", path, strerror(errno));
            return -1;
        }
        char buf[AUTH_TOKEN_MAX + 4];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        size_t len = strcspn(buf, "\r\n");
        int rv = s_set(t, buf, len, path, why, whylen);
        memset(buf, 0, sizeof buf);
        return rv;
    }
    const char *v = env ? getenv(env) : NULL;
    if (v != NULL && v[0] != '\0') {
        return s_set(t, v, strlen(v), env, why, whylen);
    }
    return 0;
}

void auth_token_free(auth_token *t)
{
    if (t == NULL || t->token == NULL) {
        return;
    }
    memset(t->token, 0, t->len);
    free(t->token);
    t->token = NULL;
    t->len = 0;
}

bool auth_token_equal(const auth_token *t, const char *got, size_t len)
{
    if (t->token == NULL) {
        return false;
    }
    /* Every byte of the token is compared, whatever was sent. */
    volatile unsigned char diff = (unsigned char)(len != t->len);
    for (size_t i = 0; i < t->len; i++) {
        unsigned char g = i < len ? (unsigned char)got[i] : 0;
        diff |= (unsigned char)t->token[i] ^ g;
    }
    return diff == 0;
}

bool auth_bearer_ok(const auth_token *t, const char *authorization)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7)) {
        return false;
    }
    const char *p = authorization + 7;
    while (*p == ' ') {
        p++;
    }
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == ' ') {
        len--;
    }
    return auth_token_equal(t, p, len);
}
