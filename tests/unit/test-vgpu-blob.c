#define _GNU_SOURCE
#include <drm_fourcc.h>
#include <fcntl.h>
#include <stdbool.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "guest_memory.h"
#include "vgpu_resource.h"

#define MIB (1024 * 1024)

/* Guest RAM: 4 MiB at GPA 0x100000 of a memfd, region starting at file offset 0x2000. */
static int
make_memory(struct vu_guest_memory *mem, uint8_t **ram, bool sealed)
{
	int fd = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && ftruncate(fd, 0x2000 + 4 * MIB) == 0);
	/* QEMU's memory-backend-memfd seals its file; a blob needs that. */
	CHECK(!sealed || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
	vu_mem_init(mem);
	CHECK(vu_mem_add_region(mem, fd, 0x100000, 4 * MIB, 0x7f0000000000, 0x2000) == 0);
	*ram = mmap(NULL, 0x2000 + 4 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(*ram != MAP_FAILED);
	*ram += 0x2000;
	return fd;
}

int
main(void)
{
	struct vu_guest_memory mem;
	uint8_t *ram;
	int fd = make_memory(&mem, &ram, true);
	uint32_t error = 0;

	/* Two runs of guest pages, out of order: page 10-11, then page 3. */
	struct vgpu_backing_entry entries[2] = {
		{.gpa = 0x100000 + 10 * 4096, .length = 2 * 4096},
		{.gpa = 0x100000 + 3 * 4096, .length = 4096},
	};
	memset(ram + 10 * 4096, 0x11, 2 * 4096);
	memset(ram + 3 * 4096, 0x33, 4096);
	struct vgpu_resource *blob = vgpu_resource_create_blob(7, &mem, entries, 2, 3 * 4096, &error);
	CHECK(blob != NULL);
	if (blob == NULL) {
		CHECK_DONE();
	}
	CHECK(blob->blob && blob->blob_size == 3 * 4096);
	CHECK(blob->blob_pieces == 2); // two runs that are not adjacent in the file

	/* A 32x48 XRGB image at offset 0, stride 256: exactly the blob. */
	struct wlr_buffer *image = vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 32, 48, 256, 0);
	CHECK(image != NULL);
	void *data;
	uint32_t format;
	size_t stride;
	CHECK(wlr_buffer_begin_data_ptr_access(image, WLR_BUFFER_DATA_PTR_ACCESS_READ, &data,
		&format, &stride));
	uint8_t *pixels = data;
	CHECK(format == DRM_FORMAT_XRGB8888 && stride == 256);
	CHECK(pixels[0] == 0x11 && pixels[2 * 4096 - 1] == 0x11 && pixels[2 * 4096] == 0x33);
	/* No copy: what the guest writes now is what the host reads. */
	ram[3 * 4096 + 5] = 0x77;
	CHECK(pixels[2 * 4096 + 5] == 0x77);
	wlr_buffer_end_data_ptr_access(image);
	/* The host may not write into guest memory. */
	CHECK(!wlr_buffer_begin_data_ptr_access(image, WLR_BUFFER_DATA_PTR_ACCESS_WRITE, &data,
		&format, &stride));

	/* Layouts that leave the blob are refused. */
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 32, 49, 256, 0) == NULL);
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 32, 48, 256, 132) == NULL);
	struct wlr_buffer *edge = vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 32, 48, 256, 128);
	CHECK(edge != NULL); // ends exactly at the blob's end
	wlr_buffer_drop(edge);
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 65, 1, 256, 0) == NULL); // stride < w*4
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 0, 1, 256, 0) == NULL);
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 1, 1, 6, 0) == NULL);   // unaligned
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 1, 1, 0xfffffffc, 0) == NULL);
	CHECK(vgpu_blob_image_create(blob, DRM_FORMAT_XRGB8888, 2, 2, 0x80000000, 0) == NULL);

	/* The blob outlives the guest's UNREF while an image still shows it. */
	vgpu_resource_unref(blob);
	CHECK(wlr_buffer_begin_data_ptr_access(image, WLR_BUFFER_DATA_PTR_ACCESS_READ, &data,
		&format, &stride));
	CHECK(((uint8_t *)data)[0] == 0x11);
	wlr_buffer_end_data_ptr_access(image);
	wlr_buffer_drop(image);

	/* Guest input that cannot be mapped is refused with the right error. */
	struct vgpu_backing_entry unaligned = {.gpa = 0x100000 + 100, .length = 4096};
	CHECK(vgpu_resource_create_blob(8, &mem, &unaligned, 1, 4096, &error) == NULL);
	CHECK(error == VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	struct vgpu_backing_entry outside = {.gpa = 0x100000 + 4 * MIB, .length = 4096};
	CHECK(vgpu_resource_create_blob(9, &mem, &outside, 1, 4096, &error) == NULL);
	struct vgpu_backing_entry straddling = {.gpa = 0x100000 + 4 * MIB - 4096, .length = 8192};
	CHECK(vgpu_resource_create_blob(10, &mem, &straddling, 1, 8192, &error) == NULL);
	struct vgpu_backing_entry small = {.gpa = 0x100000, .length = 4096};
	CHECK(vgpu_resource_create_blob(11, &mem, &small, 1, 8192, &error) == NULL); // size > pages
	CHECK(vgpu_resource_create_blob(12, &mem, &small, 0, 4096, &error) == NULL);

	/* Adjacent entries share one kernel mapping. */
	struct vgpu_backing_entry run[3] = {
		{.gpa = 0x100000 + 20 * 4096, .length = 4096},
		{.gpa = 0x100000 + 21 * 4096, .length = 8192},
		{.gpa = 0x100000 + 23 * 4096, .length = 4096},
	};
	struct vgpu_resource *merged = vgpu_resource_create_blob(13, &mem, run, 3, 4 * 4096, &error);
	CHECK(merged != NULL && merged->blob_pieces == 1);
	if (merged != NULL) {
		vgpu_resource_unref(merged);
	}

	munmap(ram - 0x2000, 0x2000 + 4 * MIB);
	vu_mem_finish(&mem);
	close(fd);

	/* Memory that could shrink under the mapping (SIGBUS) is refused. */
	fd = make_memory(&mem, &ram, false);
	CHECK(vgpu_resource_create_blob(14, &mem, &small, 1, 4096, &error) == NULL);
	munmap(ram - 0x2000, 0x2000 + 4 * MIB);
	vu_mem_finish(&mem);
	close(fd);
	CHECK_DONE();
}
