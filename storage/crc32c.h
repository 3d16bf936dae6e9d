/* crc32c.h - CRC-32C (Castagnoli), as used by every record and file. */
#ifndef ZRAFT_STORAGE_CRC32C_H
#define ZRAFT_STORAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (start with 0) over `len` bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
