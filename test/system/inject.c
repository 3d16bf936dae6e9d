/* inject.c - zraft-inject, a test tool: a process that is not (or is no
 * longer) a member and tries to speak Raft to a node. It opens a DEALER to
 * the node's Raft port (optionally as a CURVE client with a key of its own),
 * sends one AppendEntries (no entries, prev 0/0) that claims to come from
 * node --from at term --term, and waits for an answer.
 *
 *   zraft-inject --endpoint tcp://127.0.0.1:PORT --to ID --from ID
 *                --term T [--cluster-id N] [--server-key Z85]
 *                [--key-file node.key] [--wait-ms MS]
 *
 * Exit 0 and one line "reply TYPE term T" if the node answered; 3 if it
 * did not within --wait-ms (default 2000): refused at the handshake, or
 * the frame was dropped; 2 for bad arguments. Without --key-file a fresh
 * keypair is made (a stranger). Used by test/system/security.sh. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "transport/codec.h"

static int s_usage(void)
{
    fprintf(stderr,
            "usage: zraft-inject --endpoint tcp://H:P --to ID --from ID "
            "--term T [--cluster-id N] [--server-key Z85] [--key-file F] "
            "[--wait-ms MS]\n");
    return 2;
}

static int s_read_key(const char *path, char out[41])
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    char buf[128] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, " \r\n\t")] = '\0';
    if (strlen(buf) != 40) {
        return -1;
    }
    memcpy(out, buf, 41);
    return 0;
}

int main(int argc, char **argv)
{
    const char *ep = NULL, *server_key = NULL, *key_file = NULL;
    unsigned long long to = 0, from = 0, term = 0, cluster = 1, wait = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--endpoint")) {
            ep = v;
        } else if (!strcmp(k, "--server-key")) {
            server_key = v;
        } else if (!strcmp(k, "--key-file")) {
            key_file = v;
        } else if (!strcmp(k, "--to")) {
            to = strtoull(v, NULL, 10);
        } else if (!strcmp(k, "--from")) {
            from = strtoull(v, NULL, 10);
        } else if (!strcmp(k, "--term")) {
            term = strtoull(v, NULL, 10);
        } else if (!strcmp(k, "--cluster-id")) {
            cluster = strtoull(v, NULL, 10);
        } else if (!strcmp(k, "--wait-ms")) {
            wait = strtoull(v, NULL, 10);
        } else {
            return s_usage();
        }
    }
    if (ep == NULL || to == 0 || from == 0 || term == 0 || argc % 2 == 0) {
        return s_usage();
    }
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    unsigned char rid[9];
    rid[0] = 'r';
    for (int i = 0; i < 8; i++) {
        rid[1 + i] = (unsigned char)(from >> (8 * i));
    }
    zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof rid);
    if (server_key != NULL) {
        char pub[41], sec[41];
        if (key_file != NULL) {
            if (s_read_key(key_file, sec) != 0 ||
                zmq_curve_public(pub, sec) != 0) {
                fprintf(stderr, "zraft-inject: bad key file %s\n", key_file);
                return 2;
            }
        } else if (zmq_curve_keypair(pub, sec) != 0) {
            fprintf(stderr, "zraft-inject: no CURVE in this libzmq\n");
            return 2;
        }
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40) != 0) {
            fprintf(stderr, "zraft-inject: bad --server-key\n");
            return 2;
        }
        printf("key %s\n", pub);
    }
    if (zmq_connect(s, ep) != 0) {
        fprintf(stderr, "zraft-inject: connect %s: %s\n", ep,
                zmq_strerror(zmq_errno()));
        return 2;
    }
    codec_ctx c;
    codec_ctx_init(&c, cluster, from);
    msg m;
    memset(&m, 0, sizeof m);
    m.type = MSG_APPEND;
    m.from = from;
    m.to = to;
    m.term = term;
    unsigned char buf[256];
    size_t len;
    if (codec_encode(&c, &m, buf, sizeof buf, &len) != 0) {
        fprintf(stderr, "zraft-inject: cannot encode\n");
        return 2;
    }
    /* Sent as soon as a connection is up (queued until then). */
    zmq_send(s, buf, len, 0);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    int rv = 3;
    if (zmq_poll(&it, 1, (long)wait) == 1) {
        unsigned char r[4096];
        int n = zmq_recv(s, r, sizeof r, ZMQ_DONTWAIT);
        msg out;
        codec_arena a;
        codec_arena_init(&a);
        codec_ctx rc;
        codec_ctx_init(&rc, cluster, from);
        if (n > 0 && (size_t)n <= sizeof r &&
            codec_decode(&rc, r, (size_t)n, &out, &a) == 0) {
            printf("reply %s term %llu\n", msg_type_name(out.type),
                   (unsigned long long)out.term);
            codec_msg_release(&out);
            rv = 0;
        } else {
            printf("reply undecodable (%d bytes)\n", n);
            rv = 0;
        }
        codec_arena_fini(&a);
    } else {
        printf("no reply within %llu ms\n", wait);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rv;
}
