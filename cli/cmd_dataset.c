/* cmd_dataset.c - placeholder until the module lands in this branch. */
#include "cli.h"
int cmd_dataset(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "uniadc dataset: not built yet\n");
    return 8;
}
