#ifndef CW_FUZZ_RANDOM_H
#define CW_FUZZ_RANDOM_H

#include <stdint.h>

/*
 * xorshift64*: the reproducible input stream of the fuzz targets' built-in
 * batch (used when they are not built as libFuzzer targets), so a failure
 * seen in CI happens again on any machine.
 */
static uint64_t fuzz_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t
next_random(void)
{
	fuzz_rng_state ^= fuzz_rng_state >> 12;
	fuzz_rng_state ^= fuzz_rng_state << 25;
	fuzz_rng_state ^= fuzz_rng_state >> 27;
	return fuzz_rng_state * 0x2545f4914f6cdd1dull;
}

#endif
