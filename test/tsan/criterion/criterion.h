/* criterion.h - the part of Criterion's API that zraft's tests use, for the
 * TSan build only (ZRAFT_TSAN=ON puts this directory before the system
 * include path; every other build uses the real Criterion).
 *
 * Why: Criterion runs each test in a child process whose memory arena it
 * maps at a fixed random address between 0x2000'0000'0000 and
 * 0x6000'0000'0000; ThreadSanitizer reserves almost all of that range for
 * its shadow and meta memory, so under TSan the real runner dies before the
 * first test ("Could not initialize inheritable arena"). runner.c keeps
 * what the tests rely on: one child process per test (fork() from a runner
 * that has no threads, so TSan is happy), the suite's and the test's .init
 * and .fini, .timeout, a failed cr_assert ends the test (after .fini), a
 * failed cr_expect marks it failed and goes on, the exit status is non-zero
 * when a test fails. Options: --filter GLOB (on "suite/name", as Criterion),
 * --list,
 * --timeout S; --jobs N and the others are accepted and ignored.
 *
 * A macro missing here is a compile error in the TSan build, never a test
 * that silently does not run: add it (the API of Criterion 2.4). */
#ifndef ZRAFT_TEST_TSAN_CRITERION_H
#define ZRAFT_TEST_TSAN_CRITERION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test and suite options (Criterion's designated initializers). */
struct criterion_test_extra_data {
    int zt_unused_; /* keeps "{0, __VA_ARGS__}" valid when there are none */
    void (*init)(void);
    void (*fini)(void);
    double timeout; /* seconds, 0: none */
    bool disabled;
    const char *description;
};

struct zt_test {
    const char *suite, *name;
    void (*fn)(void);
    struct criterion_test_extra_data extra;
    struct zt_test *next;
};

struct zt_suite {
    const char *name;
    struct criterion_test_extra_data extra;
    struct zt_suite *next;
};

void zt_register(struct zt_test *t);
void zt_register_suite(struct zt_suite *s);
/* A failed check: reports it; `fatal` ends the test (never returns). */
void zt_fail(bool fatal, const char *file, int line, const char *expr,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void zt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void zt_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define Test(suite, name, ...)                                                 \
    static void zt_fn_##suite##_##name(void);                                  \
    static struct zt_test zt_t_##suite##_##name = {                            \
        #suite, #name, zt_fn_##suite##_##name, {0, __VA_ARGS__}, NULL};        \
    __attribute__((constructor)) static void zt_reg_##suite##_##name(void)     \
    {                                                                          \
        zt_register(&zt_t_##suite##_##name);                                   \
    }                                                                          \
    static void zt_fn_##suite##_##name(void)

#define TestSuite(suite, ...)                                                  \
    static struct zt_suite zt_s_##suite;                                       \
    __attribute__((constructor)) static void zt_sreg_##suite(void)             \
    {                                                                          \
        zt_register_suite(&zt_s_##suite);                                      \
    }                                                                          \
    static struct zt_suite zt_s_##suite = {#suite, {0, __VA_ARGS__}, NULL}

/* The optional message is a format string literal and its arguments (" "
 * in front keeps the format non-empty when there is none). */
#define ZT_CHECK(fatal, cond, expr, ...)                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            zt_fail(fatal, __FILE__, __LINE__, expr, " " __VA_ARGS__);         \
        }                                                                      \
    } while (0)

#define cr_assert(cond, ...) ZT_CHECK(true, cond, #cond, __VA_ARGS__)
#define cr_expect(cond, ...) ZT_CHECK(false, cond, #cond, __VA_ARGS__)
#define cr_assert_not(cond, ...)                                               \
    ZT_CHECK(true, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_expect_not(cond, ...)                                               \
    ZT_CHECK(false, !(cond), "!(" #cond ")", __VA_ARGS__)

#define ZT_OP(fatal, op, a, b, ...)                                            \
    ZT_CHECK(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...)  ZT_OP(true, ==, a, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) ZT_OP(true, !=, a, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)  ZT_OP(true, <, a, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) ZT_OP(true, <=, a, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)  ZT_OP(true, >, a, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) ZT_OP(true, >=, a, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...)  ZT_OP(false, ==, a, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) ZT_OP(false, !=, a, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)  ZT_OP(false, <, a, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) ZT_OP(false, <=, a, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)  ZT_OP(false, >, a, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) ZT_OP(false, >=, a, b, __VA_ARGS__)

#define cr_assert_null(p, ...)     ZT_OP(true, ==, p, NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) ZT_OP(true, !=, p, NULL, __VA_ARGS__)
#define cr_expect_null(p, ...)     ZT_OP(false, ==, p, NULL, __VA_ARGS__)
#define cr_expect_not_null(p, ...) ZT_OP(false, !=, p, NULL, __VA_ARGS__)
#define cr_assert_zero(x, ...)     ZT_OP(true, ==, x, 0, __VA_ARGS__)
#define cr_assert_not_zero(x, ...) ZT_OP(true, !=, x, 0, __VA_ARGS__)
#define cr_expect_zero(x, ...)     ZT_OP(false, ==, x, 0, __VA_ARGS__)
#define cr_expect_not_zero(x, ...) ZT_OP(false, !=, x, 0, __VA_ARGS__)

#define ZT_STR(fatal, op, a, b, ...)                                           \
    ZT_CHECK(fatal, strcmp((a), (b)) op 0, #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)  ZT_STR(true, ==, a, b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) ZT_STR(true, !=, a, b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)  ZT_STR(false, ==, a, b, __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...) ZT_STR(false, !=, a, b, __VA_ARGS__)
#define cr_assert_str_empty(s, ...)                                            \
    ZT_CHECK(true, (s)[0] == '\0', #s " is empty", __VA_ARGS__)
#define cr_assert_str_not_empty(s, ...)                                        \
    ZT_CHECK(true, (s)[0] != '\0', #s " is not empty", __VA_ARGS__)

#define ZT_ARR(fatal, op, a, b, size, ...)                                     \
    ZT_CHECK(fatal, memcmp((a), (b), (size)) op 0,                             \
             #a "[0.." #size ") " #op " " #b, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, size, ...)                                      \
    ZT_ARR(true, ==, a, b, size, __VA_ARGS__)
#define cr_assert_arr_neq(a, b, size, ...)                                     \
    ZT_ARR(true, !=, a, b, size, __VA_ARGS__)
#define cr_expect_arr_eq(a, b, size, ...)                                      \
    ZT_ARR(false, ==, a, b, size, __VA_ARGS__)

#define cr_assert_fail(...)                                                    \
    zt_fail(true, __FILE__, __LINE__, "fail", " " __VA_ARGS__)
#define cr_expect_fail(...)                                                    \
    zt_fail(false, __FILE__, __LINE__, "fail", " " __VA_ARGS__)
#define cr_skip_test(...) zt_skip(" " __VA_ARGS__)

#define cr_log_info(...)  zt_log("info", __VA_ARGS__)
#define cr_log_warn(...)  zt_log("warn", __VA_ARGS__)
#define cr_log_error(...) zt_log("error", __VA_ARGS__)

#endif
