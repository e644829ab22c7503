#ifndef CWG_TRANSPORT_H
#define CWG_TRANSPORT_H

/*
 * How crossway-guest reaches the virtio-gpu device. Two implementations:
 *  - transport_drm.c: a real guest, through the virtio-gpu DRM uapi on the
 *    render node (context init with capset 5, guest blobs, execbuffer on
 *    rings, fence events read from the DRM fd);
 *  - transport_vhost_user.c: the same device operations sent by our own
 *    vhost-user front end (tests/vmm) straight to crossway's socket, so the
 *    whole path runs on one machine in tests.
 * Single-threaded; every call returns 0 or a negative errno unless noted.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cwg_transport;
struct cwg_context;

/* A guest-memory blob (BLOB_MEM_GUEST, MAPPABLE|SHAREABLE) the proxy writes. */
struct cwg_blob {
	uint32_t res_id;  // virtio-gpu resource id: what cross-domain identifiers carry
	uint32_t handle;  // transport-private (DRM: the GEM handle)
	void *map;        // read/write mapping of the blob's guest pages
	size_t size;
};

struct cwg_transport_impl {
	const char *name;
	/*
	 * A cross-domain context: capset 5, two rings (0: query, 1: channel),
	 * ring 1 polled. NULL with errno set; EOPNOTSUPP (after printing why)
	 * when the device lacks context types or capset 5.
	 */
	struct cwg_context *(*context_create)(struct cwg_transport *transport);
	void (*context_destroy)(struct cwg_context *ctx);
	int (*blob_create)(struct cwg_context *ctx, size_t size, struct cwg_blob *blob);
	void (*blob_destroy)(struct cwg_context *ctx, struct cwg_blob *blob);
	/*
	 * Submits one command buffer (one or more cross-domain commands).
	 * ring < 0: no ring, no fence (INIT, SEND, WRITE); ring 0 or 1: fenced
	 * on that ring. `blobs` are the resources the commands name (the DRM
	 * path attaches them to the context through the execbuffer's bo list).
	 */
	int (*submit)(struct cwg_context *ctx, const void *cmd, size_t size, int ring,
		const struct cwg_blob *const *blobs, unsigned blob_count);
	/* Blocks until every ring-0 submission completed (query ring replies). */
	int (*wait_query)(struct cwg_context *ctx);
	/*
	 * A pollable fd that becomes readable when a ring-1 fence signalled; then
	 * take_events returns how many signalled since the last call (>= 0).
	 */
	int (*event_fd)(struct cwg_context *ctx);
	int (*take_events)(struct cwg_context *ctx);
	/* Transport-wide fd to poll (-1: none) and what to do when it is readable. */
	int (*poll_fd)(struct cwg_transport *transport);
	int (*dispatch)(struct cwg_transport *transport);
	void (*destroy)(struct cwg_transport *transport);
	/*
	 * Optional (NULL: unsupported, e.g. vhost-user): the virtio-gpu resource
	 * id behind a dma-buf fd of the guest's GPU driver (DRM: PRIME import +
	 * RESOURCE_INFO). *handle is released with dmabuf_release after the
	 * command naming the resource was submitted. -errno if it is not one.
	 */
	int (*dmabuf_resource)(struct cwg_context *ctx, int fd, uint32_t *res_id,
		uint32_t *handle);
	void (*dmabuf_release)(struct cwg_context *ctx, uint32_t handle);
};

struct cwg_transport {
	const struct cwg_transport_impl *impl;
};

/* "drm[:/dev/dri/renderD128]" (default) or "vhost-user:SOCKET_PATH". */
struct cwg_transport *cwg_transport_open(const char *spec);

/* Constructors behind cwg_transport_open (NULL with errno set, after
 * printing why). transport_vhost_user.c is built only when present. */
struct cwg_transport *cwg_transport_drm_open(const char *path);
struct cwg_transport *cwg_transport_vhost_user_open(const char *socket_path);

#endif
