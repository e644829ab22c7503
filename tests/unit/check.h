#ifndef CW_TEST_CHECK_H
#define CW_TEST_CHECK_H

#include <stdio.h>

/* Minimal assertions: every failure is printed, the test exits non-zero. */
static int cw_check_failures;

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			cw_check_failures++; \
		} \
	} while (0)

#define CHECK_STR(got, want) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		if (g_ == NULL || strcmp(g_, w_) != 0) { \
			fprintf(stderr, "%s:%d: got '%s', want '%s'\n", __FILE__, __LINE__, \
				g_ ? g_ : "(null)", w_); \
			cw_check_failures++; \
		} \
	} while (0)

#define CHECK_DONE() \
	do { \
		if (cw_check_failures > 0) { \
			fprintf(stderr, "%d check(s) failed\n", cw_check_failures); \
			return 1; \
		} \
		return 0; \
	} while (0)

#endif
