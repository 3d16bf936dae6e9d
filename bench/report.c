/* report.c - zraft-bench's HTML report (see report.h).
 *
 * The page is written in one pass with stdio: CSS in a <style>, the two
 * charts as inline SVG computed here, tables, and the figures once more as
 * JSON for tools. Nothing in it loads anything, so it opens offline and
 * stays the same forever. Strings that come from outside (the command
 * line, the CPU's name) are HTML-escaped. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/report.h"
#include "zraft_version.h"

#define FSYNC_PROBES 100
#define MAX_POINTS   300 /* throughput chart: at most this many intervals */

struct report {
    uint64_t *t, *done; /* samples: time since start (us), writes done */
    size_t n, cap;
    double fsync_us[FSYNC_PROBES];
    int fsync_n;
    char fsync_dir[512];
    char fsync_err[160];
    double load[2][3]; /* load average at start, at end */
    int have_load[2];
};

report *report_new(void)
{
    return calloc(1, sizeof(report));
}

void report_free(report **r)
{
    if (*r != NULL) {
        free((*r)->t);
        free((*r)->done);
        free(*r);
        *r = NULL;
    }
}

void report_sample(report *r, uint64_t t_us, uint64_t done)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        uint64_t *t = realloc(r->t, cap * sizeof(uint64_t));
        if (t == NULL) {
            return;
        }
        r->t = t;
        uint64_t *d = realloc(r->done, cap * sizeof(uint64_t));
        if (d == NULL) {
            return;
        }
        r->done = d;
        r->cap = cap;
    }
    r->t[r->n] = t_us;
    r->done[r->n] = done;
    r->n++;
}

static double s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void report_probe_fsync(report *r, const char *dir)
{
    char path[600];
    snprintf(r->fsync_dir, sizeof r->fsync_dir, "%s", dir);
    snprintf(path, sizeof path, "%s/.zraft-bench-fsync-%d", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(r->fsync_err, sizeof r->fsync_err, "%s", strerror(errno));
        return;
    }
    unlink(path); /* nothing left behind, whatever happens next */
    static char block[4096];
    memset(block, 'f', sizeof block);
    for (int i = 0; i < FSYNC_PROBES; i++) {
        double t0 = s_now_us();
        if (pwrite(fd, block, sizeof block, (off_t)i * 4096) !=
                (ssize_t)sizeof block ||
            fdatasync(fd) != 0) {
            snprintf(r->fsync_err, sizeof r->fsync_err, "%s", strerror(errno));
            break;
        }
        r->fsync_us[r->fsync_n++] = s_now_us() - t0;
    }
    close(fd);
    qsort(r->fsync_us, (size_t)r->fsync_n, sizeof(double), s_cmp_double);
}

void report_load(report *r, int end)
{
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL) {
        return;
    }
    double *l = r->load[end != 0];
    if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3) {
        r->have_load[end != 0] = 1;
    }
    fclose(f);
}

/* ------------------------------------------------------------- helpers */

static void s_esc(FILE *f, const char *s)
{
    for (; s != NULL && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* Latency (us) below which a share p of the writes fall. */
static uint64_t s_pct(const report_run *run, double p)
{
    uint64_t total = run->done;
    if (total == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)(p * (double)total), seen = 0;
    if (want >= total) {
        want = total - 1;
    }
    for (size_t i = 0; i < run->n; i++) {
        seen += run->hist[i];
        if (seen > want) {
            return i;
        }
    }
    return run->max_us;
}

/* A round axis maximum at or above v: 1, 2 or 5 times a power of ten. */
static double s_nice(double v)
{
    if (v <= 0) {
        return 1;
    }
    double p = pow(10, floor(log10(v)));
    for (int m = 1; m <= 10; m = m == 1 ? 2 : m == 2 ? 5 : 10) {
        if (v <= m * p) {
            return m * p;
        }
    }
    return 10 * p;
}

/* "12.3k", "4.5M", "870". */
static const char *s_short(double v, char *buf, size_t cap)
{
    if (v >= 1e6) {
        snprintf(buf, cap, "%.1fM", v / 1e6);
    } else if (v >= 1e4) {
        snprintf(buf, cap, "%.0fk", v / 1e3);
    } else if (v >= 1e3) {
        snprintf(buf, cap, "%.1fk", v / 1e3);
    } else {
        snprintf(buf, cap, "%.0f", v);
    }
    return buf;
}

/* "850 us", "1.2 ms", "2.0 s". */
static const char *s_dur(double us, char *buf, size_t cap)
{
    if (us >= 1e6) {
        snprintf(buf, cap, "%.2f s", us / 1e6);
    } else if (us >= 1e3) {
        snprintf(buf, cap, "%.2f ms", us / 1e3);
    } else {
        snprintf(buf, cap, "%.0f us", us);
    }
    return buf;
}

/* ------------------------------------------------------------- charts */

#define CW 760 /* chart size */
#define CH 260
#define ML 60 /* margins: left, right, top, bottom */
#define MR 16
#define MT 12
#define MB 36

/* Throughput per interval, merged into at most MAX_POINTS intervals. */
static void s_chart_throughput(FILE *f, const report *r)
{
    double xs[MAX_POINTS], ys[MAX_POINTS];
    size_t np = 0;
    if (r->n >= 2) {
        size_t step = (r->n - 1 + MAX_POINTS - 1) / MAX_POINTS;
        for (size_t i = step; i < r->n && np < MAX_POINTS; i += step) {
            size_t j = i - step;
            double dt = (double)(r->t[i] - r->t[j]) / 1e6;
            if (dt > 0) {
                xs[np] = (double)r->t[i] / 1e6;
                ys[np] = (double)(r->done[i] - r->done[j]) / dt;
                np++;
            }
        }
    }
    double xmax = np ? xs[np - 1] : 1, ymax = 0;
    for (size_t i = 0; i < np; i++) {
        ymax = ys[i] > ymax ? ys[i] : ymax;
    }
    ymax = s_nice(ymax);
    /* Five ticks of a round step, just past the run's end. */
    double step = s_nice(xmax / 5);
    xmax = step * ceil(xmax / step - 1e-9);
    fprintf(f,
            "<svg viewBox=\"0 0 %d %d\" class=\"chart\" role=\"img\" "
            "aria-label=\"writes per second over time\">\n",
            CW, CH);
    char b[32];
    for (int k = 0; k <= 4; k++) {
        double y = MT + (CH - MT - MB) * (1 - k / 4.0);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "class=\"grid\"/><text x=\"%d\" y=\"%.1f\" class=\"yl\">%s"
                "</text>\n",
                ML, y, CW - MR, y, ML - 6, y + 4,
                s_short(ymax * k / 4, b, sizeof b));
    }
    for (double v = 0; v <= xmax + step / 2; v += step) {
        double x = ML + (CW - ML - MR) * v / xmax;
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">%g s</text>\n", x,
                CH - MB + 18, v);
    }
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" class=\"xl\">time since start"
            "</text>\n",
            (ML + CW - MR) / 2, CH - 4);
    if (np > 0) {
        fprintf(f, "<polyline class=\"line\" points=\"");
        for (size_t i = 0; i < np; i++) {
            fprintf(f, "%.1f,%.1f ", ML + (CW - ML - MR) * xs[i] / xmax,
                    MT + (CH - MT - MB) * (1 - ys[i] / ymax));
        }
        fprintf(f, "\"/>\n");
    } else {
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" class=\"xl\">too short a run to "
                "sample</text>\n",
                CW / 2, CH / 2);
    }
    fprintf(f, "</svg>\n");
}

/* Latency histogram: 10 bins per decade from 1 us, share of the writes
 * per bin, logarithmic x axis. */
static void s_chart_latency(FILE *f, const report_run *run)
{
    enum { PER_DECADE = 10, DECADES = 7 }; /* 1 us .. 10 s */
    uint64_t bins[PER_DECADE * DECADES] = {0};
    int nb = PER_DECADE * DECADES;
    for (size_t i = 0; i < run->n; i++) {
        if (run->hist[i] == 0) {
            continue;
        }
        int b = i == 0 ? 0 : (int)floor(log10((double)i) * PER_DECADE);
        b = b < 0 ? 0 : b >= nb ? nb - 1 : b;
        bins[b] += run->hist[i];
    }
    if (run->overflow > 0) { /* beyond the histogram: at the longest */
        int b = (int)floor(log10((double)run->max_us) * PER_DECADE);
        bins[b < 0 ? 0 : b >= nb ? nb - 1 : b] += run->overflow;
    }
    int lo = nb, hi = 0;
    double top = 0, total = (double)(run->done ? run->done : 1);
    for (int b = 0; b < nb; b++) {
        if (bins[b] > 0) {
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
            top = bins[b] / total > top ? bins[b] / total : top;
        }
    }
    fprintf(f,
            "<svg viewBox=\"0 0 %d %d\" class=\"chart\" role=\"img\" "
            "aria-label=\"latency histogram\">\n",
            CW, CH);
    if (lo > hi) {
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" class=\"xl\">no writes</text>"
                "</svg>\n",
                CW / 2, CH / 2);
        return;
    }
    /* Whole decades around the data. */
    int d0 = lo / PER_DECADE, d1 = hi / PER_DECADE + 1;
    double ymax = s_nice(top * 100);
    for (int k = 0; k <= 4; k++) {
        double y = MT + (CH - MT - MB) * (1 - k / 4.0);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "class=\"grid\"/><text x=\"%d\" y=\"%.1f\" class=\"yl\">"
                "%g%%</text>\n",
                ML, y, CW - MR, y, ML - 6, y + 4, ymax * k / 4);
    }
    double span = (double)(d1 - d0) * PER_DECADE;
    double bw = (CW - ML - MR) / span;
    for (int d = d0; d <= d1; d++) {
        double x = ML + (d - d0) * PER_DECADE * bw;
        static const char *const tick[] = {"1 us",  "10 us",  "100 us", "1 ms",
                                           "10 ms", "100 ms", "1 s",    "10 s"};
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xl\">%s</text>\n", x,
                CH - MB + 18, d < 8 ? tick[d] : "");
    }
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" class=\"xl\">latency (log scale)"
            "</text>\n",
            (ML + CW - MR) / 2, CH - 4);
    for (int k = d0 * PER_DECADE; k < d1 * PER_DECADE && k < nb; k++) {
        if (bins[k] == 0) {
            continue;
        }
        double share = bins[k] / total * 100;
        double h = (CH - MT - MB) * share / ymax;
        char lo_s[32], hi_s[32];
        fprintf(f,
                "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\"><title>%s - %s: %llu writes (%.2f%%)"
                "</title></rect>\n",
                ML + (k - d0 * PER_DECADE) * bw + 0.5, MT + (CH - MT - MB) - h,
                bw - 1, h,
                s_dur(pow(10, (double)k / PER_DECADE), lo_s, sizeof lo_s),
                s_dur(pow(10, (double)(k + 1) / PER_DECADE), hi_s, sizeof hi_s),
                (unsigned long long)bins[k], share);
    }
    fprintf(f, "</svg>\n");
}

/* ------------------------------------------------------------ machine */

static void s_cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v != NULL) {
                v += 1 + (v[1] == ' ');
                v[strcspn(v, "\n")] = '\0';
                snprintf(out, cap, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

static unsigned long long s_mem_kib(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long kib = 0;
    if (f != NULL) {
        if (fscanf(f, "MemTotal: %llu kB", &kib) != 1) {
            kib = 0;
        }
        fclose(f);
    }
    return kib;
}

/* --------------------------------------------------------------- page */

static const char *const css =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;"
    "max-width:1100px;padding:0 16px;color:#1d2430;background:#fff}"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:24px 0 8px}"
    ".sub{color:#667085}.grid2{display:grid;gap:16px;"
    "grid-template-columns:repeat(auto-fit,minmax(320px,1fr))}"
    "table{border-collapse:collapse}td,th{padding:3px 12px 3px 0;"
    "text-align:left;border-bottom:1px solid #e4e7ec;vertical-align:top}"
    "th{color:#667085;font-weight:500}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}"
    ".big{font-size:28px;font-weight:600}"
    ".chart{width:100%;max-width:760px;height:auto;border:1px solid #e4e7ec;"
    "border-radius:6px}.grid{stroke:#e4e7ec}.line{fill:none;stroke:#2e6bd6;"
    "stroke-width:1.6}.bar{fill:#2e6bd6}.yl{font-size:11px;fill:#667085;"
    "text-anchor:end}.xl{font-size:11px;fill:#667085;text-anchor:middle}";

int report_write(report *r, const char *path, const report_run *run)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "zraft-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    double wps =
        run->elapsed_us ? (double)run->done * 1e6 / (double)run->elapsed_us : 0;
    char when[64], cpu[256], b1[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    s_cpu_model(cpu, sizeof cpu);
    struct utsname un;
    if (uname(&un) != 0) {
        memset(&un, 0, sizeof un);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double p[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
    const char *pn[] = {"p50", "p90", "p99", "p99.9", "p99.99"};
    uint64_t pv[5];
    for (int i = 0; i < 5; i++) {
        pv[i] = s_pct(run, p[i]);
    }
    double sum = 0;
    for (size_t i = 0; i < run->n; i++) {
        sum += (double)i * run->hist[i];
    }
    uint64_t in_hist = run->done - run->overflow;
    double mean = in_hist ? sum / (double)in_hist : 0;

    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
               "charset=\"utf-8\">\n<title>zraft-bench: ");
    fprintf(f,
            "%s writes/s, %s, %u clients</title>\n<style>%s</style>"
            "</head>\n<body>\n",
            s_short(wps, b1, sizeof b1), run->mode, run->clients, css);
    fprintf(f,
            "<h1>zraft-bench report</h1>\n<div class=\"sub\">%s &middot; "
            "zraft %s &middot; <code>",
            when, ZRAFT_VERSION);
    s_esc(f, run->cmdline);
    fprintf(f, "</code></div>\n");

    /* Results and parameters. */
    fprintf(f,
            "<div class=\"grid2\">\n<div><h2>Result</h2>"
            "<div class=\"big\">%.0f writes/s</div><table>\n",
            wps);
    fprintf(f,
            "<tr><th>writes</th><td class=\"n\">%llu</td></tr>"
            "<tr><th>errors</th><td class=\"n\">%llu</td></tr>"
            "<tr><th>elapsed</th><td class=\"n\">%.3f s</td></tr>\n",
            (unsigned long long)run->done, (unsigned long long)run->errors,
            (double)run->elapsed_us / 1e6);
    for (int i = 0; i < 5; i++) {
        fprintf(f, "<tr><th>%s latency</th><td class=\"n\">%llu us</td></tr>",
                pn[i], (unsigned long long)pv[i]);
    }
    fprintf(f,
            "<tr><th>max latency</th><td class=\"n\">%llu us</td></tr>"
            "<tr><th>mean latency</th><td class=\"n\">%.0f us%s</td></tr>"
            "</table></div>\n",
            (unsigned long long)run->max_us, mean,
            run->overflow ? " (without the writes past the histogram)" : "");
    fprintf(f, "<div><h2>Run</h2><table>\n<tr><th>mode</th><td>%s</td></tr>",
            run->mode);
    if (run->target != NULL) {
        fprintf(f, "<tr><th>target</th><td>");
        s_esc(f, run->target);
        fprintf(f, "</td></tr>");
    }
    if (run->nodes > 0) {
        fprintf(f, "<tr><th>nodes</th><td>%u</td></tr>", run->nodes);
    }
    fprintf(f,
            "<tr><th>storage</th><td>%s</td></tr>"
            "<tr><th>clients</th><td>%u</td></tr>"
            "<tr><th>payload</th><td>%u bytes</td></tr>",
            run->storage, run->clients, run->payload);
    if (run->pipeline > 1) {
        fprintf(f, "<tr><th>pipeline</th><td>%u</td></tr>", run->pipeline);
    }
    if (run->ops_limit > 0) {
        fprintf(f, "<tr><th>limit</th><td>%llu writes</td></tr>",
                (unsigned long long)run->ops_limit);
    } else {
        fprintf(f, "<tr><th>duration</th><td>%.3g s</td></tr>", run->duration);
    }
    fprintf(f, "</table></div>\n");

    /* Machine. */
    fprintf(f,
            "<div><h2>Machine</h2><table>\n<tr><th>cores</th>"
            "<td>%ld online</td></tr><tr><th>CPU</th><td>",
            cores);
    s_esc(f, cpu);
    fprintf(f,
            "</td></tr><tr><th>memory</th><td>%.1f GiB</td></tr>"
            "<tr><th>kernel</th><td>",
            (double)s_mem_kib() / (1024.0 * 1024.0));
    s_esc(f, un.sysname);
    fputc(' ', f);
    s_esc(f, un.release);
    fputc(' ', f);
    s_esc(f, un.machine);
    fprintf(f, "</td></tr>");
    for (int e = 0; e < 2; e++) {
        if (r->have_load[e]) {
            fprintf(f, "<tr><th>load at %s</th><td>%.2f %.2f %.2f</td></tr>",
                    e ? "end" : "start", r->load[e][0], r->load[e][1],
                    r->load[e][2]);
        }
    }
    fprintf(f, "<tr><th>fdatasync (4 KiB)</th><td>");
    if (r->fsync_n > 0) {
        char a[32], c[32], d[32];
        fprintf(f, "median %s, p99 %s, max %s (%d syncs in ",
                s_dur(r->fsync_us[r->fsync_n / 2], a, sizeof a),
                s_dur(r->fsync_us[(r->fsync_n * 99) / 100], c, sizeof c),
                s_dur(r->fsync_us[r->fsync_n - 1], d, sizeof d), r->fsync_n);
        s_esc(f, r->fsync_dir);
        fprintf(f, ", before the run)");
    } else if (r->fsync_dir[0]) {
        fprintf(f, "not measured: ");
        s_esc(f, r->fsync_dir);
        fprintf(f, ": ");
        s_esc(f, r->fsync_err);
    } else {
        fprintf(f, "not measured");
    }
    fprintf(f, "</td></tr><tr><th>built with</th><td>");
#ifdef __VERSION__
    s_esc(f, __VERSION__);
#endif
#ifdef __OPTIMIZE__
    fprintf(f, ", optimized");
#else
    fprintf(f, ", not optimized");
#endif
    fprintf(f, "</td></tr></table></div>\n</div>\n");

    fprintf(f, "<h2>Throughput over time (writes/s)</h2>\n");
    s_chart_throughput(f, r);
    fprintf(f, "<h2>Latency histogram (share of writes)</h2>\n");
    s_chart_latency(f, run);

    /* The same figures for tools. */
    fprintf(f,
            "<script type=\"application/json\" id=\"zraft-bench\">"
            "{\"version\":\"%s\",\"mode\":\"%s\",\"storage\":\"%s\","
            "\"nodes\":%u,\"clients\":%u,\"payload\":%u,\"pipeline\":%u,"
            "\"writes\":%llu,\"errors\":%llu,\"elapsed_s\":%.3f,"
            "\"writes_per_sec\":%.1f,",
            ZRAFT_VERSION, run->mode, run->storage, run->nodes, run->clients,
            run->payload, run->pipeline, (unsigned long long)run->done,
            (unsigned long long)run->errors, (double)run->elapsed_us / 1e6,
            wps);
    for (int i = 0; i < 5; i++) {
        fprintf(f, "\"%s_us\":%llu,", pn[i], (unsigned long long)pv[i]);
    }
    fprintf(f,
            "\"max_us\":%llu,\"cores\":%ld,\"fsync_median_us\":%.1f}"
            "</script>\n</body></html>\n",
            (unsigned long long)run->max_us, cores,
            r->fsync_n ? r->fsync_us[r->fsync_n / 2] : -1.0);
    if (fclose(f) != 0) {
        fprintf(stderr, "zraft-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
