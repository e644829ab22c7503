#include "vm_shm.h"

#include <drm_fourcc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <wayland-server-protocol.h>
#include <wlr/types/wlr_buffer.h>
#include <wlr/util/log.h>

#include "vgpu_resource.h"
#include "vm.h"
#include "vm_client.h"

/* Version 2 (wl_shm.release) is newer than Debian 12's libwayland 1.21. */
#define CW_VM_SHM_VERSION 1
#define CW_VM_SHM_BYTES_PER_PIXEL 4

/*
 * The 32-bit formats virtio-gpu knows (vgpu_format_to_drm); images in a
 * blob are 4 bytes a pixel. The first two are required by wl_shm.
 */
static const uint32_t candidate_formats[] = {
	DRM_FORMAT_ARGB8888,
	DRM_FORMAT_XRGB8888,
	DRM_FORMAT_ABGR8888,
	DRM_FORMAT_XBGR8888,
	DRM_FORMAT_BGRA8888,
	DRM_FORMAT_BGRX8888,
	DRM_FORMAT_RGBA8888,
	DRM_FORMAT_RGBX8888,
};
#define CW_VM_SHM_FORMAT_COUNT (sizeof(candidate_formats) / sizeof(candidate_formats[0]))

struct cw_vm_shm {
	struct wl_global *global;
	uint32_t format_mask; // bit i: candidate_formats[i] is offered
	struct wl_listener display_destroy; // the global and this struct go with the display
};

/*
 * The pools of one client (CW_VM_SHM_MAX_POOLS at most). Found through its
 * listener on the client; it outlives the client while pools remain, since
 * libwayland runs client destroy listeners before destroying resources.
 */
struct pool_count {
	struct wl_listener client_destroy;
	unsigned pools;
	bool client_gone;
};

/* A guest blob seen as a wl_shm_pool. */
struct cw_vm_shm_pool {
	struct wl_resource *resource;
	struct pool_count *count;
	uint32_t format_mask;       // the wl_shm's formats, copied at creation
	struct vgpu_resource *blob; // locked: the guest memory behind the pool
	/*
	 * The placeholder's key (vgpu_blob_import_key): a resize finds the
	 * successor blob through it. No fd is kept: a guest could otherwise
	 * make crossway hold one fd per pool.
	 */
	uint64_t key;
	int32_t size;               // as the client declared it; never more than the blob
};

/* A wl_buffer: an image inside the pool's blob at the time it was made. */
struct cw_vm_shm_buffer {
	struct wl_resource *resource;
	struct wlr_buffer *image;   // our producer reference, dropped with the resource
	struct wl_listener release; // image->events.release: send wl_buffer.release
};

static uint32_t
drm_from_wl_shm(uint32_t wl_format)
{
	switch (wl_format) {
	case WL_SHM_FORMAT_ARGB8888: return DRM_FORMAT_ARGB8888;
	case WL_SHM_FORMAT_XRGB8888: return DRM_FORMAT_XRGB8888;
	default: return wl_format; // every other wl_shm code is the DRM fourcc
	}
}

static uint32_t
wl_shm_from_drm(uint32_t drm_format)
{
	switch (drm_format) {
	case DRM_FORMAT_ARGB8888: return WL_SHM_FORMAT_ARGB8888;
	case DRM_FORMAT_XRGB8888: return WL_SHM_FORMAT_XRGB8888;
	default: return drm_format;
	}
}

static bool
format_offered(uint32_t mask, uint32_t drm_format)
{
	for (size_t i = 0; i < CW_VM_SHM_FORMAT_COUNT; i++) {
		if (candidate_formats[i] == drm_format) {
			return (mask & (1u << i)) != 0;
		}
	}
	return false;
}

/* --- wl_buffer -------------------------------------------------------------- */

static const struct wl_buffer_interface buffer_impl;

static bool
buffer_is_instance(struct wl_resource *resource)
{
	return wl_resource_instance_of(resource, &wl_buffer_interface, &buffer_impl);
}

/* wlroots locks what this returns while a surface shows it. */
static struct wlr_buffer *
buffer_from_resource(struct wl_resource *resource)
{
	struct cw_vm_shm_buffer *buffer = wl_resource_get_user_data(resource);
	return buffer->image;
}

static const struct wlr_buffer_resource_interface buffer_resource_interface = {
	.name = "crossway VM shm",
	.is_instance = buffer_is_instance,
	.from_resource = buffer_from_resource,
};

static void
handle_buffer_destroy_request(struct wl_client *client, struct wl_resource *resource)
{
	wl_resource_destroy(resource);
}

static const struct wl_buffer_interface buffer_impl = {
	.destroy = handle_buffer_destroy_request,
};

static void
handle_image_release(struct wl_listener *listener, void *data)
{
	struct cw_vm_shm_buffer *buffer = wl_container_of(listener, buffer, release);
	wl_buffer_send_release(buffer->resource);
}

/* The image lives on while wlroots still samples it; the guest's pages with it. */
static void
handle_buffer_resource_destroy(struct wl_resource *resource)
{
	struct cw_vm_shm_buffer *buffer = wl_resource_get_user_data(resource);
	wl_list_remove(&buffer->release.link);
	wlr_buffer_drop(buffer->image);
	free(buffer);
}

/* --- wl_shm_pool ------------------------------------------------------------ */

/*
 * The layout rules of libwayland's wl_shm (the whole stride * height inside
 * the pool), and what an image in a blob needs (4-byte aligned stride,
 * virtio-gpu's largest dimension).
 */
static bool
layout_is_valid(const struct cw_vm_shm_pool *pool, int32_t offset, int32_t width,
	int32_t height, int32_t stride)
{
	if (offset < 0 || width <= 0 || height <= 0 || stride <= 0 ||
			width > VGPU_MAX_RESOURCE_DIMENSION || height > VGPU_MAX_RESOURCE_DIMENSION) {
		return false;
	}
	if ((int64_t)stride < (int64_t)width * CW_VM_SHM_BYTES_PER_PIXEL ||
			stride % CW_VM_SHM_BYTES_PER_PIXEL != 0) {
		return false;
	}
	return (int64_t)offset + (int64_t)stride * height <= (int64_t)pool->size;
}

static struct cw_vm_shm_buffer *
create_buffer(struct wl_client *client, struct cw_vm_shm_pool *pool, uint32_t id,
	uint32_t drm_format, int32_t offset, int32_t width, int32_t height, int32_t stride)
{
	struct cw_vm_shm_buffer *buffer = calloc(1, sizeof(*buffer));
	if (buffer == NULL) {
		return NULL;
	}
	buffer->image = vgpu_blob_image_create(pool->blob, drm_format, (uint32_t)width,
		(uint32_t)height, (uint32_t)stride, (uint32_t)offset);
	if (buffer->image == NULL) {
		free(buffer);
		return NULL;
	}
	buffer->resource = wl_resource_create(client, &wl_buffer_interface, 1, id);
	if (buffer->resource == NULL) {
		wlr_buffer_drop(buffer->image);
		free(buffer);
		return NULL;
	}
	return buffer;
}

static void
handle_create_buffer(struct wl_client *client, struct wl_resource *pool_resource, uint32_t id,
	int32_t offset, int32_t width, int32_t height, int32_t stride, uint32_t format)
{
	struct cw_vm_shm_pool *pool = wl_resource_get_user_data(pool_resource);
	uint32_t drm_format = drm_from_wl_shm(format);
	if (pool->blob->unreferenced) {
		/* Its pages went back to the guest's budget: no new mapping of them. */
		wl_resource_post_error(pool_resource, WL_SHM_ERROR_INVALID_FD,
			"the guest freed this pool's memory");
		return;
	}
	if (!format_offered(pool->format_mask, drm_format)) {
		wl_resource_post_error(pool_resource, WL_SHM_ERROR_INVALID_FORMAT,
			"invalid format 0x%x", format);
		return;
	}
	if (!layout_is_valid(pool, offset, width, height, stride)) {
		wl_resource_post_error(pool_resource, WL_SHM_ERROR_INVALID_STRIDE,
			"invalid width %d, height %d, stride %d or offset %d for a pool of %d bytes",
			width, height, stride, offset, pool->size);
		return;
	}
	/* The layout fits the blob (pool->size <= its size): only memory can fail now. */
	struct cw_vm_shm_buffer *buffer = create_buffer(client, pool, id, drm_format, offset,
		width, height, stride);
	if (buffer == NULL) {
		wl_client_post_no_memory(client);
		return;
	}
	wl_resource_set_implementation(buffer->resource, &buffer_impl, buffer,
		handle_buffer_resource_destroy);
	buffer->release.notify = handle_image_release;
	wl_signal_add(&buffer->image->events.release, &buffer->release);
}

static void
handle_pool_destroy_request(struct wl_client *client, struct wl_resource *resource)
{
	wl_resource_destroy(resource);
}

/*
 * The guest grew its pool into a new, larger blob (XDOM_CMD_BLOB_REPLACE,
 * processed by the device before this request arrives): the placeholder now
 * yields that blob. NULL if there is no blob of at least `size` bytes.
 */
static struct vgpu_resource *
find_larger_blob(struct wl_client *client, struct cw_vm_shm_pool *pool, int32_t size)
{
	struct cw_vm *vm = cw_vm_from_client(client);
	struct vgpu_resource *blob = vm != NULL ? vgpu_blob_import_key(pool->key, vm->device) : NULL;
	if (blob != NULL && blob->blob_size < (uint64_t)size) {
		wlr_buffer_unlock(&blob->base);
		return NULL;
	}
	return blob;
}

static void
handle_resize(struct wl_client *client, struct wl_resource *resource, int32_t size)
{
	struct cw_vm_shm_pool *pool = wl_resource_get_user_data(resource);
	if (size < pool->size) {
		wl_resource_post_error(resource, WL_SHM_ERROR_INVALID_FD, "shrinking pool invalid");
		return;
	}
	if ((uint64_t)size <= pool->blob->blob_size && !pool->blob->unreferenced) {
		pool->size = size;
		return;
	}
	struct vgpu_resource *larger = find_larger_blob(client, pool, size);
	if (larger == NULL) {
		wl_resource_post_error(resource, WL_SHM_ERROR_INVALID_FD,
			"pool of %d bytes is larger than its guest memory", size);
		return;
	}
	/* Buffers made before keep the old blob (their image holds it). */
	wlr_buffer_unlock(&pool->blob->base);
	pool->blob = larger;
	pool->size = size;
}

static const struct wl_shm_pool_interface pool_impl = {
	.create_buffer = handle_create_buffer,
	.destroy = handle_pool_destroy_request,
	.resize = handle_resize,
};

static void
handle_pool_resource_destroy(struct wl_resource *resource)
{
	struct cw_vm_shm_pool *pool = wl_resource_get_user_data(resource);
	wlr_buffer_unlock(&pool->blob->base);
	if (--pool->count->pools == 0 && pool->count->client_gone) {
		free(pool->count);
	}
	free(pool);
}

static void
handle_count_client_destroy(struct wl_listener *listener, void *data)
{
	struct pool_count *count = wl_container_of(listener, count, client_destroy);
	wl_list_remove(&count->client_destroy.link);
	count->client_gone = true;
	if (count->pools == 0) {
		free(count);
	}
}

/* The client's pool count (made at its first pool), or NULL when out of memory. */
static struct pool_count *
pool_count_get(struct wl_client *client)
{
	struct wl_listener *listener = wl_client_get_destroy_listener(client,
		handle_count_client_destroy);
	if (listener != NULL) {
		struct pool_count *count = wl_container_of(listener, count, client_destroy);
		return count;
	}
	struct pool_count *count = calloc(1, sizeof(*count));
	if (count != NULL) {
		count->client_destroy.notify = handle_count_client_destroy;
		wl_client_add_destroy_listener(client, &count->client_destroy);
	}
	return count;
}

/* --- wl_shm ----------------------------------------------------------------- */

/* The guest blob `fd` stands for, if it is one of this client's VM; logged if not. */
static struct vgpu_resource *
import_blob(struct wl_client *client, int fd, uint64_t *key)
{
	struct cw_vm *vm = cw_vm_from_client(client);
	if (vm == NULL) {
		return NULL; // the filter hides this wl_shm from host clients
	}
	struct vgpu_resource *blob = vgpu_blob_import_fd_key(fd, vm->device, key);
	if (blob == NULL) {
		wlr_log(WLR_INFO, "[vm %s] a guest client's shm pool is not a blob of this VM",
			vm->config.name);
	}
	return blob;
}

static void
handle_create_pool(struct wl_client *client, struct wl_resource *shm_resource, uint32_t id,
	int32_t fd, int32_t size)
{
	struct cw_vm_shm *shm = wl_resource_get_user_data(shm_resource);
	struct pool_count *count = pool_count_get(client);
	if (count == NULL) {
		close(fd);
		wl_client_post_no_memory(client);
		return;
	}
	if (count->pools >= CW_VM_SHM_MAX_POOLS) {
		close(fd);
		wl_resource_post_error(shm_resource, WL_SHM_ERROR_INVALID_FD,
			"more than %d shm pools", CW_VM_SHM_MAX_POOLS);
		return;
	}
	if (size <= 0) {
		close(fd);
		wl_resource_post_error(shm_resource, WL_SHM_ERROR_INVALID_STRIDE,
			"invalid pool size %d", size);
		return;
	}
	uint64_t key = 0;
	struct vgpu_resource *blob = import_blob(client, fd, &key);
	close(fd); // the key finds the placeholder again
	if (blob == NULL || (uint64_t)size > blob->blob_size) {
		if (blob != NULL) {
			wlr_buffer_unlock(&blob->base);
		}
		wl_resource_post_error(shm_resource, WL_SHM_ERROR_INVALID_FD,
			"fd is not guest memory of %d bytes from this VM", size);
		return;
	}
	struct cw_vm_shm_pool *pool = calloc(1, sizeof(*pool));
	if (pool != NULL) {
		pool->resource = wl_resource_create(client, &wl_shm_pool_interface,
			wl_resource_get_version(shm_resource), id);
	}
	if (pool == NULL || pool->resource == NULL) {
		free(pool);
		wlr_buffer_unlock(&blob->base);
		wl_client_post_no_memory(client);
		return;
	}
	pool->format_mask = shm->format_mask;
	pool->blob = blob;
	pool->key = key;
	pool->size = size;
	pool->count = count;
	count->pools++;
	wl_resource_set_implementation(pool->resource, &pool_impl, pool,
		handle_pool_resource_destroy);
}

static const struct wl_shm_interface shm_impl = {
	.create_pool = handle_create_pool,
};

static void
bind_shm(struct wl_client *client, void *data, uint32_t version, uint32_t id)
{
	struct cw_vm_shm *shm = data;
	struct wl_resource *resource = wl_resource_create(client, &wl_shm_interface,
		(int)version, id);
	if (resource == NULL) {
		wl_client_post_no_memory(client);
		return;
	}
	wl_resource_set_implementation(resource, &shm_impl, shm, NULL);
	for (size_t i = 0; i < CW_VM_SHM_FORMAT_COUNT; i++) {
		if (shm->format_mask & (1u << i)) {
			wl_shm_send_format(resource, wl_shm_from_drm(candidate_formats[i]));
		}
	}
}

static uint32_t
renderer_format_mask(struct wlr_renderer *renderer)
{
	uint32_t mask = 0x3; // ARGB8888 and XRGB8888: always
	size_t len = 0;
	const uint32_t *formats = renderer != NULL ?
		wlr_renderer_get_shm_texture_formats(renderer, &len) : NULL;
	for (size_t i = 2; i < CW_VM_SHM_FORMAT_COUNT; i++) {
		for (size_t j = 0; formats != NULL && j < len; j++) {
			if (formats[j] == candidate_formats[i]) {
				mask |= 1u << i;
			}
		}
	}
	return mask;
}

static void
handle_display_destroy(struct wl_listener *listener, void *data)
{
	struct cw_vm_shm *shm = wl_container_of(listener, shm, display_destroy);
	wl_list_remove(&shm->display_destroy.link);
	wl_global_destroy(shm->global);
	free(shm);
}

struct cw_vm_shm *
cw_vm_shm_create(struct wl_display *display, struct wlr_renderer *renderer)
{
	static bool registered;
	if (!registered) {
		wlr_buffer_register_resource_interface(&buffer_resource_interface);
		registered = true;
	}
	struct cw_vm_shm *shm = calloc(1, sizeof(*shm));
	if (shm == NULL) {
		return NULL;
	}
	shm->format_mask = renderer_format_mask(renderer);
	shm->global = wl_global_create(display, &wl_shm_interface, CW_VM_SHM_VERSION, shm, bind_shm);
	if (shm->global == NULL) {
		free(shm);
		return NULL;
	}
	shm->display_destroy.notify = handle_display_destroy;
	wl_display_add_destroy_listener(display, &shm->display_destroy);
	return shm;
}

bool
cw_vm_shm_is_global(const struct cw_vm_shm *shm, const struct wl_global *global)
{
	return shm != NULL && shm->global == global;
}
