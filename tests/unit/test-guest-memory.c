/*
 * Guest memory: regions mapped from memfds the way QEMU 7.2 sends them
 * (vhost-user.md §6: a 512 MiB q35 guest is two regions of one memfd, the
 * second with mmap_offset 0xc0000), and translations of guest-physical and
 * front-end user addresses at every edge.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "guest_memory.h"

#define RAM_SIZE 0x20000000ull // 512 MiB, sparse
#define R0_GPA 0x0ull
#define R0_SIZE 0xa0000ull
#define R0_UADDR 0x7fff8ffff000ull
#define R1_GPA 0xc0000ull
#define R1_SIZE 0x1ff40000ull
#define R1_UADDR 0x7fff900bf000ull
#define R1_OFFSET 0xc0000ull
/* A third region on its own memfd, directly after region 1 in GPA space. */
#define R2_GPA (R1_GPA + R1_SIZE)
#define R2_SIZE 0x4000ull
#define R2_UADDR 0x7fff00000000ull
#define R2_OFFSET 0x3000ull

static int
make_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		perror("memfd");
		return -1;
	}
	return fd;
}

/* The test's own view of the memfd, standing in for the guest. */
static uint8_t *
map_fd(int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void
test_qemu_layout(void)
{
	int ram = make_memfd("cw-test-ram", RAM_SIZE);
	int extra = make_memfd("cw-test-extra", R2_OFFSET + R2_SIZE);
	CHECK(ram >= 0 && extra >= 0);
	uint8_t *guest = map_fd(ram, RAM_SIZE);
	uint8_t *guest2 = map_fd(extra, R2_OFFSET + R2_SIZE);
	CHECK(guest != NULL && guest2 != NULL);

	struct vu_guest_memory mem;
	vu_mem_init(&mem);
	CHECK(vu_mem_add_region(&mem, ram, R0_GPA, R0_SIZE, R0_UADDR, 0) == 0);
	CHECK(vu_mem_add_region(&mem, ram, R1_GPA, R1_SIZE, R1_UADDR, R1_OFFSET) == 0);
	CHECK(vu_mem_add_region(&mem, extra, R2_GPA, R2_SIZE, R2_UADDR, R2_OFFSET) == 0);
	CHECK(mem.count == 3);
	CHECK(mem.regions[1].host == mem.regions[1].map + R1_OFFSET);
	CHECK(mem.regions[1].map_size == R1_OFFSET + R1_SIZE);

	/* Marks written through the "guest" mapping must be found through the translation. */
	guest[0] = 0x11;
	guest[R0_SIZE - 1] = 0x12;
	guest[R1_GPA] = 0x21; // region 1 is at file offset == its GPA (mmap_offset 0xc0000)
	guest[RAM_SIZE - 1] = 0x22;
	guest2[R2_OFFSET] = 0x31;

	uint8_t *p = vu_mem_gpa_to_host(&mem, 0, 1);
	CHECK(p != NULL && *p == 0x11);
	p = vu_mem_gpa_to_host(&mem, R0_SIZE - 1, 1);
	CHECK(p != NULL && *p == 0x12);
	CHECK(vu_mem_gpa_to_host(&mem, R0_SIZE - 1, 2) == NULL); // runs into the hole
	CHECK(vu_mem_gpa_to_host(&mem, R0_SIZE, 1) == NULL);
	CHECK(vu_mem_gpa_to_host(&mem, R1_GPA - 1, 1) == NULL);
	p = vu_mem_gpa_to_host(&mem, R1_GPA, 1);
	CHECK(p != NULL && *p == 0x21);
	p = vu_mem_gpa_to_host(&mem, R1_GPA + R1_SIZE - 1, 1);
	CHECK(p != NULL && *p == 0x22);
	p = vu_mem_gpa_to_host(&mem, R2_GPA, 1);
	CHECK(p != NULL && *p == 0x31);
	/* One pointer cannot cover two regions, even adjacent ones. */
	CHECK(vu_mem_gpa_to_host(&mem, R2_GPA - 1, 2) == NULL);
	CHECK(vu_mem_gpa_to_host(&mem, R2_GPA + R2_SIZE, 1) == NULL);
	CHECK(vu_mem_gpa_to_host(&mem, 0, UINT64_MAX) == NULL);
	CHECK(vu_mem_gpa_to_host(&mem, UINT64_MAX, 2) == NULL);
	CHECK(vu_mem_gpa_to_host(&mem, R0_SIZE - 4, UINT64_MAX - 2) == NULL);

	/* User addresses: region starts, ends, and the §6 worked example. */
	p = vu_mem_uaddr_to_host(&mem, R0_UADDR, R0_SIZE);
	CHECK(p != NULL && *p == 0x11);
	CHECK(vu_mem_uaddr_to_host(&mem, R0_UADDR, R0_SIZE + 1) == NULL);
	CHECK(vu_mem_uaddr_to_host(&mem, R0_UADDR - 1, 1) == NULL);
	p = vu_mem_uaddr_to_host(&mem, R1_UADDR, 1);
	CHECK(p != NULL && *p == 0x21);
	CHECK(vu_mem_uaddr_to_host(&mem, R1_UADDR + R1_SIZE, 1) == NULL);
	/* QEMU sent used ring uaddr 0x7fffa91db4c0 with log_guest_addr 0x191dc4c0. */
	CHECK(vu_mem_uaddr_to_host(&mem, 0x7fffa91db4c0ull, 8) ==
		vu_mem_gpa_to_host(&mem, 0x191dc4c0ull, 8));
	CHECK(vu_mem_gpa_to_host(&mem, 0x191dc4c0ull, 8) == mem.regions[1].map + 0x191dc4c0ull);
	/* GPAs are not user addresses and vice versa. */
	CHECK(vu_mem_uaddr_to_host(&mem, R1_GPA, 1) == NULL);
	CHECK(vu_mem_gpa_to_host(&mem, R1_UADDR, 1) == NULL);

	/* iovec split across the region 1 / region 2 boundary. */
	struct iovec iov[4];
	int n = vu_mem_gpa_to_iovec(&mem, R2_GPA - 0x10, 0x30, iov, 4);
	CHECK(n == 2);
	if (n == 2) {
		CHECK(iov[0].iov_base == vu_mem_gpa_to_host(&mem, R2_GPA - 0x10, 0x10));
		CHECK(iov[0].iov_len == 0x10);
		CHECK(iov[1].iov_base == mem.regions[2].host);
		CHECK(iov[1].iov_len == 0x20);
		CHECK(*(uint8_t *)iov[1].iov_base == 0x31);
	}
	CHECK(vu_mem_gpa_to_iovec(&mem, R2_GPA - 0x10, 0x30, iov, 1) == -ENOBUFS);
	/* Inside one region: one piece. Empty range: none. */
	CHECK(vu_mem_gpa_to_iovec(&mem, 0x1000, 0x1000, iov, 4) == 1);
	CHECK(vu_mem_gpa_to_iovec(&mem, 0x1000, 0, iov, 4) == 0);
	/* Any unmapped byte fails the whole range, even with too few iovecs. */
	CHECK(vu_mem_gpa_to_iovec(&mem, R0_SIZE - 0x10, 0x20, iov, 4) == -EFAULT);
	CHECK(vu_mem_gpa_to_iovec(&mem, R0_SIZE - 0x10, 0x30000, iov, 1) == -EFAULT);
	CHECK(vu_mem_gpa_to_iovec(&mem, R2_GPA + R2_SIZE - 1, 2, iov, 4) == -EFAULT);
	CHECK(vu_mem_gpa_to_iovec(&mem, R2_GPA, UINT64_MAX, iov, 4) == -EFAULT);
	CHECK(vu_mem_gpa_to_iovec(&mem, 0xa0000000ull, 1, iov, 4) == -EFAULT);

	/* Removal needs all three identifying values. */
	CHECK(vu_mem_remove_region(&mem, R1_GPA, R1_SIZE, R0_UADDR) == -ENOENT);
	CHECK(vu_mem_remove_region(&mem, R1_GPA, R1_SIZE - 1, R1_UADDR) == -ENOENT);
	CHECK(vu_mem_remove_region(&mem, R1_GPA, R1_SIZE, R1_UADDR) == 0);
	CHECK(mem.count == 2);
	CHECK(vu_mem_gpa_to_host(&mem, R1_GPA, 1) == NULL);
	p = vu_mem_gpa_to_host(&mem, R2_GPA, 1); // later regions still translate
	CHECK(p != NULL && *p == 0x31);
	CHECK(vu_mem_gpa_to_iovec(&mem, R2_GPA - 0x10, 0x30, iov, 4) == -EFAULT);
	CHECK(vu_mem_remove_region(&mem, R1_GPA, R1_SIZE, R1_UADDR) == -ENOENT);

	vu_mem_finish(&mem);
	CHECK(mem.count == 0);
	CHECK(vu_mem_gpa_to_host(&mem, 0, 1) == NULL);
	munmap(guest, RAM_SIZE);
	munmap(guest2, R2_OFFSET + R2_SIZE);
	close(ram);
	close(extra);
}

static void
test_bad_regions(void)
{
	int fd = make_memfd("cw-test-small", 0x10000);
	struct vu_guest_memory mem;
	vu_mem_init(&mem);
	CHECK(vu_mem_add_region(&mem, fd, 0x1000, 0, 0x1000, 0) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, fd, UINT64_MAX - 0xfff, 0x2000, 0x1000, 0) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, fd, 0x1000, 0x2000, UINT64_MAX - 0xfff, 0) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, fd, 0x1000, 0x2000, 0x1000, UINT64_MAX - 0xfff) == -EINVAL);
	/* A file shorter than the region would SIGBUS on access. */
	CHECK(vu_mem_add_region(&mem, fd, 0, 0x10000, 0, 0x1000) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, fd, 0, 0x20000, 0, 0) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, -1, 0, 0x1000, 0, 0) == -EBADF);
	CHECK(mem.count == 0);

	CHECK(vu_mem_add_region(&mem, fd, 0x10000, 0x4000, 0x100000, 0) == 0);
	/* Overlaps in GPA or in user address space are ambiguous: refused. */
	CHECK(vu_mem_add_region(&mem, fd, 0x13fff, 0x1000, 0x200000, 0) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, fd, 0xf001, 0x1000, 0x200000, 0) == -EINVAL);
	CHECK(vu_mem_add_region(&mem, fd, 0x20000, 0x1000, 0x103000, 0) == -EINVAL);
	/* Touching edges is fine. */
	CHECK(vu_mem_add_region(&mem, fd, 0x14000, 0x1000, 0x104000, 0x4000) == 0);
	CHECK(vu_mem_add_region(&mem, fd, 0xf000, 0x1000, 0xff000, 0x5000) == 0);
	CHECK(mem.count == 3);
	struct iovec iov[3];
	CHECK(vu_mem_gpa_to_iovec(&mem, 0xf000, 0x6000, iov, 3) == 3);
	vu_mem_finish(&mem);

	/* The table holds VU_MAX_MEM_REGIONS regions and then reports -ENOSPC. */
	for (unsigned i = 0; i < VU_MAX_MEM_REGIONS; i++) {
		CHECK(vu_mem_add_region(&mem, fd, 0x2000ull * i, 0x1000, 0x1000000 + 0x2000ull * i,
			0x1000) == 0);
	}
	CHECK(mem.count == VU_MAX_MEM_REGIONS);
	CHECK(vu_mem_add_region(&mem, fd, 0x100000, 0x1000, 0x2000000, 0) == -ENOSPC);
	CHECK(vu_mem_gpa_to_host(&mem, 0x2000ull * (VU_MAX_MEM_REGIONS - 1) + 0xfff, 1) != NULL);
	CHECK(vu_mem_gpa_to_host(&mem, 0x1000, 1) == NULL);
	vu_mem_finish(&mem);
	close(fd);
}

int
main(void)
{
	test_qemu_layout();
	test_bad_regions();
	CHECK_DONE();
}
