/*
 * Guest RAM: one memfd mapped once, described to the back end as several
 * regions, with a first-fit page allocator on top.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

/* QEMU q35 keeps 0xa0000-0xc0000 (VGA window) out of the RAM regions. */
#define LOW_RAM_END 0xa0000u
#define HIGH_RAM_START 0xc0000u

struct vmm_mem {
	int fd;
	uint8_t *map;
	uint64_t size;
	unsigned nregions;
	struct vmm_region regions[VMM_MAX_REGIONS];
	uint8_t *page_used[VMM_MAX_REGIONS]; /* one byte per page */
	uint64_t pages_in_use;
};

static uint64_t region_pages(const struct vmm_region *r)
{
	return r->size / VMM_PAGE_SIZE;
}

/*
 * Regions above the VGA hole are GPA-adjacent but stored in the file in
 * reverse order, so that no region (except QEMU's region 1 when there are
 * exactly two) has gpa == mmap_offset. A back end that mixes them up fails.
 */
static void layout_regions(struct vmm_mem *mem)
{
	unsigned high = mem->nregions - 1;
	uint64_t rest = mem->size - HIGH_RAM_START;
	uint64_t chunk = rest / high / VMM_PAGE_SIZE * VMM_PAGE_SIZE;
	uint64_t gpa = HIGH_RAM_START;
	uint64_t offset = mem->size;

	mem->regions[0] = (struct vmm_region){ .gpa = 0, .size = LOW_RAM_END };
	for (unsigned i = 1; i < mem->nregions; i++) {
		struct vmm_region *r = &mem->regions[i];

		r->size = i == mem->nregions - 1 ? rest - chunk * (high - 1) : chunk;
		r->gpa = gpa;
		gpa += r->size;
		offset -= r->size;
		r->mmap_offset = offset;
	}
}

static int alloc_bitmaps(struct vmm_mem *mem)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		struct vmm_region *r = &mem->regions[i];

		r->uaddr = (uint64_t)(uintptr_t)(mem->map + r->mmap_offset);
		mem->page_used[i] = calloc(region_pages(r), 1);
		if (!mem->page_used[i])
			return -1;
	}
	return 0;
}

struct vmm_mem *vmm_mem_new(uint64_t size, unsigned nregions)
{
	struct vmm_mem *mem;

	/* Each high region needs at least a few pages to be useful. */
	if (nregions < 1 || nregions > VMM_MAX_REGIONS || size % VMM_PAGE_SIZE ||
			size < HIGH_RAM_START + (uint64_t)nregions * 64 * VMM_PAGE_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	mem = calloc(1, sizeof(*mem));
	if (!mem)
		return NULL;
	mem->size = size;
	mem->nregions = nregions;
	mem->map = MAP_FAILED;
	/* Sealed against resizing, as QEMU's memory-backend-memfd (seal=on) does. */
	mem->fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mem->fd < 0 || ftruncate(mem->fd, (off_t)size) < 0 ||
			fcntl(mem->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	mem->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mem->fd, 0);
	if (mem->map == MAP_FAILED)
		goto fail;
	if (nregions == 1)
		mem->regions[0] = (struct vmm_region){ .gpa = 0, .size = size };
	else
		layout_regions(mem);
	if (alloc_bitmaps(mem) < 0)
		goto fail;
	return mem;
fail:
	vmm_mem_free(mem);
	return NULL;
}

void vmm_mem_free(struct vmm_mem *mem)
{
	int saved = errno;

	if (!mem)
		return;
	for (unsigned i = 0; i < mem->nregions; i++)
		free(mem->page_used[i]);
	if (mem->map != MAP_FAILED)
		munmap(mem->map, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	free(mem);
	errno = saved;
}

int vmm_mem_fd(const struct vmm_mem *mem)
{
	return mem->fd;
}

unsigned vmm_mem_region_count(const struct vmm_mem *mem)
{
	return mem->nregions;
}

const struct vmm_region *vmm_mem_region(const struct vmm_mem *mem, unsigned i)
{
	return i < mem->nregions ? &mem->regions[i] : NULL;
}

static int find_region(const struct vmm_mem *mem, uint64_t gpa)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct vmm_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return (int)i;
	}
	return -1;
}

void *vmm_mem_ptr(struct vmm_mem *mem, uint64_t gpa, uint64_t len)
{
	int i = find_region(mem, gpa);
	const struct vmm_region *r;

	if (i < 0)
		return NULL;
	r = &mem->regions[i];
	if (len > r->size - (gpa - r->gpa))
		return NULL;
	return mem->map + r->mmap_offset + (gpa - r->gpa);
}

/* Calls fn on each region-contained piece of [gpa, gpa+len). */
static int for_each_piece(struct vmm_mem *mem, uint64_t gpa, uint64_t len,
		void (*fn)(uint8_t *host, uint8_t *buf, uint64_t n), uint8_t *buf)
{
	while (len > 0) {
		int i = find_region(mem, gpa);
		const struct vmm_region *r;
		uint64_t n;

		if (i < 0)
			return -1;
		r = &mem->regions[i];
		n = r->size - (gpa - r->gpa);
		if (n > len)
			n = len;
		fn(mem->map + r->mmap_offset + (gpa - r->gpa), buf, n);
		gpa += n;
		buf += n;
		len -= n;
	}
	return 0;
}

static void copy_to_host(uint8_t *host, uint8_t *buf, uint64_t n)
{
	memcpy(host, buf, n);
}

static void copy_from_host(uint8_t *host, uint8_t *buf, uint64_t n)
{
	memcpy(buf, host, n);
}

int vmm_mem_write(struct vmm_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	/* The cast only drops const for the shared helper; src is never written. */
	return for_each_piece(mem, gpa, len, copy_to_host, (uint8_t *)(uintptr_t)src);
}

int vmm_mem_read(struct vmm_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	return for_each_piece(mem, gpa, len, copy_from_host, dst);
}

int vmm_mem_gpa_to_uaddr(const struct vmm_mem *mem, uint64_t gpa, uint64_t *uaddr)
{
	int i = find_region(mem, gpa);

	if (i < 0)
		return -1;
	*uaddr = mem->regions[i].uaddr + (gpa - mem->regions[i].gpa);
	return 0;
}

uint64_t vmm_mem_hole_gpa(const struct vmm_mem *mem)
{
	const struct vmm_region *last = &mem->regions[mem->nregions - 1];

	/* Far above the highest region: never RAM. */
	return (last->gpa + last->size + 0x40000000ull) & ~0xfffffull;
}

uint64_t vmm_mem_hole_uaddr(const struct vmm_mem *mem)
{
	/* Just past our mapping: certainly not inside any region. */
	return ((uint64_t)(uintptr_t)mem->map + mem->size + 0x100000ull) & ~0xfffull;
}

static bool page_free(const struct vmm_mem *mem, unsigned ri, uint64_t page)
{
	return !mem->page_used[ri][page];
}

/* Index of the region that starts exactly where region ri ends, or -1. */
static int next_adjacent(const struct vmm_mem *mem, unsigned ri)
{
	const struct vmm_region *r = &mem->regions[ri];

	return find_region(mem, r->gpa + r->size);
}

/*
 * Counts free pages from (ri, page) on, following GPA-adjacent regions when
 * spanning is allowed, stopping once `want` are found.
 */
static uint64_t free_run(const struct vmm_mem *mem, unsigned ri, uint64_t page,
		uint64_t want, bool span)
{
	uint64_t n = 0;

	while (n < want) {
		if (page == region_pages(&mem->regions[ri])) {
			int next = span ? next_adjacent(mem, ri) : -1;

			if (next < 0)
				break;
			ri = (unsigned)next;
			page = 0;
		}
		if (!page_free(mem, ri, page))
			break;
		n++;
		page++;
	}
	return n;
}

static void mark_pages(struct vmm_mem *mem, uint64_t gpa, uint64_t npages, uint8_t v)
{
	for (uint64_t k = 0; k < npages; k++) {
		uint64_t a = gpa + k * VMM_PAGE_SIZE;
		int ri = find_region(mem, a);

		mem->page_used[ri][(a - mem->regions[ri].gpa) / VMM_PAGE_SIZE] = v;
	}
}

static int try_region(struct vmm_mem *mem, unsigned ri, uint64_t npages,
		bool span, uint64_t *gpa)
{
	const struct vmm_region *r = &mem->regions[ri];
	uint64_t pages = region_pages(r);

	/* Region 0 starts at page 0 = GPA 0: keep GPA 0 out of use so that a
	 * zero address in a descriptor is always a bug. */
	for (uint64_t p = r->gpa == 0 ? 1 : 0; p < pages; p++) {
		uint64_t run = free_run(mem, ri, p, npages, span);

		if (run == npages) {
			*gpa = r->gpa + p * VMM_PAGE_SIZE;
			return 0;
		}
		p += run; /* skip past the used page that ended the run */
	}
	return -1;
}

/*
 * With VMM_ALLOC_SPAN a multi-page buffer is placed across a boundary
 * between GPA-adjacent regions whenever one has room, so that the back end
 * has to translate it piece by piece (vhost-user.md §6).
 */
static int try_straddle(struct vmm_mem *mem, uint64_t npages, uint64_t *gpa)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct vmm_region *r = &mem->regions[i];
		uint64_t pages = region_pages(r);

		if (next_adjacent(mem, i) < 0)
			continue;
		/* k pages in region i, the rest in the next one. */
		for (uint64_t k = 1; k < npages && k <= pages; k++) {
			uint64_t p = pages - k;

			if (free_run(mem, i, p, npages, true) == npages) {
				*gpa = r->gpa + p * VMM_PAGE_SIZE;
				return 0;
			}
		}
	}
	return -1;
}

int vmm_mem_alloc(struct vmm_mem *mem, uint64_t size, int region_hint,
		unsigned flags, uint64_t *gpa)
{
	uint64_t npages = (size + VMM_PAGE_SIZE - 1) / VMM_PAGE_SIZE;
	bool span = flags & VMM_ALLOC_SPAN;
	int found = -1;

	if (npages == 0)
		npages = 1;
	if (span && npages > 1)
		found = try_straddle(mem, npages, gpa);
	if (found < 0 && region_hint >= 0 && (unsigned)region_hint < mem->nregions)
		found = try_region(mem, (unsigned)region_hint, npages, span, gpa);
	/* Highest regions first: they are the big ones. */
	for (unsigned i = mem->nregions; found < 0 && i-- > 0;)
		found = try_region(mem, i, npages, span, gpa);
	if (found < 0) {
		errno = ENOMEM;
		return -1;
	}
	mark_pages(mem, *gpa, npages, 1);
	mem->pages_in_use += npages;
	/* Page by page: a spanning allocation is not contiguous on our side. */
	for (uint64_t k = 0; k < npages; k++) {
		void *p = vmm_mem_ptr(mem, *gpa + k * VMM_PAGE_SIZE, VMM_PAGE_SIZE);

		memset(p, 0, VMM_PAGE_SIZE);
	}
	return 0;
}

void vmm_mem_release(struct vmm_mem *mem, uint64_t gpa, uint64_t size)
{
	uint64_t npages = (size + VMM_PAGE_SIZE - 1) / VMM_PAGE_SIZE;

	if (npages == 0)
		npages = 1;
	mark_pages(mem, gpa, npages, 0);
	mem->pages_in_use -= npages;
}

uint64_t vmm_mem_pages_in_use(const struct vmm_mem *mem)
{
	return mem->pages_in_use;
}
