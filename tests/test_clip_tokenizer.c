/* test_clip_tokenizer.c - the CLIP BPE tokenizer against expected ids
 * from scripts/make_clip_tok_refs.py (an independent Python tokenizer
 * written from the published algorithm, over a small vocabulary learned
 * by that script), hand-worked merges, and bad inputs. */
#include "check.h"
#include "testutil.h"
#include "uniadc.h"

#include <stdint.h>

#define REFDIR UAD_SOURCE_DIR "/tests/data/clip_tok"

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* "12 34 5" (or "-") into ids; returns the count. */
static size_t parse_ids(int32_t *ids, size_t cap, char *s) {
    size_t n = 0;
    if (strcmp(s, "-") == 0) return 0;
    for (char *tok = strtok(s, " "); tok && n < cap; tok = strtok(NULL, " "))
        ids[n++] = (int32_t)strtol(tok, NULL, 10);
    return n;
}

static char *unhex(const char *h) {
    size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h) / 2;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[n] = 0;
    return s;
}

static int same_ids(const int32_t *a, const int32_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Every case of cases.txt: raw ids and the 77 model input ids. */
static void test_reference_cases(void) {
    uad_clip_tokenizer *tok = NULL;
    CHECK(uad_clip_tokenizer_load(&tok, REFDIR) == UAD_OK);
    if (!tok) return;
    CHECK(uad_clip_vocab_size(tok) == 660);
    CHECK(uad_clip_start_id(tok) == 658 && uad_clip_end_id(tok) == 659);
    CHECK(uad_clip_pad_id(tok) == 659);
    CHECK(uad_clip_token_id(tok, "photo</w>") >= 512);
    CHECK(uad_clip_token_id(tok, "no-such-token") == -1);

    FILE *f = fopen(REFDIR "/cases.txt", "r");
    CHECK(f != NULL);
    if (!f) return;
    static char line[1 << 16];
    int ncases = 0, truncated = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : 0;
        CHECK(t1 && t2);
        if (!t1 || !t2) break;
        *t1 = *t2 = 0;
        char *text = unhex(line);
        int32_t want[4096], want_in[UAD_CLIP_CONTEXT], got_in[UAD_CLIP_CONTEXT];
        size_t nw = parse_ids(want, 4096, t1 + 1);
        CHECK(parse_ids(want_in, UAD_CLIP_CONTEXT, t2 + 1) == UAD_CLIP_CONTEXT);

        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(uad_clip_tokenize(&ids, &n, tok, text) == UAD_OK);
        int ok = ids && n == nw && same_ids(ids, want, n);
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "  case %d \"%s\": got %zu ids:", ncases, text, n);
            for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n  expected %zu:", nw);
            for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        }
        int used = -1;
        CHECK(uad_clip_encode(got_in, &used, tok, text, UAD_CLIP_CONTEXT) ==
              UAD_OK);
        int want_used = nw > UAD_CLIP_CONTEXT - 2 ? UAD_CLIP_CONTEXT
                                                  : (int)nw + 2;
        CHECK(used == want_used);
        CHECK(same_ids(got_in, want_in, UAD_CLIP_CONTEXT));
        /* The end token survives truncation at the last position. */
        if (nw > UAD_CLIP_CONTEXT - 2) {
            truncated++;
            CHECK(got_in[UAD_CLIP_CONTEXT - 1] == uad_clip_end_id(tok));
        }
        free(ids);
        free(text);
        ncases++;
    }
    fclose(f);
    printf("clip tokenizer: %d reference cases (%d truncated)\n", ncases,
           truncated);
    CHECK(ncases == 23);
    CHECK(truncated == 1);
    uad_clip_tokenizer_free(tok);
}

/* A vocabulary written here by hand: merges apply left to right without
 * overlap, by rank, and a symbol missing from the vocabulary gets the
 * end token's id (Hugging Face's unk token). */
static void test_hand_worked(void) {
    char *dir = tu_tmpdir("cliptok");
    write_text(tu_fmt("%s/vocab.json", dir),
               "{\"a\": 0, \"a</w>\": 1, \"aa\": 2, \"aa</w>\": 3,"
               " \"b</w>\": 4, \"ab</w>\": 5, \"<|startoftext|>\": 6,"
               " \"<|endoftext|>\": 7}");
    write_text(tu_fmt("%s/merges.txt", dir),
               "#version: 0.2\na a\na b</w>\r\naa a</w>\n\n");
    uad_clip_tokenizer *tok = NULL;
    CHECK(uad_clip_tokenizer_load(&tok, dir) == UAD_OK);
    if (tok) {
        struct { const char *text; int n; int32_t ids[6]; } cases[] = {
            /* a a a a a</w> -> aa aa a</w> -> aa aaa</w> (unknown) */
            {"aaaaa", 2, {2, 7}},
            {"aaa", 1, {7}},       /* aa a</w> -> "aaa</w>": unk       */
            {"aab", 2, {2, 4}},    /* a a b</w>: (a a) rank 0 first     */
            {"ab AB", 2, {5, 5}},  /* lower-cased                       */
            {"c", 1, {7}},         /* "c</w>" unknown                   */
        };
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            int32_t *ids = NULL;
            size_t n = 0;
            CHECK(uad_clip_tokenize(&ids, &n, tok, cases[k].text) == UAD_OK);
            int ok = n == (size_t)cases[k].n && same_ids(ids, cases[k].ids, n);
            CHECK(ok);
            if (!ok) {
                fprintf(stderr, "  \"%s\":", cases[k].text);
                for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
                fprintf(stderr, "\n");
            }
            free(ids);
        }
        /* A short context: start, one id, end. */
        int32_t in[3];
        int used = 0;
        CHECK(uad_clip_encode(in, &used, tok, "ab ab ab", 3) == UAD_OK);
        CHECK(used == 3);
        CHECK(in[0] == 6 && in[1] == 5 && in[2] == 7);
        uad_clip_tokenizer_free(tok);
    }
    free(dir);
}

static uad_status load_pair(const char *dir, const char *vocab,
                            const char *merges) {
    write_text(tu_fmt("%s/vocab.json", dir), vocab);
    write_text(tu_fmt("%s/merges.txt", dir), merges);
    uad_clip_tokenizer *tok = NULL;
    uad_status st = uad_clip_tokenizer_load(&tok, dir);
    CHECK((st == UAD_OK) == (tok != NULL));
    uad_clip_tokenizer_free(tok);
    return st;
}

static void test_bad_files(void) {
    char *dir = tu_tmpdir("cliptokbad");
    const char *ok_vocab = "{\"a</w>\": 0, \"<|startoftext|>\": 1, "
                           "\"<|endoftext|>\": 2}";
    uad_clip_tokenizer *tok = NULL;
    CHECK(uad_clip_tokenizer_load(&tok, dir) == UAD_ERR_IO);
    CHECK(tok == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), "vocab.json");

    CHECK(load_pair(dir, ok_vocab, "#version: 0.2\n") == UAD_OK);
    CHECK(load_pair(dir, "[1, 2]", "#v\n") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "vocab.json: not a JSON object");
    CHECK(load_pair(dir, "{\"a\": 0", "#v\n") == UAD_ERR_FORMAT);
    CHECK(load_pair(dir, "{\"a\": -1}", "#v\n") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "token \"a\" has no valid id");
    CHECK(load_pair(dir, "{\"a\": 1.5}", "#v\n") == UAD_ERR_FORMAT);
    CHECK(load_pair(dir, "{\"a\": \"1\"}", "#v\n") == UAD_ERR_FORMAT);
    CHECK(load_pair(dir, "{\"a\": 0, \"a\": 1, \"<|startoftext|>\": 2, "
                    "\"<|endoftext|>\": 3}", "#v\n") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "listed twice");
    CHECK(load_pair(dir, "{\"a\": 0, \"<|startoftext|>\": 1}", "#v\n") ==
          UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "no id for <|endoftext|>");
    CHECK(load_pair(dir, ok_vocab, "#v\na b\nc\n") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "merges.txt:3: expected two");
    CHECK(load_pair(dir, ok_vocab, "#v\na b c\n") == UAD_ERR_FORMAT);
    CHECK(load_pair(dir, ok_vocab, "#v\na b\n\nc d\n") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "merges.txt:3");
    free(dir);
}

static void test_bad_text(void) {
    uad_clip_tokenizer *tok = NULL;
    CHECK(uad_clip_tokenizer_load(&tok, REFDIR) == UAD_OK);
    if (!tok) return;
    int32_t *ids = (int32_t *)1;
    size_t n = 5;
    CHECK(uad_clip_tokenize(&ids, &n, tok, "ok \xff\xfe bad") == UAD_ERR_DATA);
    CHECK(ids == NULL && n == 0);
    CHECK_STR_CONTAINS(uad_last_error(), "not valid UTF-8 (byte 3)");
    CHECK(uad_clip_tokenize(&ids, &n, tok, "\xc3") == UAD_ERR_DATA);
    /* A UTF-8 encoded surrogate is not valid UTF-8 either. */
    CHECK(uad_clip_tokenize(&ids, &n, tok, "\xed\xa0\x80") == UAD_ERR_DATA);
    int32_t in[UAD_CLIP_CONTEXT];
    int used = 9;
    CHECK(uad_clip_encode(in, &used, tok, "x\x80", UAD_CLIP_CONTEXT) ==
          UAD_ERR_DATA);
    CHECK(used == 0);

    size_t big = 16385;
    char *s = malloc(big + 1);
    memset(s, 'a', big);
    s[big] = 0;
    CHECK(uad_clip_tokenize(&ids, &n, tok, s) == UAD_ERR_LIMIT);
    /* At the limit, one long word still tokenizes (BPE is quadratic in a
     * word's length, so this also bounds the time). */
    s[big - 1] = 0;
    CHECK(uad_clip_tokenize(&ids, &n, tok, s) == UAD_OK);
    CHECK(n >= 1);
    free(ids);
    free(s);
    uad_clip_tokenizer_free(tok);
}

int main(void) {
    test_reference_cases();
    test_hand_worked();
    test_bad_files();
    test_bad_text();
    return check_report("test_clip_tokenizer");
}
