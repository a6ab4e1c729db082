/* test_util.c - random numbers, paths, atomic files, errors. */
#include "check.h"
#include "testutil.h"
#include "internal.h"

#include <sys/stat.h>
#include <unistd.h>

static void test_rng(void) {
    uad_rng a, b, c;
    uad_rng_seed(&a, 42);
    uad_rng_seed(&b, 42);
    uad_rng_seed(&c, 43);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = uad_rng_u64(&a), y = uad_rng_u64(&b);
        same &= x == y;
        diff += x != uad_rng_u64(&c);
    }
    CHECK(same);
    CHECK(diff == 100);
    /* Mean and variance of uniform and normal draws. */
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    const int N = 200000;
    uint64_t hist[7] = {0};
    for (int i = 0; i < N; i++) {
        double u = uad_rng_uniform(&a);
        CHECK(u >= 0 && u < 1);
        s += u;
        s2 += u * u;
        double z = uad_rng_normal(&a);
        n1 += z;
        n2 += z * z;
        hist[uad_rng_below(&a, 7)]++;
    }
    CHECK_NEAR(s / N, 0.5, 0.005);
    CHECK_NEAR(s2 / N - (s / N) * (s / N), 1.0 / 12, 0.002);
    CHECK_NEAR(n1 / N, 0.0, 0.01);
    CHECK_NEAR(n2 / N, 1.0, 0.02);
    for (int k = 0; k < 7; k++) CHECK_NEAR(hist[k] / (double)N, 1.0 / 7, 0.005);
    /* Forked streams differ from the parent and from each other. */
    uad_rng f1, f2;
    uad_rng_fork(&f1, &a, 1);
    uad_rng_fork(&f2, &a, 2);
    CHECK(uad_rng_u64(&f1) != uad_rng_u64(&f2));
}

static void test_paths(void) {
    char ext[16];
    uad_path_ext("a/b.c/IMG.JpEg", ext, sizeof ext);
    CHECK(!strcmp(ext, "jpeg"));
    uad_path_ext("a.b/noext", ext, sizeof ext);
    CHECK(!strcmp(ext, ""));
    char *j = uad_path_join("dir//", "x.png");
    CHECK(!strcmp(j, "dir/x.png"));
    free(j);
    size_t out;
    CHECK(!uad_mul_size(&out, SIZE_MAX / 2 + 1, 2));
    CHECK(uad_mul3_size(&out, 1000, 1000, 3) && out == 3000000);
}

static void test_afile(void) {
    char *dir = tu_tmpdir("test");
    char *sub = uad_path_join(dir, "a/b");
    CHECK(uad_mkdirs(sub) == UAD_OK);
    char *path = uad_path_join(sub, "f.txt");
    uad_afile f;
    CHECK(uad_afile_open(&f, path) == UAD_OK);
    fputs("hello", f.fp);
    CHECK(access(path, F_OK) != 0); /* nothing visible before commit */
    CHECK(uad_afile_commit(&f) == UAD_OK);
    char *buf;
    size_t len;
    CHECK(uad_read_file(path, &buf, &len) == UAD_OK);
    CHECK(len == 5 && !strcmp(buf, "hello"));
    free(buf);
    /* An aborted write leaves the old file and no temporary. */
    CHECK(uad_afile_open(&f, path) == UAD_OK);
    fputs("partial", f.fp);
    uad_afile_abort(&f);
    CHECK(uad_read_file(path, &buf, &len) == UAD_OK && len == 5);
    free(buf);
    /* Errors name the file. */
    CHECK(uad_read_file("/nonexistent/x", &buf, &len) == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "/nonexistent/x");
    /* A symbolic link is written through: the link stays a link and
     * its target gets the content. */
    char *target = uad_path_join(sub, "target.txt");
    char *link = uad_path_join(sub, "link.txt");
    CHECK(symlink(target, link) == 0);
    CHECK(uad_afile_open(&f, link) == UAD_OK);
    fputs("via link", f.fp);
    CHECK(uad_afile_commit(&f) == UAD_OK);
    struct stat sb;
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(uad_read_file(target, &buf, &len) == UAD_OK && len == 8);
    free(buf);
    /* A device is written in place, never replaced. */
    CHECK(uad_afile_open(&f, "/dev/null") == UAD_OK);
    fputs("x", f.fp);
    CHECK(uad_afile_commit(&f) == UAD_OK);
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
    char *tmp = uad_tmp_name("/dev/null");
    CHECK(uad_rename_into(tmp, "/dev/null") == UAD_ERR_IO);
    CHECK_STR_CONTAINS(uad_last_error(), "not a regular file");
    free(tmp);
    remove(link);
    remove(target);
    free(link);
    free(target);
    remove(path);
    free(path);
    free(sub);
    free(dir);
}

/* A long list of problems: whole lines while they fit, then how many
 * were left out, also after a file name is put in front. */
static void test_problems(void) {
    uad_problems pl = {0};
    for (int i = 0; i < 269; i++)
        uad_problems_add(&pl, uad_fail(i ? UAD_ERR_DATA : UAD_ERR_FORMAT,
                                       "tensor blocks.%d.weight has shape "
                                       "[660, 48], expected [49408, 1280]",
                                       i));
    CHECK(uad_problems_finish(&pl, "problem(s)") == UAD_ERR_FORMAT);
    const char *e = uad_last_error();
    CHECK(strncmp(e, "269 problem(s):\n  tensor blocks.0.weight", 40) == 0);
    /* shown lines + the count left out = 269, every line whole */
    int shown = 0, more = -1;
    for (const char *q = e; (q = strstr(q, "\n  tensor ")); q++) shown++;
    const char *tail = strstr(e, "\n  ... and ");
    CHECK(tail && sscanf(tail, "\n  ... and %d more", &more) == 1);
    CHECK(shown >= 15 && shown + more == 269);
    CHECK(tail && strncmp(tail - 22, "expected [49408, 1280]", 22) == 0);
    CHECK(strlen(e) < 1500);
    char name[700];
    memset(name, 'd', sizeof name - 1);
    name[sizeof name - 1] = 0;
    uad_error_prefix(name);
    e = uad_last_error();
    CHECK(strncmp(e, name, sizeof name - 1) == 0);
    /* the message lost whole lines at its end, and says so */
    CHECK_STR_CONTAINS(e, "expected [49408, 1280]\n  ...");
    CHECK(strstr(e, " more") == NULL);
    CHECK(strlen(e) < 2048);
    /* few problems are listed in full */
    uad_problems_add(&pl, uad_fail(UAD_ERR_IO, "a"));
    uad_problems_add(&pl, uad_fail(UAD_ERR_DATA, "b"));
    CHECK(uad_problems_finish(&pl, "things") == UAD_ERR_IO);
    CHECK(strcmp(uad_last_error(), "2 things:\n  a\n  b") == 0);
    uad_error_prefix("f.txt");
    CHECK(strcmp(uad_last_error(), "f.txt: 2 things:\n  a\n  b") == 0);
}

int main(void) {
    test_problems();
    test_rng();
    test_paths();
    test_afile();
    return check_report("test_util");
}
