/*
 * The virtio-gpu DRM uapi (a real guest): one render-node fd per context,
 * CONTEXT_INIT with capset 5 and two rings (ring 1 polled), GUEST blobs
 * mapped through DRM_IOCTL_VIRTGPU_MAP, EXECBUFFER with RING_IDX, and fence
 * events (VIRTGPU_EVENT_FENCE_SIGNALED) read from the fd.
 *
 * Debian 12's headers lack the blob and context-init parts (and libdrm is
 * not a dependency), so the uapi layouts (Linux include/uapi/drm/
 * virtgpu_drm.h, drm.h) are declared here.
 *
 * Against a real Linux 6.1 guest (QEMU 7.2, crossway's device; tests/
 * integration/qemu-guest-proxy.sh): GETPARAM and GET_CAPS work as declared
 * here (capset 5 reads back as version 1, channels 0x2, clipped to the
 * device's 16 bytes), and check_device refuses QEMU 7.2, which passes VIRGL
 * and the capsets but neither RESOURCE_BLOB nor CONTEXT_INIT. A one-off
 * probe there also saw CONTEXT_INIT fail with EINVAL (reported as
 * EOPNOTSUPP) and PRIME_FD_TO_HANDLE + RESOURCE_INFO name a card0 dumb
 * buffer's resource. Context init, blobs, ring submissions and fence events
 * have not met a real kernel yet (QEMU 7.2 passes none of that through).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../cross_domain_protocol.h"
#include "cwg.h"
#include "transport.h"

#define CWG_DRM_BASE 'd'
#define CWG_DRM_COMMAND_BASE 0x40
#define CWG_DRM_IOWR(nr, type) _IOWR(CWG_DRM_BASE, nr, type)
#define CWG_DRM_IOW(nr, type) _IOW(CWG_DRM_BASE, nr, type)

struct cwg_drm_gem_close {
	uint32_t handle;
	uint32_t pad;
};
struct cwg_drm_prime_handle {
	uint32_t handle;
	uint32_t flags;
	int32_t fd;
};
struct cwg_drm_event {
	uint32_t type;
	uint32_t length;
};
struct cwg_virtgpu_map {
	uint64_t offset;
	uint32_t handle;
	uint32_t pad;
};
struct cwg_virtgpu_execbuffer {
	uint32_t flags;
	uint32_t size;
	uint64_t command;
	uint64_t bo_handles;
	uint32_t num_bo_handles;
	int32_t fence_fd;
	uint32_t ring_idx;
	uint32_t pad;
};
struct cwg_virtgpu_getparam {
	uint64_t param;
	uint64_t value; // pointer to an int
};
struct cwg_virtgpu_resource_info {
	uint32_t bo_handle;
	uint32_t res_handle;
	uint32_t size;
	uint32_t blob_mem;
};
struct cwg_virtgpu_3d_wait {
	uint32_t handle;
	uint32_t flags;
};
struct cwg_virtgpu_get_caps {
	uint32_t cap_set_id;
	uint32_t cap_set_ver;
	uint64_t addr;
	uint32_t size;
	uint32_t pad;
};
struct cwg_virtgpu_resource_create_blob {
	uint32_t blob_mem;
	uint32_t blob_flags;
	uint32_t bo_handle;
	uint32_t res_handle;
	uint64_t size;
	uint32_t pad;
	uint32_t cmd_size;
	uint64_t cmd;
	uint64_t blob_id;
};
struct cwg_virtgpu_context_set_param {
	uint64_t param;
	uint64_t value;
};
struct cwg_virtgpu_context_init {
	uint32_t num_params;
	uint32_t pad;
	uint64_t ctx_set_params;
};

_Static_assert(sizeof(struct cwg_virtgpu_execbuffer) == 40, "execbuffer");
_Static_assert(sizeof(struct cwg_virtgpu_resource_create_blob) == 48, "create blob");
_Static_assert(sizeof(struct cwg_virtgpu_get_caps) == 24, "get caps");

#define CWG_IOCTL_GEM_CLOSE CWG_DRM_IOW(0x09, struct cwg_drm_gem_close)
#define CWG_IOCTL_PRIME_FD_TO_HANDLE CWG_DRM_IOWR(0x2e, struct cwg_drm_prime_handle)
#define CWG_IOCTL_VIRTGPU_MAP CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x01, struct cwg_virtgpu_map)
#define CWG_IOCTL_VIRTGPU_EXECBUFFER \
	CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x02, struct cwg_virtgpu_execbuffer)
#define CWG_IOCTL_VIRTGPU_GETPARAM \
	CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x03, struct cwg_virtgpu_getparam)
#define CWG_IOCTL_VIRTGPU_RESOURCE_INFO \
	CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x05, struct cwg_virtgpu_resource_info)
#define CWG_IOCTL_VIRTGPU_WAIT CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x08, struct cwg_virtgpu_3d_wait)
#define CWG_IOCTL_VIRTGPU_GET_CAPS \
	CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x09, struct cwg_virtgpu_get_caps)
#define CWG_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB \
	CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x0a, struct cwg_virtgpu_resource_create_blob)
#define CWG_IOCTL_VIRTGPU_CONTEXT_INIT \
	CWG_DRM_IOWR(CWG_DRM_COMMAND_BASE + 0x0b, struct cwg_virtgpu_context_init)

#define CWG_VIRTGPU_EXECBUF_RING_IDX 0x04
#define CWG_VIRTGPU_EVENT_FENCE_SIGNALED 0x90000000u
#define CWG_VIRTGPU_BLOB_MEM_GUEST 1
#define CWG_VIRTGPU_BLOB_FLAG_USE_MAPPABLE 1
#define CWG_VIRTGPU_BLOB_FLAG_USE_SHAREABLE 2
#define CWG_VIRTGPU_CONTEXT_PARAM_CAPSET_ID 1
#define CWG_VIRTGPU_CONTEXT_PARAM_NUM_RINGS 2
#define CWG_VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK 3

enum {
	PARAM_3D_FEATURES = 1,
	PARAM_CAPSET_QUERY_FIX = 2,
	PARAM_RESOURCE_BLOB = 3,
	PARAM_HOST_VISIBLE = 4,
	PARAM_CONTEXT_INIT = 6,
	PARAM_SUPPORTED_CAPSET_IDS = 7,
};

struct drm_transport {
	struct cwg_transport base;
	char path[256];
};

struct cwg_context {
	struct drm_transport *t;
	int fd;
	uint32_t query_handle; // bo of the last ring-0 submission
};

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && (errno == EINTR || errno == EAGAIN) && req != CWG_IOCTL_VIRTGPU_WAIT);
	return r < 0 ? -errno : 0;
}

static int getparam(int fd, uint64_t param, int *value)
{
	struct cwg_virtgpu_getparam gp = { param, (uint64_t)(uintptr_t)value };
	*value = 0;
	return xioctl(fd, CWG_IOCTL_VIRTGPU_GETPARAM, &gp);
}

/* Why the device cannot carry cross-domain, or NULL. */
static const char *check_device(int fd, char *buf, size_t cap)
{
	static const struct {
		int param;
		const char *name;
	} need[] = {
		{ PARAM_3D_FEATURES, "3D_FEATURES (VIRGL)" },
		{ PARAM_CAPSET_QUERY_FIX, "CAPSET_QUERY_FIX" },
		{ PARAM_RESOURCE_BLOB, "RESOURCE_BLOB" },
		{ PARAM_CONTEXT_INIT, "CONTEXT_INIT" },
	};
	size_t len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int v;
		if (getparam(fd, (uint64_t)need[i].param, &v) < 0 || !v)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", need[i].name);
	}
	int ids = 0;
	if (getparam(fd, PARAM_SUPPORTED_CAPSET_IDS, &ids) < 0 || !(ids & (1 << XDOM_CAPSET_ID))) {
		len += (size_t)snprintf(buf + len, cap - len, "%scapset 5 (cross-domain) in SUPPORTED_CAPSET_IDs",
			len ? ", " : "");
	} else {
		uint32_t caps[4] = { 0 };
		struct cwg_virtgpu_get_caps gc = { XDOM_CAPSET_ID, 0, (uint64_t)(uintptr_t)caps,
			sizeof(caps), 0 };
		int r = xioctl(fd, CWG_IOCTL_VIRTGPU_GET_CAPS, &gc);
		if (r < 0)
			len += (size_t)snprintf(buf + len, cap - len, "%sreadable capset 5 (%s)",
				len ? ", " : "", strerror(-r));
		else if (!(caps[1] & (1u << XDOM_CHANNEL_WAYLAND)))
			len += (size_t)snprintf(buf + len, cap - len, "%sthe Wayland channel in capset 5",
				len ? ", " : "");
	}
	(void)len;
	return buf[0] ? buf : NULL;
}

static struct cwg_context *drm_context_create(struct cwg_transport *base)
{
	struct drm_transport *t = (struct drm_transport *)base;
	struct cwg_context *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->t = t;
	ctx->fd = open(t->path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (ctx->fd < 0) {
		int err = errno;
		free(ctx);
		errno = err;
		return NULL;
	}
	struct cwg_virtgpu_context_set_param params[3] = {
		{ CWG_VIRTGPU_CONTEXT_PARAM_CAPSET_ID, XDOM_CAPSET_ID },
		{ CWG_VIRTGPU_CONTEXT_PARAM_NUM_RINGS, 2 },
		{ CWG_VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK, 1u << XDOM_CHANNEL_RING },
	};
	struct cwg_virtgpu_context_init init = { 3, 0, (uint64_t)(uintptr_t)params };
	int r = xioctl(ctx->fd, CWG_IOCTL_VIRTGPU_CONTEXT_INIT, &init);
	if (r < 0) {
		cwg_log(CWG_ERROR, "%s: DRM_IOCTL_VIRTGPU_CONTEXT_INIT (capset 5, 2 rings) failed: %s",
			t->path, strerror(-r));
		close(ctx->fd);
		free(ctx);
		errno = (r == -EINVAL || r == -ENOTTY) ? EOPNOTSUPP : -r;
		return NULL;
	}
	return ctx;
}

static void drm_context_destroy(struct cwg_context *ctx)
{
	close(ctx->fd); // the kernel drops the handles and destroys the context
	free(ctx);
}

static void gem_close(int fd, uint32_t handle)
{
	struct cwg_drm_gem_close gc = { handle, 0 };
	xioctl(fd, CWG_IOCTL_GEM_CLOSE, &gc);
}

static int drm_blob_create(struct cwg_context *ctx, size_t size, struct cwg_blob *blob)
{
	struct cwg_virtgpu_resource_create_blob cb;
	memset(&cb, 0, sizeof(cb));
	cb.blob_mem = CWG_VIRTGPU_BLOB_MEM_GUEST;
	cb.blob_flags = CWG_VIRTGPU_BLOB_FLAG_USE_MAPPABLE | CWG_VIRTGPU_BLOB_FLAG_USE_SHAREABLE;
	cb.size = cwg_page_round(size);
	int r = xioctl(ctx->fd, CWG_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &cb);
	if (r < 0)
		return r;
	struct cwg_virtgpu_map map = { 0, cb.bo_handle, 0 };
	r = xioctl(ctx->fd, CWG_IOCTL_VIRTGPU_MAP, &map);
	void *p = MAP_FAILED;
	if (r == 0) {
		p = mmap(NULL, cb.size, PROT_READ | PROT_WRITE, MAP_SHARED, ctx->fd, (off_t)map.offset);
		if (p == MAP_FAILED)
			r = -errno;
	}
	if (r < 0) {
		gem_close(ctx->fd, cb.bo_handle);
		return r;
	}
	blob->res_id = cb.res_handle;
	blob->handle = cb.bo_handle;
	blob->map = p;
	blob->size = cb.size;
	return 0;
}

static void drm_blob_destroy(struct cwg_context *ctx, struct cwg_blob *blob)
{
	if (blob->map)
		munmap(blob->map, blob->size);
	if (blob->handle)
		gem_close(ctx->fd, blob->handle);
	memset(blob, 0, sizeof(*blob));
}

static int drm_submit(struct cwg_context *ctx, const void *cmd, size_t size, int ring,
	const struct cwg_blob *const *blobs, unsigned blob_count)
{
	uint32_t handles[XDOM_MAX_IDENTIFIERS + 2];
	if (blob_count > sizeof(handles) / sizeof(handles[0]))
		return -E2BIG;
	unsigned n = 0;
	for (unsigned i = 0; i < blob_count; i++)
		if (blobs[i]->handle)
			handles[n++] = blobs[i]->handle;
	struct cwg_virtgpu_execbuffer eb;
	memset(&eb, 0, sizeof(eb));
	eb.size = (uint32_t)size;
	eb.command = (uint64_t)(uintptr_t)cmd;
	eb.bo_handles = n ? (uint64_t)(uintptr_t)handles : 0;
	eb.num_bo_handles = n;
	eb.fence_fd = -1;
	if (ring >= 0) {
		eb.flags = CWG_VIRTGPU_EXECBUF_RING_IDX;
		eb.ring_idx = (uint32_t)ring;
		if (ring == XDOM_QUERY_RING && n)
			ctx->query_handle = handles[0];
	}
	return xioctl(ctx->fd, CWG_IOCTL_VIRTGPU_EXECBUFFER, &eb);
}

static int drm_wait_query(struct cwg_context *ctx)
{
	if (!ctx->query_handle)
		return 0;
	for (;;) {
		struct cwg_virtgpu_3d_wait w = { ctx->query_handle, 0 };
		if (ioctl(ctx->fd, CWG_IOCTL_VIRTGPU_WAIT, &w) == 0)
			return 0;
		if (errno != EBUSY && errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

static int drm_event_fd(struct cwg_context *ctx)
{
	return ctx->fd;
}

static int drm_take_events(struct cwg_context *ctx)
{
	int count = 0;
	uint8_t buf[1024];
	for (;;) {
		ssize_t n = read(ctx->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return count;
		if (n < 0)
			return -errno;
		if (n == 0)
			return count;
		for (size_t off = 0; off + sizeof(struct cwg_drm_event) <= (size_t)n; ) {
			struct cwg_drm_event ev;
			memcpy(&ev, buf + off, sizeof(ev));
			if (ev.length < sizeof(ev))
				break;
			if (ev.type == CWG_VIRTGPU_EVENT_FENCE_SIGNALED)
				count++;
			off += ev.length;
		}
	}
}

static int drm_dmabuf_resource(struct cwg_context *ctx, int fd, uint32_t *res_id, uint32_t *handle)
{
	struct cwg_drm_prime_handle ph = { 0, 0, fd };
	int r = xioctl(ctx->fd, CWG_IOCTL_PRIME_FD_TO_HANDLE, &ph);
	if (r < 0)
		return r;
	struct cwg_virtgpu_resource_info info = { ph.handle, 0, 0, 0 };
	r = xioctl(ctx->fd, CWG_IOCTL_VIRTGPU_RESOURCE_INFO, &info);
	if (r < 0) {
		gem_close(ctx->fd, ph.handle);
		return r;
	}
	*res_id = info.res_handle;
	*handle = ph.handle;
	return 0;
}

static void drm_dmabuf_release(struct cwg_context *ctx, uint32_t handle)
{
	gem_close(ctx->fd, handle);
}

static int drm_poll_fd(struct cwg_transport *t)
{
	(void)t;
	return -1;
}

static int drm_dispatch(struct cwg_transport *t)
{
	(void)t;
	return 0;
}

static void drm_destroy(struct cwg_transport *t)
{
	free(t);
}

static const struct cwg_transport_impl drm_impl = {
	.name = "drm",
	.context_create = drm_context_create,
	.context_destroy = drm_context_destroy,
	.blob_create = drm_blob_create,
	.blob_destroy = drm_blob_destroy,
	.submit = drm_submit,
	.wait_query = drm_wait_query,
	.event_fd = drm_event_fd,
	.take_events = drm_take_events,
	.poll_fd = drm_poll_fd,
	.dispatch = drm_dispatch,
	.destroy = drm_destroy,
	.dmabuf_resource = drm_dmabuf_resource,
	.dmabuf_release = drm_dmabuf_release,
};

struct cwg_transport *cwg_transport_drm_open(const char *path)
{
	if (strlen(path) >= sizeof(((struct drm_transport *)0)->path)) {
		cwg_log(CWG_ERROR, "device path too long");
		errno = ENAMETOOLONG;
		return NULL;
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		cwg_log(CWG_ERROR, "cannot open %s: %s", path, strerror(err));
		errno = err;
		return NULL;
	}
	char why[512];
	const char *lack = check_device(fd, why, sizeof(why));
	close(fd);
	if (lack) {
		cwg_log(CWG_ERROR, "%s: the virtio-gpu device cannot carry cross-domain Wayland: "
			"it lacks %s", path, lack);
		errno = EOPNOTSUPP;
		return NULL;
	}
	struct drm_transport *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->base.impl = &drm_impl;
	snprintf(t->path, sizeof(t->path), "%s", path);
	return &t->base;
}
