#ifndef VU_GUEST_MEMORY_H
#define VU_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * A VM's RAM as the front end shares it: up to VU_MAX_MEM_REGIONS memfd
 * regions, each mapped once into crossway. Two address spaces translate
 * into it: guest-physical addresses (descriptors, virtio-gpu mem entries)
 * and the front end's own user addresses (SET_VRING_ADDR). Every
 * translation checks the whole range; nothing outside a region is reachable.
 */
#define VU_MAX_MEM_REGIONS 32

struct vu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t size;
	uint64_t user_addr;   // the front end's virtual address of the region
	uint64_t mmap_offset; // where the region starts in the fd
	uint8_t *map;         // mmap of [0, mmap_offset + size) of the fd
	size_t map_size;
	uint8_t *host;        // map + mmap_offset
	int fd;               // a duplicate, kept for zero-copy views of guest pages
};

struct vu_guest_memory {
	struct vu_mem_region regions[VU_MAX_MEM_REGIONS];
	unsigned count;
};

void vu_mem_init(struct vu_guest_memory *mem);
/* Unmaps every region. */
void vu_mem_finish(struct vu_guest_memory *mem);

/*
 * Maps a region from fd (the fd is not kept). Returns 0, or -EINVAL for a
 * malformed or overlapping region, -ENOSPC when the table is full, -errno
 * from mmap.
 */
int vu_mem_add_region(struct vu_guest_memory *mem, int fd, uint64_t guest_phys_addr,
	uint64_t size, uint64_t user_addr, uint64_t mmap_offset);
/* Removes the region matching all three values. Returns 0 or -ENOENT. */
int vu_mem_remove_region(struct vu_guest_memory *mem, uint64_t guest_phys_addr,
	uint64_t size, uint64_t user_addr);

/* Host pointer for [gpa, gpa + len) if it lies inside one region, else NULL. */
void *vu_mem_gpa_to_host(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t len);
/* The same for front-end user addresses. */
void *vu_mem_uaddr_to_host(const struct vu_guest_memory *mem, uint64_t uaddr, uint64_t len);
/*
 * The memory file and offset backing [gpa, gpa + len), if the range lies in
 * one region: for mapping guest pages elsewhere (blob resources, udmabuf).
 * Returns false if it does not. The fd stays owned by the memory table.
 */
bool vu_mem_gpa_to_file(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t len,
	int *fd, uint64_t *offset);

/*
 * Splits [gpa, gpa + len) into host iovecs across regions. Returns the
 * number of iovecs used, or -EFAULT if any byte is unmapped, -ENOBUFS if
 * more than max_iov pieces would be needed.
 */
int vu_mem_gpa_to_iovec(const struct vu_guest_memory *mem, uint64_t gpa, uint64_t len,
	struct iovec *iov, int max_iov);

#endif
