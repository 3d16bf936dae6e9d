/* http_admin.c - parses the bodies of zraftd's admin calls (see
 * http_admin.h). */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http_admin.h"

/* A member id: a JSON number that is an integer in 1..9e15 (the range
 * checks come before the cast, which is undefined out of range). */
static bool s_id(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1) ||
        v->valuedouble > 9.0e15 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        return false;
    }
    *out = (uint64_t)v->valuedouble;
    return true;
}

static const char *s_learner(const cJSON *o, http_admin *a, unsigned *status)
{
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(o, "raft_addr");
    const cJSON *ha = cJSON_GetObjectItemCaseSensitive(o, "http_addr");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(o, "key");
    if (!s_id(cJSON_GetObjectItemCaseSensitive(o, "id"), &a->id) ||
        !cJSON_IsString(ra) || (ha != NULL && !cJSON_IsString(ha)) ||
        (key != NULL && !cJSON_IsString(key))) {
        return "need {\"id\":N,\"raft_addr\":\"host:port\","
               "\"http_addr\":\"host:port\"[,\"key\":\"Z85 public key\"]}";
    }
    a->admin = A_LEARNER;
    a->raft_addr = strdup(ra->valuestring);
    a->http_addr = strdup(ha ? ha->valuestring : "");
    a->pubkey = key ? strdup(key->valuestring) : NULL;
    if (a->raft_addr == NULL || a->http_addr == NULL ||
        (key != NULL && a->pubkey == NULL)) {
        *status = 500;
        return "out of memory";
    }
    return NULL;
}

static const char *s_membership(const cJSON *o, http_admin *a)
{
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "voters");
    int n = cJSON_IsArray(vs) ? cJSON_GetArraySize(vs) : 0;
    const cJSON *it = NULL;
    bool ok = n > 0 && n <= ZRAFT_MAX_MEMBERS;
    cJSON_ArrayForEach(it, vs)
    {
        if (!ok || !s_id(it, &a->ids[a->n_ids])) {
            ok = false;
            break;
        }
        a->n_ids++;
    }
    if (!ok) {
        a->n_ids = 0;
        return "need {\"voters\":[id,...]} with 1..64 ids";
    }
    a->admin = A_MEMBERSHIP;
    return NULL;
}

const char *http_admin_parse(const char *what, const char *body, size_t len,
                             http_admin *out, unsigned *status)
{
    memset(out, 0, sizeof(*out));
    *status = 400;
    if (!strcmp(what, "snapshot")) {
        out->admin = A_SNAPSHOT;
        return NULL;
    }
    bool known = !strcmp(what, "learners") || !strcmp(what, "membership") ||
                 !strcmp(what, "transfer-leader");
    if (!known) {
        *status = 404;
        return "no such endpoint";
    }
    cJSON *o = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    const char *bad = NULL;
    if (!cJSON_IsObject(o)) {
        bad = "body must be a JSON object";
    } else if (!strcmp(what, "learners")) {
        bad = s_learner(o, out, status);
    } else if (!strcmp(what, "membership")) {
        bad = s_membership(o, out);
    } else if (!s_id(cJSON_GetObjectItemCaseSensitive(o, "to"), &out->id)) {
        bad = "need {\"to\":N}";
    } else {
        out->admin = A_TRANSFER;
    }
    cJSON_Delete(o);
    if (bad != NULL) {
        http_admin_free(out);
    }
    return bad;
}

void http_admin_free(http_admin *a)
{
    free(a->raft_addr);
    free(a->http_addr);
    free(a->pubkey);
    memset(a, 0, sizeof(*a));
}
