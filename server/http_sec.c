/* http_sec.c - HTTPS and bearer tokens of zraftd's HTTP API (see
 * http.h, http_security).
 *
 * TLS is libmicrohttpd's, over GnuTLS: the certificate and key are handed
 * to it as PEM text. With a client CA, libmicrohttpd asks every client for
 * a certificate during the handshake; whether one was given and whether
 * the CA signed it is checked here, per request, with GnuTLS
 * (gnutls_certificate_verify_peers2: chain, validity dates), so a client
 * without one gets a clear 403 rather than a failed handshake.
 *
 * Tokens are checked when a request starts, before its body is read (a
 * refused request's body is dropped as it arrives, never stored). */
#include <gnutls/gnutls.h>
#include <string.h>

#include "http_int.h"

static const auth_token *s_token_for(const http_server *s, const char *url)
{
    const http_security *sec = s->o.sec;
    if (!strncmp(url, "/kv/", 4) || !strcmp(url, "/kv")) {
        return sec->api;
    }
    if (!strcmp(url, "/cluster/status")) {
        /* Read-only, like /metrics: the cluster page polls it from the
         * browser, which cannot send a token cross-origin without a
         * preflight, and so do the k8s preStop and swarm update scripts. */
        return NULL;
    }
    if (!strncmp(url, "/cluster/", 9) || !strcmp(url, "/cluster")) {
        return sec->admin;
    }
    return NULL; /* /healthz, /metrics, unknown paths (404) */
}

static bool s_client_cert_ok(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL) {
        return false;
    }
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned status = 0;
    if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509 ||
        gnutls_certificate_verify_peers2(session, &status) != 0) {
        return false; /* no certificate, or it could not be checked */
    }
    return status == 0;
}

unsigned http_sec_check(const http_server *s, struct MHD_Connection *c,
                        const char *url)
{
    const http_security *sec = s->o.sec;
    if (sec == NULL) {
        return 0;
    }
    if (sec->tls_ca != NULL && strcmp(url, "/healthz") != 0 &&
        !s_client_cert_ok(c)) {
        return 403;
    }
    const auth_token *t = s_token_for(s, url);
    if (t == NULL || t->token == NULL) {
        return 0;
    }
    const char *h =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return auth_bearer_ok(t, h) ? 0 : 401;
}

const char *http_sec_scheme(const http_server *s)
{
    return s->o.sec != NULL && s->o.sec->tls_cert != NULL ? "https" : "http";
}

enum MHD_Result http_sec_deny(struct MHD_Connection *c, unsigned status)
{
    const char *h =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *body =
        status == 403
            ? "{\"error\":\"a client certificate signed by the configured CA "
              "is required\",\"code\":\"FORBIDDEN\"}"
        : h == NULL
            ? "{\"error\":\"missing bearer token\",\"code\":\"UNAUTHORIZED\"}"
            : "{\"error\":\"wrong bearer token\",\"code\":\"UNAUTHORIZED\"}";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (status == 401) {
        /* RFC 6750 §3: the scheme, and why when a token was sent. */
        MHD_add_response_header(
            r, "WWW-Authenticate",
            h == NULL ? "Bearer realm=\"zraft\""
                      : "Bearer realm=\"zraft\", error=\"invalid_token\"");
    }
    enum MHD_Result rv = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rv;
}

size_t http_sec_options(const http_server *s, unsigned *flags,
                        struct MHD_OptionItem *opts)
{
    const http_security *sec = s->o.sec;
    size_t n = 0;
    if (sec == NULL || sec->tls_cert == NULL || sec->tls_key == NULL) {
        return 0;
    }
    *flags |= MHD_USE_TLS;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                        (void *)sec->tls_cert};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                        (void *)sec->tls_key};
    if (sec->tls_ca != NULL) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                            (void *)sec->tls_ca};
    }
    return n;
}
