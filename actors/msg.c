/* msg.c - the names of the messages between actors (for logs) and the
 * release of an envelope that will never be handled (actors/msg.h). */
#include <stdlib.h>

#include "actors/msg.h"

const char *actor_msg_name(int type)
{
    static const char *const names[] = {
#define X_(name) #name,
        ACTOR_MSGS(X_)
#undef X_
    };
    return type >= 0 && type < AM__COUNT ? names[type] : "UNKNOWN";
}

static void s_fail_writes(pending_write *ws, size_t n, int err)
{
    for (size_t i = 0; i < n; i++) {
        ws[i].cb(ws[i].arg, err, ws[i].id, NULL);
    }
    free(ws);
}

void amsg_release(amsg *m)
{
    switch (m->type) {
    case AM_LOG_IO:
        if (m->u.log_io.ents != NULL) {
            for (uint32_t i = 0; i < m->u.log_io.cmd.u.append.n; i++) {
                zraft_buf_unref(m->u.log_io.ents[i].payload);
            }
            free(m->u.log_io.ents);
        }
        free(m->u.log_io.meta);
        zraft_buf_unref(m->u.log_io.data);
        break;
    case AM_SM_APPLY:
        s_fail_writes(m->u.sm_apply.writes, m->u.sm_apply.n, ZRAFT_ESHUTDOWN);
        break;
    case AM_SM_BUILT:
        free(m->u.sm_built.meta);
        break;
    case AM_SM_INSTALL:
        free(m->u.sm_install.meta);
        zraft_buf_unref(m->u.sm_install.data);
        break;
    case AM_SM_READ:
        m->u.sm_read.cb(m->u.sm_read.arg,
                        m->u.sm_read.err ? m->u.sm_read.err : ZRAFT_ESHUTDOWN);
        break;
    case AM_SM_FAIL:
        s_fail_writes(m->u.sm_fail.writes, m->u.sm_fail.n, m->u.sm_fail.err);
        break;
    default:
        /* STOP, LOG_FLUSHED, REPL_*, SM_APPLIED, SM_BUILD own nothing (a
         * REPL_MATCHED response carries no entries). */
        break;
    }
}
