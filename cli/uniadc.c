/* uniadc.c - the command line: parse, dispatch to a subcommand, report.
 * Every subcommand is a thin layer over the library (cli/cmd_*.c). */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} g_cmds[] = {
    {"dataset", cmd_dataset, "validate a dataset and its priors, print counts"},
    {"synth", cmd_synth, "synthesize labelled defect images from priors or examples"},
    {"eval", cmd_eval, "score precomputed anomaly and class maps"},
    {"train", cmd_train, "train the discriminator on a support set"},
    {"predict", cmd_predict, "anomaly and class maps of images"},
    {"run", cmd_run, "the whole job: synthesize, train, predict, evaluate"},
    {"embed-text", cmd_embed_text,
     "CLIP or dino.txt text embeddings of texts and categories"},
    {"features", cmd_features, "feature maps of a pretrained ViT (DINOv2/v3, CLIP)"},
};
#define N_CMDS (sizeof g_cmds / sizeof g_cmds[0])

static void print_main_usage(FILE *fp) {
    fprintf(fp,
            "usage: uniadc COMMAND [OPTIONS]\n"
            "       uniadc --version | --help\n\ncommands:\n");
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(fp, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].summary);
    fprintf(fp,
            "\n'uniadc COMMAND --help' describes a command. Common options:\n"
            "  --seed N   seed of every random choice (default 0)\n"
            "  --quiet    only errors on stderr\n"
            "  --verbose  more detail on stderr\n"
            "exit codes: 0 ok, 2 usage, 3 i/o,\n"
            "  4 bad file format, 5 inconsistent data, 6 size limit,\n"
            "  7 out of memory, 8 internal error\n");
}

/* How long OpenMP threads spin before they sleep: libgomp's default
 * (300000 turns) burns the cores other work needs, and on a shared
 * 2-core machine training steps ran 2-4 times slower with it; sleeping at
 * once (OMP_WAIT_POLICY=PASSIVE) pays a wake-up for every one of the
 * many short parallel loops. 1000 turns was 1-12% faster alone
 * (training step, ViT forward) and 3.5% slower with two runs on the two
 * cores (bench/results/omp_wait.txt). libgomp reads its settings before
 * main(), so the binary restarts itself once with GOMP_SPINCOUNT set,
 * unless the user set it or a wait policy. If the restart fails, it
 * carries on as it is. */
static void prefer_short_spin(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv) {
    prefer_short_spin(argv);
    if (argc < 2) {
        print_main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("uniadc %s\n", uad_version());
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
        !strcmp(cmd, "help")) {
        print_main_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_CMDS; i++)
        if (!strcmp(cmd, g_cmds[i].name))
            return g_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "uniadc: unknown command '%s'\n\n", cmd);
    print_main_usage(stderr);
    return CLI_EXIT_USAGE;
}

/* ---- shared helpers ------------------------------------------------- */

long cli_parse_long(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000000) return -1;
    return v;
}

int cli_check_output(const char *cmd, const char *path) {
    char *dir = strdup(path);
    if (!dir) return 7;
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    int ok = access(d, W_OK) == 0;
    if (!ok)
        fprintf(stderr, "uniadc: error: %s: cannot write there (%s is "
                        "missing or not writable; %s writes nothing)\n",
                path, d, cmd);
    free(dir);
    return ok ? 0 : 3;
}

int cli_common_opt(cli_common *c, int opt, const char *arg,
                   const char *usage) {
    switch (opt) {
    case CLI_OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-') {
            fprintf(stderr, "uniadc: --seed wants a non-negative integer, "
                            "got '%s'\n", arg);
            return -1;
        }
        c->seed = (uint64_t)v;
        return 1;
    }
    case 'q': c->verbosity = 0; return 1;
    case 'v': c->verbosity = 2; return 1;
    case 'h':
        fputs(usage, stdout);
        exit(0);
    }
    return 0;
}

int cli_next_opt(int argc, char **argv, const struct option *opts,
                 cli_common *c, const char *cmd, const char *usage) {
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        int r = cli_common_opt(c, opt, optarg, usage);
        if (r < 0) return -CLI_EXIT_USAGE;
        if (r > 0) continue;
        if (opt == ':')
            return -cli_usage_error(cmd, usage, "option '%s' needs a value",
                                    argv[optind - 1]);
        if (opt == '?')
            return -cli_usage_error(cmd, usage, "unknown option '%s'",
                                    argv[optind - 1]);
        return opt;
    }
    return 0;
}

/* Progress bar on stderr: stage, bar, count, rate and ETA. */
typedef struct {
    char stage[64];
    struct timespec start;
    int last_tenth;
} progress_state;

static double elapsed(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) +
           1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void draw_progress(const char *stage, size_t done, size_t total,
                          void *user) {
    progress_state *ps = user;
    /* a stage may carry a live value after " (", e.g. "train (loss
     * 0.41)": only the part before it names the stage */
    const char *paren = strstr(stage, " (");
    size_t key = paren ? (size_t)(paren - stage) : strlen(stage);
    if (key > sizeof ps->stage - 1) key = sizeof ps->stage - 1;
    if (strncmp(ps->stage, stage, key) != 0 ||
        (ps->stage[key] != 0 && ps->stage[key] != ' ') || done == 0) {
        snprintf(ps->stage, sizeof ps->stage, "%s", stage);
        clock_gettime(CLOCK_MONOTONIC, &ps->start);
    }
    /* Into a file or pipe, one line per tenth of the work (and the
     * first and last), not one per update. */
    int tty = isatty(2);
    if (!tty && done != 0 && done < total) {
        int tenth = total ? (int)(10 * done / total) : 10;
        if (tenth == ps->last_tenth) return;
        ps->last_tenth = tenth;
    } else if (done == 0) {
        ps->last_tenth = 0;
    }
    double t = elapsed(&ps->start);
    double frac = total ? (double)done / (double)total : 1.0;
    int fill = (int)(frac * 24 + 0.5);
    char bar[25];
    for (int i = 0; i < 24; i++) bar[i] = i < fill ? '#' : '.';
    bar[24] = 0;
    double eta = done ? t * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "%s%-16s [%s] %zu/%zu %5.1fs ETA %5.1fs%s",
            tty ? "\r" : "", stage, bar, done, total, t, eta,
            (done >= total || !tty) ? "\n" : "");
    fflush(stderr);
}

static void log_to_stderr(uad_log_level level, const char *msg,
                          void *user) {
    static const char *names[] = {"error", "warning", "info", "debug"};
    (void)user;
    fprintf(stderr, "uniadc: %s: %s\n", names[level], msg);
}

void cli_common_apply(const cli_common *c) {
    static progress_state ps;
    uad_log_level lvl = c->verbosity == 0   ? UAD_LOG_ERROR
                        : c->verbosity == 1 ? UAD_LOG_WARN
                                            : UAD_LOG_DEBUG;
    uad_log_set(log_to_stderr, NULL, lvl);
    uad_progress_set(c->verbosity ? draw_progress : NULL, &ps);
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt,
                    ...) {
    va_list ap;
    fprintf(stderr, "uniadc %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return CLI_EXIT_USAGE;
}

int cli_fail(uad_status st) {
    fprintf(stderr, "uniadc: error: %s\n", uad_last_error());
    return (int)st;
}
