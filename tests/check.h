/* check.h - the test harness: CHECK macros that report file:line, count
 * failures, and make the test exit non-zero. Never compiled out. */
#ifndef UAD_CHECK_H
#define UAD_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failed_, check_passed_;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            check_passed_++;                                               \
        } else {                                                           \
            check_failed_++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

/* |a - b| <= tol, with both values printed on failure. */
#define CHECK_NEAR(a, b, tol)                                              \
    do {                                                                   \
        double ca_ = (double)(a), cb_ = (double)(b);                       \
        if (fabs(ca_ - cb_) <= (tol)) {                                    \
            check_passed_++;                                               \
        } else {                                                           \
            check_failed_++;                                               \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = "   \
                    "%.9g, tol %g\n", __FILE__, __LINE__, #a, ca_, #b,     \
                    cb_, (double)(tol));                                   \
        }                                                                  \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                    \
    do {                                                                   \
        const char *ch_ = (hay);                                           \
        if (ch_ && strstr(ch_, (needle))) {                                \
            check_passed_++;                                               \
        } else {                                                           \
            check_failed_++;                                               \
            fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n",          \
                    __FILE__, __LINE__, (needle), ch_ ? ch_ : "(null)");   \
        }                                                                  \
    } while (0)

/* The larger of a and b for running error maxima; NaN when either is
 * (fmax, or "if (e > worst)", would drop a NaN error and pass). */
static inline double check_max(double a, double b) {
    return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
}

/* Print the closing line and return the exit status for main(). */
static inline int check_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passed_,
           check_failed_);
    return check_failed_ ? 1 : 0;
}

#endif
