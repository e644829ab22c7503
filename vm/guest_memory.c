#include "guest_memory.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

void
vu_mem_init(struct vu_guest_memory *mem)
{
	memset(mem, 0, sizeof(*mem));
}

void
vu_mem_finish(struct vu_guest_memory *mem)
{
	for (unsigned i = 0; i < mem->count; i++) {
		munmap(mem->regions[i].map, mem->regions[i].map_size);
		close(mem->regions[i].fd);
	}
	vu_mem_init(mem);
}

/* [a, a + a_len) and [b, b + b_len) share a byte; no sum may wrap (checked by the caller). */
static bool
ranges_overlap(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len)
{
	return a < b + b_len && b < a + a_len;
}

static bool
overlaps_existing(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t uaddr,
	uint64_t size)
{
	for (unsigned i = 0; i < mem->count; i++) {
		const struct vu_mem_region *r = &mem->regions[i];
		/* Either overlap would make a translation ambiguous. */
		if (ranges_overlap(gpa, size, r->guest_phys_addr, r->size) ||
				ranges_overlap(uaddr, size, r->user_addr, r->size)) {
			return true;
		}
	}
	return false;
}

/*
 * Touching a shared mapping beyond the end of its file raises SIGBUS, so a
 * front end must not be able to hand us a file shorter than the region it
 * describes. (Objects without a meaningful size, such as device memory, are
 * left to mmap to judge.)
 */
static int
check_fd_size(int fd, uint64_t needed)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		return -errno;
	}
	if (S_ISREG(st.st_mode) && (st.st_size < 0 || (uint64_t)st.st_size < needed)) {
		return -EINVAL;
	}
	return 0;
}

int
vu_mem_add_region(struct vu_guest_memory *mem, int fd, uint64_t guest_phys_addr,
	uint64_t size, uint64_t user_addr, uint64_t mmap_offset)
{
	if (size == 0 || guest_phys_addr + size < guest_phys_addr ||
			user_addr + size < user_addr || mmap_offset + size < mmap_offset ||
			mmap_offset + size > SIZE_MAX) {
		return -EINVAL;
	}
	if (overlaps_existing(mem, guest_phys_addr, user_addr, size)) {
		return -EINVAL;
	}
	if (mem->count >= VU_MAX_MEM_REGIONS) {
		return -ENOSPC;
	}
	int ret = check_fd_size(fd, mmap_offset + size);
	if (ret < 0) {
		return ret;
	}
	/* Map from file offset 0: mmap_offset need not be page aligned (as libvhost-user). */
	size_t map_size = (size_t)(mmap_offset + size);
	void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		return -errno;
	}
	int kept = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (kept < 0) {
		ret = -errno;
		munmap(map, map_size);
		return ret;
	}
	mem->regions[mem->count++] = (struct vu_mem_region){
		.fd = kept,
		.guest_phys_addr = guest_phys_addr,
		.size = size,
		.user_addr = user_addr,
		.mmap_offset = mmap_offset,
		.map = map,
		.map_size = map_size,
		.host = (uint8_t *)map + mmap_offset,
	};
	return 0;
}

int
vu_mem_remove_region(struct vu_guest_memory *mem, uint64_t guest_phys_addr, uint64_t size,
	uint64_t user_addr)
{
	for (unsigned i = 0; i < mem->count; i++) {
		struct vu_mem_region *r = &mem->regions[i];
		if (r->guest_phys_addr != guest_phys_addr || r->size != size ||
				r->user_addr != user_addr) {
			continue;
		}
		munmap(r->map, r->map_size);
		close(r->fd);
		memmove(r, r + 1, (mem->count - i - 1) * sizeof(*r));
		mem->count--;
		memset(&mem->regions[mem->count], 0, sizeof(mem->regions[0]));
		return 0;
	}
	return -ENOENT;
}

/* The region holding address `a` in the space chosen by `user` (uaddr or GPA). */
static const struct vu_mem_region *
find_region(const struct vu_guest_memory *mem, uint64_t a, bool user)
{
	for (unsigned i = 0; i < mem->count; i++) {
		const struct vu_mem_region *r = &mem->regions[i];
		uint64_t start = user ? r->user_addr : r->guest_phys_addr;
		if (a >= start && a - start < r->size) {
			return r;
		}
	}
	return NULL;
}

static void *
translate(const struct vu_guest_memory *mem, uint64_t a, uint64_t len, bool user)
{
	const struct vu_mem_region *r = find_region(mem, a, user);
	if (r == NULL) {
		return NULL;
	}
	uint64_t off = a - (user ? r->user_addr : r->guest_phys_addr);
	/* Written as a subtraction so that a huge len cannot wrap around. */
	if (len > r->size - off) {
		return NULL;
	}
	return r->host + off;
}

void *
vu_mem_gpa_to_host(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t len)
{
	return translate(mem, gpa, len, false);
}

void *
vu_mem_uaddr_to_host(const struct vu_guest_memory *mem, uint64_t uaddr, uint64_t len)
{
	return translate(mem, uaddr, len, true);
}

bool
vu_mem_gpa_to_file(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t len, int *fd,
	uint64_t *offset)
{
	for (unsigned i = 0; i < mem->count; i++) {
		const struct vu_mem_region *r = &mem->regions[i];
		if (gpa >= r->guest_phys_addr && len <= r->size &&
				gpa - r->guest_phys_addr <= r->size - len) {
			*fd = r->fd;
			*offset = r->mmap_offset + (gpa - r->guest_phys_addr);
			return true;
		}
	}
	return false;
}

int
vu_mem_gpa_to_iovec(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t len,
	struct iovec *iov, int max_iov)
{
	if (gpa + len < gpa) {
		return -EFAULT;
	}
	int count = 0;
	bool too_many = false;
	/*
	 * Regions never overlap, so each step consumes a whole region's worth or
	 * the rest of the range: the walk ends after at most count + 1 steps.
	 * It continues after running out of iovecs so that an unmapped byte is
	 * still reported as -EFAULT rather than -ENOBUFS.
	 */
	while (len > 0) {
		const struct vu_mem_region *r = find_region(mem, gpa, false);
		if (r == NULL) {
			return -EFAULT;
		}
		uint64_t off = gpa - r->guest_phys_addr;
		uint64_t piece = r->size - off < len ? r->size - off : len;
		if (count < max_iov) {
			iov[count] = (struct iovec){.iov_base = r->host + off, .iov_len = (size_t)piece};
			count++;
		} else {
			too_many = true;
		}
		gpa += piece;
		len -= piece;
	}
	return too_many ? -ENOBUFS : count;
}
