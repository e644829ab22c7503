/*
 * Blob resources as udmabufs: where the kernel has /dev/udmabuf, a blob of
 * guest pages (from a memfd sealed against shrinking, as QEMU's
 * memory-backend-memfd makes it) must come with a dmabuf of those pages.
 * Skipped, naming what is missing, where there is no /dev/udmabuf.
 */
#define _GNU_SOURCE
#include <drm_fourcc.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "guest_memory.h"
#include "vgpu_resource.h"

int
main(void)
{
	if (access("/dev/udmabuf", R_OK | W_OK) != 0) {
		printf("SKIP: /dev/udmabuf is missing (kernel option CONFIG_UDMABUF); "
			"blobs are shown through the mapped-pages path instead\n");
		return 77;
	}
	int fd = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	struct vu_guest_memory mem;
	vu_mem_init(&mem);
	CHECK(vu_mem_add_region(&mem, fd, 0, 1 << 20, 0x7f0000000000, 0) == 0);
	uint8_t *ram = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memset(ram + 8192, 0x5a, 8192);
	struct vgpu_backing_entry entry = {.gpa = 8192, .length = 8192};
	uint32_t error = 0;
	struct vgpu_resource *blob = vgpu_resource_create_blob(1, &mem, &entry, 1, 8192, &error);
	CHECK(blob != NULL && blob->blob_dmabuf >= 0);
	if (blob != NULL) {
		struct wlr_buffer *image = vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 32, 64,
			128, 0);
		struct wlr_dmabuf_attributes attribs;
		CHECK(image != NULL && wlr_buffer_get_dmabuf(image, &attribs));
		CHECK(attribs.n_planes == 1 && attribs.stride[0] == 128 && attribs.width == 32);
		uint8_t *view = mmap(NULL, 8192, PROT_READ, MAP_SHARED, attribs.fd[0], 0);
		CHECK(view != MAP_FAILED && view[0] == 0x5a && view[8191] == 0x5a);
		munmap(view, 8192);
		wlr_buffer_drop(image);
		vgpu_resource_unref(blob);
	}
	munmap(ram, 1 << 20);
	vu_mem_finish(&mem);
	close(fd);
	CHECK_DONE();
}
