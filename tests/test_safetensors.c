/* test_safetensors.c - the safetensors reader and writer: round trips,
 * half-precision conversions against hand-computed values, files written
 * by an independent Python writer (scripts/safetensors_ref.py), and one
 * specific error per kind of malformed file. */
#include "check.h"
#include "testutil.h"
#include "uniadc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------- */

static int write_bytes(const char *path, const void *buf, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    size_t got = fwrite(buf, 1, n, fp);
    return fclose(fp) == 0 && got == n;
}

/* Read a whole file; caller frees. */
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, fp) : 0;
    fclose(fp);
    return b;
}

/* u64 little-endian length + header + `data_len` bytes 0..n-1. */
static unsigned char *make_file(const char *header, size_t data_len,
                                size_t *n) {
    size_t h = strlen(header);
    *n = 8 + h + data_len;
    unsigned char *b = malloc(*n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> 8 * i);
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)i;
    return b;
}

/* Expect uad_st_open_mem to fail on this header with `needle`. */
static void expect_bad(const char *header, size_t data_len,
                       uad_status status, const char *needle) {
    size_t n;
    unsigned char *b = make_file(header, data_len, &n);
    uad_safetensors *st = NULL;
    CHECK(uad_st_open_mem(&st, b, n, "m.st") == status);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(uad_last_error(), "m.st: ");
    CHECK_STR_CONTAINS(uad_last_error(), needle);
    uad_st_free(st);
    free(b);
}

/* ---- the shared table (same as TENSORS in scripts/safetensors_ref.py) */

static const float k_weight[6] = {0.5f, -1.0f, 2.0f, 3.25f, -4.5f, 0.001f};
/* 1.0, -2.5, 65504, 2^-24 and +inf as IEEE binary16 bit patterns. */
static const uint16_t k_half[5] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00};
/* 1.0, -2.5, 0.15625 as bfloat16 (top halves of the binary32 values). */
static const uint16_t k_brain[3] = {0x3F80, 0xC020, 0x3E20};
static const double k_double = 3.141592653589793;
static const int32_t k_ints[4] = {1, -2, 3, -4};
static const int64_t k_longs[2] = {-(INT64_C(1) << 40), 7};
static const int16_t k_shorts[2] = {-300, 300};
static const int8_t k_tiny[2] = {-5, 5};
static const uint8_t k_bytes[3] = {0, 127, 255};
static const uint8_t k_mask[4] = {1, 0, 0, 1};

/* Add the table to a writer in the order of the Python table. */
static void add_table(uad_st_writer *w) {
    const int64_t s23[2] = {2, 3}, s5[1] = {5}, s3[1] = {3}, s22[2] = {2, 2};
    const int64_t s2[1] = {2}, s4[1] = {4}, s04[2] = {0, 4};
    CHECK(uad_st_writer_add(w, "weight", UAD_DT_F32, 2, s23, k_weight) == 0);
    CHECK(uad_st_writer_add(w, "half", UAD_DT_F16, 1, s5, k_half) == 0);
    CHECK(uad_st_writer_add(w, "brain", UAD_DT_BF16, 1, s3, k_brain) == 0);
    CHECK(uad_st_writer_add(w, "double", UAD_DT_F64, 0, NULL, &k_double)
          == 0);
    CHECK(uad_st_writer_add(w, "ints", UAD_DT_I32, 2, s22, k_ints) == 0);
    CHECK(uad_st_writer_add(w, "longs", UAD_DT_I64, 1, s2, k_longs) == 0);
    CHECK(uad_st_writer_add(w, "shorts", UAD_DT_I16, 1, s2, k_shorts) == 0);
    CHECK(uad_st_writer_add(w, "tiny", UAD_DT_I8, 1, s2, k_tiny) == 0);
    CHECK(uad_st_writer_add(w, "bytes", UAD_DT_U8, 1, s3, k_bytes) == 0);
    CHECK(uad_st_writer_add(w, "mask", UAD_DT_BOOL, 1, s4, k_mask) == 0);
    CHECK(uad_st_writer_add(w, "empty", UAD_DT_F32, 2, s04, NULL) == 0);
}

/* Check every tensor of the table in an opened file. */
static void check_table(const uad_safetensors *st, const char *source) {
    CHECK(uad_st_count(st) == 11);
    CHECK(uad_st_meta(st, "format") && !strcmp(uad_st_meta(st, "format"),
                                              "pt"));
    CHECK(uad_st_meta(st, "source") && !strcmp(uad_st_meta(st, "source"),
                                              source));
    CHECK(uad_st_meta(st, "missing") == NULL);
    const uad_st_tensor *t = uad_st_find(st, "weight");
    float f[8];
    CHECK(t && t->dtype == UAD_DT_F32 && t->ndim == 2 && t->shape[0] == 2 &&
          t->shape[1] == 3 && t->nbytes == 24 && uad_st_numel(t) == 6);
    if (t && uad_st_to_f32(t, f) == UAD_OK)
        for (int i = 0; i < 6; i++) CHECK(f[i] == k_weight[i]);
    t = uad_st_find(st, "half");
    CHECK(t && t->dtype == UAD_DT_F16 && t->nbytes == 10);
    if (t && uad_st_to_f32(t, f) == UAD_OK) {
        CHECK(f[0] == 1.0f && f[1] == -2.5f && f[2] == 65504.0f);
        CHECK(f[3] == ldexpf(1.0f, -24) && isinf(f[4]) && f[4] > 0);
    }
    t = uad_st_find(st, "brain");
    if (t && uad_st_to_f32(t, f) == UAD_OK)
        CHECK(f[0] == 1.0f && f[1] == -2.5f && f[2] == 0.15625f);
    t = uad_st_find(st, "double");
    CHECK(t && t->dtype == UAD_DT_F64 && t->ndim == 0 && t->nbytes == 8 &&
          uad_st_numel(t) == 1);
    if (t && uad_st_to_f32(t, f) == UAD_OK) CHECK(f[0] == (float)k_double);
    t = uad_st_find(st, "ints");
    CHECK(t && t->dtype == UAD_DT_I32 && t->nbytes == 16 &&
          !memcmp(t->data, k_ints, 16));
    CHECK(t && uad_st_to_f32(t, f) == UAD_ERR_DATA);
    CHECK_STR_CONTAINS(uad_last_error(), "tensor 'ints': dtype I32 is not");
    t = uad_st_find(st, "longs");
    CHECK(t && t->dtype == UAD_DT_I64 && !memcmp(t->data, k_longs, 16));
    t = uad_st_find(st, "shorts");
    CHECK(t && t->dtype == UAD_DT_I16 && !memcmp(t->data, k_shorts, 4));
    t = uad_st_find(st, "tiny");
    CHECK(t && t->dtype == UAD_DT_I8 && !memcmp(t->data, k_tiny, 2));
    t = uad_st_find(st, "bytes");
    CHECK(t && t->dtype == UAD_DT_U8 && !memcmp(t->data, k_bytes, 3));
    t = uad_st_find(st, "mask");
    CHECK(t && t->dtype == UAD_DT_BOOL && !memcmp(t->data, k_mask, 4));
    t = uad_st_find(st, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4 &&
          t->nbytes == 0 && uad_st_numel(t) == 0);
    CHECK(t && uad_st_to_f32(t, f) == UAD_OK);
    CHECK(uad_st_find(st, "nope") == NULL);
}

/* ---- tests ---------------------------------------------------------- */

/* Our writer -> our reader (file and memory), and byte equality with the
 * committed file that scripts/safetensors_ref.py check accepted. */
static void test_round_trip(void) {
    uad_st_writer *w = uad_st_writer_create();
    CHECK(w != NULL);
    if (!w) return;
    CHECK(uad_st_writer_meta(w, "format", "pt") == UAD_OK);
    CHECK(uad_st_writer_meta(w, "source", "python") == UAD_OK);
    CHECK(uad_st_writer_meta(w, "source", "uniadc") == UAD_OK);  /* replaces */
    add_table(w);
    const int64_t s1[1] = {1};
    CHECK(uad_st_writer_add(w, "ints", UAD_DT_U8, 1, s1, "x") ==
          UAD_ERR_USAGE);
    CHECK_STR_CONTAINS(uad_last_error(), "tensor 'ints' added twice");
    CHECK(uad_st_writer_add(w, "__metadata__", UAD_DT_U8, 1, s1, "x") ==
          UAD_ERR_USAGE);
    const int64_t neg[1] = {-1};
    CHECK(uad_st_writer_add(w, "n", UAD_DT_U8, 1, neg, "x") == UAD_ERR_USAGE);
    CHECK(uad_st_writer_save(w, "st_uniadc.safetensors") == UAD_OK);
    CHECK(uad_st_writer_save(w, "no/such/dir/x.safetensors") == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "no/such/dir/x.safetensors");
    uad_st_writer_free(w);

    uad_safetensors *st = NULL;
    CHECK(uad_st_open(&st, "st_uniadc.safetensors") == UAD_OK);
    if (st) check_table(st, "uniadc");
    /* Header order is insertion order; the data start is 8-aligned. */
    CHECK(st && !strcmp(uad_st_tensor_at(st, 0)->name, "weight"));
    CHECK(st && !strcmp(uad_st_tensor_at(st, 10)->name, "empty"));
    CHECK(st && uad_st_tensor_at(st, 11) == NULL);
    uad_st_free(st);

    size_t n = 0, m = 0;
    unsigned char *ours = read_all("st_uniadc.safetensors", &n);
    unsigned char *ref = read_all(UAD_SOURCE_DIR
                                  "/tests/data/st_uniadc.safetensors", &m);
    CHECK(ours && n > 8);
    uint64_t hlen = 0;
    if (ours) memcpy(&hlen, ours, 8);
    CHECK(hlen % 8 == 0);
    CHECK(ours && !memcmp(ours + 8, "{\"__metadata__\":{\"format\":\"pt\"", 30));
    CHECK(ref && n == m && !memcmp(ours, ref, n));
    if (ours && uad_st_open_mem(&st, ours, n, "mem") == UAD_OK) {
        check_table(st, "uniadc");
        uad_st_free(st);
    }
    free(ours);
    free(ref);
}

/* A file from the independent Python writer: JSON sorted by name, data
 * in reverse order. */
static void test_python_file(void) {
    uad_safetensors *st = NULL;
    CHECK(uad_st_open(&st, UAD_SOURCE_DIR
                      "/tests/data/st_python.safetensors") == UAD_OK);
    if (!st) return;
    check_table(st, "python");
    CHECK(!strcmp(uad_st_tensor_at(st, 0)->name, "brain"));
    /* "weight" sorts last by name, so its data comes first. */
    const uad_st_tensor *t = uad_st_find(st, "weight");
    const uad_st_tensor *b = uad_st_find(st, "brain");
    CHECK(t && b && (const char *)t->data < (const char *)b->data);
    uad_st_free(st);
}

/* Hand-computed half-precision values, from odd (unaligned) addresses. */
static void test_conversions(void) {
    /* binary16: 1.0, -2.5, 65504 (largest), 2^-24 (smallest subnormal),
     * 1023 * 2^-24 (largest subnormal), 2^-14 (smallest normal), +inf,
     * -inf, -0, nan. */
    const uint16_t h[10] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x03FF,
                            0x0400, 0x7C00, 0xFC00, 0x8000, 0x7E00};
    unsigned char buf[1 + sizeof h];
    memcpy(buf + 1, h, sizeof h);
    uad_st_tensor t = {"h", UAD_DT_F16, 1, {10}, buf + 1, sizeof h};
    float f[10];
    CHECK(uad_st_to_f32(&t, f) == UAD_OK);
    CHECK(f[0] == 1.0f && f[1] == -2.5f && f[2] == 65504.0f);
    CHECK(f[3] == 5.9604644775390625e-08f);
    CHECK(f[4] == 1023.0f * 5.9604644775390625e-08f);
    CHECK(f[5] == 6.103515625e-05f);
    CHECK(isinf(f[6]) && f[6] > 0 && isinf(f[7]) && f[7] < 0);
    CHECK(f[8] == 0.0f && signbit(f[8]));
    CHECK(isnan(f[9]));

    /* bfloat16: 1.0, -2.5, 65504 rounds to 65280 (0x477F), +inf, 2^-133
     * (a bf16 subnormal, 0x0001). */
    const uint16_t b[5] = {0x3F80, 0xC020, 0x477F, 0x7F80, 0x0001};
    memcpy(buf + 1, b, sizeof b);
    uad_st_tensor tb = {"b", UAD_DT_BF16, 1, {5}, buf + 1, sizeof b};
    CHECK(uad_st_to_f32(&tb, f) == UAD_OK);
    CHECK(f[0] == 1.0f && f[1] == -2.5f && f[2] == 65280.0f);
    CHECK(isinf(f[3]) && f[4] == ldexpf(1.0f, -133));

    /* F64 and F32 at odd addresses. */
    unsigned char buf8[1 + 16];
    const double d[2] = {-0.1, 1e300};
    memcpy(buf8 + 1, d, 16);
    uad_st_tensor td = {"d", UAD_DT_F64, 1, {2}, buf8 + 1, 16};
    CHECK(uad_st_to_f32(&td, f) == UAD_OK);
    CHECK(f[0] == -0.1f && isinf(f[1]));
    CHECK(uad_dtype_size(UAD_DT_BF16) == 2 && uad_dtype_size(UAD_DT_BOOL) == 1);
    CHECK(!strcmp(uad_dtype_name(UAD_DT_I16), "I16"));
    CHECK(uad_dtype_name((uad_dtype)42) == NULL);
}

#define T_U8(name, len, b, e)                                              \
    "\"" name "\":{\"dtype\":\"U8\",\"shape\":[" #len "],"                 \
    "\"data_offsets\":[" #b "," #e "]}"

/* Each malformed header gives its own message naming file and tensor. */
static void test_malformed_headers(void) {
    const uad_status F = UAD_ERR_FORMAT;
    expect_bad("[1,2]", 0, F, "header JSON is not an object");
    expect_bad("{\"a\":", 0, F, "header is not valid JSON");
    expect_bad("{} x", 0, F, "unexpected bytes after the header JSON");
    expect_bad("{" T_U8("a", 4, 0, 4) "}", 2, F,
               "tensor 'a': data_offsets [0, 4] go beyond the 2 bytes of "
               "data");
    expect_bad("{" T_U8("a", 4, 0, 4) "," T_U8("b", 4, 2, 6) "}", 6, F,
               "tensor 'b' overlaps tensor 'a'");
    expect_bad("{" T_U8("a", 2, 0, 2) "," T_U8("b", 2, 4, 6) "}", 6, F,
               "tensor 'b': 2 unused bytes before its data");
    expect_bad("{" T_U8("a", 2, 0, 2) "}", 5, F,
               "3 bytes of data after the last tensor belong to no tensor");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":"
               "[0,8]}}", 8, F,
               "tensor 'w': shape x F32 needs 12 bytes but data_offsets "
               "span 8");
    expect_bad("{\"w\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":"
               "[0,1]}}", 1, F, "tensor 'w': unknown dtype 'F8'");
    expect_bad("{\"w\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,1]}}",
               1, F, "tensor 'w': dtype is not a string");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, F,
               "__metadata__ value of 'k' is not a string");
    expect_bad("{\"__metadata__\":[]}", 0, F, "__metadata__ is not a JSON "
               "object");
    expect_bad("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, F,
               "__metadata__ key 'k' appears twice");
    expect_bad("{\"__metadata__\":{},\"__metadata__\":{}}", 0, F,
               "__metadata__ appears twice");
}

/* Malformed tensor entries: shapes, offsets, fields, names. */
static void test_malformed_entries(void) {
    const uad_status F = UAD_ERR_FORMAT;
    expect_bad("{" T_U8("v", -1, 0, 0) "}", 0, F,
               "tensor 'v': shape entry 0 is not a non-negative integer");
    expect_bad("{" T_U8("v", 1.5, 0, 0) "}", 0, F,
               "tensor 'v': shape entry 0 is not a non-negative integer");
    expect_bad("{" T_U8("v", 1e300, 0, 0) "}", 0, F,
               "tensor 'v': shape entry 0 is not a non-negative");
    expect_bad("{\"v\":{\"dtype\":\"U8\",\"shape\":\"2\",\"data_offsets\":"
               "[0,2]}}", 2, F, "tensor 'v': shape is not an array");
    expect_bad("{\"v\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,1]}}", 1, F,
               "tensor 'v': 9 dimensions, at most 8 are supported");
    expect_bad("{\"v\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,"
               "4503599627370496],\"data_offsets\":[0,0]}}", 0, F,
               "tensor 'v': shape is too large");
    expect_bad("{" T_U8("v", 1, 3, 2) "}", 3, F,
               "tensor 'v': data_offsets [3, 2] end before they begin");
    expect_bad("{" T_U8("v", 1, 0, -1) "}", 3, F,
               "tensor 'v': data_offsets must be two non-negative integers");
    expect_bad("{\"v\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":"
               "[0,1,2]}}", 1, F, "tensor 'v': data_offsets must be two");
    expect_bad("{" T_U8("a", 1, 0, 1) "," T_U8("a", 1, 1, 2) "}", 2, F,
               "tensor 'a' appears twice in the header");
    expect_bad("{\"v\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],"
               "\"data_offsets\":[0,1]}}", 1, F,
               "tensor 'v': field 'dtype' appears twice");
    expect_bad("{\"v\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":"
               "[0,1],\"extra\":0}}", 1, F, "tensor 'v': unknown field "
               "'extra'");
    expect_bad("{\"v\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, F,
               "tensor 'v': missing field 'data_offsets'");
    expect_bad("{\"v\":[]}", 0, F, "tensor 'v': entry is not a JSON object");

}

/* An empty header is a valid file with no tensors. */
static void test_empty_header(void) {
    size_t n;
    unsigned char *b = make_file("{}      ", 0, &n);
    uad_safetensors *st = NULL;
    CHECK(uad_st_open_mem(&st, b, n, "m.st") == UAD_OK);
    CHECK(st && uad_st_count(st) == 0 && uad_st_find(st, "a") == NULL);
    uad_st_free(st);
    free(b);
}

/* Damage at the level of the file: sizes and lengths. */
static void test_malformed_files(void) {
    uad_safetensors *st = NULL;
    CHECK(write_bytes("st_empty.safetensors", "", 0));
    CHECK(uad_st_open(&st, "st_empty.safetensors") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(),
                       "st_empty.safetensors: empty file (0 bytes)");
    CHECK(uad_st_open_mem(&st, "\x02\0\0\0\0", 5, "m.st") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "m.st: truncated: 5 bytes");

    /* Header length beyond the file, and beyond the 100 MB limit. */
    unsigned char b[24] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(uad_st_open_mem(&st, b, sizeof b, "m.st") == UAD_ERR_FORMAT);
    CHECK_STR_CONTAINS(uad_last_error(), "m.st: header length 100 goes "
                       "beyond the end of the file (24 bytes)");
    b[7] = 0x80;
    CHECK(uad_st_open_mem(&st, b, sizeof b, "m.st") == UAD_ERR_LIMIT);
    CHECK_STR_CONTAINS(uad_last_error(), "m.st: header length "
                       "9223372036854775908 is over the 100000000-byte limit");
    /* ... and, past the end of so small a file, not safetensors at all */
    CHECK_STR_CONTAINS(uad_last_error(), "(not a safetensors file?)");

    /* A valid file cut short loses the end of its last tensor. */
    size_t n = 0;
    unsigned char *whole = read_all(UAD_SOURCE_DIR
                                    "/tests/data/st_python.safetensors", &n);
    CHECK(whole != NULL && n > 4);
    if (whole) {
        CHECK(write_bytes("st_cut.safetensors", whole, n - 4));
        CHECK(uad_st_open(&st, "st_cut.safetensors") == UAD_ERR_FORMAT);
        CHECK_STR_CONTAINS(uad_last_error(), "st_cut.safetensors: tensor "
                           "'brain': data_offsets [87, 93] go beyond the 89 "
                           "bytes of data");
        CHECK(write_bytes("st_cut.safetensors", whole, 100));
        CHECK(uad_st_open(&st, "st_cut.safetensors") == UAD_ERR_FORMAT);
        CHECK_STR_CONTAINS(uad_last_error(), "goes beyond the end of the "
                           "file (100 bytes)");
        /* A NUL byte inside the header. */
        whole[20] = 0;
        CHECK(uad_st_open_mem(&st, whole, n, "m.st") == UAD_ERR_FORMAT);
        CHECK_STR_CONTAINS(uad_last_error(), "m.st: header contains a NUL");
    }
    free(whole);
    CHECK(uad_st_open(&st, "/nonexistent/x.safetensors") == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "/nonexistent/x.safetensors");
    CHECK(st == NULL);
}

int main(void) {
    tu_enter_tmpdir("st");
    test_round_trip();
    test_python_file();
    test_conversions();
    test_malformed_headers();
    test_malformed_entries();
    test_empty_header();
    test_malformed_files();
    return check_report("test_safetensors");
}
