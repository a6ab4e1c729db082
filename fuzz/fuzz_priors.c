/* fuzz_priors.c - the anomaly-priors YAML reader on arbitrary bytes. */
#include "uniadc.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uad_priors *p = NULL;
    if (uad_priors_parse(&p, data, size, "fuzz.yaml") == UAD_OK) {
        /* Touch every string so ASan sees any dangling pointer. */
        size_t total = p->object ? strlen(p->object) : 0;
        for (int i = 0; i < p->n_categories; i++) {
            const uad_category *c = &p->categories[i];
            total += strlen(c->name);
            for (int k = 0; k < c->n_descriptions; k++)
                total += strlen(c->descriptions[k]);
            for (int k = 0; k < c->n_negatives; k++)
                total += strlen(c->negatives[k]);
            if (uad_priors_find(p, c->name) > i) total++;
        }
        (void)total;
    }
    uad_priors_free(p);
    return 0;
}
