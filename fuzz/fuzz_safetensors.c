/* fuzz_safetensors.c - the safetensors reader on arbitrary bytes: open,
 * then walk every tensor, read all its bytes and convert float ones. */
#include "uniadc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uad_safetensors *st = NULL;
    if (uad_st_open_mem(&st, data, size, "fuzz.safetensors") != UAD_OK)
        return 0;
    unsigned sum = 0;
    for (size_t i = 0; i < uad_st_count(st); i++) {
        const uad_st_tensor *t = uad_st_tensor_at(st, i);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
        if (uad_st_find(st, t->name) != t) abort();
        size_t n = uad_st_numel(t);
        if (n * uad_dtype_size(t->dtype) != t->nbytes) abort();
        float *f = malloc(n ? n * sizeof *f : 1);
        if (f && uad_st_to_f32(t, f) == UAD_OK)
            for (size_t k = 0; k < n; k++) sum += f[k] == f[k];
        free(f);
    }
    (void)uad_st_meta(st, "format");
    uad_st_free(st);
    return (int)(sum & 0);
}
