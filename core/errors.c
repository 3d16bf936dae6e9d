/* errors.c - zraft_strerror() and zraft_err_name() from ZRAFT_ERRNO_MAP. */
#include "zraft_types.h"

const char *zraft_strerror(int err)
{
    switch (err) {
    case ZRAFT_OK:
        return "success";
#define X_(name, code, text)                                                   \
    case code:                                                                 \
        return text;
        ZRAFT_ERRNO_MAP(X_)
#undef X_
    default:
        return "unknown error";
    }
}

const char *zraft_err_name(int err)
{
    switch (err) {
    case ZRAFT_OK:
        return "OK";
#define X_(name, code, text)                                                   \
    case code:                                                                 \
        return "E" #name;
        ZRAFT_ERRNO_MAP(X_)
#undef X_
    default:
        return "EUNKNOWN";
    }
}
