#include "vgpu_resource.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint32_t
vgpu_format_to_drm(uint32_t virtio_format)
{
	/* virtio names bytes in memory order; DRM fourccs are little-endian words. */
	switch (virtio_format) {
	case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM: return DRM_FORMAT_ARGB8888;
	case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM: return DRM_FORMAT_XRGB8888;
	case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM: return DRM_FORMAT_BGRA8888;
	case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM: return DRM_FORMAT_BGRX8888;
	case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM: return DRM_FORMAT_ABGR8888;
	case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM: return DRM_FORMAT_RGBX8888;
	case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM: return DRM_FORMAT_RGBA8888;
	case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM: return DRM_FORMAT_XBGR8888;
	default: return 0;
	}
}

static struct vgpu_resource *
resource_from_buffer(struct wlr_buffer *buffer)
{
	return wl_container_of(buffer, (struct vgpu_resource *)NULL, base);
}

static void
resource_buffer_destroy(struct wlr_buffer *buffer)
{
	struct vgpu_resource *res = resource_from_buffer(buffer);
	if (res->blob_map != NULL) {
		munmap(res->blob_map, res->blob_map_size);
	}
	if (res->blob_dmabuf >= 0) {
		close(res->blob_dmabuf);
	}
	if (res->budget != NULL) {
		/* The view is unmapped now: only now does the VM get its charge back. */
		res->budget->blobs--;
		res->budget->memory -= res->blob_size;
		res->budget->maps -= res->blob_pieces;
		vgpu_blob_budget_unref(res->budget);
	}
	free(res->backing);
	free(res->data);
	free(res);
}

static bool
resource_begin_data_ptr_access(struct wlr_buffer *buffer, uint32_t flags, void **data,
	uint32_t *format, size_t *stride)
{
	struct vgpu_resource *res = resource_from_buffer(buffer);
	if (flags & WLR_BUFFER_DATA_PTR_ACCESS_WRITE) {
		return false; // only the guest writes it, through transfers
	}
	*data = res->data;
	*format = res->drm_format;
	*stride = res->stride;
	return true;
}

static void
resource_end_data_ptr_access(struct wlr_buffer *buffer)
{
	(void)buffer;
}

static const struct wlr_buffer_impl resource_buffer_impl = {
	.destroy = resource_buffer_destroy,
	.begin_data_ptr_access = resource_begin_data_ptr_access,
	.end_data_ptr_access = resource_end_data_ptr_access,
};

struct vgpu_resource *
vgpu_resource_create_2d(uint32_t id, uint32_t virtio_format, uint32_t width, uint32_t height)
{
	uint32_t drm_format = vgpu_format_to_drm(virtio_format);
	if (drm_format == 0 || width == 0 || height == 0 ||
			width > VGPU_MAX_RESOURCE_DIMENSION || height > VGPU_MAX_RESOURCE_DIMENSION) {
		return NULL;
	}
	struct vgpu_resource *res = calloc(1, sizeof(*res));
	if (res == NULL) {
		return NULL;
	}
	res->id = id;
	res->virtio_format = virtio_format;
	res->drm_format = drm_format;
	res->width = width;
	res->height = height;
	res->stride = width * 4; // at most 65536: no overflow
	res->data_size = (size_t)res->stride * height;
	res->data = calloc(1, res->data_size);
	if (res->data == NULL) {
		free(res);
		return NULL;
	}
	res->blob_dmabuf = -1;
	wl_list_init(&res->link);
	wlr_buffer_init(&res->base, &resource_buffer_impl, (int)width, (int)height);
	return res;
}

struct vgpu_blob_budget *
vgpu_blob_budget_create(void)
{
	struct vgpu_blob_budget *budget = calloc(1, sizeof(*budget));
	if (budget != NULL) {
		budget->refs = 1;
	}
	return budget;
}

void
vgpu_blob_budget_unref(struct vgpu_blob_budget *budget)
{
	if (budget != NULL && --budget->refs == 0) {
		free(budget);
	}
}

void
vgpu_blob_charge(struct vgpu_resource *blob, struct vgpu_blob_budget *budget)
{
	if (!blob->blob || blob->budget != NULL || budget == NULL) {
		return;
	}
	blob->budget = budget;
	budget->refs++;
	budget->blobs++;
	budget->memory += blob->blob_size;
	budget->maps += blob->blob_pieces;
}

void
vgpu_resource_unref(struct vgpu_resource *res)
{
	wl_list_remove(&res->link);
	wl_list_init(&res->link);
	res->unreferenced = true;
	if (res->blob) {
		vgpu_blob_forget(res); // no placeholder may import a blob the guest dropped
	}
	vgpu_resource_detach_backing(res);
	wlr_buffer_drop(&res->base);
}

void
vgpu_resource_set_backing(struct vgpu_resource *res, struct vgpu_backing_entry *entries,
	uint32_t count)
{
	free(res->backing);
	uint64_t start = 0;
	for (uint32_t i = 0; i < count; i++) {
		entries[i].start = start;
		start += entries[i].length;
	}
	res->backing = entries;
	res->backing_count = count;
	res->backing_size = start;
}

void
vgpu_resource_detach_backing(struct vgpu_resource *res)
{
	free(res->backing);
	res->backing = NULL;
	res->backing_count = 0;
	res->backing_size = 0;
}

bool
vgpu_resource_contains(const struct vgpu_resource *res, const struct wlr_box *rect)
{
	return rect->x >= 0 && rect->y >= 0 && rect->width >= 0 && rect->height >= 0 &&
		(uint64_t)rect->x + (uint64_t)rect->width <= res->width &&
		(uint64_t)rect->y + (uint64_t)rect->height <= res->height;
}

/* The backing entry holding linear offset `off` (entries are sorted by start). */
static const struct vgpu_backing_entry *
find_entry(const struct vgpu_resource *res, uint64_t off)
{
	uint32_t lo = 0, hi = res->backing_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct vgpu_backing_entry *e = &res->backing[mid];
		if (off < e->start) {
			hi = mid;
		} else if (off >= e->start + e->length) {
			lo = mid + 1;
		} else {
			return e;
		}
	}
	return NULL;
}

/* Copies len bytes from the backing's linear offset `off`; false if unmapped. */
static bool
copy_from_backing(const struct vgpu_resource *res, const struct vu_guest_memory *mem,
	uint64_t off, uint8_t *dst, uint64_t len)
{
	while (len > 0) {
		const struct vgpu_backing_entry *e = find_entry(res, off);
		if (e == NULL) {
			return false;
		}
		uint64_t in_entry = off - e->start;
		uint64_t chunk = e->length - in_entry;
		if (chunk > len) {
			chunk = len;
		}
		const uint8_t *src = vu_mem_gpa_to_host(mem, e->gpa + in_entry, chunk);
		if (src == NULL) {
			return false; // the guest's memory map changed under the backing
		}
		memcpy(dst, src, chunk);
		dst += chunk;
		off += chunk;
		len -= chunk;
	}
	return true;
}

int64_t
vgpu_resource_transfer_to_host(struct vgpu_resource *res, const struct vu_guest_memory *mem,
	const struct wlr_box *rect, uint64_t offset)
{
	if (!vgpu_resource_contains(res, rect) || res->backing_count == 0) {
		return -EINVAL;
	}
	uint64_t row_bytes = (uint64_t)rect->width * 4;
	if (rect->height == 0 || row_bytes == 0) {
		return 0;
	}
	/* The last row must end inside the backing. */
	uint64_t last = (uint64_t)(rect->height - 1) * res->stride;
	if (offset > res->backing_size || last > res->backing_size - offset ||
			row_bytes > res->backing_size - offset - last) {
		return -EINVAL;
	}
	for (int row = 0; row < rect->height; row++) {
		uint8_t *dst = res->data + (size_t)(rect->y + row) * res->stride + (size_t)rect->x * 4;
		if (!copy_from_backing(res, mem, offset + (uint64_t)row * res->stride, dst, row_bytes)) {
			return -EFAULT;
		}
	}
	return (int64_t)(row_bytes * (uint64_t)rect->height);
}

uint64_t
vgpu_resource_guest_size(const struct vgpu_resource *res)
{
	return res->blob ? res->blob_size : res->backing_size;
}

int
vgpu_resource_write_guest(const struct vgpu_resource *res, const struct vu_guest_memory *mem,
	uint64_t offset, const void *src, size_t len)
{
	uint64_t size = vgpu_resource_guest_size(res);
	if (offset > size || len > size - offset || offset + len > res->backing_size) {
		return -EINVAL;
	}
	const uint8_t *from = src;
	while (len > 0) {
		const struct vgpu_backing_entry *e = find_entry(res, offset);
		if (e == NULL || mem == NULL) {
			return -EFAULT;
		}
		uint64_t in_entry = offset - e->start;
		uint64_t chunk = e->length - in_entry;
		if (chunk > len) {
			chunk = len;
		}
		uint8_t *dst = vu_mem_gpa_to_host(mem, e->gpa + in_entry, chunk);
		if (dst == NULL) {
			return -EFAULT; // the guest's memory map changed under the backing
		}
		memcpy(dst, from, chunk);
		from += chunk;
		offset += chunk;
		len -= chunk;
	}
	return 0;
}
