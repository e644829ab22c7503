#define _GNU_SOURCE
#include "shm.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cwg.h"

void cwg_shm_init(struct cwg_shm *shm, const struct cwg_blob_ops *ops)
{
	memset(shm, 0, sizeof(*shm));
	shm->ops = *ops;
	shm->max_pools = CWG_MAX_POOLS;
	shm->max_blob_bytes = CWG_MAX_BLOB_BYTES;
}

/* A client that truncates its pool file must not kill the proxy. */
static sigjmp_buf sigbus_env;
static volatile sig_atomic_t sigbus_armed;
static bool sigbus_installed;

static void sigbus_handler(int sig)
{
	if (sigbus_armed) {
		sigbus_armed = 0;
		siglongjmp(sigbus_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_sigbus(void)
{
	if (sigbus_installed)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigbus_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	sigbus_installed = true;
}

static int blob_alloc(struct cwg_shm *shm, size_t size, struct cwg_blob *blob)
{
	size = cwg_page_round(size);
	if (shm->blob_bytes + size > shm->max_blob_bytes)
		return -ENOSPC;
	memset(blob, 0, sizeof(*blob));
	int ret = shm->ops.create(shm->ops.user, size, blob);
	if (ret < 0)
		return ret;
	shm->blob_bytes += blob->size;
	return 0;
}

static void blob_free(struct cwg_shm *shm, struct cwg_blob *blob)
{
	if (!blob->size && !blob->res_id)
		return;
	shm->blob_bytes -= blob->size;
	shm->ops.destroy(shm->ops.user, blob);
	memset(blob, 0, sizeof(*blob));
}

int cwg_shm_pool_create(struct cwg_shm *shm, int fd, int32_t size, struct cwg_pool **out)
{
	if (size <= 0 || (uint64_t)size > CWG_MAX_POOL_SIZE)
		return -EINVAL;
	if (shm->pools >= shm->max_pools)
		return -ENOSPC;
	install_sigbus();
	struct cwg_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int err = errno;
		free(pool);
		return -err;
	}
	int ret = blob_alloc(shm, (size_t)size, &pool->blob);
	if (ret < 0) {
		munmap(map, (size_t)size);
		free(pool);
		return ret;
	}
	pool->refs = 1;
	pool->size = (size_t)size;
	pool->client_map = map;
	pool->client_size = (size_t)size;
	shm->pools++;
	*out = pool;
	return 0;
}

int cwg_shm_pool_resize(struct cwg_shm *shm, struct cwg_pool *pool, int32_t new_size,
	bool *replaced, uint32_t *old_id, uint32_t *new_id)
{
	*replaced = false;
	if (new_size <= 0 || (size_t)new_size < pool->size || (uint64_t)new_size > CWG_MAX_POOL_SIZE)
		return -EINVAL;
	if ((size_t)new_size == pool->size)
		return 0;
	void *map = mremap((void *)pool->client_map, pool->client_size, (size_t)new_size,
		MREMAP_MAYMOVE);
	if (map == MAP_FAILED)
		return -errno;
	pool->client_map = map;
	pool->client_size = (size_t)new_size;
	if ((size_t)new_size > pool->blob.size) {
		if (pool->nold >= CWG_SHM_MAX_OLD_BLOBS)
			return -ENOSPC;
		struct cwg_blob nb;
		int ret = blob_alloc(shm, (size_t)new_size, &nb);
		if (ret < 0)
			return ret;
		memcpy(nb.map, pool->blob.map, pool->size);
		*old_id = pool->blob.res_id;
		*new_id = nb.res_id;
		pool->old[pool->nold++] = pool->blob;
		pool->blob = nb;
		*replaced = true;
	}
	pool->size = (size_t)new_size;
	return 0;
}

void cwg_shm_pool_unref(struct cwg_shm *shm, struct cwg_pool *pool)
{
	if (!pool || --pool->refs > 0)
		return;
	munmap((void *)pool->client_map, pool->client_size);
	blob_free(shm, &pool->blob);
	for (unsigned i = 0; i < pool->nold; i++)
		blob_free(shm, &pool->old[i]);
	shm->pools--;
	free(pool);
}

struct cwg_buffer *cwg_shm_buffer_create(struct cwg_pool *pool, int32_t offset,
	int32_t width, int32_t height, int32_t stride, uint32_t format)
{
	if (offset < 0 || width <= 0 || height <= 0 || stride <= 0 ||
			(uint64_t)offset + (uint64_t)stride * (uint64_t)height > pool->size) {
		errno = EINVAL;
		return NULL;
	}
	unsigned bpp = cwg_shm_format_bpp(format);
	if (bpp && (uint64_t)width * bpp > (uint64_t)stride) {
		errno = EINVAL;
		return NULL;
	}
	struct cwg_buffer *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->pool = pool;
	pool->refs++;
	b->offset = offset;
	b->width = width;
	b->height = height;
	b->stride = stride;
	b->format = format;
	return b;
}

void cwg_shm_buffer_destroy(struct cwg_shm *shm, struct cwg_buffer *buffer)
{
	if (!buffer)
		return;
	cwg_shm_pool_unref(shm, buffer->pool);
	free(buffer);
}

#define FOURCC(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

unsigned cwg_shm_format_bpp(uint32_t format)
{
	switch (format) {
	case 0: // WL_SHM_FORMAT_ARGB8888
	case 1: // WL_SHM_FORMAT_XRGB8888
	case FOURCC('A', 'B', '2', '4'): case FOURCC('X', 'B', '2', '4'):
	case FOURCC('R', 'A', '2', '4'): case FOURCC('R', 'X', '2', '4'):
	case FOURCC('B', 'A', '2', '4'): case FOURCC('B', 'X', '2', '4'):
	case FOURCC('A', 'R', '3', '0'): case FOURCC('X', 'R', '3', '0'):
	case FOURCC('A', 'B', '3', '0'): case FOURCC('X', 'B', '3', '0'):
	case FOURCC('R', 'A', '3', '0'): case FOURCC('R', 'X', '3', '0'):
	case FOURCC('B', 'A', '3', '0'): case FOURCC('B', 'X', '3', '0'):
		return 4;
	case FOURCC('R', 'G', '1', '6'): case FOURCC('B', 'G', '1', '6'):
	case FOURCC('X', 'R', '1', '5'): case FOURCC('A', 'R', '1', '5'):
	case FOURCC('X', 'B', '1', '5'): case FOURCC('A', 'B', '1', '5'):
	case FOURCC('X', 'R', '1', '2'): case FOURCC('A', 'R', '1', '2'):
	case FOURCC('X', 'B', '1', '2'): case FOURCC('A', 'B', '1', '2'):
		return 2;
	case FOURCC('R', 'G', '2', '4'): case FOURCC('B', 'G', '2', '4'):
		return 3;
	case FOURCC('A', 'B', '4', 'H'): case FOURCC('X', 'B', '4', 'H'):
	case FOURCC('A', 'B', '4', '8'): case FOURCC('X', 'B', '4', '8'):
		return 8;
	case FOURCC('C', '8', ' ', ' '): case FOURCC('R', '8', ' ', ' '):
		return 1;
	default:
		return 0;
	}
}

void cwg_damage_add(struct cwg_damage *d, int32_t x, int32_t y, int32_t w, int32_t h)
{
	if (w <= 0 || h <= 0)
		return;
	int64_t x1 = (int64_t)x + w, y1 = (int64_t)y + h;
	if (!d->any) {
		d->x0 = x;
		d->y0 = y;
		d->x1 = x1;
		d->y1 = y1;
		d->any = true;
		return;
	}
	if (x < d->x0)
		d->x0 = x;
	if (y < d->y0)
		d->y0 = y;
	if (x1 > d->x1)
		d->x1 = x1;
	if (y1 > d->y1)
		d->y1 = y1;
}

void cwg_damage_union(struct cwg_damage *d, const struct cwg_damage *o)
{
	if (o->full)
		d->full = true;
	if (!o->any)
		return;
	if (!d->any) {
		d->x0 = o->x0;
		d->y0 = o->y0;
		d->x1 = o->x1;
		d->y1 = o->y1;
		d->any = true;
		return;
	}
	if (o->x0 < d->x0)
		d->x0 = o->x0;
	if (o->y0 < d->y0)
		d->y0 = o->y0;
	if (o->x1 > d->x1)
		d->x1 = o->x1;
	if (o->y1 > d->y1)
		d->y1 = o->y1;
}

void cwg_surface_init(struct cwg_surface *s)
{
	memset(s, 0, sizeof(*s));
	s->scale = 1;
}

static __attribute__((noinline)) void copy_rows(uint8_t *dst, const uint8_t *src,
	size_t first, size_t stride, size_t ncol, size_t rows)
{
	for (size_t r = 0; r < rows; r++)
		memcpy(dst + first + r * stride, src + first + r * stride, ncol);
}

/* Nothing here changes after sigsetjmp: no clobbered locals. */
static int guarded_copy(uint8_t *dst, const uint8_t *src, size_t first, size_t stride,
	size_t ncol, size_t rows)
{
	if (sigsetjmp(sigbus_env, 1))
		return -1;
	sigbus_armed = 1;
	copy_rows(dst, src, first, stride, ncol, rows);
	sigbus_armed = 0;
	return 0;
}

int64_t cwg_shm_copy_rect(struct cwg_shm *shm, struct cwg_buffer *buffer,
	int64_t x0, int64_t y0, int64_t x1, int64_t y1)
{
	struct cwg_pool *pool = buffer->pool;
	unsigned bpp = cwg_shm_format_bpp(buffer->format);
	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > buffer->width)
		x1 = buffer->width;
	if (y1 > buffer->height)
		y1 = buffer->height;
	if (x0 >= x1 || y0 >= y1)
		return 0;
	size_t col0, ncol;
	if (bpp) {
		col0 = (size_t)x0 * bpp;
		ncol = (size_t)(x1 - x0) * bpp;
	} else {
		col0 = 0;
		ncol = (size_t)buffer->stride;
	}
	/* cwg_shm_buffer_create checked the buffer against the pool size at
	 * creation; pools only grow, and the blob always covers the pool. */
	size_t last = (size_t)buffer->offset + (size_t)(y1 - 1) * (size_t)buffer->stride + col0 + ncol;
	if (last > pool->client_size || last > pool->blob.size)
		return -EFAULT;
	size_t first = (size_t)buffer->offset + (size_t)y0 * (size_t)buffer->stride + col0;
	if (guarded_copy(pool->blob.map, pool->client_map, first, (size_t)buffer->stride, ncol,
			(size_t)(y1 - y0)) < 0) {
		cwg_log(CWG_ERROR, "client pool memory vanished (SIGBUS) while copying");
		return -EFAULT;
	}
	int64_t copied = (int64_t)ncol * (y1 - y0);
	shm->bytes_copied += (uint64_t)copied;
	return copied;
}

int64_t cwg_surface_commit(struct cwg_shm *shm, struct cwg_surface *s,
	uint32_t surface_id, struct cwg_buffer *buffer, bool attached)
{
	struct cwg_damage d = s->buffer_damage;
	if (s->surface_damage.any || s->surface_damage.full) {
		if (s->transform != 0 || s->scale != 1 || s->has_viewport)
			d.full = true;
		else
			cwg_damage_union(&d, &s->surface_damage);
	}
	s->seq++;
	s->history[s->seq % CWG_DAMAGE_HISTORY] = d;
	memset(&s->surface_damage, 0, sizeof(s->surface_damage));
	memset(&s->buffer_damage, 0, sizeof(s->buffer_damage));
	if (!buffer || !attached)
		return 0;

	struct cwg_damage todo;
	memset(&todo, 0, sizeof(todo));
	if (!buffer->copied || buffer->last_surface != surface_id ||
			s->seq - buffer->last_seq > CWG_DAMAGE_HISTORY - 1) {
		todo.full = true;
	} else {
		for (uint32_t q = buffer->last_seq + 1; q != s->seq + 1; q++)
			cwg_damage_union(&todo, &s->history[q % CWG_DAMAGE_HISTORY]);
	}
	buffer->copied = true;
	buffer->last_surface = surface_id;
	buffer->last_seq = s->seq;
	if (todo.full)
		return cwg_shm_copy_rect(shm, buffer, 0, 0, buffer->width, buffer->height);
	if (!todo.any)
		return 0;
	return cwg_shm_copy_rect(shm, buffer, todo.x0, todo.y0, todo.x1, todo.y1);
}
