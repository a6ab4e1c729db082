/* clip_tokenizer.c - the CLIP byte-level BPE tokenizer (Radford et al.
 * 2021, "Learning Transferable Visual Models From Natural Language
 * Supervision"; the reference is openai/CLIP clip/simple_tokenizer.py and
 * Hugging Face's CLIPTokenizer), read from a checkpoint's vocab.json and
 * merges.txt.
 *
 * Text cleanup follows Hugging Face's CLIPTokenizer as it runs when the
 * `ftfy` package is not installed (its documented fallback, a BERT-style
 * BasicTokenizer without accent stripping or punctuation splitting):
 *   1. the strings "<|startoftext|>" and "<|endoftext|>" written in the
 *      text are split out first and become their special ids;
 *   2. U+0000, U+FFFD and control characters (category C*, except tab,
 *      CR and LF) are dropped; whitespace (tab, CR, LF, category Zs)
 *      becomes a space;
 *   3. CJK ideographs get a space on either side (not for openai's
 *      bpe_simple_vocab file, whose reference keeps runs of them
 *      together as its pattern's letters do);
 *   4. NFC normalisation;
 *   5. split on whitespace, each word lower-cased, joined by one space.
 * We do not run ftfy's mojibake repair or openai/CLIP's double HTML
 * unescaping ("&amp;" stays "&amp;"): those need the ftfy package, which
 * Hugging Face does without too. For plain text (no mojibake, HTML
 * entities, CJK, control or combining characters) the two references and
 * this code agree.
 *
 * Then the reference's pre-tokenizer pattern splits each word into
 * pieces, tried in this order at each position:
 *   <|startoftext|> | <|endoftext|> | 's|'t|'re|'ve|'m|'ll|'d |
 *   [\p{L}]+ | [\p{N}] | [^\s\p{L}\p{N}]+
 * Each piece's UTF-8 bytes are mapped to printable code points
 * (bytes_to_unicode), "</w>" is appended to the last symbol, and merges
 * are applied lowest rank first until none applies. Unknown symbols get
 * the id of "<|endoftext|>", which is Hugging Face's unk token.
 *
 * Checked (by hand, not in the tests) beside openai/CLIP's own tokenizer
 * on its 49408-entry vocabulary with ftfy replaced by the identity: 1500
 * random strings of ASCII, accented letters, punctuation and emoji gave
 * identical ids, and beside the Python port of the fallback above
 * (scripts/make_clip_tok_refs.py) on 3000 strings with CJK, control and
 * combining characters, too.
 *
 * Unicode tables come from utf8proc (Unicode 15), so characters new in
 * Unicode 15 are kept where Python 3.11 (Unicode 14) drops them as
 * unassigned (category Cn). Python's str.lower() is followed for its two
 * context or length changes: U+0130 becomes "i" + U+0307 and a capital
 * sigma at the end of a word becomes U+03C2. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

/* The reference reads at most this many merges (49152 ids in all, minus
 * the 512 byte symbols and the two special tokens, plus the header). */
#define CLIP_MAX_MERGES (49152 - 256 - 2)
/* Text longer than this is refused: BPE is quadratic in a word's length. */
#define CLIP_MAX_TEXT 16384
/* openai's bpe_simple_vocab_16e6.txt is 1.3 MB; larger files are refused. */
#define CLIP_MAX_BPE_FILE (64 << 20)

static const char CLIP_SOT[] = "<|startoftext|>";
static const char CLIP_EOT[] = "<|endoftext|>";

/* ---- a string -> int map (open addressing, keys owned) ------------- */

typedef struct strmap {
    char **keys;
    int32_t *vals;
    size_t cap, count;
} strmap;

static uint64_t str_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static void strmap_free(strmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static uad_status strmap_init(strmap *m, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    m->keys = uad_calloc(cap, sizeof *m->keys);
    m->vals = uad_calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->count = 0;
    if (!m->keys || !m->vals) {
        strmap_free(m);
        return UAD_ERR_NOMEM;
    }
    return UAD_OK;
}

/* Slot of key s[0..n) (found or empty). */
static size_t strmap_slot(const strmap *m, const char *s, size_t n) {
    size_t i = str_hash(s, n) & (m->cap - 1);
    while (m->keys[i] && !(strlen(m->keys[i]) == n &&
                           memcmp(m->keys[i], s, n) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* -1 when absent. */
static int32_t strmap_get(const strmap *m, const char *s, size_t n) {
    size_t i = strmap_slot(m, s, n);
    return m->keys[i] ? m->vals[i] : -1;
}

/* Insert or overwrite; *dup tells whether the key was there. The map
 * was sized for its entries at init, so it never fills up. */
static uad_status strmap_put(strmap *m, const char *s, size_t n,
                             int32_t v, int *dup) {
    size_t i = strmap_slot(m, s, n);
    *dup = m->keys[i] != NULL;
    if (!m->keys[i]) {
        UAD_ASSERT(m->count + 1 < m->cap);
        m->keys[i] = uad_malloc(n + 1);
        if (!m->keys[i]) return UAD_ERR_NOMEM;
        memcpy(m->keys[i], s, n);
        m->keys[i][n] = 0;
        m->count++;
    }
    m->vals[i] = v;
    return UAD_OK;
}

/* ---- the tokenizer object ------------------------------------------ */

struct uad_clip_tokenizer {
    strmap vocab;          /* symbol (UTF-8) -> id                     */
    strmap ranks;          /* "first second" -> merge rank             */
    int32_t n_vocab;       /* largest id + 1                           */
    int32_t sot, eot, pad;
    int split_cjk;         /* Hugging Face's CJK spacing (step 3)      */
    char bytesym[256][3];  /* UTF-8 of bytes_to_unicode()[b]           */
    uint8_t bytesym_len[256];
    uint8_t byte_rank[256]; /* b's place in openai's symbol order       */
};

/* The reference's reversible byte -> code point map: printable Latin-1
 * bytes map to themselves, the other 68 to 256, 257, ... in byte order,
 * so that no symbol holds whitespace or a control character. */
static void clip_bytes_to_unicode(uad_clip_tokenizer *t) {
    /* openai's vocabulary lists the 188 kept bytes first, then the
     * remapped ones, each in byte order: byte_rank */
    int next = 256, kept = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                   (b >= 0xAE && b <= 0xFF);
        t->byte_rank[b] = (uint8_t)(keep ? kept++ : 188 + next - 256);
        int cp = keep ? b : next++;
        utf8proc_uint8_t buf[4];
        utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
        UAD_ASSERT(n >= 1 && n <= 2);
        memcpy(t->bytesym[b], buf, (size_t)n);
        t->bytesym_len[b] = (uint8_t)n;
    }
}

void uad_clip_tokenizer_free(uad_clip_tokenizer *t) {
    if (!t) return;
    strmap_free(&t->vocab);
    strmap_free(&t->ranks);
    free(t);
}

static uad_status clip_load_vocab(uad_clip_tokenizer *t, const char *path) {
    void *json;
    uad_status st = uad_json_load_object(&json, path,
                                         "not a JSON object of token ids");
    if (st != UAD_OK) return st;
    cJSON *root = json;
    st = strmap_init(&t->vocab, (size_t)cJSON_GetArraySize(root));
    for (cJSON *e = root->child; st == UAD_OK && e; e = e->next) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1.0;
        int dup = 0;
        if (v < 0 || v >= 2147483647.0 || v != (double)(int32_t)v) {
            st = uad_fail(UAD_ERR_FORMAT, "%s: token \"%s\" has no valid "
                          "id (a whole number >= 0)", path, e->string);
            break;
        }
        st = strmap_put(&t->vocab, e->string, strlen(e->string),
                        (int32_t)v, &dup);
        if (st == UAD_OK && dup)
            st = uad_fail(UAD_ERR_FORMAT, "%s: token \"%s\" is listed "
                          "twice", path, e->string);
        if ((int32_t)v + 1 > t->n_vocab) t->n_vocab = (int32_t)v + 1;
    }
    cJSON_Delete(root);
    return st;
}

static int is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/* merges.txt: the first line (a "#version" header) is skipped as the
 * reference skips it, then one "first second" pair per line, rank =
 * line order; a pair listed twice keeps its last rank, as in the
 * reference's dict. Surrounding whitespace of the file is ignored. With
 * vocab set (openai's bpe_simple_vocab file, which has no vocab.json),
 * merge r also makes the vocabulary entry "firstsecond" with id 512 + r,
 * as openai/CLIP's SimpleTokenizer builds it. buf is NUL-terminated. */
static uad_status clip_parse_merges(uad_clip_tokenizer *t, char *buf,
                                    size_t len, const char *path,
                                    int vocab, int32_t *n_merges) {
    while (len > 0 && is_ascii_space(buf[len - 1])) buf[--len] = 0;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    size_t cap = lines < CLIP_MAX_MERGES ? lines : CLIP_MAX_MERGES;
    uad_status st = strmap_init(&t->ranks, cap);
    if (st == UAD_OK && vocab) st = strmap_init(&t->vocab, 512 + cap + 2);
    char *p = buf;
    while (*p && is_ascii_space(*p)) p++;
    char *nl = strchr(p, '\n');
    p = nl ? nl + 1 : p + strlen(p);
    for (int32_t rank = 0, line = 2;
         st == UAD_OK && *p && rank < CLIP_MAX_MERGES; line++) {
        char *end = strchr(p, '\n');
        if (!end) end = p + strlen(p);
        char *f[3] = {0};
        size_t fl[3] = {0};
        int nf = 0;
        for (char *q = p; q < end;) {
            while (q < end && is_ascii_space(*q)) q++;
            if (q == end) break;
            char *s = q;
            while (q < end && !is_ascii_space(*q)) q++;
            if (nf < 3) {
                f[nf] = s;
                fl[nf] = (size_t)(q - s);
            }
            nf++;
        }
        if (nf != 2) {
            st = uad_fail(UAD_ERR_FORMAT, "%s:%d: expected two symbols "
                          "separated by a space", path, line);
            break;
        }
        char key[1024];
        int dup;
        if (fl[0] + fl[1] + 2 > sizeof key) {
            st = uad_fail(UAD_ERR_FORMAT, "%s:%d: merge too long", path,
                          line);
            break;
        }
        memcpy(key, f[0], fl[0]);
        key[fl[0]] = ' ';
        memcpy(key + fl[0] + 1, f[1], fl[1]);
        st = strmap_put(&t->ranks, key, fl[0] + 1 + fl[1], rank, &dup);
        if (st == UAD_OK && vocab) {
            memmove(key + fl[0], key + fl[0] + 1, fl[1]);
            st = strmap_put(&t->vocab, key, fl[0] + fl[1], 512 + rank, &dup);
        }
        *n_merges = ++rank;
        p = *end ? end + 1 : end;
    }
    return st;
}

static uad_status clip_load_merges(uad_clip_tokenizer *t, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    uad_status st = uad_read_file(path, &buf, &len);
    if (st != UAD_OK) return st;
    int32_t nm;
    st = clip_parse_merges(t, buf, len, path, 0, &nm);
    free(buf);
    return st;
}

/* The special ids, or an error naming `path`. */
static uad_status clip_specials(uad_clip_tokenizer *t, const char *path) {
    t->sot = strmap_get(&t->vocab, CLIP_SOT, strlen(CLIP_SOT));
    t->eot = strmap_get(&t->vocab, CLIP_EOT, strlen(CLIP_EOT));
    if (t->sot < 0 || t->eot < 0)
        return uad_fail(UAD_ERR_FORMAT, "%s: no id for %s", path,
                        t->sot < 0 ? CLIP_SOT : CLIP_EOT);
    return UAD_OK;
}

uad_status uad_clip_tokenizer_load_files(uad_clip_tokenizer **out,
                                         const char *vocab_path,
                                         const char *merges_path) {
    *out = NULL;
    uad_clip_tokenizer *t = uad_calloc(1, sizeof *t);
    if (!t) return UAD_ERR_NOMEM;
    clip_bytes_to_unicode(t);
    uad_status st = clip_load_vocab(t, vocab_path);
    if (st == UAD_OK) st = clip_load_merges(t, merges_path);
    if (st == UAD_OK) st = clip_specials(t, vocab_path);
    t->pad = t->eot;
    t->split_cjk = 1;
    if (st != UAD_OK) {
        uad_clip_tokenizer_free(t);
        return st;
    }
    *out = t;
    return UAD_OK;
}

uad_status uad_clip_tokenizer_load(uad_clip_tokenizer **out,
                                   const char *dir) {
    *out = NULL;
    char *v = uad_path_join(dir, "vocab.json");
    char *m = uad_path_join(dir, "merges.txt");
    uad_status st = v && m ? uad_clip_tokenizer_load_files(out, v, m)
                           : UAD_ERR_NOMEM;
    free(v);
    free(m);
    return st;
}

/* The whole of a gzip file (or of a plain file, which zlib reads as it
 * is), NUL-terminated, at most CLIP_MAX_BPE_FILE bytes once inflated. */
static uad_status read_gz(const char *path, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return uad_fail(UAD_ERR_IO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 20, n = 0;
    char *buf = uad_malloc(cap + 1);
    uad_status st = buf ? UAD_OK : UAD_ERR_NOMEM;
    while (st == UAD_OK) {
        if (n == cap) {
            if (cap >= CLIP_MAX_BPE_FILE) {
                st = uad_fail(UAD_ERR_LIMIT, "%s: more than %d MiB once "
                              "decompressed", path, CLIP_MAX_BPE_FILE >> 20);
                break;
            }
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                st = UAD_ERR_NOMEM;
                break;
            }
            buf = b;
            cap *= 2;
        }
        int got = gzread(f, buf + n, (unsigned)(cap - n));
        if (got <= 0) {
            /* the end, or an error: a cut stream ends like a whole one,
             * so gzerror tells which */
            int err;
            const char *msg = gzerror(f, &err);
            if (got < 0 || err != Z_OK)
                st = uad_fail(UAD_ERR_FORMAT, "%s: not a readable gzip "
                              "file (%s)", path, msg);
            break;
        }
        n += (size_t)got;
    }
    gzclose(f);
    if (st == UAD_OK && memchr(buf, 0, n))
        st = uad_fail(UAD_ERR_FORMAT, "%s: holds a NUL byte (not a BPE "
                      "merges file)", path);
    if (st != UAD_OK) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return UAD_OK;
}

uad_status uad_clip_tokenizer_load_bpe(uad_clip_tokenizer **out,
                                       const char *path) {
    *out = NULL;
    uad_clip_tokenizer *t = uad_calloc(1, sizeof *t);
    if (!t) return UAD_ERR_NOMEM;
    clip_bytes_to_unicode(t);
    char *buf = NULL;
    size_t len = 0;
    uad_status st = read_gz(path, &buf, &len);
    int32_t nm = 0;
    if (st == UAD_OK) st = clip_parse_merges(t, buf, len, path, 1, &nm);
    free(buf);
    /* openai/CLIP's vocabulary: the 256 byte symbols (printable bytes
     * first, then the remapped ones, in byte order), the same with
     * "</w>", the merges (added above), then the two special tokens. */
    int dup;
    for (int w = 0; st == UAD_OK && w < 2; w++)
        for (int b = 0; st == UAD_OK && b < 256; b++) {
            char sym[8];
            size_t k = t->bytesym_len[b];
            memcpy(sym, t->bytesym[b], k);
            if (w) memcpy(sym + k, "</w>", 4), k += 4;
            /* a merge spelling a byte symbol would win as in the
             * reference's dict; the byte keeps its id otherwise */
            if (strmap_get(&t->vocab, sym, k) < 0)
                st = strmap_put(&t->vocab, sym, k, 256 * w + t->byte_rank[b],
                                &dup);
        }
    if (st == UAD_OK)
        st = strmap_put(&t->vocab, CLIP_SOT, strlen(CLIP_SOT), 512 + nm, &dup);
    if (st == UAD_OK)
        st = strmap_put(&t->vocab, CLIP_EOT, strlen(CLIP_EOT), 513 + nm, &dup);
    if (st == UAD_OK) {
        t->n_vocab = 514 + nm;
        st = clip_specials(t, path);
    }
    /* openai/CLIP pads with 0 and keeps CJK runs together. */
    t->pad = 0;
    t->split_cjk = 0;
    if (st != UAD_OK) {
        uad_clip_tokenizer_free(t);
        return st;
    }
    *out = t;
    return UAD_OK;
}

int32_t uad_clip_token_id(const uad_clip_tokenizer *t, const char *token) {
    return strmap_get(&t->vocab, token, strlen(token));
}

int32_t uad_clip_vocab_size(const uad_clip_tokenizer *t) {
    return t->n_vocab;
}

int32_t uad_clip_start_id(const uad_clip_tokenizer *t) { return t->sot; }
int32_t uad_clip_end_id(const uad_clip_tokenizer *t) { return t->eot; }
int32_t uad_clip_pad_id(const uad_clip_tokenizer *t) { return t->pad; }

/* ---- growable arrays ----------------------------------------------- */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static uad_status ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return uad_fail(UAD_ERR_NOMEM, "out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return UAD_OK;
}

/* ---- BPE of one piece ---------------------------------------------- */

/* A word is a run of symbols, each a byte range [off[i], off[i+1]) of
 * the byte-encoded piece `s` (the last one includes "</w>"); merging two
 * neighbours just drops the boundary between them. rank[i] is the rank
 * of the pair (i, i+1), or INT32_MAX. */
static int32_t pair_rank(const uad_clip_tokenizer *t, const char *s,
                         const size_t *off, size_t i, char *key) {
    size_t la = off[i + 1] - off[i], lb = off[i + 2] - off[i + 1];
    memcpy(key, s + off[i], la);
    key[la] = ' ';
    memcpy(key + la + 1, s + off[i + 1], lb);
    int32_t r = strmap_get(&t->ranks, key, la + 1 + lb);
    return r < 0 ? INT32_MAX : r;
}

/* Append the ids of piece s[0..n) (byte-encoded, "</w>" included; the
 * first symbol boundaries come from `off`, nsym + 1 entries). rank and
 * fresh are scratch of nsym entries. */
static uad_status bpe_piece(ivec *ids, const uad_clip_tokenizer *t,
                            const char *s, size_t n, size_t *off,
                            size_t nsym, int32_t *rank, uint8_t *fresh,
                            char *key) {
    for (size_t i = 0; i + 1 < nsym; i++)
        rank[i] = pair_rank(t, s, off, i, key);
    while (nsym > 1) {
        /* The lowest-ranked pair; every occurrence of it is merged, left
         * to right, as the reference's scan does (one rank = one pair). */
        size_t best = 0;
        for (size_t i = 1; i + 1 < nsym; i++)
            if (rank[i] < rank[best]) best = i;
        int32_t r = rank[best];
        if (r == INT32_MAX) break;
        size_t w = 0;
        for (size_t i = 0; i < nsym; w++) {
            int merge = i + 1 < nsym && rank[i] == r;
            off[w] = off[i];
            fresh[w] = (uint8_t)merge;
            /* Keep the old rank of an untouched pair; in place is safe
             * because i >= w. */
            rank[w] = rank[i];
            i += merge ? 2 : 1;
        }
        off[w] = n;
        nsym = w;
        /* Only pairs next to a merged symbol change rank. */
        for (size_t i = 0; i + 1 < nsym; i++)
            if (fresh[i] || fresh[i + 1])
                rank[i] = pair_rank(t, s, off, i, key);
    }
    for (size_t i = 0; i < nsym; i++) {
        int32_t id = strmap_get(&t->vocab, s + off[i], off[i + 1] - off[i]);
        uad_status st = ivec_push(ids, id >= 0 ? id : t->eot);
        if (st != UAD_OK) return st;
    }
    return UAD_OK;
}

/* ---- text cleanup (Hugging Face's BasicTokenizer fallback) ---------- */

static int is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Python's str.isspace(), which str.split() uses. */
static int py_isspace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) ||
           c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_letter(int32_t c) {
    int k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(int32_t c) {
    int k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

static size_t put_utf8(char *dst, int32_t c) {
    return (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)dst);
}

/* Steps 2 and 3 of the file comment, UTF-8 in and out. dst holds at
 * least 3 * 4 * n + 1 bytes (a CJK character grows by two spaces). */
static uad_status clip_clean(char *dst, const char *src, size_t n,
                             int split_cjk) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)src + i,
                                              (utf8proc_ssize_t)(n - i), &c);
        if (k < 0)
            return uad_fail(UAD_ERR_DATA, "text is not valid UTF-8 (byte "
                            "%zu)", i);
        i += (size_t)k;
        int cat = utf8proc_category(c);
        int ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
                 cat == UTF8PROC_CATEGORY_ZS;
        int ctrl = !ws && (cat == UTF8PROC_CATEGORY_CN ||
                           cat >= UTF8PROC_CATEGORY_CC);
        if (c == 0 || c == 0xFFFD || ctrl) continue;
        if (ws) {
            dst[o++] = ' ';
        } else if (split_cjk && is_cjk(c)) {
            dst[o++] = ' ';
            o += put_utf8(dst + o, c);
            dst[o++] = ' ';
        } else {
            o += put_utf8(dst + o, c);
        }
    }
    dst[o] = 0;
    return UAD_OK;
}

static int is_cased(int32_t c) {
    int k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL ||
           k == UTF8PROC_CATEGORY_LT;
}

/* Unicode's Case_Ignorable: categories Mn, Me, Cf, Lm, Sk and the
 * Word_Break classes MidLetter, MidNumLet and Single_Quote. */
static int is_case_ignorable(int32_t c) {
    static const int32_t mid[] = {
        '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024,
        0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
    int k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME ||
        k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_LM ||
        k == UTF8PROC_CATEGORY_SK)
        return 1;
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (c == mid[i]) return 1;
    return 0;
}

/* Python's str.lower() of one word w[0..n) into out (2n entries). A
 * capital sigma preceded by a cased letter and not followed by one
 * (case-ignorable characters skipped) is final; U+0130 lowers to two
 * code points. "Cased" here is categories Lu, Ll and Lt; Python also
 * counts the few Other_Lowercase/Other_Uppercase characters (e.g. the
 * circled letters), so a sigma next to one of those may differ. Returns
 * the output length. */
static size_t clip_lower(int32_t *out, const int32_t *w, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = w[i];
        if (c == 0x130) {
            out[o++] = 'i';
            out[o++] = 0x307;
            continue;
        }
        if (c == 0x3A3) {
            size_t a = i, b = i + 1;
            while (a > 0 && is_case_ignorable(w[a - 1])) a--;
            while (b < n && is_case_ignorable(w[b])) b++;
            int fin = a > 0 && is_cased(w[a - 1]) && !(b < n && is_cased(w[b]));
            out[o++] = fin ? 0x3C2 : 0x3C3;
            continue;
        }
        out[o++] = utf8proc_tolower(c);
    }
    return o;
}

/* ---- pre-tokenizer ------------------------------------------------- */

static int match_ascii(const int32_t *w, size_t n, size_t i, const char *s) {
    size_t k = strlen(s);
    if (i + k > n) return 0;
    for (size_t j = 0; j < k; j++)
        if (w[i + j] != (unsigned char)s[j]) return 0;
    return 1;
}

/* Length of a contraction piece at w[i] ("'s", "'ll", ...), or 0. The
 * reference matches these case-insensitively: "s" also matches U+017F
 * (long s), whose case fold is "s". */
static size_t match_contraction(const int32_t *w, size_t n, size_t i) {
    if (w[i] != '\'' || i + 1 >= n) return 0;
    int32_t a = w[i + 1] < 128 ? (int32_t)(w[i + 1] | 0x20) : w[i + 1];
    if (a == 's' || a == 0x17F || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= n) return 0;
    int32_t b = w[i + 2] < 128 ? (int32_t)(w[i + 2] | 0x20) : w[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
        (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* Length of the piece starting at w[i] by the reference's pattern; sets
 * *special to the special id when the piece is a special token string. */
static size_t next_piece(const uad_clip_tokenizer *t, const int32_t *w,
                         size_t n, size_t i, int32_t *special) {
    *special = -1;
    if (match_ascii(w, n, i, CLIP_SOT)) {
        *special = t->sot;
        return strlen(CLIP_SOT);
    }
    if (match_ascii(w, n, i, CLIP_EOT)) {
        *special = t->eot;
        return strlen(CLIP_EOT);
    }
    size_t k = match_contraction(w, n, i);
    if (k) return k;
    if (is_letter(w[i])) {
        for (k = i + 1; k < n && is_letter(w[k]);) k++;
        return k - i;
    }
    if (is_number(w[i])) return 1;
    for (k = i + 1; k < n && !is_letter(w[k]) && !is_number(w[k]) &&
                    !py_isspace(w[k]);)
        k++;
    return k - i;
}

/* Scratch for one chunk, sized from its NFC length m (code points <= m). */
typedef struct clip_scratch {
    int32_t *low;   /* 2m: a lower-cased word                       */
    char *enc;      /* byte-encoded piece + "</w>"                  */
    size_t *off;    /* symbol boundaries                            */
    int32_t *rank;
    uint8_t *fresh;
    char *key;      /* "first second" of a pair                     */
} clip_scratch;

/* BPE ids of the piece low[0..n). */
static uad_status clip_piece(ivec *ids, const uad_clip_tokenizer *t,
                             const int32_t *p, size_t n, clip_scratch *s) {
    size_t e = 0, nsym = 0;
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t k = put_utf8(u, p[i]);
        for (size_t j = 0; j < k; j++) {
            uint8_t b = (uint8_t)u[j];
            s->off[nsym++] = e;
            memcpy(s->enc + e, t->bytesym[b], t->bytesym_len[b]);
            e += t->bytesym_len[b];
        }
    }
    memcpy(s->enc + e, "</w>", 4);
    e += 4;
    s->off[nsym] = e;
    return bpe_piece(ids, t, s->enc, e, s->off, nsym, s->rank, s->fresh,
                     s->key);
}

/* Pre-tokenize and encode one lower-cased word. */
static uad_status clip_word(ivec *ids, const uad_clip_tokenizer *t,
                            const int32_t *w, size_t n, clip_scratch *s) {
    for (size_t i = 0; i < n;) {
        int32_t special;
        size_t k = next_piece(t, w, n, i, &special);
        uad_status st = special >= 0 ? ivec_push(ids, special)
                                     : clip_piece(ids, t, w + i, k, s);
        if (st != UAD_OK) return st;
        i += k;
    }
    return UAD_OK;
}

static void scratch_free(clip_scratch *s) {
    free(s->low);
    free(s->enc);
    free(s->off);
    free(s->rank);
    free(s->fresh);
    free(s->key);
}

static uad_status scratch_alloc(clip_scratch *s, size_t m) {
    /* A code point is at most 4 UTF-8 bytes, each encoded in at most
     * 2 bytes; lower-casing at most doubles the code points. */
    size_t bytes = 8 * (m + 1), enc = 2 * bytes + 8;
    s->low = uad_malloc((2 * m + 2) * sizeof *s->low);
    s->enc = uad_malloc(enc);
    s->off = uad_malloc((bytes + 2) * sizeof *s->off);
    s->rank = uad_malloc((bytes + 2) * sizeof *s->rank);
    s->fresh = uad_malloc(bytes + 2);
    s->key = uad_malloc(2 * enc + 2);
    if (s->low && s->enc && s->off && s->rank && s->fresh && s->key)
        return UAD_OK;
    scratch_free(s);
    return UAD_ERR_NOMEM;
}

/* One chunk of text free of exact special-token strings. */
static uad_status clip_chunk(ivec *ids, const uad_clip_tokenizer *t,
                             const char *text, size_t n) {
    char *clean = uad_malloc(12 * n + 1);
    if (!clean) return UAD_ERR_NOMEM;
    uad_status st = clip_clean(clean, text, n, t->split_cjk);
    char *nfc = st == UAD_OK ? (char *)utf8proc_NFC((utf8proc_uint8_t *)clean)
                             : NULL;
    free(clean);
    if (st != UAD_OK) return st;
    if (!nfc) return uad_fail(UAD_ERR_NOMEM, "out of memory (NFC)");
    size_t m = strlen(nfc), ncp = 0;
    int32_t *cp = uad_malloc((m + 1) * sizeof *cp);
    clip_scratch s = {0};
    if (!cp || scratch_alloc(&s, m) != UAD_OK) {
        free(cp);
        free(nfc);
        return UAD_ERR_NOMEM;
    }
    for (size_t i = 0; i < m;) {
        utf8proc_ssize_t k = utf8proc_iterate((utf8proc_uint8_t *)nfc + i,
                                              (utf8proc_ssize_t)(m - i),
                                              &cp[ncp++]);
        UAD_ASSERT(k > 0);  /* utf8proc wrote it */
        i += (size_t)k;
    }
    for (size_t i = 0; st == UAD_OK && i < ncp;) {
        while (i < ncp && py_isspace(cp[i])) i++;
        size_t j = i;
        while (j < ncp && !py_isspace(cp[j])) j++;
        if (j > i) {
            size_t nl = clip_lower(s.low, cp + i, j - i);
            st = clip_word(ids, t, s.low, nl, &s);
        }
        i = j;
    }
    scratch_free(&s);
    free(cp);
    free(nfc);
    return st;
}

/* ---- public entry points ------------------------------------------- */

uad_status uad_clip_tokenize(int32_t **ids, size_t *n,
                             const uad_clip_tokenizer *t, const char *text) {
    *ids = NULL;
    *n = 0;
    size_t len = strlen(text);
    if (len > CLIP_MAX_TEXT)
        return uad_fail(UAD_ERR_LIMIT, "text of %zu bytes is longer than "
                        "the tokenizer's limit of %d bytes", len,
                        CLIP_MAX_TEXT);
    ivec v = {0};
    uad_status st = UAD_OK;
    const char *p = text;
    /* Special-token strings written in the text are split out first,
     * case-sensitively, as Hugging Face's added-token trie does. */
    while (st == UAD_OK && *p) {
        const char *a = strstr(p, CLIP_SOT), *b = strstr(p, CLIP_EOT);
        const char *q = !a ? b : !b ? a : a < b ? a : b;
        size_t chunk = q ? (size_t)(q - p) : strlen(p);
        if (chunk) st = clip_chunk(&v, t, p, chunk);
        if (st != UAD_OK || !q) break;
        int sot = q == a;
        st = ivec_push(&v, sot ? t->sot : t->eot);
        p = q + strlen(sot ? CLIP_SOT : CLIP_EOT);
    }
    if (st != UAD_OK) {
        free(v.v);
        return st;
    }
    if (!v.v) v.v = uad_malloc(sizeof *v.v);  /* a freeable empty array */
    if (!v.v) return UAD_ERR_NOMEM;
    *ids = v.v;
    *n = v.n;
    return UAD_OK;
}

uad_status uad_clip_encode(int32_t *ids, int *n_used,
                           const uad_clip_tokenizer *t, const char *text,
                           int ctx) {
    UAD_ASSERT(ctx >= 2);
    *n_used = 0;
    int32_t *tok = NULL;
    size_t n = 0;
    uad_status st = uad_clip_tokenize(&tok, &n, t, text);
    if (st != UAD_OK) return st;
    /* Truncation drops tokens from the end but keeps the end token, as
     * both references do; padding repeats the pad id. */
    size_t keep = n < (size_t)ctx - 2 ? n : (size_t)ctx - 2;
    ids[0] = t->sot;
    memcpy(ids + 1, tok, keep * sizeof *ids);
    ids[keep + 1] = t->eot;
    for (size_t i = keep + 2; i < (size_t)ctx; i++) ids[i] = t->pad;
    free(tok);
    *n_used = (int)keep + 2;
    return UAD_OK;
}
