/*
 * Unit test of the vmm library's own layers, with no back end: the guest
 * memory layout and allocator, and the split virtqueue against a small
 * simulated device.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "vmm.h"

static int failures;

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++; \
		} \
	} while (0)

static uint16_t rd16(struct vmm_mem *m, uint64_t gpa)
{
	uint16_t v = 0;

	CHECK(vmm_mem_read(m, gpa, &v, 2) == 0);
	return le16toh(v);
}

static uint32_t rd32(struct vmm_mem *m, uint64_t gpa)
{
	uint32_t v = 0;

	CHECK(vmm_mem_read(m, gpa, &v, 4) == 0);
	return le32toh(v);
}

static uint64_t rd64(struct vmm_mem *m, uint64_t gpa)
{
	uint64_t v = 0;

	CHECK(vmm_mem_read(m, gpa, &v, 8) == 0);
	return le64toh(v);
}

static void wr16(struct vmm_mem *m, uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	CHECK(vmm_mem_write(m, gpa, &v, 2) == 0);
}

static void wr32(struct vmm_mem *m, uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	CHECK(vmm_mem_write(m, gpa, &v, 4) == 0);
}

/* vhost-user.md §6: QEMU's 512 MiB q35 layout on one memfd. */
static void test_qemu_layout(void)
{
	struct vmm_mem *m = vmm_mem_new(512ull << 20, 2);
	const struct vmm_region *r0, *r1;

	CHECK(m);
	if (!m)
		return;
	r0 = vmm_mem_region(m, 0);
	r1 = vmm_mem_region(m, 1);
	CHECK(r0->gpa == 0 && r0->size == 0xa0000 && r0->mmap_offset == 0);
	CHECK(r1->gpa == 0xc0000 && r1->size == 0x1ff40000 && r1->mmap_offset == 0xc0000);
	CHECK(r1->uaddr == r0->uaddr + 0xc0000);
	CHECK(r0->uaddr != r0->gpa);
	CHECK(vmm_mem_ptr(m, 0xa0000, 1) == NULL); /* the VGA hole */
	CHECK(vmm_mem_ptr(m, 0x9f000, 0x2000) == NULL);
	CHECK(vmm_mem_ptr(m, vmm_mem_hole_gpa(m), 1) == NULL);
	vmm_mem_free(m);
}

/* More regions: GPA-adjacent, file offsets reversed, straddling works. */
static void test_many_regions(void)
{
	struct vmm_mem *m = vmm_mem_new(64ull << 20, 4);
	const struct vmm_region *r1, *r2, *r3;
	uint8_t buf[8192], back[8192];
	uint64_t gpa, uaddr;

	CHECK(m);
	if (!m)
		return;
	r1 = vmm_mem_region(m, 1);
	r2 = vmm_mem_region(m, 2);
	r3 = vmm_mem_region(m, 3);
	CHECK(r1->gpa + r1->size == r2->gpa && r2->gpa + r2->size == r3->gpa);
	CHECK(r3->mmap_offset == 0xc0000 && r1->mmap_offset > r2->mmap_offset);
	CHECK(r3->gpa + r3->size == 64ull << 20);
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	/* Across the r1/r2 boundary: two different places in the file. */
	CHECK(vmm_mem_write(m, r2->gpa - 4096, buf, sizeof(buf)) == 0);
	CHECK(vmm_mem_read(m, r2->gpa - 4096, back, sizeof(back)) == 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	CHECK(vmm_mem_ptr(m, r2->gpa - 4096, sizeof(buf)) == NULL);
	CHECK(vmm_mem_gpa_to_uaddr(m, r2->gpa, &uaddr) == 0 && uaddr == r2->uaddr);

	CHECK(vmm_mem_alloc(m, 3 * VMM_PAGE_SIZE, VMM_REGION_ANY, VMM_ALLOC_SPAN, &gpa) == 0);
	CHECK(gpa < r2->gpa && gpa + 3 * VMM_PAGE_SIZE > r2->gpa);
	CHECK(vmm_mem_pages_in_use(m) == 3);
	vmm_mem_release(m, gpa, 3 * VMM_PAGE_SIZE);
	CHECK(vmm_mem_pages_in_use(m) == 0);
	vmm_mem_free(m);
}

static void test_allocator(void)
{
	struct vmm_mem *m = vmm_mem_new(4ull << 20, 2);
	uint64_t a, b, c;

	CHECK(m);
	if (!m)
		return;
	/* Never GPA 0; the hint is honoured; freed pages are reused. */
	CHECK(vmm_mem_alloc(m, 1, 0, 0, &a) == 0 && a == VMM_PAGE_SIZE);
	CHECK(vmm_mem_alloc(m, 5000, 1, 0, &b) == 0 && b == 0xc0000);
	CHECK(vmm_mem_pages_in_use(m) == 3);
	vmm_mem_release(m, b, 5000);
	CHECK(vmm_mem_alloc(m, VMM_PAGE_SIZE, 1, 0, &c) == 0 && c == b);
	CHECK(vmm_mem_alloc(m, 64ull << 20, VMM_REGION_ANY, 0, &c) == -1);
	vmm_mem_release(m, a, 1);
	vmm_mem_release(m, b, VMM_PAGE_SIZE);
	CHECK(vmm_mem_pages_in_use(m) == 0);
	vmm_mem_free(m);
}

/* vhost-user.md §8: Linux 6.1 puts avail at +0x400/used at +0x4c0 for 64
 * entries and +0x100/+0x140 for 16. */
static void test_ring_layout(struct vmm_mem *m)
{
	struct vmm_vring *a = vmm_vring_new(m, 0, 64, 0);
	struct vmm_vring *b = vmm_vring_new(m, 1, 16, 1);

	CHECK(a && b);
	if (a) {
		CHECK(vmm_vring_avail_gpa(a) - vmm_vring_desc_gpa(a) == 0x400);
		CHECK(vmm_vring_used_gpa(a) - vmm_vring_desc_gpa(a) == 0x4c0);
		CHECK(vmm_vring_desc_gpa(a) < 0xa0000); /* region 0 as hinted */
	}
	if (b) {
		CHECK(vmm_vring_avail_gpa(b) - vmm_vring_desc_gpa(b) == 0x100);
		CHECK(vmm_vring_used_gpa(b) - vmm_vring_desc_gpa(b) == 0x140);
	}
	vmm_vring_free(a);
	vmm_vring_free(b);
	CHECK(vmm_vring_new(m, 0, 48, 0) == NULL); /* not a power of two */
}

/* A device that takes the next avail entry and returns it with len. */
static void device_complete(struct vmm_mem *m, struct vmm_vring *vr, uint16_t *dev_avail,
		uint32_t len)
{
	unsigned num = vmm_vring_num(vr);
	uint64_t avail = vmm_vring_avail_gpa(vr), used = vmm_vring_used_gpa(vr);
	uint16_t head = rd16(m, avail + 4 + 2u * (*dev_avail % num));
	uint16_t uidx = rd16(m, used + 2);

	wr32(m, used + 4 + 8u * (uidx % num), head);
	wr32(m, used + 8 + 8u * (uidx % num), len);
	wr16(m, used + 2, (uint16_t)(uidx + 1));
	(*dev_avail)++;
}

static void test_ring_direct(struct vmm_mem *m)
{
	struct vmm_vring *vr = vmm_vring_new(m, 0, 16, VMM_REGION_ANY);
	struct vmm_vbuf bufs[3] = {
		{ 0x1000, 24, false }, { 0x2000, 32, false }, { 0x3000, 408, true },
	};
	uint16_t dev_avail = 0;
	uint64_t d;
	void *token;
	uint32_t len;
	int head;

	CHECK(vr);
	if (!vr)
		return;
	vmm_vring_set_features(vr, false, false);
	head = vmm_vring_add(vr, bufs, 3, (void *)bufs);
	CHECK(head >= 0 && vmm_vring_num_free(vr) == 13 && vmm_vring_avail_idx(vr) == 1);
	d = vmm_vring_desc_gpa(vr) + 16u * (unsigned)head;
	CHECK(rd64(m, d) == 0x1000 && rd32(m, d + 8) == 24);
	CHECK(rd16(m, d + 12) == VRING_DESC_F_NEXT);
	d = vmm_vring_desc_gpa(vr) + 16u * rd16(m, d + 14);
	d = vmm_vring_desc_gpa(vr) + 16u * rd16(m, d + 14);
	CHECK(rd64(m, d) == 0x3000 && rd16(m, d + 12) == VRING_DESC_F_WRITE);
	/* No EVENT_IDX and used.flags 0: a kick is wanted. */
	CHECK(vmm_vring_kick_prepare(vr));
	CHECK(vmm_vring_pop_used(vr, &token, &len) == 0);
	device_complete(m, vr, &dev_avail, 24);
	CHECK(vmm_vring_pop_used(vr, &token, &len) == 1 && token == bufs && len == 24);
	CHECK(vmm_vring_num_free(vr) == 16 && vmm_vring_in_flight(vr) == 0);
	/* A used len beyond the writable bytes breaks the ring. */
	CHECK(vmm_vring_add(vr, bufs, 3, (void *)bufs) >= 0);
	device_complete(m, vr, &dev_avail, 409);
	CHECK(vmm_vring_pop_used(vr, &token, &len) == -1);
	CHECK(strstr(vmm_vring_error(vr), "exceeds") != NULL);
	vmm_vring_free(vr);
}

static void test_ring_indirect_event_idx(struct vmm_mem *m)
{
	struct vmm_vring *vr = vmm_vring_new(m, 1, 16, VMM_REGION_ANY);
	struct vmm_vbuf bufs[2] = { { 0x1000, 56, false }, { 0x3000, 24, true } };
	uint64_t used, avail, d, table;
	uint16_t dev_avail = 0;
	uint64_t pages;
	void *token;
	uint32_t len;
	int head;

	CHECK(vr);
	if (!vr)
		return;
	used = vmm_vring_used_gpa(vr);
	avail = vmm_vring_avail_gpa(vr);
	vmm_vring_set_features(vr, true, true);
	pages = vmm_mem_pages_in_use(m);
	head = vmm_vring_add(vr, bufs, 2, NULL);
	CHECK(head >= 0 && vmm_vring_num_free(vr) == 15);
	d = vmm_vring_desc_gpa(vr) + 16u * (unsigned)head;
	CHECK(rd16(m, d + 12) == VRING_DESC_F_INDIRECT && rd32(m, d + 8) == 32);
	table = rd64(m, d);
	CHECK(rd64(m, table) == 0x1000 && rd16(m, table + 12) == VRING_DESC_F_NEXT);
	CHECK(rd16(m, table + 14) == 1 && rd64(m, table + 16) == 0x3000);
	CHECK(rd16(m, table + 28) == VRING_DESC_F_WRITE);
	/* avail_event 0 and idx moved 0 -> 1: kick. Then avail_event 5 with
	 * idx 1 -> 2: no kick (vring_need_event). */
	CHECK(vmm_vring_kick_prepare(vr));
	wr16(m, used + 4 + 8 * 16, 5);
	CHECK(vmm_vring_add(vr, bufs, 2, NULL) >= 0);
	CHECK(!vmm_vring_kick_prepare(vr));
	device_complete(m, vr, &dev_avail, 0);
	device_complete(m, vr, &dev_avail, 24);
	CHECK(vmm_vring_pop_used(vr, &token, &len) == 1 && len == 0);
	CHECK(vmm_vring_pop_used(vr, &token, &len) == 1 && len == 24);
	CHECK(!vmm_vring_enable_cb(vr));
	CHECK(rd16(m, avail + 4 + 2 * 16) == 2); /* used_event = last used */
	CHECK(vmm_mem_pages_in_use(m) == pages); /* tables released */
	/* Loops written by the fault hook are reclaimed from our own copy. */
	{
		struct vmm_rawdesc loop[2] = {
			{ 0x1000, 24, VRING_DESC_F_NEXT, 1 },
			{ 0x3000, 24, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0 },
		};

		CHECK(vmm_vring_add_raw(vr, loop, 2, 24, NULL) >= 0);
		CHECK(vmm_vring_num_free(vr) == 14);
		device_complete(m, vr, &dev_avail, 0);
		CHECK(vmm_vring_pop_used(vr, &token, &len) == 1);
		CHECK(vmm_vring_num_free(vr) == 16);
	}
	vmm_vring_free(vr);
}

static void test_patterns(void)
{
	struct vmm_pattern p;

	CHECK(vmm_pattern_parse("solid:336699", &p) == 0 && p.kind == VMM_PATTERN_SOLID);
	CHECK(vmm_pattern_pixel(&p, 3, 4, 10, 10) == 0xff336699u);
	CHECK(vmm_pattern_parse("quadrants", &p) == 0);
	CHECK(vmm_pattern_pixel(&p, 0, 0, 10, 10) == 0xffff0000u);
	CHECK(vmm_pattern_pixel(&p, 9, 0, 10, 10) == 0xff00ff00u);
	CHECK(vmm_pattern_pixel(&p, 0, 9, 10, 10) == 0xff0000ffu);
	CHECK(vmm_pattern_pixel(&p, 9, 9, 10, 10) == 0xffffffffu);
	CHECK(vmm_pattern_parse("solid:12", &p) == -1);
	CHECK(vmm_pattern_parse("coords", &p) == 0);
	CHECK(vmm_pattern_pixel(&p, 1, 2, 10, 10) != vmm_pattern_pixel(&p, 2, 1, 10, 10));
}

/* The input device's defaults, event type names, and a second device of
 * the same VM sharing guest RAM (and its allocator) with the first. */
static void test_input_device(void)
{
	struct vmm_config cfg;
	struct vmm_dev *gpu, *input;
	struct vmm_input *in;
	uint16_t type = 0;
	uint64_t gpa;

	vmm_config_init(&cfg, VMM_PROFILE_QEMU72);
	vmm_config_set_device(&cfg, VMM_DEVICE_INPUT);
	CHECK(cfg.device == VMM_DEVICE_INPUT);
	CHECK(cfg.ctrl_queue_size == 64 && cfg.cursor_queue_size == 64);
	CHECK(!cfg.gpu_socket && !cfg.edid);
	CHECK(strcmp(vmm_input_type_name(0x01), "EV_KEY") == 0);
	CHECK(strcmp(vmm_input_type_name(0x11), "EV_LED") == 0);
	CHECK(vmm_input_type_name(0x1f) == NULL);
	CHECK(vmm_input_type_parse("EV_ABS", &type) == 0 && type == 3);
	CHECK(vmm_input_type_parse("0x12", &type) == 0 && type == 0x12);
	CHECK(vmm_input_type_parse("EV_NOPE", &type) < 0);
	CHECK(vmm_input_type_parse("70000", &type) < 0);

	cfg.mem_size = 8ull << 20;
	gpu = vmm_dev_new(&cfg);
	CHECK(gpu);
	if (!gpu)
		return;
	input = vmm_dev_new_with_mem(&cfg, vmm_dev_mem(gpu));
	CHECK(input && vmm_dev_mem(input) == vmm_dev_mem(gpu));
	in = input ? vmm_input_new(input) : NULL;
	CHECK(in);
	if (in) {
		/* Not connected: every driver action fails cleanly. */
		CHECK(vmm_input_probe(in) < 0);
		CHECK(vmm_input_wait(in, 0) < 0);
		CHECK(vmm_input_posted(in) == 0);
	}
	CHECK(vmm_mem_alloc(vmm_dev_mem(input), VMM_PAGE_SIZE, VMM_REGION_ANY, 0, &gpa) == 0);
	CHECK(vmm_mem_pages_in_use(vmm_dev_mem(gpu)) == 1);
	vmm_mem_release(vmm_dev_mem(gpu), gpa, VMM_PAGE_SIZE);
	vmm_input_free(in);
	vmm_dev_free(input); /* borrowed memory stays */
	CHECK(vmm_mem_pages_in_use(vmm_dev_mem(gpu)) == 0);
	vmm_dev_free(gpu);
}

int main(void)
{
	struct vmm_mem *m;

	test_input_device();
	test_qemu_layout();
	test_many_regions();
	test_allocator();
	test_patterns();
	m = vmm_mem_new(8ull << 20, 2);
	CHECK(m);
	if (m) {
		test_ring_layout(m);
		test_ring_direct(m);
		test_ring_indirect_event_idx(m);
		CHECK(vmm_mem_pages_in_use(m) == 0);
		vmm_mem_free(m);
	}
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	return 0;
}
