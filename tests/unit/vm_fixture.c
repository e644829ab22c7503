/* A fake guest for tests: see vm_fixture.h. */
#define _GNU_SOURCE
#include "vm_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

struct vm_fixture vm_fixture;

int
vm_fixture_init(size_t size)
{
	int fd = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		return -errno;
	}
	int r = 0;
	if (ftruncate(fd, (off_t)size) != 0 ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
		r = -errno;
		goto out;
	}
	vu_mem_init(&vm_fixture.mem);
	r = vu_mem_add_region(&vm_fixture.mem, fd, VM_FIXTURE_GPA, size, 0x7f0000000000ull, 0);
	if (r != 0) {
		goto out;
	}
	vm_fixture.ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (vm_fixture.ram == MAP_FAILED) {
		r = -errno;
		vm_fixture.ram = NULL;
		vu_mem_finish(&vm_fixture.mem);
		goto out;
	}
	vm_fixture.ram_size = size;
out:
	close(fd);
	return r;
}

void
vm_fixture_finish(void)
{
	for (uint32_t id = 0; id < VM_FIXTURE_MAX_RES; id++) {
		vm_fixture_drop(id);
	}
	if (vm_fixture.ram != NULL) {
		munmap(vm_fixture.ram, vm_fixture.ram_size);
		vm_fixture.ram = NULL;
	}
	vu_mem_finish(&vm_fixture.mem);
}

struct vgpu_resource *
vm_fixture_new_blob(uint32_t id, uint64_t page, uint64_t pages, uint64_t size)
{
	struct vgpu_backing_entry e = {
		.gpa = VM_FIXTURE_GPA + page * VM_FIXTURE_PAGE,
		.length = (uint32_t)(pages * VM_FIXTURE_PAGE),
	};
	uint32_t error = 0;
	return vgpu_resource_create_blob(id, &vm_fixture.mem, &e, 1, size, &error);
}

int
vm_fixture_add_blob(uint32_t id, uint64_t page, uint64_t pages, uint64_t size)
{
	if (id >= VM_FIXTURE_MAX_RES) {
		return -1;
	}
	vm_fixture.resources[id] = vm_fixture_new_blob(id, page, pages, size);
	vm_fixture.attached[id] = vm_fixture.resources[id] != NULL;
	return vm_fixture.resources[id] != NULL ? 0 : -1;
}

void
vm_fixture_drop(uint32_t id)
{
	if (vm_fixture.resources[id] != NULL) {
		vgpu_resource_unref(vm_fixture.resources[id]);
		vm_fixture.resources[id] = NULL;
		vm_fixture.attached[id] = false;
	}
}

uint8_t *
vm_fixture_bytes(const struct vgpu_resource *res, size_t offset)
{
	size_t start = res->backing_count > 0 ? res->backing[0].gpa - VM_FIXTURE_GPA : 0;
	return vm_fixture.ram + start + offset;
}

struct vgpu_resource *
vm_fixture_resource(void *data, uint32_t id)
{
	(void)data;
	return id < VM_FIXTURE_MAX_RES && vm_fixture.attached[id] ? vm_fixture.resources[id] : NULL;
}

const struct vu_guest_memory *
vm_fixture_memory(void *data)
{
	(void)data;
	return &vm_fixture.mem;
}

int
vm_fixture_wayland_pair(int *compositor)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		return -errno;
	}
	if (*compositor >= 0) {
		close(*compositor);
	}
	*compositor = sv[0];
	return sv[1];
}

int
vm_fixture_open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d != NULL && readdir(d) != NULL) {
		n++;
	}
	if (d != NULL) {
		closedir(d);
	}
	return n;
}
