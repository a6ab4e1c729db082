/* fuzz_model.c - the discriminator model file (safetensors with the
 * configuration as metadata) on arbitrary bytes: load, and on success
 * read the configuration back. The loader takes a path, so each input is
 * written to one temporary file first. A ViT model's recorded checkpoint
 * folder is whatever the input says; it is almost never there, which
 * exercises the failure path. */
#include "uniadc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[64];

static void cleanup(void) {
    if (g_path[0]) unlink(g_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_path[0]) {
        strcpy(g_path, "/tmp/uad_fuzz_model_XXXXXX");
        int fd = mkstemp(g_path);
        if (fd < 0) abort();
        close(fd);
        atexit(cleanup);
    }
    FILE *fp = fopen(g_path, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size) abort();
    fclose(fp);
    uad_model *m = NULL;
    if (uad_model_load(&m, g_path) == UAD_OK) {
        int y = uad_model_n_categories(m);
        if (y < 1) abort();
        for (int c = 0; c <= y; c++)
            if (!uad_model_category(m, c)) abort();
        if (uad_model_category(m, y + 1)) abort();
        if (uad_model_input_size(m) < 1 || uad_model_width(m) < 1) abort();
        uad_model_free(m);
    }
    return 0;
}
