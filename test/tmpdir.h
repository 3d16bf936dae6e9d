/* tmpdir.h - a scratch directory per test, removed with its contents after
 * it: for Criterion suites (.init = tmpdir_setup, .fini = tmpdir_teardown).
 * Header-only, one per test executable. */
#ifndef ZRAFT_TEST_TMPDIR_H
#define ZRAFT_TEST_TMPDIR_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char dir[64];

static int tmpdir_rm_one(const char *p, const struct stat *s, int f,
                         struct FTW *w)
{
    (void)s;
    (void)f;
    (void)w;
    return remove(p);
}

static void tmpdir_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/zraft-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void tmpdir_teardown(void)
{
    nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
