/* runner.c - runs the tests registered through criterion.h (the TSan
 * build's stand-in for Criterion's runner; see criterion.h for why).
 *
 * Tests run one after another, each in a child process forked from this
 * one, which never starts a thread (TSan supports fork only from a process
 * without threads). In the child: the suite's then the test's .init, the
 * test, .fini; a fatal check jumps back here (only from the test's own
 * thread: from another thread it ends the process) and still runs .fini.
 * The parent kills a child that outlives its .timeout (or --timeout), and
 * reports each test and a summary. Exit status 0 only when every test that
 * ran passed. */
#include <criterion/criterion.h>
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct zt_test *s_tests;
static struct zt_suite *s_suites;

/* In the child. */
static pthread_t s_main_thread;
static jmp_buf s_jump;
static int s_failed;

enum { EXIT_SKIPPED = 77 };

void zt_register(struct zt_test *t)
{
    t->next = s_tests;
    s_tests = t;
}

void zt_register_suite(struct zt_suite *s)
{
    s->next = s_suites;
    s_suites = s;
}

void zt_fail(bool fatal, const char *file, int line, const char *expr,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: %s failed: %s:", file, line,
            fatal ? "Assertion" : "Expectation", expr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    s_failed = 1;
    if (!fatal) {
        return;
    }
    if (!pthread_equal(pthread_self(), s_main_thread)) {
        fflush(NULL);
        _exit(1); /* cannot unwind another thread's stack */
    }
    longjmp(s_jump, 1);
}

void zt_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "skipped:");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    _exit(EXIT_SKIPPED);
}

void zt_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* A test's options: its suite's, overridden by its own. */
static struct criterion_test_extra_data s_extra(const struct zt_test *t)
{
    struct criterion_test_extra_data x = {0};
    for (struct zt_suite *s = s_suites; s != NULL; s = s->next) {
        if (strcmp(s->name, t->suite) == 0) {
            x = s->extra;
        }
    }
    const struct criterion_test_extra_data *o = &t->extra;
    x.init = o->init ? o->init : x.init;
    x.fini = o->fini ? o->fini : x.fini;
    x.timeout = o->timeout > 0 ? o->timeout : x.timeout;
    x.disabled = o->disabled || x.disabled;
    return x;
}

static void s_child(const struct zt_test *t,
                    const struct criterion_test_extra_data *x)
{
    s_main_thread = pthread_self();
    if (setjmp(s_jump) == 0) {
        if (x->init) {
            x->init();
        }
        t->fn();
    }
    if (x->fini) {
        if (setjmp(s_jump) == 0) { /* a failing .fini ends here */
            x->fini();
        }
    }
    fflush(NULL);
    exit(s_failed ? 1 : 0); /* exit(): TSan's end-of-process checks */
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 0 passed, 1 failed, 2 skipped. */
static int s_run(const struct zt_test *t, double timeout_all)
{
    struct criterion_test_extra_data x = s_extra(t);
    double timeout = timeout_all > 0 ? timeout_all : x.timeout;
    fprintf(stderr, "[RUN ] %s::%s\n", t->suite, t->name);
    fflush(NULL);
    double t0 = s_now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        s_child(t, &x);
    }
    int status = 0;
    bool timed_out = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            break;
        }
        if (w < 0) {
            perror("waitpid");
            return 1;
        }
        if (timeout > 0 && s_now() - t0 > timeout && !timed_out) {
            timed_out = true;
            kill(pid, SIGKILL);
        }
        struct timespec d = {0, 5 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    double secs = s_now() - t0;
    if (timed_out) {
        fprintf(stderr, "[FAIL] %s::%s: timed out after %.0f s\n", t->suite,
                t->name, timeout);
        return 1;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "[FAIL] %s::%s: killed by signal %d (%.2f s)\n",
                t->suite, t->name, WTERMSIG(status), secs);
        return 1;
    }
    int code = WEXITSTATUS(status);
    if (code == EXIT_SKIPPED) {
        fprintf(stderr, "[SKIP] %s::%s\n", t->suite, t->name);
        return 2;
    }
    if (code != 0) {
        fprintf(stderr, "[FAIL] %s::%s: exit status %d%s (%.2f s)\n", t->suite,
                t->name, code,
                code == 66 ? " (ThreadSanitizer's: its report is above)" : "",
                secs);
        return 1;
    }
    fprintf(stderr, "[PASS] %s::%s (%.2f s)\n", t->suite, t->name, secs);
    return 0;
}

static int s_cmp(const void *a, const void *b)
{
    const struct zt_test *x = *(struct zt_test *const *)a;
    const struct zt_test *y = *(struct zt_test *const *)b;
    int c = strcmp(x->suite, y->suite);
    return c != 0 ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    bool list = false;
    double timeout = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--filter") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else if (strncmp(a, "--filter=", 9) == 0) {
            filter = a + 9;
        } else if (strcmp(a, "--list") == 0 || strcmp(a, "-l") == 0) {
            list = true;
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            timeout = atof(argv[++i]);
        } else if ((strcmp(a, "--jobs") == 0 || strcmp(a, "-j") == 0) &&
                   i + 1 < argc) {
            i++; /* one test at a time anyway */
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s [--filter GLOB] [--list] [--timeout S]\n"
                   "(zraft's TSan stand-in for Criterion: test/tsan/)\n",
                   argv[0]);
            return 0;
        }
    }
    size_t n = 0;
    for (struct zt_test *t = s_tests; t != NULL; t = t->next) {
        n++;
    }
    struct zt_test **all = calloc(n ? n : 1, sizeof(*all));
    if (all == NULL) {
        return 1;
    }
    n = 0;
    for (struct zt_test *t = s_tests; t != NULL; t = t->next) {
        all[n++] = t;
    }
    qsort(all, n, sizeof(*all), s_cmp);
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", all[i]->suite, all[i]->name);
        if (filter != NULL && fnmatch(filter, full, 0) != 0) {
            continue;
        }
        if (list) {
            printf("%s::%s\n", all[i]->suite, all[i]->name);
            continue;
        }
        if (s_extra(all[i]).disabled) {
            skipped++;
            continue;
        }
        int r = s_run(all[i], timeout);
        passed += r == 0;
        failed += r == 1;
        skipped += r == 2;
    }
    free(all);
    if (!list) {
        fprintf(stderr,
                "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
                "Skipped: %d\n",
                passed + failed, passed, failed, skipped);
    }
    return failed > 0 ? 1 : 0;
}
