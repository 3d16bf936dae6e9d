/* net_fixture.h - helpers of the front-end suites (test_http.c,
 * test_resp.c): a client connection to the server under test, and the
 * number of this process's threads (to show connections cost none).
 * Header-only. */
#ifndef ZRAFT_TEST_NET_FIXTURE_H
#define ZRAFT_TEST_NET_FIXTURE_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* A blocking TCP connection to 127.0.0.1:port (the caller owns the
 * descriptor); fails the test if the server does not accept it. */
static inline int nf_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Threads of this process, as /proc/self/task lists them. */
static inline unsigned nf_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    unsigned n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

#endif
