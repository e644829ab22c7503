#ifndef VGPU_RESOURCE_H
#define VGPU_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_buffer.h>
#include <wlr/util/box.h>

#include "guest_memory.h"

/* QEMU's bound on ATTACH_BACKING entries. */
#define VGPU_MAX_BACKING_ENTRIES 16384
#define VGPU_MAX_RESOURCE_DIMENSION 16384

struct vgpu_backing_entry {
	uint64_t gpa;
	uint32_t length;
	uint64_t start; // offset of this entry in the backing's linear space
};

/*
 * A 2D resource: the host copy the guest transfers into, exposed to the
 * compositor as a wlr_buffer so the scene samples it without another copy.
 * The device holds one reference; the compositor may hold more (locks)
 * while it shows it, so a resource can outlive RESOURCE_UNREF on screen.
 */
struct vgpu_resource {
	struct wlr_buffer base;
	struct wl_list link; // vgpu_device.resources
	uint32_t id;
	uint32_t virtio_format;
	uint32_t drm_format;
	uint32_t width, height, stride;
	uint8_t *data;       // stride * height bytes
	size_t data_size;
	/* Guest pages backing it (ATTACH_BACKING), as guest-physical ranges. */
	struct vgpu_backing_entry *backing;
	uint32_t backing_count;
	uint64_t backing_size;
	bool unreferenced;   // the guest dropped it; only compositor locks remain

	/* Blob resources (BLOB_MEM_GUEST): the guest's pages, never copied. */
	bool blob;
	uint64_t blob_size;
	uint8_t *blob_map;     // one linear read-only view of the guest pages
	size_t blob_map_size;
	int blob_dmabuf;       // a udmabuf of the same pages, or -1
	uint32_t blob_pieces;  // kernel mappings the view takes (adjacent pages merged)
	struct vgpu_blob_budget *budget; // charged until the blob's memory goes, or NULL
	/*
	 * A blob also keeps its guest-physical entries in `backing` (never
	 * detached by DETACH_BACKING): the view above is read-only, so the host
	 * writes into a blob (cross-domain rings) through guest memory instead.
	 */
};

/* Bounds per blob (QEMU's entry limit; address space, not memory, is spent). */
#define VGPU_MAX_BLOB_SIZE (1ull << 30)

/*
 * What one VM's blobs cost the host: their mapped guest pages, the kernel
 * mappings of their views (vm.max_map_count is per process) and their
 * number (each may hold a udmabuf fd). A blob is charged when it is made
 * and gives its charge back when its memory goes, at its last lock, not at
 * the guest's RESOURCE_UNREF: the compositor's pools and buffers keep the
 * view mapped after the guest freed the blob, so that must stay counted.
 * Refcounted: the device holds one reference and each charged blob one,
 * so a blob may outlive its device.
 */
struct vgpu_blob_budget {
	unsigned refs;
	uint32_t blobs;  // charged blobs, live or only locked
	uint64_t memory; // their guest bytes mapped
	uint32_t maps;   // their kernel mappings (blob_pieces)
};

/* A new budget with one reference (the caller's), or NULL when out of memory. */
struct vgpu_blob_budget *vgpu_blob_budget_create(void);
void vgpu_blob_budget_unref(struct vgpu_blob_budget *budget);
/* Charges `blob` (size, pieces, one blob) to `budget` until the blob is destroyed. */
void vgpu_blob_charge(struct vgpu_resource *blob, struct vgpu_blob_budget *budget);

/* DRM fourcc for a 4-byte virtio-gpu format, or 0 if unsupported. */
uint32_t vgpu_format_to_drm(uint32_t virtio_format);

/* Allocates the host copy (zeroed). Returns NULL on overflow or no memory. */
struct vgpu_resource *vgpu_resource_create_2d(uint32_t id, uint32_t virtio_format,
	uint32_t width, uint32_t height);
/* The guest's UNREF: the device's reference goes; the memory follows the last lock. */
void vgpu_resource_unref(struct vgpu_resource *res);

/* Replaces the backing (entries already checked against guest memory). */
void vgpu_resource_set_backing(struct vgpu_resource *res, struct vgpu_backing_entry *entries,
	uint32_t count);
void vgpu_resource_detach_backing(struct vgpu_resource *res);

/*
 * TRANSFER_TO_HOST_2D: copies `rect` (inside the resource) from the backing
 * at guest offset `offset` (row r at offset + r * stride), as QEMU does.
 * Returns bytes copied, or -EINVAL (rect/offset out of range) / -EFAULT
 * (backing not in guest memory now).
 */
int64_t vgpu_resource_transfer_to_host(struct vgpu_resource *res,
	const struct vu_guest_memory *mem, const struct wlr_box *rect, uint64_t offset);

/*
 * RESOURCE_CREATE_BLOB with BLOB_MEM_GUEST: maps the guest pages of
 * `entries` (page-aligned, each inside one memory region of a memfd sealed
 * against shrinking, as QEMU's are) into one linear read-only view, and makes a udmabuf of them when /dev/udmabuf allows.
 * Returns NULL with *error set to a virtio-gpu response code.
 */
struct vgpu_resource *vgpu_resource_create_blob(uint32_t id, const struct vu_guest_memory *mem,
	const struct vgpu_backing_entry *entries, uint32_t count, uint64_t size, uint32_t *error);

/*
 * A displayable image inside a blob (SET_SCANOUT_BLOB): format, stride and
 * offset applied to the blob's pages. Holds a lock on the blob. NULL if the
 * layout does not fit the blob, or if the guest already freed the blob
 * (RESOURCE_UNREF): only images made before live on.
 */
struct wlr_buffer *vgpu_blob_image_create(struct vgpu_resource *blob, uint32_t drm_format,
	uint32_t width, uint32_t height, uint32_t stride, uint32_t offset);

/*
 * Guest blobs handed to the compositor's clients (cross-domain SEND of a
 * VIRTGPU_BLOB identifier). Without udmabuf the host has no fd that maps
 * the guest's pages, so the message carries a placeholder: an empty sealed
 * memfd that stands for the blob. The compositor's own wl_shm for VM
 * clients turns it back into the blob with vgpu_blob_import_fd, and
 * samples the guest pages in place (vgpu_blob_image_create): no copy.
 *
 * vgpu_blob_export_fd returns a new fd (the caller sends and closes it) or
 * a negative errno; `owner` is the exporting device. The registry keeps the
 * placeholder's inode alive until the blob is destroyed, so an inode never
 * stands for two blobs.
 * vgpu_blob_import_fd returns the blob, locked (wlr_buffer_unlock when
 * done), if `fd` is a placeholder exported by `owner` and the blob is still
 * alive; NULL otherwise (a host file, another VM's blob, a stale one).
 */
int vgpu_blob_export_fd(struct vgpu_resource *blob, const void *owner);
struct vgpu_resource *vgpu_blob_import_fd(int fd, const void *owner);
/*
 * The same, also giving the placeholder's key: a number never reused, which
 * vgpu_blob_import_key turns into the blob the placeholder stands for then
 * (after a vgpu_blob_replace, its successor) without keeping an fd open.
 * vgpu_blob_import_key returns NULL once the placeholder is gone (its blob
 * freed by the guest) or if `owner` did not export it.
 */
struct vgpu_resource *vgpu_blob_import_fd_key(int fd, const void *owner, uint64_t *key);
struct vgpu_resource *vgpu_blob_import_key(uint64_t key, const void *owner);

/*
 * Bytes of guest memory behind the resource that the host may write:
 * blob_size for a blob, the attached backing's size otherwise.
 */
uint64_t vgpu_resource_guest_size(const struct vgpu_resource *res);
/*
 * Writes `len` bytes at `offset` of the resource's guest pages (through
 * its backing entries and the VM's current memory table, never through
 * the read-only view). Returns 0, -EINVAL if [offset, offset + len) leaves
 * vgpu_resource_guest_size, or -EFAULT if a page is not guest RAM now.
 */
int vgpu_resource_write_guest(const struct vgpu_resource *res, const struct vu_guest_memory *mem,
	uint64_t offset, const void *src, size_t len);

/*
 * XDOM_CMD_BLOB_REPLACE: the guest moved a wl_shm pool from `old_blob` to
 * the larger `new_blob` (wl_shm_pool.resize). Every placeholder of
 * `old_blob` exported by `owner` now stands for `new_blob`: a later
 * vgpu_blob_import_fd of the placeholder the compositor already holds
 * returns `new_blob`, and the placeholder lives as long as `new_blob`
 * (no longer tied to `old_blob`, which the guest unrefs next). Returns the
 * number of placeholders moved (0 if `old_blob` was never exported), or
 * -EINVAL if either is not a live blob.
 */
int vgpu_blob_replace(struct vgpu_resource *old_blob, struct vgpu_resource *new_blob,
	const void *owner);
/*
 * Called by vgpu_resource_unref for a blob: the placeholders standing for
 * it are closed and no longer import (stale).
 */
void vgpu_blob_forget(struct vgpu_resource *blob);
/* Placeholders alive in the registry (all devices): for tests. */
unsigned vgpu_blob_placeholder_count(void);

/* Whether `rect` lies inside the resource. */
bool vgpu_resource_contains(const struct vgpu_resource *res, const struct wlr_box *rect);

#endif
