/* fuzz_resp.c - libFuzzer target for the RESP command parser
 * (server/resp_proto.c), which reads bytes from any client of zraftd's
 * RESP port.
 *
 * The input is parsed as a connection would: command after command until
 * the parser needs more or finds an error. For every input:
 *  - parsing must not crash, leak or read out of bounds (ASan, UBSan; the
 *    input is copied to a buffer of exactly its size);
 *  - a parsed command lies within the bytes it consumed, and consumes at
 *    least one byte;
 *  - every shorter prefix of a parsed command asks for more (never an
 *    error, never a different command), and no more than the command has;
 *  - a parsed command re-encoded as an array of bulk strings parses back to
 *    the same arguments, consuming exactly the encoding;
 *  - the reply writers produce what they should for the arguments.
 * Any violated property aborts, which libFuzzer reports as a crash.
 * Run it with scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/resp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_resp: property violated: %s\n", what);
        abort();
    }
}

static const resp_limits LIM = {4096, 64, 1024};

/* Parses buf[0, len) and checks that it asks for more. */
static void prefix_wants_more(const char *full, size_t len, size_t whole)
{
    char *buf = malloc(len ? len : 1);
    check(buf != NULL, "malloc");
    memcpy(buf, full, len);
    resp_cmd cmd = {0};
    size_t used;
    const char *why;
    int rv = resp_parse(buf, len, &LIM, &cmd, &used, &why);
    check(rv == RESP_MORE, "a prefix of a command asks for more");
    check(used > len && used <= whole, "and at most the command's length");
    resp_cmd_free(&cmd);
    free(buf);
}

static void round_trip(const resp_cmd *cmd)
{
    resp_out o = {0};
    check(resp_out_array(&o, cmd->argc) == 0, "out");
    for (size_t i = 0; i < cmd->argc; i++) {
        check(resp_out_bulk(&o, cmd->argv[i], cmd->argl[i]) == 0, "out");
    }
    resp_cmd back = {0};
    size_t used;
    const char *why;
    int rv = resp_parse(o.data, o.len, &LIM, &back, &used, &why);
    check(rv == RESP_DONE, "a re-encoded command parses");
    check(used == o.len, "consuming exactly its encoding");
    check(back.argc == cmd->argc, "same argument count");
    for (size_t i = 0; i < cmd->argc; i++) {
        check(back.argl[i] == cmd->argl[i] &&
                  memcmp(back.argv[i], cmd->argv[i], cmd->argl[i]) == 0,
              "same arguments");
    }
    resp_cmd_free(&back);
    resp_out_free(&o);
}

static void replies(const resp_cmd *cmd)
{
    resp_out o = {0};
    if (cmd->argc == 0) {
        return;
    }
    char msg[64];
    size_t n = cmd->argl[0] < sizeof msg - 1 ? cmd->argl[0] : sizeof msg - 1;
    memcpy(msg, cmd->argv[0], n);
    msg[n] = '\0';
    check(resp_out_error(&o, msg) == 0, "out");
    check(o.len >= 3 && o.data[0] == '-' &&
              memcmp(o.data + o.len - 2, "\r\n", 2) == 0,
          "an error reply is one line");
    for (size_t i = 1; i + 2 < o.len; i++) {
        check(o.data[i] != '\r' && o.data[i] != '\n', "no CR or LF inside");
    }
    o.len = 0;
    int64_t v = (int64_t)cmd->argl[0] * (cmd->argc % 2 ? -1 : 1);
    check(resp_out_int(&o, v) == 0, "out");
    char want[32];
    int wl = snprintf(want, sizeof want, ":%lld\r\n", (long long)v);
    check(o.len == (size_t)wl && memcmp(o.data, want, o.len) == 0,
          "an integer reply is its decimal");
    check(resp_key_slot(cmd->argv[0], cmd->argl[0]) < 16384, "a slot");
    resp_out_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    check(buf != NULL, "malloc");
    memcpy(buf, data, size);
    resp_cmd cmd = {0};
    size_t off = 0;
    for (int guard = 0; guard < 1000; guard++) {
        size_t used;
        const char *why;
        int rv = resp_parse(buf + off, size - off, &LIM, &cmd, &used, &why);
        if (rv == RESP_MORE) {
            check(used > size - off, "more means more than there is");
            break;
        }
        if (rv == RESP_ERROR) {
            check(why != NULL, "an error has a message");
            break;
        }
        check(rv == RESP_DONE, "no allocation failure here");
        check(used >= 1 && used <= size - off, "consumed within the input");
        for (size_t i = 0; i < cmd.argc; i++) {
            check(cmd.argv[i] >= buf + off &&
                      cmd.argv[i] + cmd.argl[i] <= buf + off + used,
                  "arguments lie within the command");
        }
        round_trip(&cmd);
        replies(&cmd);
        /* Prefixes (a few of them: the parser keeps no state, so these
         * stand for every way the bytes could have arrived). */
        prefix_wants_more(buf + off, 0, used);
        prefix_wants_more(buf + off, used - 1, used);
        prefix_wants_more(buf + off, used / 2, used);
        off += used;
    }
    resp_cmd_free(&cmd);
    free(buf);
    return 0;
}
