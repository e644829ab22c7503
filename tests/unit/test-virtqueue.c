/*
 * Split virtqueues against a "guest" that writes rings into memfd-backed
 * memory through its own mapping: chains (direct, indirect, malformed),
 * the used ring, and both directions of notification suppression.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "guest_memory.h"
#include "virtqueue.h"

/* Memory: two regions of one memfd (the second with a non-zero mmap_offset), one of another. */
#define A_SIZE 0x200000ull
#define R0_SIZE 0xa0000ull
#define R1_GPA 0xc0000ull
#define R1_SIZE (A_SIZE - R1_GPA)
#define R2_GPA 0x200000ull // right after region 1
#define R2_SIZE 0x10000ull
#define R2_OFFSET 0x3000ull
#define UADDR_BASE 0x7f0000000000ull // front-end address of GPA 0 (regions 0 and 1)
#define R2_UADDR 0x7f1000000000ull

/* Ring placement (GPA), valid for queue sizes up to 256. */
#define DESC_GPA 0x10000ull
#define AVAIL_GPA 0x20000ull
#define USED_GPA 0x30000ull
#define DATA_GPA 0x100000ull // buffers, in region 1
#define TABLE_GPA 0x180000ull // indirect tables, in region 1

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static struct vu_guest_memory mem;
static uint8_t *guest_a; // the guest's view of memfd A
static uint8_t *guest_b;
static uint16_t qsize;
static uint16_t guest_avail_idx;

static uint8_t *
g(uint64_t gpa)
{
	if (gpa >= R2_GPA) {
		return guest_b + R2_OFFSET + (gpa - R2_GPA);
	}
	return guest_a + gpa;
}

static void
put16(uint64_t gpa, uint16_t v)
{
	uint8_t *p = g(gpa);
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t
get16(uint64_t gpa)
{
	const uint8_t *p = g(gpa);
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(uint64_t gpa)
{
	return get16(gpa) | (uint32_t)get16(gpa + 2) << 16;
}

static void
put32(uint64_t gpa, uint32_t v)
{
	put16(gpa, (uint16_t)v);
	put16(gpa + 2, (uint16_t)(v >> 16));
}

static void
put_desc_at(uint64_t table_gpa, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	uint16_t next)
{
	uint64_t d = table_gpa + 16ull * i;
	put32(d, (uint32_t)addr);
	put32(d + 4, (uint32_t)(addr >> 32));
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

static void
put_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc_at(DESC_GPA, i, addr, len, flags, next);
}

static void
avail_add(uint16_t head)
{
	put16(AVAIL_GPA + 4 + 2ull * (guest_avail_idx % qsize), head);
	guest_avail_idx++;
	put16(AVAIL_GPA + 2, guest_avail_idx);
}

static void
set_avail_idx(uint16_t idx)
{
	guest_avail_idx = idx;
	put16(AVAIL_GPA + 2, idx);
}

static uint16_t used_idx(void) { return get16(USED_GPA + 2); }
static uint16_t used_flags(void) { return get16(USED_GPA); }
static uint16_t avail_event(void) { return get16(USED_GPA + 4 + 8ull * qsize); }
static void set_used_event(uint16_t v) { put16(AVAIL_GPA + 4 + 2ull * qsize, v); }

/* A fresh ring of `size` entries whose avail and used indices both start at `start`. */
static void
setup(struct vu_virtqueue *vq, uint16_t size, uint16_t start, bool event_idx, bool indirect)
{
	qsize = size;
	memset(g(DESC_GPA), 0, 0x30000);
	put16(USED_GPA + 2, start);
	set_avail_idx(start);
	int ret = vu_virtq_setup(vq, &mem, size, UADDR_BASE + DESC_GPA, UADDR_BASE + AVAIL_GPA,
		UADDR_BASE + USED_GPA, start, event_idx, indirect);
	CHECK(ret == 0);
}

static void
init_memory(void)
{
	int a = memfd_create("cw-test-a", MFD_CLOEXEC);
	int b = memfd_create("cw-test-b", MFD_CLOEXEC);
	CHECK(a >= 0 && b >= 0);
	CHECK(ftruncate(a, A_SIZE) == 0 && ftruncate(b, R2_OFFSET + R2_SIZE) == 0);
	guest_a = mmap(NULL, A_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	guest_b = mmap(NULL, R2_OFFSET + R2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	CHECK(guest_a != MAP_FAILED && guest_b != MAP_FAILED);
	vu_mem_init(&mem);
	CHECK(vu_mem_add_region(&mem, a, 0, R0_SIZE, UADDR_BASE, 0) == 0);
	CHECK(vu_mem_add_region(&mem, a, R1_GPA, R1_SIZE, UADDR_BASE + R1_GPA, R1_GPA) == 0);
	CHECK(vu_mem_add_region(&mem, b, R2_GPA, R2_SIZE, R2_UADDR, R2_OFFSET) == 0);
	close(a);
	close(b);
}

static void
test_setup_errors(void)
{
	struct vu_virtqueue vq;
	uint64_t d = UADDR_BASE + DESC_GPA, av = UADDR_BASE + AVAIL_GPA, u = UADDR_BASE + USED_GPA;
	CHECK(vu_virtq_setup(&vq, &mem, 0, d, av, u, 0, true, true) == -EINVAL);
	CHECK(vu_virtq_setup(&vq, &mem, 48, d, av, u, 0, true, true) == -EINVAL);
	CHECK(vu_virtq_setup(&vq, &mem, 64, d + 8, av, u, 0, true, true) == -EINVAL);
	CHECK(vu_virtq_setup(&vq, &mem, 64, d, av + 1, u, 0, true, true) == -EINVAL);
	CHECK(vu_virtq_setup(&vq, &mem, 64, d, av, u + 2, 0, true, true) == -EINVAL);
	CHECK(vu_virtq_setup(&vq, &mem, 64, DESC_GPA, av, u, 0, true, true) == -EFAULT);
	/* The used ring (6 + 8N bytes with EVENT_IDX) may not run past the region end. */
	uint64_t last = UADDR_BASE + R0_SIZE - (4 + 8 * 64);
	CHECK(vu_virtq_setup(&vq, &mem, 64, d, av, last, 0, true, true) == -EFAULT);
	CHECK(vu_virtq_setup(&vq, &mem, 64, d, av, last, 0, false, true) == 0);
	CHECK(vq.size == 64 && !vq.broken);
	/* A failed setup leaves nothing usable behind. */
	CHECK(vu_virtq_setup(&vq, &mem, 64, d, av, UADDR_BASE + R0_SIZE, 0, true, true) == -EFAULT);
	struct vu_chain chain;
	CHECK(vq.size == 0 && vu_virtq_pop(&vq, &chain) < 0);
	CHECK(!vu_virtq_should_notify(&vq));
}

static void
test_direct_chains(void)
{
	struct vu_virtqueue vq;
	struct vu_chain chain;
	setup(&vq, 16, 0, false, false);
	CHECK(vu_virtq_pop(&vq, &chain) == 0);

	/* Two readable buffers, then two writable ones, linked out of order. */
	memcpy(g(DATA_GPA), "hello, ", 7);
	memcpy(g(DATA_GPA + 0x100), "world", 5);
	put_desc(3, DATA_GPA, 7, F_NEXT, 7);
	put_desc(7, DATA_GPA + 0x100, 5, F_NEXT, 1);
	put_desc(1, DATA_GPA + 0x200, 4, F_WRITE | F_NEXT, 2);
	put_desc(2, DATA_GPA + 0x300, 16, F_WRITE, 0);
	avail_add(3);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(chain.head == 3);
	CHECK(chain.out_count == 2 && chain.out_len == 12);
	CHECK(chain.in_count == 2 && chain.in_len == 20);
	CHECK(chain.out[0].iov_base == vu_mem_gpa_to_host(&mem, DATA_GPA, 7));
	char text[16] = {0};
	CHECK(vu_chain_read(&chain, 0, text, sizeof(text)) == 12);
	CHECK_STR(text, "hello, world");
	memset(text, 0, sizeof(text));
	CHECK(vu_chain_read(&chain, 5, text, 4) == 4);
	CHECK_STR(text, ", wo");
	CHECK(vu_chain_read(&chain, 12, text, 4) == 0);
	/* Writes scatter across the writable buffers, starting at any offset. */
	CHECK(vu_chain_write(&chain, 2, "ABCDEFGH", 8) == 8);
	CHECK(memcmp(g(DATA_GPA + 0x202), "AB", 2) == 0);
	CHECK(memcmp(g(DATA_GPA + 0x300), "CDEFGH", 6) == 0);
	CHECK(vu_chain_write(&chain, 18, "xyz", 3) == 2);
	CHECK(vu_virtq_pop(&vq, &chain) == 0);

	/* The used ring gets the head and the written length, capped at what was offered. */
	vu_virtq_push(&vq, &chain, 20);
	CHECK(used_idx() == 1);
	CHECK(get32(USED_GPA + 4) == 3 && get32(USED_GPA + 8) == 20);
	vu_virtq_push(&vq, &chain, 1000);
	CHECK(used_idx() == 2 && get32(USED_GPA + 16) == 20);

	/* A buffer that crosses from region 1 into region 2 becomes two iovecs. */
	put_desc(0, R2_GPA - 8, 24, 0, 0);
	avail_add(0);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(chain.out_count == 2 && chain.out_len == 24);
	CHECK(chain.out[0].iov_len == 8 && chain.out[1].iov_len == 16);
	CHECK(!vq.broken);

	/* Exactly VU_CHAIN_MAX_SEGMENTS descriptors are fine. */
	setup(&vq, 128, 0, false, false);
	for (unsigned i = 0; i < VU_CHAIN_MAX_SEGMENTS; i++) {
		bool last = i == VU_CHAIN_MAX_SEGMENTS - 1;
		put_desc(i, DATA_GPA + 16 * i, 16, last ? F_WRITE : F_NEXT | F_WRITE, (uint16_t)(i + 1));
	}
	avail_add(0);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(chain.in_count == VU_CHAIN_MAX_SEGMENTS && chain.in_len == 16 * VU_CHAIN_MAX_SEGMENTS);

	/* avail idx may run exactly one ring ahead (all entries queued). */
	setup(&vq, 4, 0xfffe, false, false);
	for (unsigned i = 0; i < 4; i++) {
		put_desc(i, DATA_GPA, 8, 0, 0);
		avail_add((uint16_t)i);
	}
	for (unsigned i = 0; i < 4; i++) {
		CHECK(vu_virtq_pop(&vq, &chain) == 1 && chain.head == i);
	}
	CHECK(vu_virtq_pop(&vq, &chain) == 0);
	CHECK(vq.last_avail_idx == 2);
}

/* Puts one malformed chain at head 0 and expects the queue to break for good. */
static void
expect_broken(struct vu_virtqueue *vq, int want, const char *what)
{
	struct vu_chain chain;
	int ret = vu_virtq_pop(vq, &chain);
	if (ret != want || !vq->broken) {
		fprintf(stderr, "%s: pop returned %d (want %d), broken %d\n", what, ret, want,
			vq->broken);
		cw_check_failures++;
	}
	/* A broken queue yields nothing more and writes nothing. */
	uint16_t used = used_idx();
	CHECK(vu_virtq_pop(vq, &chain) < 0);
	vu_virtq_push(vq, &chain, 0);
	CHECK(used_idx() == used);
}

static void
test_malformed_direct(void)
{
	struct vu_virtqueue vq;

	setup(&vq, 16, 0, false, true);
	put_desc(0, DATA_GPA, 8, F_WRITE | F_NEXT, 1);
	put_desc(1, DATA_GPA, 8, 0, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "readable after writable");

	setup(&vq, 16, 0, false, true);
	put_desc(0, DATA_GPA, 8, F_NEXT, 1);
	put_desc(1, DATA_GPA, 8, F_NEXT, 2);
	put_desc(2, DATA_GPA, 8, F_NEXT, 0);
	avail_add(0);
	expect_broken(&vq, -ELOOP, "descriptor loop");

	setup(&vq, 16, 0, false, true);
	put_desc(5, DATA_GPA, 8, F_NEXT, 5);
	avail_add(5);
	expect_broken(&vq, -ELOOP, "self loop");

	setup(&vq, 16, 0, false, true);
	put_desc(0, DATA_GPA, 8, F_NEXT, 16);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "next out of range");

	setup(&vq, 16, 0, false, true);
	avail_add(16);
	expect_broken(&vq, -EINVAL, "head out of range");

	setup(&vq, 128, 0, false, true);
	for (unsigned i = 0; i <= VU_CHAIN_MAX_SEGMENTS; i++) {
		put_desc(i, DATA_GPA, 8, F_NEXT, (uint16_t)(i + 1));
	}
	put_desc(VU_CHAIN_MAX_SEGMENTS, DATA_GPA, 8, 0, 0);
	avail_add(0);
	expect_broken(&vq, -E2BIG, "chain longer than the limit");

	setup(&vq, 16, 0, false, true);
	put_desc(0, R0_SIZE - 4, 8, 0, 0);
	avail_add(0);
	expect_broken(&vq, -EFAULT, "buffer running into a hole");

	setup(&vq, 16, 0, false, true);
	put_desc(0, 0xa0000000ull, 8, 0, 0);
	avail_add(0);
	expect_broken(&vq, -EFAULT, "buffer outside guest memory");

	setup(&vq, 16, 0, false, true);
	put_desc(0, DATA_GPA, 0, 0, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "zero-length buffer");

	/* The driver claims more entries than the ring has. */
	setup(&vq, 16, 10, false, true);
	put_desc(0, DATA_GPA, 8, 0, 0);
	set_avail_idx(10 + 17);
	expect_broken(&vq, -EINVAL, "avail idx jumped by 17");

	setup(&vq, 16, 10, false, true);
	set_avail_idx(9); // moved backwards: a jump of 65535
	expect_broken(&vq, -EINVAL, "avail idx went backwards");

	/* A fresh setup clears the broken state. */
	setup(&vq, 16, 0, false, true);
	CHECK(!vq.broken);
}

static void
test_indirect(void)
{
	struct vu_virtqueue vq;
	struct vu_chain chain;

	/* An unaligned table of 3 with local next indices: 2 readable, 1 writable. */
	uint64_t table = TABLE_GPA + 8;
	setup(&vq, 16, 0, true, true);
	memcpy(g(DATA_GPA), "abc", 3);
	memcpy(g(DATA_GPA + 0x40), "def", 3);
	put_desc_at(table, 0, DATA_GPA + 0x40, 3, F_NEXT, 2);
	put_desc_at(table, 2, DATA_GPA, 3, F_NEXT, 1);
	put_desc_at(table, 1, DATA_GPA + 0x80, 64, F_WRITE, 0);
	put_desc(9, table, 48, F_INDIRECT | F_WRITE, 0); // WRITE on the pointer is ignored
	avail_add(9);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(chain.head == 9);
	CHECK(chain.out_count == 2 && chain.in_count == 1 && chain.in_len == 64);
	char text[8] = {0};
	CHECK(vu_chain_read(&chain, 0, text, 6) == 6);
	CHECK_STR(text, "defabc");
	vu_virtq_push(&vq, &chain, 7);
	CHECK(used_idx() == 1 && get32(USED_GPA + 4) == 9 && get32(USED_GPA + 8) == 7);

	/* Table bounds: len must be a non-zero multiple of 16, inside guest memory. */
	static const struct {
		uint64_t addr;
		uint32_t len;
		const char *what;
		int err;
	} bad[] = {
		{TABLE_GPA, 40, "indirect len not a multiple of 16", -EINVAL},
		{TABLE_GPA, 0, "empty indirect table", -EINVAL},
		{R0_SIZE - 16, 32, "indirect table running into a hole", -EFAULT},
		{0x90000000ull, 16, "indirect table outside memory", -EFAULT},
		{R2_GPA + R2_SIZE - 16, 0x80000000u, "huge indirect table", -EFAULT},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setup(&vq, 16, 0, true, true);
		put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
		put_desc(0, bad[i].addr, bad[i].len, F_INDIRECT, 0);
		avail_add(0);
		expect_broken(&vq, bad[i].err, bad[i].what);
	}

	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, F_NEXT, 1);
	put_desc_at(TABLE_GPA, 1, TABLE_GPA + 0x100, 16, F_INDIRECT, 0);
	put_desc_at(TABLE_GPA + 0x100, 0, DATA_GPA, 8, 0, 0);
	put_desc(0, TABLE_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "nested indirect table");

	/* Also when the nested pointer is the first entry of the table. */
	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, TABLE_GPA + 0x100, 16, F_INDIRECT, 0);
	put_desc_at(TABLE_GPA + 0x100, 0, DATA_GPA, 8, 0, 0);
	put_desc(0, TABLE_GPA, 16, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "nested indirect table at entry 0");

	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	put_desc(0, TABLE_GPA, 16, F_INDIRECT | F_NEXT, 1);
	put_desc(1, DATA_GPA, 8, 0, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "INDIRECT together with NEXT");

	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	put_desc(0, DATA_GPA, 8, F_NEXT, 1);
	put_desc(1, TABLE_GPA, 16, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "indirect descriptor not at the head");

	setup(&vq, 16, 0, true, false);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, 0, 0);
	put_desc(0, TABLE_GPA, 16, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "indirect without the feature");

	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, F_NEXT, 1);
	put_desc_at(TABLE_GPA, 1, DATA_GPA, 8, F_NEXT, 0);
	put_desc(0, TABLE_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -ELOOP, "loop inside an indirect table");

	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, F_NEXT, 2); // local index 2 of a 2-entry table
	put_desc(0, TABLE_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "next past the indirect table");

	setup(&vq, 16, 0, true, true);
	put_desc_at(TABLE_GPA, 0, DATA_GPA, 8, F_WRITE | F_NEXT, 1);
	put_desc_at(TABLE_GPA, 1, DATA_GPA, 8, 0, 0);
	put_desc(0, TABLE_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -EINVAL, "readable after writable in an indirect table");

	/* A long indirect table still obeys the segment limit. */
	setup(&vq, 16, 0, true, true);
	for (unsigned i = 0; i <= VU_CHAIN_MAX_SEGMENTS; i++) {
		put_desc_at(TABLE_GPA, i, DATA_GPA, 8, F_NEXT, (uint16_t)(i + 1));
	}
	put_desc_at(TABLE_GPA, VU_CHAIN_MAX_SEGMENTS, DATA_GPA, 8, 0, 0);
	put_desc(0, TABLE_GPA, 16 * (VU_CHAIN_MAX_SEGMENTS + 1), F_INDIRECT, 0);
	avail_add(0);
	expect_broken(&vq, -E2BIG, "indirect chain longer than the limit");
}

/* Queues `count` one-descriptor chains and pops them all. */
static void
fill_and_pop(struct vu_virtqueue *vq, struct vu_chain *chains, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		put_desc(i, DATA_GPA, 8, F_WRITE, 0);
		avail_add((uint16_t)i);
	}
	for (unsigned i = 0; i < count; i++) {
		CHECK(vu_virtq_pop(vq, &chains[i]) == 1);
	}
}

/*
 * Starting at `start`, pushes `first` chains and takes an interrupt, then
 * pushes `more`, sets used_event and asks again.
 */
static bool
event_idx_scenario(uint16_t start, unsigned first, unsigned more, uint16_t used_event)
{
	struct vu_virtqueue vq;
	struct vu_chain chains[8];
	setup(&vq, 8, start, true, false);
	fill_and_pop(&vq, chains, first + more);
	for (unsigned i = 0; i < first; i++) {
		vu_virtq_push(&vq, &chains[i], 0);
	}
	set_used_event((uint16_t)(start + 0x4000)); // far away: must not matter the first time
	CHECK(vu_virtq_should_notify(&vq)); // nothing signalled yet on this ring
	for (unsigned i = first; i < first + more; i++) {
		vu_virtq_push(&vq, &chains[i], 0);
	}
	set_used_event(used_event);
	return vu_virtq_should_notify(&vq);
}

static void
test_interrupt_suppression(void)
{
	struct vu_virtqueue vq;
	struct vu_chain chains[4];

	/* Without EVENT_IDX: VRING_AVAIL_F_NO_INTERRUPT decides. */
	setup(&vq, 8, 0, false, false);
	fill_and_pop(&vq, chains, 2);
	vu_virtq_push(&vq, &chains[0], 0);
	CHECK(vu_virtq_should_notify(&vq));
	put16(AVAIL_GPA, 1);
	vu_virtq_push(&vq, &chains[1], 0);
	CHECK(!vu_virtq_should_notify(&vq));
	put16(AVAIL_GPA, 0);
	CHECK(vu_virtq_should_notify(&vq));

	/*
	 * With EVENT_IDX, used idx moves from 0xffff to 0x0001 across the wrap:
	 * interrupt iff used_event is in [0xffff, 0x0001).
	 */
	CHECK(event_idx_scenario(0xfffe, 1, 2, 0xffff));
	CHECK(event_idx_scenario(0xfffe, 1, 2, 0x0000));
	CHECK(!event_idx_scenario(0xfffe, 1, 2, 0x0001));
	CHECK(!event_idx_scenario(0xfffe, 1, 2, 0xfffe));
	CHECK(!event_idx_scenario(0xfffe, 1, 2, 0x8000));
	/* Without a wrap: 10 -> 13. */
	CHECK(event_idx_scenario(9, 1, 3, 10));
	CHECK(event_idx_scenario(9, 1, 3, 12));
	CHECK(!event_idx_scenario(9, 1, 3, 13));
	CHECK(!event_idx_scenario(9, 1, 3, 9));
	/* Nothing pushed since the last interrupt: never again. */
	CHECK(!event_idx_scenario(100, 2, 0, 101));
	CHECK(!event_idx_scenario(100, 2, 0, 102));

	/* One interrupt per crossing: asking twice without new entries says no. */
	setup(&vq, 8, 0, true, false);
	fill_and_pop(&vq, chains, 2);
	vu_virtq_push(&vq, &chains[0], 0);
	CHECK(vu_virtq_should_notify(&vq));
	set_used_event(1);
	vu_virtq_push(&vq, &chains[1], 0);
	CHECK(vu_virtq_should_notify(&vq));
	CHECK(!vu_virtq_should_notify(&vq));

	/*
	 * More than 32767 entries since the last interrupt: the 16-bit distance
	 * is meaningless, so the next check must interrupt whatever used_event says.
	 */
	setup(&vq, 8, 0, true, false);
	fill_and_pop(&vq, chains, 1);
	vu_virtq_push(&vq, &chains[0], 0);
	CHECK(vu_virtq_should_notify(&vq));
	for (unsigned i = 0; i < 0x8001; i++) {
		vu_virtq_push(&vq, &chains[0], 0);
	}
	set_used_event((uint16_t)(used_idx() + 100));
	CHECK(vu_virtq_should_notify(&vq));
}

static void
test_kick_suppression(void)
{
	struct vu_virtqueue vq;
	struct vu_chain chain;

	/* EVENT_IDX: avail_event follows what we took, also across the wrap. */
	setup(&vq, 8, 0xfffe, true, false);
	CHECK(vu_virtq_pop(&vq, &chain) == 0);
	CHECK(avail_event() == 0xfffe);
	for (unsigned i = 0; i < 3; i++) {
		put_desc(i, DATA_GPA, 8, 0, 0);
		avail_add((uint16_t)i);
	}
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(avail_event() == 0xffff);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(avail_event() == 0x0000);
	CHECK(vu_virtq_enable_notification(&vq)); // one is still waiting
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(avail_event() == 0x0001);
	CHECK(vu_virtq_pop(&vq, &chain) == 0);
	CHECK(!vu_virtq_enable_notification(&vq));
	CHECK(avail_event() == 0x0001);
	CHECK(used_flags() == 0); // EVENT_IDX never uses NO_NOTIFY
	/* A request queued after draining is seen by the re-check. */
	put_desc(3, DATA_GPA, 8, 0, 0);
	avail_add(3);
	CHECK(vu_virtq_enable_notification(&vq));
	CHECK(vu_virtq_pop(&vq, &chain) == 1 && chain.head == 3);

	/* Without EVENT_IDX: NO_NOTIFY while requests are being taken, cleared once empty. */
	setup(&vq, 8, 0, false, false);
	put_desc(0, DATA_GPA, 8, 0, 0);
	put_desc(1, DATA_GPA, 8, 0, 0);
	avail_add(0);
	avail_add(1);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(used_flags() == 1);
	CHECK(vu_virtq_enable_notification(&vq));
	CHECK(used_flags() == 0);
	CHECK(vu_virtq_pop(&vq, &chain) == 1);
	CHECK(used_flags() == 1);
	CHECK(vu_virtq_pop(&vq, &chain) == 0);
	CHECK(used_flags() == 0);
	CHECK(avail_event() == 0); // no EVENT_IDX: the field is never written
}

int
main(void)
{
	init_memory();
	test_setup_errors();
	test_direct_chains();
	test_malformed_direct();
	test_indirect();
	test_interrupt_suppression();
	test_kick_suppression();
	vu_mem_finish(&mem);
	munmap(guest_a, A_SIZE);
	munmap(guest_b, R2_OFFSET + R2_SIZE);
	CHECK_DONE();
}
