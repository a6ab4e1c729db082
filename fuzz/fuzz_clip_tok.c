/* fuzz_clip_tok.c - the CLIP tokenizer's files and texts on arbitrary
 * bytes: the input is vocab.json, a NUL byte, merges.txt, a NUL byte and
 * a text (missing parts are empty). The merges part is also loaded
 * alone as openai's bpe_simple_vocab file (dino.txt's tokenizer). On a
 * successful load the text is tokenized and encoded to the 77-token
 * context; every id must be in the vocabulary. */
#include "uniadc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_vocab[64], g_merges[64];

static void tmp_file(char *path, const char *name) {
    snprintf(path, 64, "/tmp/uad_fuzz_%s_XXXXXX", name);
    int fd = mkstemp(path);
    if (fd < 0) abort();
    close(fd);
}

static void put(const char *path, const uint8_t *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n) abort();
    fclose(fp);
}

/* The next part of the input: bytes up to a NUL (or the end). */
static size_t part(const uint8_t *p, size_t n) {
    const uint8_t *z = memchr(p, 0, n);
    return z ? (size_t)(z - p) : n;
}

static void cleanup(void) {
    if (g_vocab[0]) unlink(g_vocab);
    if (g_merges[0]) unlink(g_merges);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_vocab[0]) {
        tmp_file(g_vocab, "vocab");
        tmp_file(g_merges, "merges");
        atexit(cleanup);
    }
    size_t a = part(data, size);
    put(g_vocab, data, a);
    size_t off = a < size ? a + 1 : size;
    size_t b = part(data + off, size - off);
    put(g_merges, data + off, b);
    off = off + b < size ? off + b + 1 : size;
    char *text = malloc(size - off + 1);
    if (!text) return 0;
    memcpy(text, data + off, size - off);
    text[size - off] = 0;
    for (int kind = 0; kind < 2; kind++) {
    uad_clip_tokenizer *tok = NULL;
    uad_status st = kind ? uad_clip_tokenizer_load_bpe(&tok, g_merges)
                         : uad_clip_tokenizer_load_files(&tok, g_vocab,
                                                         g_merges);
    if (st == UAD_OK) {
        int32_t vocab = uad_clip_vocab_size(tok), *ids = NULL, ctx[77];
        size_t n = 0;
        int used = 0;
        if (uad_clip_tokenize(&ids, &n, tok, text) == UAD_OK)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= vocab) abort();
        free(ids);
        if (uad_clip_encode(ctx, &used, tok, text, 77) == UAD_OK) {
            if (used < 2 || used > 77) abort();
            for (int i = 0; i < 77; i++)
                if (ctx[i] < 0 || ctx[i] >= vocab) abort();
        }
        uad_clip_tokenizer_free(tok);
    }
    }
    free(text);
    return 0;
}
