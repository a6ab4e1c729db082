/* cli.h - shared pieces of the uniadc command line. */
#ifndef UAD_CLI_H
#define UAD_CLI_H

#include "uniadc.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: 0 success, and the uad_status values 2..8 for failures
 * (see uniadc.h). */
#define CLI_EXIT_USAGE 2

/* Options every subcommand takes. */
typedef struct cli_common {
    uint64_t seed;
    int verbosity;   /* 0 quiet, 1 normal, 2 verbose */
} cli_common;

/* getopt_long entries for the common options; ids from 1000 up. */
#define CLI_OPT_SEED 1000
#define CLI_OPT_QUIET 1001
#define CLI_OPT_VERBOSE 1002
#define CLI_OPT_HELP 1003
#define CLI_COMMON_OPTIONS                                                 \
    {"seed", required_argument, 0, CLI_OPT_SEED},                          \
    {"quiet", no_argument, 0, 'q'},                                        \
    {"verbose", no_argument, 0, 'v'},                                      \
    {"help", no_argument, 0, 'h'}

/* Handle a common option; returns 1 if handled, 0 if not one, -1 on a bad
 * value (message printed). `usage` is printed for -h (then exit 0). */
int cli_common_opt(cli_common *c, int opt, const char *arg,
                   const char *usage);
/* The next option of a subcommand's command line: handles the common
 * options, a missing value and an unknown option (usage printed). Returns
 * the command's own option, 0 at the end, or minus the exit code. */
int cli_next_opt(int argc, char **argv, const struct option *opts,
                 cli_common *c, const char *cmd, const char *usage);
/* Apply verbosity to the library's log and progress callbacks. */
void cli_common_apply(const cli_common *c);
/* Print "uniadc CMD: msg" and usage to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
/* Print the library's last error and return the status as exit code. */
int cli_fail(uad_status st);
/* Parse a non-negative integer option (at most 10^9); -1 on error. */
long cli_parse_long(const char *s);
/* 0 when path's folder exists and is writable, else prints why and
 * returns the i/o exit code: checked before long work starts. */
int cli_check_output(const char *cmd, const char *path);

/* Parse --setting/--kn/--ka (each may be NULL) into p; 0 or an exit
 * code after printing the problem. */
int cli_parse_protocol(uad_protocol *p, const char *setting, const char *kn,
                       const char *ka, const char *cmd, const char *usage);

typedef int (*cli_cmd_fn)(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_embed_text(int argc, char **argv);
int cmd_features(int argc, char **argv);

#endif
