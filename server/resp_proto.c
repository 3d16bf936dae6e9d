/* resp_proto.c - RESP2 commands in, replies out (see resp_proto.h).
 *
 * A command is either an array of bulk strings
 *   *<n>\r\n  then n times  $<len>\r\n<len bytes>\r\n
 * or an inline command: one line of words separated by spaces or tabs,
 * ended by \n (an \r before it is dropped). The parser works on whatever is
 * buffered and either finds one whole command, or says how much more it
 * needs at least, or finds a protocol error; it keeps no state between
 * calls, so the answer depends on the bytes only, never on how they were
 * split. */
#include <stdlib.h>
#include <string.h>

#include "resp_proto.h"

/* Longest "*<n>" or "$<len>" line we accept (Redis: 32 bytes). */
#define HDR_MAX 32
/* The fewest bytes one bulk string takes: "$0\r\n\r\n". */
#define BULK_MIN 6

/* The CRLF of the line at buf[from..]: 1 and *cr (the \r's index), 0 if it
 * is not buffered yet, -1 if the line is longer than `max` bytes before
 * its CRLF. */
static int s_crlf(const char *buf, size_t len, size_t from, size_t max,
                  size_t *cr)
{
    size_t lim = from + max; /* where a \r may be, at most */
    for (size_t i = from; i < lim && i + 1 < len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            *cr = i;
            return 1;
        }
    }
    return len > lim ? -1 : 0;
}

/* A decimal in buf[p, end): optional '-', 1 to 18 digits. */
static bool s_int(const char *buf, size_t p, size_t end, int64_t *out)
{
    bool neg = p < end && buf[p] == '-';
    p += neg;
    if (p == end || end - p > 18) {
        return false;
    }
    int64_t v = 0;
    for (; p < end; p++) {
        if (buf[p] < '0' || buf[p] > '9') {
            return false;
        }
        v = v * 10 + (buf[p] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static int s_reserve(resp_cmd *cmd, size_t n)
{
    if (n <= cmd->cap) {
        return 0;
    }
    size_t cap = cmd->cap ? cmd->cap : 8;
    while (cap < n) {
        cap *= 2;
    }
    const char **argv = realloc(cmd->argv, cap * sizeof(*argv));
    if (argv == NULL) {
        return -1;
    }
    cmd->argv = argv;
    size_t *argl = realloc(cmd->argl, cap * sizeof(*argl));
    if (argl == NULL) {
        return -1;
    }
    cmd->argl = argl;
    cmd->cap = cap;
    return 0;
}

static int s_more(size_t len, size_t need, size_t *used)
{
    *used = need > len ? need : len + 1;
    return RESP_MORE;
}

static int s_error(const char **why, const char *msg)
{
    *why = msg;
    return RESP_ERROR;
}

static int s_array(const char *buf, size_t len, const resp_limits *lim,
                   resp_cmd *cmd, size_t *used, const char **why)
{
    size_t cr;
    int f = s_crlf(buf, len, 1, HDR_MAX, &cr);
    if (f <= 0) {
        return f < 0 ? s_error(why, "Protocol error: invalid multibulk length")
                     : s_more(len, 0, used);
    }
    int64_t n;
    if (!s_int(buf, 1, cr, &n) || n > (int64_t)lim->max_args) {
        return s_error(why, "Protocol error: invalid multibulk length");
    }
    size_t off = cr + 2;
    cmd->argc = 0;
    if (n <= 0) { /* as Redis: an empty command, skipped */
        *used = off;
        return RESP_DONE;
    }
    if (s_reserve(cmd, (size_t)n) != 0) {
        return RESP_NOMEM;
    }
    for (size_t i = 0; i < (size_t)n; i++) {
        size_t rest = BULK_MIN * ((size_t)n - i); /* at least, from off */
        if (off >= len) {
            return s_more(len, off + rest, used);
        }
        if (buf[off] != '$') {
            return s_error(why, "Protocol error: expected '$'");
        }
        f = s_crlf(buf, len, off + 1, HDR_MAX, &cr);
        if (f <= 0) {
            return f < 0 ? s_error(why, "Protocol error: invalid bulk length")
                         : s_more(len, off + rest, used);
        }
        int64_t bl;
        if (!s_int(buf, off + 1, cr, &bl) || bl < 0 ||
            (uint64_t)bl > lim->max_bulk) {
            return s_error(why, "Protocol error: invalid bulk length");
        }
        size_t start = cr + 2, end = start + (size_t)bl;
        if (len < end + 2) {
            return s_more(len, end + 2 + rest - BULK_MIN, used);
        }
        if (buf[end] != '\r' || buf[end + 1] != '\n') {
            return s_error(why, "Protocol error: expected CRLF after a bulk");
        }
        cmd->argv[i] = buf + start;
        cmd->argl[i] = (size_t)bl;
        off = end + 2;
    }
    cmd->argc = (size_t)n;
    *used = off;
    return RESP_DONE;
}

static int s_inline(const char *buf, size_t len, const resp_limits *lim,
                    resp_cmd *cmd, size_t *used, const char **why)
{
    size_t scan = len > lim->max_inline ? lim->max_inline : len;
    const char *nl = memchr(buf, '\n', scan);
    if (nl == NULL) {
        return len > lim->max_inline
                   ? s_error(why, "Protocol error: too big inline request")
                   : s_more(len, 0, used);
    }
    size_t end = (size_t)(nl - buf);
    size_t stop = end > 0 && buf[end - 1] == '\r' ? end - 1 : end;
    cmd->argc = 0;
    for (size_t i = 0; i < stop;) {
        while (i < stop && (buf[i] == ' ' || buf[i] == '\t')) {
            i++;
        }
        if (i == stop) {
            break;
        }
        size_t w = i;
        while (i < stop && buf[i] != ' ' && buf[i] != '\t') {
            i++;
        }
        if (cmd->argc == lim->max_args) {
            return s_error(why, "Protocol error: too many arguments");
        }
        if (s_reserve(cmd, cmd->argc + 1) != 0) {
            return RESP_NOMEM;
        }
        cmd->argv[cmd->argc] = buf + w;
        cmd->argl[cmd->argc++] = i - w;
    }
    *used = end + 1;
    return RESP_DONE;
}

int resp_parse(const char *buf, size_t len, const resp_limits *lim,
               resp_cmd *cmd, size_t *used, const char **why)
{
    *why = NULL;
    if (len == 0) {
        return s_more(len, 1, used);
    }
    if (buf[0] == '*') {
        return s_array(buf, len, lim, cmd, used, why);
    }
    return s_inline(buf, len, lim, cmd, used, why);
}

void resp_cmd_free(resp_cmd *cmd)
{
    free(cmd->argv);
    free(cmd->argl);
    cmd->argv = NULL;
    cmd->argl = NULL;
    cmd->argc = cmd->cap = 0;
}

/* ------------------------------------------------------------ replies */

static int s_grow(resp_out *o, size_t n)
{
    if (o->len + n <= o->cap) {
        return 0;
    }
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n) {
        cap *= 2;
    }
    char *d = realloc(o->data, cap);
    if (d == NULL) {
        return -1;
    }
    o->data = d;
    o->cap = cap;
    return 0;
}

int resp_out_raw(resp_out *o, const void *p, size_t n)
{
    if (s_grow(o, n) != 0) {
        return -1;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
    return 0;
}

/* <c><decimal>\r\n */
static int s_num(resp_out *o, char c, int64_t v)
{
    char tmp[32];
    size_t i = sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        tmp[--i] = '-';
    }
    tmp[--i] = c;
    return resp_out_raw(o, tmp + i, sizeof tmp - i);
}

int resp_out_simple(resp_out *o, const char *s)
{
    size_t n = strlen(s);
    if (s_grow(o, n + 3) != 0) {
        return -1;
    }
    o->data[o->len++] = '+';
    memcpy(o->data + o->len, s, n);
    o->len += n;
    memcpy(o->data + o->len, "\r\n", 2);
    o->len += 2;
    return 0;
}

int resp_out_error(resp_out *o, const char *msg)
{
    size_t n = strlen(msg);
    if (s_grow(o, n + 3) != 0) {
        return -1;
    }
    o->data[o->len++] = '-';
    for (size_t i = 0; i < n; i++) {
        char ch = msg[i];
        o->data[o->len++] = ch == '\r' || ch == '\n' ? ' ' : ch;
    }
    memcpy(o->data + o->len, "\r\n", 2);
    o->len += 2;
    return 0;
}

int resp_out_int(resp_out *o, int64_t v)
{
    return s_num(o, ':', v);
}

int resp_out_array(resp_out *o, size_t n)
{
    return s_num(o, '*', (int64_t)n);
}

int resp_out_nil(resp_out *o)
{
    return resp_out_raw(o, "$-1\r\n", 5);
}

int resp_out_bulk(resp_out *o, const void *p, size_t n)
{
    if (s_grow(o, n + 24) != 0 || s_num(o, '$', (int64_t)n) != 0) {
        return -1;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
    memcpy(o->data + o->len, "\r\n", 2);
    o->len += 2;
    return 0;
}

void resp_out_free(resp_out *o)
{
    free(o->data);
    o->data = NULL;
    o->len = o->cap = 0;
}

/* ---------------------------------------------------------- key slot */

static uint16_t s_crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021)
                               : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

unsigned resp_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t s = (size_t)(open - key) + 1;
        const char *close = memchr(key + s, '}', len - s);
        if (close != NULL && close > key + s) {
            return s_crc16(key + s, (size_t)(close - key) - s) & 16383;
        }
    }
    return s_crc16(key, len) & 16383;
}
