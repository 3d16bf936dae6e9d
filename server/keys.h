/* keys.h - zraftd's CurveZMQ key files: `zraftd keygen` and reading a
 * node's secret key and the members' public keys at start.
 *
 * Files hold one Z85 key (40 characters) and a newline: node.key the
 * secret key (mode 0600), node.pub the public one (0644). */
#ifndef ZRAFT_SERVER_KEYS_H
#define ZRAFT_SERVER_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* `zraftd keygen [--dir DIR] [--force]`: writes DIR/node.key and
 * DIR/node.pub (DIR: "."), refusing to replace an existing node.key
 * without --force, and prints the public key. Returns the exit code. */
int keys_keygen_main(int argc, char **argv);

/* Reads the secret key at `path` into sec and derives pub. -1 with a
 * message in why (the key itself is never written into it). A file that
 * others may read is refused, as ssh refuses a private key. */
int keys_load_secret(const char *path, char sec[CONFIG_KEY_MAX],
                     char pub[CONFIG_KEY_MAX], char *why, size_t whylen);

#endif
