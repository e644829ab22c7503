/*
 * Fuzz target for the split virtqueue parser (vm/virtqueue.c), the code
 * that walks guest-written descriptor tables. The input becomes a ring
 * (size, features, indices, descriptor table, avail ring) and the contents
 * of the guest memory that indirect tables and buffers point into. Built as
 * a libFuzzer target with clang (-Dfuzz=true); otherwise a reproducible
 * randomised batch, run under the sanitizers in CI.
 *
 * Properties: popping ends (empty or broken) within the ring size; every
 * iovec is non-empty and lies inside one guest memory region; chain
 * lengths and segment counts respect the limits; a broken queue stays
 * broken; pushing advances the used index by one.
 */
#define _GNU_SOURCE

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest_memory.h"
#include "virtqueue.h"

/*
 * Guest memory: region 0 holds the rings, region 1 (non-zero mmap_offset)
 * the fuzzed tables and buffers, region 2 (another memfd) follows region 1
 * directly so buffers can straddle them; a hole separates regions 0 and 1.
 */
#define R0_SIZE 0x10000ull
#define R1_GPA 0x18000ull
#define R1_SIZE 0x10000ull
#define R2_GPA (R1_GPA + R1_SIZE)
#define R2_SIZE 0x8000ull
#define R2_OFFSET 0x1000ull
#define UADDR 0x7f0000000000ull
#define R2_UADDR 0x7f8000000000ull
#define DESC_GPA 0x0ull
#define AVAIL_GPA 0x1000ull
#define USED_GPA 0x2000ull
#define DATA_LEN 0x1000u // fuzz bytes copied to the start of region 1

static struct vu_guest_memory mem;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz-virtqueue: %s\n", what);
	abort();
}

static void
init_memory(void)
{
	int a = memfd_create("fuzz-ram", MFD_CLOEXEC);
	int b = memfd_create("fuzz-ram2", MFD_CLOEXEC);
	if (a < 0 || b < 0 || ftruncate(a, (off_t)(R1_GPA + R1_SIZE)) != 0 ||
			ftruncate(b, (off_t)(R2_OFFSET + R2_SIZE)) != 0) {
		fail("cannot create guest memory");
	}
	vu_mem_init(&mem);
	if (vu_mem_add_region(&mem, a, 0, R0_SIZE, UADDR, 0) != 0 ||
			vu_mem_add_region(&mem, a, R1_GPA, R1_SIZE, UADDR + R1_GPA, R1_GPA) != 0 ||
			vu_mem_add_region(&mem, b, R2_GPA, R2_SIZE, R2_UADDR, R2_OFFSET) != 0) {
		fail("cannot map guest memory");
	}
	close(a);
	close(b);
}

/* The region an iovec lies in entirely, or -1. */
static int
region_of(const struct iovec *v)
{
	uintptr_t p = (uintptr_t)v->iov_base;
	for (unsigned i = 0; i < mem.count; i++) {
		const struct vu_mem_region *r = &mem.regions[i];
		uintptr_t start = (uintptr_t)r->host;
		if (p >= start && v->iov_len <= r->size && p - start <= r->size - v->iov_len) {
			return (int)i;
		}
	}
	return -1;
}

static void
check_iovecs(const struct iovec *iov, unsigned count, size_t total)
{
	if (count > VU_CHAIN_MAX_SEGMENTS) {
		fail("too many segments");
	}
	size_t sum = 0;
	for (unsigned i = 0; i < count; i++) {
		if (iov[i].iov_len == 0 || region_of(&iov[i]) < 0) {
			fail("iovec outside guest memory");
		}
		sum += iov[i].iov_len;
	}
	if (sum != total) {
		fail("iovec lengths do not add up");
	}
}

static void
check_chain(const struct vu_virtqueue *vq, const struct vu_chain *chain)
{
	if (chain->head >= vq->size) {
		fail("head out of range");
	}
	check_iovecs(chain->out, chain->out_count, chain->out_len);
	check_iovecs(chain->in, chain->in_count, chain->in_len);
	/* Touch a bounded prefix of every buffer, as a device would. */
	static uint8_t scratch[4096];
	size_t n = chain->out_len < sizeof(scratch) ? chain->out_len : sizeof(scratch);
	if (vu_chain_read(chain, 0, scratch, n) != n) {
		fail("short read");
	}
	/*
	 * Writing into the rings (region 0) would let the "guest" queue more
	 * work while we pop, and the bound on pops would no longer hold.
	 */
	for (unsigned i = 0; i < chain->in_count; i++) {
		if (region_of(&chain->in[i]) == 0) {
			return;
		}
	}
	n = chain->in_len < sizeof(scratch) ? chain->in_len : sizeof(scratch);
	if (vu_chain_write(chain, 0, scratch, n) != n) {
		fail("short write");
	}
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void
copy_in(uint64_t gpa, const uint8_t **data, size_t *size, size_t len)
{
	uint8_t *dst = vu_mem_gpa_to_host(&mem, gpa, len);
	memset(dst, 0, len);
	size_t n = *size < len ? *size : len;
	memcpy(dst, *data, n);
	*data += n;
	*size -= n;
}

/*
 * Input: u8 size_log2, u8 features, le16 next_avail, le16 avail_idx, le16
 * used_event, then the descriptor table, the avail ring and region 1's
 * first DATA_LEN bytes (missing bytes are zero).
 */
static void
check_one(const uint8_t *data, size_t size)
{
	if (size < 8) {
		return;
	}
	uint16_t qsize = (uint16_t)(1u << (data[0] % 9));
	bool event_idx = data[1] & 1, indirect = data[1] & 2;
	uint16_t next_avail = get16(data + 2), avail_idx = get16(data + 4);
	uint16_t used_event = get16(data + 6);
	data += 8;
	size -= 8;
	copy_in(DESC_GPA, &data, &size, 16u * qsize);
	copy_in(AVAIL_GPA + 4, &data, &size, 2u * qsize);
	copy_in(R1_GPA, &data, &size, DATA_LEN);
	uint8_t *avail = vu_mem_gpa_to_host(&mem, AVAIL_GPA, 6 + 2u * qsize);
	avail[0] = 0;
	avail[1] = 0;
	avail[2] = (uint8_t)avail_idx;
	avail[3] = (uint8_t)(avail_idx >> 8);
	avail[4 + 2u * qsize] = (uint8_t)used_event;
	avail[5 + 2u * qsize] = (uint8_t)(used_event >> 8);
	memset(vu_mem_gpa_to_host(&mem, USED_GPA, 6 + 8u * qsize), 0, 6 + 8u * qsize);

	struct vu_virtqueue vq;
	if (vu_virtq_setup(&vq, &mem, qsize, UADDR + DESC_GPA, UADDR + AVAIL_GPA,
			UADDR + USED_GPA, next_avail, event_idx, indirect) != 0) {
		fail("setup failed");
	}
	static struct vu_chain chain;
	for (unsigned pops = 0;; pops++) {
		if (pops > qsize) {
			fail("more chains than the ring holds");
		}
		int ret = vu_virtq_pop(&vq, &chain);
		if (ret == 0) {
			if (vq.broken || vu_virtq_enable_notification(&vq)) {
				fail("empty, but not really");
			}
			break;
		}
		if (ret < 0) {
			if (!vq.broken || vu_virtq_pop(&vq, &chain) >= 0) {
				fail("an error did not break the queue for good");
			}
			break;
		}
		check_chain(&vq, &chain);
		uint16_t used = vq.used_idx;
		vu_virtq_push(&vq, &chain, (uint32_t)chain.in_len);
		if (vq.used_idx != (uint16_t)(used + 1)) {
			fail("push did not advance the used index");
		}
		vu_virtq_should_notify(&vq);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (mem.count == 0) {
		init_memory();
	}
	check_one(data, size);
	return 0;
}

#ifndef CW_LIBFUZZER
#include "fuzz_random.h"

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Descriptors biased towards what matters: edges, holes, tables, small indices. */
static void
random_desc(uint8_t *d, unsigned table_size)
{
	static const uint64_t addrs[] = {R1_GPA, R1_GPA + 0x10, R1_GPA + 0x100, R1_GPA + 0x800,
		R0_SIZE - 8, R1_GPA - 8, R2_GPA - 8, R2_GPA + R2_SIZE - 8, 0x8000, DESC_GPA,
		AVAIL_GPA, 0xfffffffffffffff0ull, R2_GPA, R0_SIZE};
	static const uint32_t lens[] = {0, 1, 8, 16, 32, 48, 64, 256, 4096, 0x10000, 0x10010,
		0xfffffff0u};
	uint64_t r = next_random();
	uint64_t addr = (r & 7) == 0 ? next_random() : addrs[(r >> 3) % (sizeof(addrs) / 8)];
	uint32_t len = (r & 0x300) == 0 ? (uint32_t)(r >> 32) : lens[(r >> 12) % (sizeof(lens) / 4)];
	uint16_t flags = (uint16_t)((r >> 20) & 7);
	if ((r >> 23) & 1) {
		flags &= (uint16_t)~4u; // indirect only now and then
	}
	uint16_t next = (uint16_t)((r >> 24) % (table_size + 2));
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	put16(d + 12, flags);
	put16(d + 14, next);
}

int
main(int argc, char *argv[])
{
	long runs = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	init_memory();
	static uint8_t buf[8 + 16 * 256 + 2 * 256 + DATA_LEN];
	for (long run = 0; run < runs; run++) {
		uint64_t r = next_random();
		unsigned log2 = (unsigned)(r % 9);
		unsigned qsize = 1u << log2;
		buf[0] = (uint8_t)log2;
		buf[1] = (uint8_t)(r >> 8);
		uint16_t next_avail = (r >> 16) & 1 ? (uint16_t)(r >> 24) : (uint16_t)(0xffff - (r >> 60));
		/* Mostly a sane number of entries, sometimes an impossible one. */
		uint16_t pending = (r >> 17) & 7 ? (uint16_t)((r >> 40) % (qsize + 1))
						 : (uint16_t)(r >> 40);
		put16(buf + 2, next_avail);
		put16(buf + 4, (uint16_t)(next_avail + pending));
		put16(buf + 6, (uint16_t)(next_random()));
		uint8_t *p = buf + 8;
		for (unsigned i = 0; i < qsize; i++, p += 16) {
			random_desc(p, qsize);
		}
		for (unsigned i = 0; i < qsize; i++, p += 2) {
			put16(p, (uint16_t)(next_random() % (qsize + 1)));
		}
		/* Region 1: indirect tables of up to 16 entries at the addresses above. */
		for (unsigned i = 0; i < DATA_LEN / 16; i++, p += 16) {
			random_desc(p, 16);
		}
		check_one(buf, (size_t)(p - buf));
	}
	vu_mem_finish(&mem);
	printf("%ld rings checked\n", runs);
	return 0;
}
#endif
