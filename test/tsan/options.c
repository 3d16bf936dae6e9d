/* options.c - the default ThreadSanitizer options of the TSan build,
 * linked into every program of it (CMakeLists.txt, ZRAFT_TSAN), so that
 * ctest, the system test's zraftd processes and a program run by hand all
 * check alike: the first report ends the process with a failure
 * (halt_on_error), and libzmq's internals are suppressed (tsan.supp; the
 * path is the source tree's, ZRAFT_TSAN_SUPP). TSAN_OPTIONS overrides any
 * of them, e.g. TSAN_OPTIONS=halt_on_error=0 to see every report. */
const char *__tsan_default_options(void);

const char *__tsan_default_options(void)
{
    return "halt_on_error=1:second_deadlock_stack=1:"
           "suppressions=\"" ZRAFT_TSAN_SUPP "\"";
}
