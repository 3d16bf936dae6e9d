/* fuzz_disk.h - the input format of the disk recovery fuzz target
 * (fuzz_disk.c), shared with its corpus generator (gen_disk_corpus.c).
 *
 * An input is a data directory: a sequence of files, each
 *
 *   u8 kind | [u32 first index, if a segment] | u32 len | len bytes
 *
 * (little-endian; kind taken modulo FUZZ_DISK_KINDS; a short last file
 * takes what is left). A later file of the same name replaces an earlier
 * one. */
#ifndef ZRAFT_TEST_FUZZ_DISK_H
#define ZRAFT_TEST_FUZZ_DISK_H

enum {
    FUZZ_DISK_META,         /* DIR/meta */
    FUZZ_DISK_SNAPSHOT,     /* DIR/snapshot */
    FUZZ_DISK_SEGMENT,      /* DIR/log/<first>.seg */
    FUZZ_DISK_META_TMP,     /* DIR/meta.tmp (a crash before the rename) */
    FUZZ_DISK_SNAPSHOT_TMP, /* DIR/snapshot.tmp */
    FUZZ_DISK_KINDS
};

/* The store's segment size in the target (small: appends rotate). */
#define FUZZ_DISK_SEGMENT_BYTES 4096

#endif /* ZRAFT_TEST_FUZZ_DISK_H */
