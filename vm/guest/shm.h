#ifndef CWG_SHM_H
#define CWG_SHM_H

/*
 * wl_shm mirroring. Each client pool is mapped read-only from the client's
 * fd and mirrored by a guest blob (what the host sees); on wl_surface.commit
 * the damaged part of the attached shm buffer is copied into the blob,
 * before the commit is forwarded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

struct cwg_blob_ops {
	int (*create)(void *user, size_t size, struct cwg_blob *blob);
	void (*destroy)(void *user, struct cwg_blob *blob);
	void *user;
};

struct cwg_shm {
	struct cwg_blob_ops ops;
	unsigned pools;        // live pools (also those kept alive by buffers)
	uint64_t blob_bytes;   // guest blob memory held
	unsigned max_pools;
	uint64_t max_blob_bytes;
	uint64_t bytes_copied; // statistics (and tests)
};

#define CWG_SHM_MAX_OLD_BLOBS 16

struct cwg_pool {
	int refs; // the pool object + its buffers
	size_t size;
	const uint8_t *client_map;
	size_t client_size;
	struct cwg_blob blob;
	struct cwg_blob old[CWG_SHM_MAX_OLD_BLOBS]; // replaced by resizes
	unsigned nold;
};

struct cwg_buffer {
	struct cwg_pool *pool;
	int32_t offset, width, height, stride;
	uint32_t format;
	bool copied;            // at least one full copy into the blob
	uint32_t last_surface;  // surface id and commit sequence of the last copy
	uint32_t last_seq;
};

/* Damage as a bounding box in buffer coordinates; full: the whole buffer. */
struct cwg_damage {
	bool full, any;
	int64_t x0, y0, x1, y1;
};

#define CWG_DAMAGE_HISTORY 8

struct cwg_surface {
	uint32_t pending_buffer; // id given by the last attach
	bool attached;           // attach seen since the last commit
	struct cwg_damage surface_damage, buffer_damage;
	int32_t transform, scale;
	bool has_viewport;
	uint32_t seq;            // commits so far
	struct cwg_damage history[CWG_DAMAGE_HISTORY];
	uint32_t buffer;         // current buffer id (0: none)
};

void cwg_shm_init(struct cwg_shm *shm, const struct cwg_blob_ops *ops);
/* Maps fd (size bytes, read-only) and makes its blob. The fd stays the
 * caller's. 0 or -errno (-ENOSPC: a limit). */
int cwg_shm_pool_create(struct cwg_shm *shm, int fd, int32_t size, struct cwg_pool **out);
/*
 * Grows the pool to new_size: remaps the client's fd, and when the blob is
 * too small makes a bigger one holding the old blob's bytes (*replaced
 * true, old and new resource ids set; the old blob is kept until the pool
 * goes). -errno on failure (-EINVAL when shrinking).
 */
int cwg_shm_pool_resize(struct cwg_shm *shm, struct cwg_pool *pool, int32_t new_size,
	bool *replaced, uint32_t *old_id, uint32_t *new_id);
void cwg_shm_pool_unref(struct cwg_shm *shm, struct cwg_pool *pool);

/* NULL (errno EINVAL) when the buffer does not fit in the pool. */
struct cwg_buffer *cwg_shm_buffer_create(struct cwg_pool *pool, int32_t offset,
	int32_t width, int32_t height, int32_t stride, uint32_t format);
void cwg_shm_buffer_destroy(struct cwg_shm *shm, struct cwg_buffer *buffer);

void cwg_damage_add(struct cwg_damage *d, int32_t x, int32_t y, int32_t w, int32_t h);
void cwg_damage_union(struct cwg_damage *d, const struct cwg_damage *other);

void cwg_surface_init(struct cwg_surface *s);
/*
 * A wl_surface.commit; buffer: the shm buffer the surface shows after it
 * (NULL: none or not shm). Copies the damage since this buffer was last
 * copied for this surface (whole buffer the first time, for transforms,
 * scales, viewports, or a lost history). Bytes copied, or -EFAULT if the
 * client's memory went away (SIGBUS).
 */
int64_t cwg_surface_commit(struct cwg_shm *shm, struct cwg_surface *s,
	uint32_t surface_id, struct cwg_buffer *buffer, bool attached);

/* Bytes per pixel of a wl_shm format, 0 if unknown (whole rows are copied). */
unsigned cwg_shm_format_bpp(uint32_t format);

/* Copies rectangle [x0,x1) x [y0,y1) of the buffer from the client's pool
 * into the blob. Bytes copied or -EFAULT. */
int64_t cwg_shm_copy_rect(struct cwg_shm *shm, struct cwg_buffer *buffer,
	int64_t x0, int64_t y0, int64_t x1, int64_t y1);

#endif
