/* priors.c - anomaly priors (the per-category text and shape hints of the
 * UniADC paper, Table S1) read from YAML with libyaml's event API.
 *
 * The event API hands every scalar over as untyped text, so `name: no`
 * stays the string "no" (no YAML 1.1 boolean or null resolution happens
 * here). The schema is at most three levels deep (document mapping ->
 * categories list -> entry mapping -> word list) and every value of the
 * wrong kind is an error at its first event, so the parser never recurses
 * and never has to skip nested content: that bounds the nesting depth.
 * Anchors and aliases are rejected outright, which rules out alias bombs. */
#include "internal.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* Largest priors file accepted; real ones are a few hundred bytes. */
#define PRIORS_MAX_BYTES ((size_t)1 << 20)
/* Class ids must fit comfortably in label maps. */
#define PRIORS_MAX_CATEGORIES 1000

static const char *const k_shape_names[] = {
    "rectangle", "line", "polygon", "ellipse", "hollow_ellipse", "brush",
    "perlin", "foreground"};
static const char *const k_size_names[] = {"small", "medium", "large"};
#define N_SHAPES (int)(sizeof k_shape_names / sizeof *k_shape_names)
#define N_SIZES (int)(sizeof k_size_names / sizeof *k_size_names)

static const char *bit_name(unsigned bit, const char *const *names,
                            int n) {
    for (int i = 0; i < n; i++)
        if (bit == 1u << i) return names[i];
    return NULL;
}

const char *uad_shape_name(unsigned shape_bit) {
    return bit_name(shape_bit, k_shape_names, N_SHAPES);
}

const char *uad_size_name(unsigned size_bit) {
    return bit_name(size_bit, k_size_names, N_SIZES);
}

/* ---- parser state and error reporting ------------------------------ */

typedef struct pctx {
    yaml_parser_t parser;
    yaml_event_t ev;   /* the current event, valid while have_ev */
    int have_ev;
    const char *name;  /* file name for messages */
} pctx;

/* Fail with "NAME:LINE:COL: message" at a libyaml mark (0-based). */
static uad_status fail_at(const pctx *c, yaml_mark_t m, uad_status st,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static uad_status fail_at(const pctx *c, yaml_mark_t m, uad_status st,
                          const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return uad_fail(st, "%s:%zu:%zu: %s", c->name, m.line + 1, m.column + 1,
                    msg);
}

/* Advance to the next event; syntax errors carry libyaml's own text. */
static uad_status next_event(pctx *c) {
    if (c->have_ev) yaml_event_delete(&c->ev);
    c->have_ev = 0;
    if (!yaml_parser_parse(&c->parser, &c->ev)) {
        const yaml_parser_t *p = &c->parser;
        if (p->error == YAML_MEMORY_ERROR)
            return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", c->name);
        const char *problem = p->problem ? p->problem : "syntax error";
        if (p->context)
            return fail_at(c, p->problem_mark, UAD_ERR_FORMAT,
                           "YAML syntax error: %s %s", p->context, problem);
        return fail_at(c, p->problem_mark, UAD_ERR_FORMAT,
                       "YAML syntax error: %s", problem);
    }
    c->have_ev = 1;
    const yaml_event_t *e = &c->ev;
    const yaml_char_t *anchor = NULL;
    if (e->type == YAML_ALIAS_EVENT)
        return fail_at(c, e->start_mark, UAD_ERR_FORMAT,
                       "YAML aliases (*name) are not supported");
    if (e->type == YAML_SCALAR_EVENT) anchor = e->data.scalar.anchor;
    if (e->type == YAML_SEQUENCE_START_EVENT)
        anchor = e->data.sequence_start.anchor;
    if (e->type == YAML_MAPPING_START_EVENT)
        anchor = e->data.mapping_start.anchor;
    if (anchor)
        return fail_at(c, e->start_mark, UAD_ERR_FORMAT,
                       "YAML anchors (&name) are not supported");
    return UAD_OK;
}

static const char *scalar_text(const pctx *c) {
    return (const char *)c->ev.data.scalar.value;
}

/* Whether the current scalar is exactly `word` (case-folded if asked);
 * the length check keeps "true\0x" from matching "true". */
static int scalar_is(const pctx *c, const char *word, int fold) {
    if (c->ev.data.scalar.length != strlen(word)) return 0;
    return fold ? strcasecmp(scalar_text(c), word) == 0
                : strcmp(scalar_text(c), word) == 0;
}

/* The current scalar as a NUL-free string; "" is refused. */
static uad_status scalar_string(pctx *c, const char *what, char **out) {
    size_t n = c->ev.data.scalar.length;
    if (n == 0)
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "%s is empty", what);
    if (memchr(scalar_text(c), 0, n))
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "%s contains a NUL character", what);
    *out = uad_strdup(scalar_text(c));
    return *out ? UAD_OK : UAD_ERR_NOMEM;
}

/* ---- "a word or a list of words" values --------------------------- */

/* Called for each scalar of a value that is one scalar or a list. */
typedef uad_status (*scalar_fn)(pctx *c, const char *key, void *arg);

/* Read the value of `key`: one scalar, or a sequence of scalars (which
 * must not be empty if `nonempty`). */
static uad_status read_scalars(pctx *c, const char *key, scalar_fn fn,
                               void *arg, int nonempty) {
    uad_status st;
    if ((st = next_event(c)) != UAD_OK) return st;
    if (c->ev.type == YAML_SCALAR_EVENT) return fn(c, key, arg);
    if (c->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "`%s` must be a string or a list of strings", key);
    yaml_mark_t start = c->ev.start_mark;
    for (;;) {
        if ((st = next_event(c)) != UAD_OK) return st;
        if (c->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (c->ev.type != YAML_SCALAR_EVENT)
            return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                           "items of `%s` must be strings", key);
        if ((st = fn(c, key, arg)) != UAD_OK) return st;
        nonempty = 0;
    }
    if (nonempty)
        return fail_at(c, start, UAD_ERR_FORMAT, "`%s` is an empty list",
                       key);
    return UAD_OK;
}

typedef struct strlist {
    char ***items;
    int *n;
} strlist;

static uad_status append_string(pctx *c, const char *key, void *arg) {
    strlist *l = arg;
    char *s = NULL;
    uad_status st = scalar_string(c, key, &s);
    if (st != UAD_OK) return st;
    char **grown = realloc(*l->items, (size_t)(*l->n + 1) * sizeof *grown);
    if (!grown) {
        free(s);
        return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", c->name);
    }
    grown[(*l->n)++] = s;
    *l->items = grown;
    return UAD_OK;
}

typedef struct wordset {
    const char *const *names;
    int n;
    unsigned *bits;
} wordset;

static uad_status add_word(pctx *c, const char *key, void *arg) {
    wordset *w = arg;
    for (int i = 0; i < w->n; i++) {
        if (scalar_is(c, w->names[i], 0)) {
            *w->bits |= 1u << i;
            return UAD_OK;
        }
    }
    char accepted[256] = "";
    for (int i = 0; i < w->n; i++) {
        strcat(accepted, i ? ", " : "");
        strcat(accepted, w->names[i]);
    }
    return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                   "unknown %s word '%.64s' (accepted: %s)", key,
                   scalar_text(c), accepted);
}

/* A YAML 1.1 style boolean in any case. */
static uad_status read_bool(pctx *c, const char *key, int *out) {
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    uad_status st = next_event(c);
    if (st != UAD_OK) return st;
    if (c->ev.type == YAML_SCALAR_EVENT) {
        for (int i = 0; i < 3; i++) {
            if (scalar_is(c, yes[i], 1)) return *out = 1, UAD_OK;
            if (scalar_is(c, no[i], 1)) return *out = 0, UAD_OK;
        }
    }
    return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                   "`%s` must be a boolean (true/false, yes/no, on/off)",
                   key);
}

/* ---- mappings ------------------------------------------------------ */

/* Index of the current key scalar in `keys`; fails on an unknown key
 * (listing the allowed ones), a non-scalar key or a repeated key. */
static uad_status mapping_key(pctx *c, const char *const *keys, int n,
                              int *seen, const char *where, int *idx) {
    if (c->ev.type != YAML_SCALAR_EVENT)
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "keys of %s must be plain strings", where);
    for (int i = 0; i < n; i++) {
        if (!scalar_is(c, keys[i], 0)) continue;
        if (seen[i])
            return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                           "duplicate key `%s` in %s", keys[i], where);
        seen[i] = 1;
        *idx = i;
        return UAD_OK;
    }
    char allowed[256] = "";
    for (int i = 0; i < n; i++) {
        strcat(allowed, i ? ", " : "");
        strcat(allowed, keys[i]);
    }
    return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                   "unknown key `%.64s` in %s (allowed: %s)", scalar_text(c),
                   where, allowed);
}

enum { K_NAME, K_DESC, K_SHAPE, K_SIZE, K_NEG, K_FG, K_COUNT };
static const char *const k_cat_keys[K_COUNT] = {
    "name", "description", "shape", "size", "negative_description",
    "foreground"};

/* The value of one key of a category entry. */
static uad_status category_value(pctx *c, uad_category *cat, int key) {
    uad_status st;
    switch (key) {
    case K_NAME:
        if ((st = next_event(c)) != UAD_OK) return st;
        if (c->ev.type != YAML_SCALAR_EVENT)
            return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                           "`name` must be a string");
        return scalar_string(c, "name", &cat->name);
    case K_DESC: {
        strlist l = {&cat->descriptions, &cat->n_descriptions};
        return read_scalars(c, "description", append_string, &l, 1);
    }
    case K_NEG: {
        strlist l = {&cat->negatives, &cat->n_negatives};
        return read_scalars(c, "negative_description", append_string, &l,
                            0);
    }
    case K_SHAPE: {
        wordset w = {k_shape_names, N_SHAPES, &cat->shapes};
        return read_scalars(c, "shape", add_word, &w, 0);
    }
    case K_SIZE: {
        wordset w = {k_size_names, N_SIZES, &cat->sizes};
        return read_scalars(c, "size", add_word, &w, 0);
    }
    default:
        return read_bool(c, "foreground", &cat->foreground);
    }
}

/* One entry of `categories`; the current event is its MAPPING_START. */
static uad_status parse_category(pctx *c, uad_category *cat, int index) {
    yaml_mark_t start = c->ev.start_mark;
    int seen[K_COUNT] = {0};
    char where[64];
    snprintf(where, sizeof where, "category %d", index + 1);
    cat->foreground = 1;
    for (;;) {
        uad_status st = next_event(c);
        if (st != UAD_OK) return st;
        if (c->ev.type == YAML_MAPPING_END_EVENT) break;
        int key = 0;
        if ((st = mapping_key(c, k_cat_keys, K_COUNT, seen, where, &key)) ||
            (st = category_value(c, cat, key)))
            return st;
    }
    if (!seen[K_NAME])
        return fail_at(c, start, UAD_ERR_FORMAT,
                       "%s has no `name`", where);
    if (!seen[K_DESC])
        return fail_at(c, start, UAD_ERR_FORMAT,
                       "category '%s' has no `description`", cat->name);
    return UAD_OK;
}

static void category_free(uad_category *cat) {
    free(cat->name);
    for (int i = 0; i < cat->n_descriptions; i++) free(cat->descriptions[i]);
    free(cat->descriptions);
    for (int i = 0; i < cat->n_negatives; i++) free(cat->negatives[i]);
    free(cat->negatives);
}

/* The `categories` list; reads up to and including its SEQUENCE_END. */
static uad_status parse_categories(pctx *c, uad_priors *p) {
    uad_status st = next_event(c);
    if (st != UAD_OK) return st;
    yaml_mark_t start = c->ev.start_mark;
    if (c->ev.type != YAML_SEQUENCE_START_EVENT)
        return fail_at(c, start, UAD_ERR_FORMAT,
                       "`categories` must be a list of mappings");
    for (;;) {
        if ((st = next_event(c)) != UAD_OK) return st;
        if (c->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (c->ev.type != YAML_MAPPING_START_EVENT)
            return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                           "category %d must be a mapping with `name` and "
                           "`description`", p->n_categories + 1);
        if (p->n_categories >= PRIORS_MAX_CATEGORIES)
            return fail_at(c, c->ev.start_mark, UAD_ERR_LIMIT,
                           "more than %d categories", PRIORS_MAX_CATEGORIES);
        uad_category *grown = realloc(
            p->categories, (size_t)(p->n_categories + 1) * sizeof *grown);
        if (!grown) return uad_fail(UAD_ERR_NOMEM, "%s: out of memory", c->name);
        p->categories = grown;
        uad_category *cat = &grown[p->n_categories++];
        memset(cat, 0, sizeof *cat);
        yaml_mark_t at = c->ev.start_mark;
        if ((st = parse_category(c, cat, p->n_categories - 1)) != UAD_OK)
            return st;
        for (int i = 0; i + 1 < p->n_categories; i++)
            if (strcmp(p->categories[i].name, cat->name) == 0)
                return fail_at(c, at, UAD_ERR_FORMAT,
                               "duplicate category name '%.64s' (also "
                               "category %d)", cat->name, i + 1);
    }
    if (p->n_categories == 0)
        return fail_at(c, start, UAD_ERR_FORMAT, "`categories` is empty");
    return UAD_OK;
}

/* ---- document ------------------------------------------------------ */

enum { T_OBJECT, T_CATEGORIES, T_COUNT };
static const char *const k_top_keys[T_COUNT] = {"object", "categories"};

/* The top-level mapping; the current event is its MAPPING_START. */
static uad_status parse_top(pctx *c, uad_priors *p) {
    yaml_mark_t start = c->ev.start_mark;
    int seen[T_COUNT] = {0};
    for (;;) {
        uad_status st = next_event(c);
        if (st != UAD_OK) return st;
        if (c->ev.type == YAML_MAPPING_END_EVENT) break;
        int key = 0;
        st = mapping_key(c, k_top_keys, T_COUNT, seen, "the top level", &key);
        if (st != UAD_OK) return st;
        if (key == T_CATEGORIES) {
            st = parse_categories(c, p);
        } else if ((st = next_event(c)) == UAD_OK) {
            if (c->ev.type != YAML_SCALAR_EVENT)
                return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                               "`object` must be a string");
            st = scalar_string(c, "object", &p->object);
        }
        if (st != UAD_OK) return st;
    }
    if (!seen[T_CATEGORIES])
        return fail_at(c, start, UAD_ERR_FORMAT,
                       "missing `categories` (a list of anomaly types)");
    return UAD_OK;
}

/* Stream -> one document -> top mapping -> end of stream. */
static uad_status parse_stream(pctx *c, uad_priors *p) {
    uad_status st;
    if ((st = next_event(c)) != UAD_OK) return st;  /* STREAM_START */
    if ((st = next_event(c)) != UAD_OK) return st;
    if (c->ev.type != YAML_DOCUMENT_START_EVENT)
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "empty document: expected a mapping with "
                       "`categories`");
    if ((st = next_event(c)) != UAD_OK) return st;
    if (c->ev.type != YAML_MAPPING_START_EVENT)
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "the top level must be a mapping with `categories`");
    if ((st = parse_top(c, p)) != UAD_OK) return st;
    if ((st = next_event(c)) != UAD_OK) return st;  /* DOCUMENT_END */
    if ((st = next_event(c)) != UAD_OK) return st;
    if (c->ev.type != YAML_STREAM_END_EVENT)
        return fail_at(c, c->ev.start_mark, UAD_ERR_FORMAT,
                       "more than one YAML document");
    return UAD_OK;
}

/* Offset of the first byte that breaks UTF-8 (overlong forms, surrogates
 * and code points above U+10FFFF included), or len if all is valid. */
static size_t utf8_bad_offset(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        int n = b < 0x80 ? 0 : b >= 0xC2 && b <= 0xDF ? 1
              : b >= 0xE0 && b <= 0xEF ? 2 : b >= 0xF0 && b <= 0xF4 ? 3 : -1;
        if (n < 0 || len - i <= (size_t)n) return i;  /* bad or cut */
        unsigned lo = 0x80, hi = 0xBF;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
        for (int k = 1; k <= n; k++) {
            unsigned cb = s[i + k];
            if (cb < (k == 1 ? lo : 0x80) || cb > (k == 1 ? hi : 0xBF))
                return i;
        }
        i += (size_t)n + 1;
    }
    return len;
}

/* Reject input that is too big or not UTF-8 before libyaml sees it. */
static uad_status check_bytes(const unsigned char *s, size_t len,
                              const char *name) {
    if (len > PRIORS_MAX_BYTES)
        return uad_fail(UAD_ERR_LIMIT, "%s: %zu bytes, more than the %zu "
                        "allowed for a priors file", name, len,
                        PRIORS_MAX_BYTES);
    size_t bad = utf8_bad_offset(s, len);
    if (bad == len) return UAD_OK;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < bad; i++) {
        if (s[i] == '\n') line++, col = 1;
        else if ((s[i] & 0xC0) != 0x80) col++;
    }
    return uad_fail(UAD_ERR_FORMAT, "%s:%zu:%zu: not UTF-8 text (byte "
                    "0x%02X); save the file as UTF-8", name, line, col,
                    s[bad]);
}

uad_status uad_priors_parse(uad_priors **out, const void *buf, size_t len,
                            const char *name) {
    const unsigned char *s = buf;
    *out = NULL;
    if (!name) name = "<priors>";
    uad_status st = check_bytes(s, len, name);
    if (st != UAD_OK) return st;

    /* A UTF-8 byte order mark is dropped here; with the encoding fixed
     * to UTF-8 libyaml would not skip it itself. */
    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        s += 3, len -= 3;

    uad_priors *p = uad_calloc(1, sizeof *p);
    if (!p) return UAD_ERR_NOMEM;
    pctx c;
    memset(&c, 0, sizeof c);
    c.name = name;
    if (!yaml_parser_initialize(&c.parser)) {
        free(p);
        return uad_fail(UAD_ERR_NOMEM, "%s: cannot start the YAML parser",
                        name);
    }
    yaml_parser_set_input_string(&c.parser, s, len);
    yaml_parser_set_encoding(&c.parser, YAML_UTF8_ENCODING);
    st = parse_stream(&c, p);
    if (c.have_ev) yaml_event_delete(&c.ev);
    yaml_parser_delete(&c.parser);
    if (st != UAD_OK) {
        uad_priors_free(p);
        return st;
    }
    *out = p;
    return UAD_OK;
}

uad_status uad_priors_load(uad_priors **out, const char *path) {
    *out = NULL;
    struct stat sb;
    /* Refuse a huge file before reading it into memory. */
    if (stat(path, &sb) == 0 && sb.st_size > (off_t)PRIORS_MAX_BYTES)
        return uad_fail(UAD_ERR_LIMIT, "%s: %lld bytes, more than the %zu "
                        "allowed for a priors file", path,
                        (long long)sb.st_size, PRIORS_MAX_BYTES);
    char *buf = NULL;
    size_t len = 0;
    uad_status st = uad_read_file(path, &buf, &len);
    if (st != UAD_OK) return st;
    st = uad_priors_parse(out, buf, len, path);
    free(buf);
    return st;
}

void uad_priors_free(uad_priors *p) {
    if (!p) return;
    for (int i = 0; i < p->n_categories; i++)
        category_free(&p->categories[i]);
    free(p->categories);
    free(p->object);
    free(p);
}

int uad_priors_find(const uad_priors *p, const char *name) {
    if (!p || !name) return -1;
    for (int i = 0; i < p->n_categories; i++)
        if (p->categories[i].name && strcmp(p->categories[i].name, name) == 0)
            return i;
    return -1;
}
