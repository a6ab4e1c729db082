/* cmd_eval.c - placeholder until the module lands in this branch. */
#include "cli.h"
int cmd_eval(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "uniadc eval: not built yet\n");
    return 8;
}
