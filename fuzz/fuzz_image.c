/* fuzz_image.c - libFuzzer target: decode any bytes as an image (format by
 * signature) under a 4-million-pixel limit, then free. */
#include <stddef.h>
#include <stdint.h>

#include "uniadc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uad_image_params p = uad_image_default_params();
    p.max_pixels = 4000000;
    uad_image im;
    if (uad_image_load_mem(&im, data, size, "fuzz", &p) == UAD_OK)
        uad_image_free(&im);
    return 0;
}
