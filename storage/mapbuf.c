/* mapbuf.c - zraft_buf over a read-only file mapping (zraft_storage.h,
 * "Snapshots larger than memory").
 *
 * A mapped buffer's bytes live in the page cache, not in the process's
 * anonymous memory: whoever reads one in pieces (the disk store writing or
 * checksumming a snapshot, a replication stream sending it, a state machine
 * restoring it) drops each piece's pages when done with it, and the kernel
 * reads them from the file again if anyone needs them. The mapping is
 * shared and read-only, so dropping pages never changes a byte that another
 * holder of the same buffer reads. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zraft_storage.h"

typedef struct {
    void *base; /* page-aligned start of the mapping */
    size_t len; /* of the mapping */
} mapping;

static void s_unmap(void *ctx, void *data)
{
    mapping *m = ctx;
    (void)data;
    munmap(m->base, m->len);
    free(m);
}

static uintptr_t s_page(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    return pg > 0 ? (uintptr_t)pg : 4096u;
}

int zraft_buf_map(int fd, uint64_t offset, size_t len, zraft_buf **out)
{
    *out = NULL;
    if (len == 0) {
        *out = zraft_buf_new(NULL, 0);
        return *out ? 0 : ZRAFT_ENOMEM;
    }
    uint64_t start = offset - offset % s_page();
    size_t lead = (size_t)(offset - start);
    if (len > SIZE_MAX - lead) {
        return ZRAFT_EINVAL;
    }
    mapping *m = malloc(sizeof(*m));
    if (m == NULL) {
        return ZRAFT_ENOMEM;
    }
    m->len = lead + len;
    m->base = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd, (off_t)start);
    if (m->base == MAP_FAILED) {
        int e = errno;
        free(m);
        return e == ENOMEM ? ZRAFT_ENOMEM : ZRAFT_EIO;
    }
    zraft_buf *b =
        zraft_buf_wrap((unsigned char *)m->base + lead, len, s_unmap, m);
    if (b == NULL) {
        munmap(m->base, m->len);
        free(m);
        return ZRAFT_ENOMEM;
    }
    b->flags |= ZRAFT_BUF_MAPPED;
    *out = b;
    return 0;
}

void zraft_buf_drop_pages(const zraft_buf *b, size_t off, size_t len)
{
    if (b == NULL || !(b->flags & ZRAFT_BUF_MAPPED) || off >= b->len) {
        return;
    }
    if (len > b->len - off) {
        len = b->len - off;
    }
    uintptr_t pg = s_page();
    uintptr_t s = (uintptr_t)(b->data + off), e = s + len;
    s = (s + pg - 1) & ~(pg - 1); /* whole pages only: neighbours stay */
    e &= ~(pg - 1);
    if (e > s) {
        madvise((void *)s, e - s, MADV_DONTNEED);
    }
}
