/*
 * Fuzz target for cw_text_sanitize, the gate every window title (later,
 * every guest's title) passes before it is drawn. Built as a libFuzzer
 * target with clang (-Dfuzz=true); otherwise a self-contained randomised
 * run of a fixed number of inputs, under the sanitizers in CI.
 *
 * Properties: the result is at most max bytes, valid UTF-8 with no C0/C1
 * controls, DEL or bidi overrides, and sanitising it again changes nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static bool
is_clean_utf8(const unsigned char *s)
{
	while (*s != '\0') {
		if (*s < 0x20 || *s == 0x7f) {
			return false;
		}
		if (*s < 0x80) {
			s++;
			continue;
		}
		size_t len = (*s & 0xe0) == 0xc0 ? 2 : (*s & 0xf0) == 0xe0 ? 3 : (*s & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0) {
			return false;
		}
		uint32_t cp = *s & (0x7f >> len);
		for (size_t i = 1; i < len; i++) {
			if ((s[i] & 0xc0) != 0x80) {
				return false;
			}
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		static const uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min_for_length[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
				(cp >= 0x80 && cp < 0xa0) || (cp >= 0x202a && cp <= 0x202e)) {
			return false;
		}
		s += len;
	}
	return true;
}

static void
check_one(const uint8_t *data, size_t size)
{
	if (size == 0) {
		return;
	}
	/* The first byte picks the limit; the rest is the title. */
	size_t max = data[0];
	char *title = malloc(size);
	if (title == NULL) {
		return;
	}
	memcpy(title, data + 1, size - 1);
	title[size - 1] = '\0';

	char *clean = cw_text_sanitize(title, max);
	if (clean == NULL) {
		abort();
	}
	if (strlen(clean) > max || !is_clean_utf8((const unsigned char *)clean)) {
		fprintf(stderr, "unsafe result for a %zu-byte title\n", size - 1);
		abort();
	}
	char *again = cw_text_sanitize(clean, max);
	if (again == NULL || strcmp(again, clean) != 0) {
		fprintf(stderr, "sanitising is not idempotent\n");
		abort();
	}
	free(again);
	free(clean);
	free(title);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	return 0;
}

#ifndef CW_LIBFUZZER
/* Inputs biased towards UTF-8 lead and trail bytes, from a reproducible stream. */
#include "fuzz_random.h"

int
main(int argc, char *argv[])
{
	long runs = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	static const uint8_t interesting[] = {0x00, 0x1b, 0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xc0, 0xc2,
		0xdf, 0xe0, 0xe2, 0x80, 0xae, 0xed, 0xa0, 0xef, 0xf0, 0xf4, 0x90, 0xf5, 0xff, 'a', ' '};
	uint8_t buf[600];
	for (long run = 0; run < runs; run++) {
		size_t size = 1 + next_random() % (sizeof(buf) - 1);
		for (size_t i = 0; i < size; i++) {
			uint64_t r = next_random();
			buf[i] = (r & 3) == 0 ? (uint8_t)(r >> 8) : interesting[(r >> 8) % sizeof(interesting)];
		}
		check_one(buf, size);
	}
	printf("%ld titles checked\n", runs);
	return 0;
}
#endif
