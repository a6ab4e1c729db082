/* test_priors.c - the anomaly-priors YAML reader: the MTD file, each
 * feature of the schema, and each error with its line:column. */
#include "check.h"
#include "testutil.h"
#include "uniadc.h"

#include <stdio.h>
#include <string.h>

/* Parse a string; returns the priors (or NULL, status in *st). */
static uad_priors *parse(const char *yaml, uad_status *st) {
    uad_priors *p = NULL;
    *st = uad_priors_parse(&p, yaml, strlen(yaml), "t.yaml");
    return p;
}

/* Expect failure with `status` and every needle in the message. */
static void expect_error(const char *yaml, uad_status status,
                         const char *where, const char *words) {
    uad_status st;
    uad_priors *p = parse(yaml, &st);
    CHECK(p == NULL);
    CHECK(st == status);
    CHECK_STR_CONTAINS(uad_last_error(), where);
    CHECK_STR_CONTAINS(uad_last_error(), words);
    uad_priors_free(p);
}

static void test_mtd_file(void) {
    const char *path = UAD_SOURCE_DIR "/../shared/datasets/mtd/priors.yaml";
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        printf("skip: %s not found\n", path);
        return;
    }
    fclose(fp);
    uad_priors *p = NULL;
    CHECK(uad_priors_load(&p, path) == UAD_OK);
    if (!p) return;
    CHECK(strcmp(p->object, "magnetic tile") == 0);
    CHECK(p->n_categories == 5);
    static const char *names[] = {"blowhole", "break", "crack", "fray",
                                  "uneven"};
    static const char *descs[] = {
        "black hole", "surface crumpling", "surface cracking",
        "surface abrasion", "surface unevenness with lighting variation"};
    static const unsigned sizes[] = {UAD_SIZE_SMALL, UAD_SIZE_SMALL,
                                     UAD_SIZE_SMALL, UAD_SIZE_LARGE,
                                     UAD_SIZE_LARGE};
    for (int i = 0; i < 5 && i < p->n_categories; i++) {
        const uad_category *c = &p->categories[i];
        CHECK(strcmp(c->name, names[i]) == 0);
        CHECK(c->n_descriptions == 1);
        CHECK(strcmp(c->descriptions[0], descs[i]) == 0);
        CHECK(c->n_negatives == 0);
        CHECK(c->sizes == sizes[i]);
        CHECK(c->shapes == (i == 0 ? (unsigned)UAD_SHAPE_ELLIPSE : 0u));
        CHECK(c->foreground == 1);
        CHECK(uad_priors_find(p, names[i]) == i);
    }
    CHECK(uad_priors_find(p, "scratch") == -1);
    uad_priors_free(p);
}

static void test_features(void) {
    uad_status st;
    uad_priors *p = parse(
        "categories:\n"
        "  - name: no\n"
        "    description: a dent\n"
        "    shape: hollow_ellipse\n"
        "    size: [small, large]\n"
        "    negative_description: [clean, smooth surface]\n"
        "    foreground: OFF\n"
        "  - name: 'on'\n"
        "    description: [x, y, z]\n"
        "    shape: [rectangle, line, polygon, brush, perlin, foreground]\n"
        "    size: medium\n"
        "    negative_description: plain\n"
        "    foreground: Yes\n"
        "  - {name: null, description: n, foreground: false}\n"
        "  - {name: 123, description: n, foreground: TRUE}\n"
        "  - {name: true, description: n, foreground: no, shape: []}\n",
        &st);
    CHECK(st == UAD_OK);
    if (!p) return;
    CHECK(p->object == NULL);
    CHECK(p->n_categories == 5);
    const uad_category *c = p->categories;
    CHECK(strcmp(c[0].name, "no") == 0);
    CHECK(c[0].n_descriptions == 1 && !strcmp(c[0].descriptions[0], "a dent"));
    CHECK(c[0].shapes == UAD_SHAPE_HOLLOW_ELLIPSE);
    CHECK(c[0].sizes == (UAD_SIZE_SMALL | UAD_SIZE_LARGE));
    CHECK(c[0].n_negatives == 2);
    CHECK(!strcmp(c[0].negatives[1], "smooth surface"));
    CHECK(c[0].foreground == 0);
    CHECK(strcmp(c[1].name, "on") == 0);
    CHECK(c[1].n_descriptions == 3 && !strcmp(c[1].descriptions[2], "z"));
    CHECK(c[1].shapes == 0xE7u);  /* all but ellipse and hollow_ellipse */
    CHECK(c[1].sizes == UAD_SIZE_MEDIUM);
    CHECK(c[1].n_negatives == 1 && !strcmp(c[1].negatives[0], "plain"));
    CHECK(c[1].foreground == 1);
    CHECK(strcmp(c[2].name, "null") == 0 && c[2].foreground == 0);
    CHECK(strcmp(c[3].name, "123") == 0 && c[3].foreground == 1);
    CHECK(strcmp(c[4].name, "true") == 0 && c[4].foreground == 0);
    CHECK(c[4].shapes == 0 && c[4].sizes == 0);
    CHECK(uad_priors_find(p, "null") == 2);
    uad_priors_free(p);

    /* Names of bits, both ways. */
    CHECK(strcmp(uad_shape_name(UAD_SHAPE_HOLLOW_ELLIPSE), "hollow_ellipse")
          == 0);
    CHECK(strcmp(uad_shape_name(UAD_SHAPE_FOREGROUND), "foreground") == 0);
    CHECK(strcmp(uad_size_name(UAD_SIZE_MEDIUM), "medium") == 0);
    CHECK(uad_shape_name(3) == NULL && uad_shape_name(1u << 8) == NULL);
    CHECK(uad_size_name(0) == NULL && uad_size_name(UAD_SIZE_LARGE << 1) ==
          NULL);
}

/* A BOM and CRLF line ends parse, and positions still count from 1. */
static void test_bom_crlf(void) {
    uad_status st;
    uad_priors *p = parse("\xEF\xBB\xBFobject: tile\r\ncategories:\r\n"
                          "  - name: crack\r\n    description: thin\r\n",
                          &st);
    CHECK(st == UAD_OK);
    if (p) {
        CHECK(!strcmp(p->object, "tile") && p->n_categories == 1);
        CHECK(!strcmp(p->categories[0].descriptions[0], "thin"));
    }
    uad_priors_free(p);
    expect_error("\xEF\xBB\xBF" "categories:\r\n  - name: a\r\n"
                 "    descr: b\r\n", UAD_ERR_FORMAT, "t.yaml:3:5:",
                 "unknown key `descr`");
}

/* Schema violations inside a well-formed document. */
static void test_errors(void) {
    const uad_status F = UAD_ERR_FORMAT;
    expect_error("categories:\n  - name: a\n    description: b\n"
                 "    colour: red\n", F, "t.yaml:4:5:",
                 "unknown key `colour` in category 1 (allowed: name, "
                 "description, shape, size, negative_description, "
                 "foreground)");
    expect_error("object: x\nobjects: y\ncategories: []\n", F, ":2:1:",
                 "unknown key `objects` in the top level (allowed: object, "
                 "categories)");
    expect_error("categories:\n  - {name: a, description: b}\n"
                 "  - {name: c, description: d}\n"
                 "  - {name: a, description: e}\n", F, ":4:5:",
                 "duplicate category name 'a' (also category 1)");
    expect_error("categories:\n  - name: a\n    description: b\n"
                 "    name: c\n", F, ":4:5:", "duplicate key `name`");
    expect_error("categories: [{name: a, description: b}]\ncategories: []\n",
                 F, ":2:1:",
                 "duplicate key `categories`");
    expect_error("categories:\n  - name: a\n    description: {x: 1}\n", F,
                 ":3:18:", "`description` must be a string or a list");
    expect_error("categories:\n  - name: a\n    description: [[x]]\n", F,
                 ":3:19:", "items of `description` must be strings");
    expect_error("categories:\n  - {name: [a], description: b}\n", F,
                 ":2:12:", "`name` must be a string");
    expect_error("object: [x]\ncategories: []\n", F, ":1:9:",
                 "`object` must be a string");
    expect_error("categories:\n  - {name: a, description: b, shape: "
                 "[line, circle]}\n", F, ":2:45:",
                 "unknown shape word 'circle' (accepted: rectangle, line, "
                 "polygon, ellipse, hollow_ellipse, brush, perlin, "
                 "foreground)");
    expect_error("categories:\n  - {name: a, description: b, size: huge}\n",
                 F, ":2:37:", "unknown size word 'huge' (accepted: small, "
                 "medium, large)");
    expect_error("categories:\n  - {name: a, description: b, foreground: "
                 "maybe}\n", F, ":2:43:", "`foreground` must be a boolean");
    expect_error("categories:\n  - {description: b}\n", F, ":2:5:",
                 "category 1 has no `name`");
    expect_error("categories:\n  - {name: a}\n", F, ":2:5:",
                 "category 'a' has no `description`");
    expect_error("categories:\n  - {name: '', description: b}\n", F,
                 ":2:12:", "name is empty");
    expect_error("categories:\n  - {name: a, description: []}\n", F,
                 ":2:28:", "`description` is an empty list");
    expect_error("object: x\ncategories: []\n", F, ":2:13:",
                 "`categories` is empty");
    expect_error("object: x\n", F, ":1:1:", "missing `categories`");
    expect_error("categories: {a: 1}\n", F, ":1:13:",
                 "`categories` must be a list of mappings");
    expect_error("categories: [a]\n", F, ":1:14:",
                 "category 1 must be a mapping");
}

/* Document structure, libyaml syntax errors, aliases and encodings. */
static void test_document_errors(void) {
    const uad_status F = UAD_ERR_FORMAT;
    expect_error("- a\n- b\n", F, ":1:1:", "the top level must be a mapping");
    expect_error("", F, ":1:1:", "empty document");
    expect_error("categories: [{name: a, description: b}]\n---\nx: 1\n", F,
                 ":2:1:",
                 "more than one YAML document");
    /* libyaml's own syntax messages, with its position. */
    expect_error("categories: [{name: a, description: b}\n", F, "t.yaml:2:1:",
                 "YAML syntax error: while parsing a flow sequence "
                 "did not find expected ',' or ']'");
    expect_error("categories:\n  - name: a\n    description: \"b\n", F,
                 ":4:1:", "YAML syntax error: while scanning a quoted scalar "
                 "found unexpected end of stream");
    expect_error("object: x\n  y: z\n", F, ":2:4:", "YAML syntax error: "
                 "mapping values are not allowed in this context");
    expect_error("object: x\n\tcategories: []\n", F, ":2:1:",
                 "a tab character that violates indentation");
    /* Anchors and aliases are refused. */
    expect_error("categories: &a [1]\n", F, ":1:13:", "anchors (&name) are not "
                 "supported");
    expect_error("categories:\n  - {name: a, description: *d}\n", F,
                 ":2:28:", "aliases (*name) are not supported");
    /* Not UTF-8: Latin-1 e-acute on line 2, column 24. */
    expect_error("categories:\n  - {name: a, desc: caf\xE9}\n", F,
                 "t.yaml:2:24:", "not UTF-8 text (byte 0xE9)");
    expect_error("\xFF\xFE" "c\0a\0", F, ":1:1:", "not UTF-8");
    /* A NUL inside a scalar (via an escape) is refused. */
    expect_error("categories:\n  - {name: \"a\\0b\", description: c}\n", F,
                 ":2:12:", "name contains a NUL character");
}

/* Inputs over 1 MiB are refused before parsing. */
static void test_limits(void) {
    size_t n = ((size_t)1 << 20) + 1;
    char *big = malloc(n);
    if (!big) return;
    memset(big, '#', n);
    uad_priors *p = NULL;
    CHECK(uad_priors_parse(&p, big, n, "big.yaml") == UAD_ERR_LIMIT);
    CHECK(p == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), "big.yaml: 1048577 bytes");
    free(big);

    /* Deep nesting stops at the first value of the wrong kind. */
    char deep[4096];
    strcpy(deep, "categories:\n  - {name: a, description: ");
    size_t len = strlen(deep);
    for (int i = 0; i < 1000; i++) deep[len++] = '[';
    deep[len] = 0;
    expect_error(deep, UAD_ERR_FORMAT, ":2:29:",
                 "items of `description` must be strings");

    /* A file on disk: errors carry its path, and the size limit holds
     * before the file is read. */
    FILE *fp = fopen("bad_priors.yaml", "wb");
    if (fp) {
        fputs("categories:\n  - {name: a, description: b, size: tiny}\n", fp);
        fclose(fp);
        CHECK(uad_priors_load(&p, "bad_priors.yaml") == UAD_ERR_FORMAT);
        CHECK_STR_CONTAINS(uad_last_error(), "bad_priors.yaml:2:37: unknown "
                           "size word 'tiny'");
    }
    fp = fopen("big_priors.yaml", "wb");
    if (fp) {
        for (int i = 0; i < 70000; i++) fputs("# padding line\n", fp);
        fclose(fp);
        CHECK(uad_priors_load(&p, "big_priors.yaml") == UAD_ERR_LIMIT);
        CHECK_STR_CONTAINS(uad_last_error(), "big_priors.yaml: 1050000 bytes");
    }
    CHECK(uad_priors_load(&p, "/nonexistent/priors.yaml") == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "/nonexistent/priors.yaml");
}

int main(void) {
    tu_enter_tmpdir("priors");
    test_mtd_file();
    test_features();
    test_bom_crlf();
    test_errors();
    test_document_errors();
    test_limits();
    return check_report("test_priors");
}
