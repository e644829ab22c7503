/*
 * A virtio-gpu driver in the style of Linux 6.1 (virtio-gpu.md): commands
 * in guest memory, one readable buffer for the command, a second one for
 * extra data, a writable one for the response; interrupt-driven completion
 * with strict checks of every response; a model of what the device should
 * hold (resources, host-side pixels, scanouts, cursor) against which the
 * GPU-socket traffic of the back end is verified.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/virtio_gpu.h>
#include <linux/virtio_ring.h>

#include "vmm_internal.h"

#define HDR_SIZE 24u
#define MAX_CMD 128u          /* largest command struct we build */
#define MAX_SHADOW_PIXELS (64u << 20)
#define MAX_TIMELINES 64u
#define CURSOR_SIZE 64u

struct vmm_gpu_cmd {
	struct vmm_gpu_cmd *next;
	unsigned queue;
	uint8_t req[MAX_CMD];     /* our copy of the command */
	uint32_t req_len;
	uint32_t type, res_id;
	bool fenced, ring_idx_flag;
	uint64_t fence_id;
	uint32_t ctx_id;
	uint8_t ring_idx;
	uint64_t gpa[3];          /* command, extra, response */
	uint32_t len[3];
	bool done, abandoned, nowait;
	uint32_t used_len;
	uint8_t *resp;            /* copy of the response, resp_len bytes */
	uint32_t resp_len;
	uint32_t resp_type;
	int status;
	char err[200];
};

struct gpu_ent {
	uint64_t gpa;
	uint32_t len;
};

struct gpu_res {
	struct gpu_res *next;
	uint32_t id, format, width, height;
	bool blob;
	uint64_t size;            /* stride * height */
	struct gpu_ent *ents;
	unsigned nents;
	uint32_t *shadow;         /* host-side pixels (2D resources) */
};

struct timeline {
	bool used, per_ring;
	uint32_t ctx_id;
	uint8_t ring_idx;
	uint64_t last;
};

struct scanout_model {
	uint32_t res_id, x, y, w, h;
};

struct vmm_gpu {
	struct vmm_dev *dev;
	struct vmm_gpu_cmd *cmds;
	struct gpu_res *res;
	uint32_t next_id;
	unsigned rr;              /* round-robin region for allocations */
	struct scanout_model scanout[VIRTIO_GPU_MAX_SCANOUTS];
	struct {
		uint32_t scanout, res_id, x, y, hot_x, hot_y;
	} cursor;
	struct timeline tl[MAX_TIMELINES];
	bool no_verify;           /* GPU-socket pixels: count, do not compare */
	struct vmm_gpu_stats stats;
};

static void cmd_fail(struct vmm_gpu_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void cmd_fail(struct vmm_gpu_cmd *c, const char *fmt, ...)
{
	va_list ap;

	if (c->status < 0)
		return; /* keep the first problem */
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->status = -1;
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

const char *vmm_gpu_cmd_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO: return "GET_DISPLAY_INFO";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: return "RESOURCE_CREATE_2D";
	case VIRTIO_GPU_CMD_RESOURCE_UNREF: return "RESOURCE_UNREF";
	case VIRTIO_GPU_CMD_SET_SCANOUT: return "SET_SCANOUT";
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: return "RESOURCE_FLUSH";
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: return "TRANSFER_TO_HOST_2D";
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: return "RESOURCE_ATTACH_BACKING";
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: return "RESOURCE_DETACH_BACKING";
	case VIRTIO_GPU_CMD_GET_CAPSET_INFO: return "GET_CAPSET_INFO";
	case VIRTIO_GPU_CMD_GET_CAPSET: return "GET_CAPSET";
	case VIRTIO_GPU_CMD_GET_EDID: return "GET_EDID";
	case VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID: return "RESOURCE_ASSIGN_UUID";
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB: return "RESOURCE_CREATE_BLOB";
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB: return "SET_SCANOUT_BLOB";
	case VIRTIO_GPU_CMD_CTX_CREATE: return "CTX_CREATE";
	case VIRTIO_GPU_CMD_CTX_DESTROY: return "CTX_DESTROY";
	case VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE: return "CTX_ATTACH_RESOURCE";
	case VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE: return "CTX_DETACH_RESOURCE";
	case VIRTIO_GPU_CMD_SUBMIT_3D: return "SUBMIT_3D";
	case VIRTIO_GPU_CMD_UPDATE_CURSOR: return "UPDATE_CURSOR";
	case VIRTIO_GPU_CMD_MOVE_CURSOR: return "MOVE_CURSOR";
	default: return "UNKNOWN_CMD";
	}
}

const char *vmm_gpu_resp_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_GPU_RESP_OK_NODATA: return "OK_NODATA";
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO: return "OK_DISPLAY_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO: return "OK_CAPSET_INFO";
	case VIRTIO_GPU_RESP_OK_CAPSET: return "OK_CAPSET";
	case VIRTIO_GPU_RESP_OK_EDID: return "OK_EDID";
	case VIRTIO_GPU_RESP_OK_RESOURCE_UUID: return "OK_RESOURCE_UUID";
	case VIRTIO_GPU_RESP_OK_MAP_INFO: return "OK_MAP_INFO";
	case VIRTIO_GPU_RESP_ERR_UNSPEC: return "ERR_UNSPEC";
	case VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY: return "ERR_OUT_OF_MEMORY";
	case VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID: return "ERR_INVALID_SCANOUT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID: return "ERR_INVALID_RESOURCE_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID: return "ERR_INVALID_CONTEXT_ID";
	case VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER: return "ERR_INVALID_PARAMETER";
	default: return "UNKNOWN_RESP";
	}
}

/* Exact response sizes (virtio-gpu.md §3); 0 = at least a header. */
static int expected_resp_size(uint32_t type)
{
	switch (type) {
	case VIRTIO_GPU_RESP_OK_NODATA: return 24;
	case VIRTIO_GPU_RESP_OK_DISPLAY_INFO: return 408;
	case VIRTIO_GPU_RESP_OK_CAPSET_INFO: return 40;
	case VIRTIO_GPU_RESP_OK_CAPSET: return 0;
	case VIRTIO_GPU_RESP_OK_EDID: return 1056;
	case VIRTIO_GPU_RESP_OK_RESOURCE_UUID: return 40;
	case VIRTIO_GPU_RESP_OK_MAP_INFO: return 32;
	default:
		return type >= VIRTIO_GPU_RESP_ERR_UNSPEC &&
			type <= VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER ? 24 : -1;
	}
}

/* ------------------------------------------------------------------ */
/* Resources: the guest driver's bookkeeping                           */
/* ------------------------------------------------------------------ */

static struct gpu_res *find_res(const struct vmm_gpu *gpu, uint32_t id)
{
	for (struct gpu_res *r = gpu->res; r; r = r->next) {
		if (r->id == id)
			return r;
	}
	return NULL;
}

static void free_backing(struct vmm_gpu *gpu, struct gpu_res *r)
{
	for (unsigned i = 0; i < r->nents; i++)
		vmm_mem_release(vmm_dev_mem(gpu->dev), r->ents[i].gpa, r->ents[i].len);
	free(r->ents);
	r->ents = NULL;
	r->nents = 0;
}

static void drop_res(struct vmm_gpu *gpu, uint32_t id)
{
	for (struct gpu_res **p = &gpu->res; *p; p = &(*p)->next) {
		struct gpu_res *r = *p;

		if (r->id != id)
			continue;
		*p = r->next;
		free_backing(gpu, r);
		free(r->shadow);
		free(r);
		return;
	}
}

static struct gpu_res *add_res(struct vmm_gpu *gpu, uint32_t id, uint32_t format,
		uint32_t w, uint32_t h, bool blob)
{
	struct gpu_res *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->id = id;
	r->format = format;
	r->width = w;
	r->height = h;
	r->blob = blob;
	r->size = (uint64_t)w * 4 * h;
	/* Oversized resources (fault tests) simply get no pixel model. */
	if (!blob && w && h && (uint64_t)w * h <= MAX_SHADOW_PIXELS) {
		r->shadow = calloc((size_t)w * h, 4);
		if (!r->shadow) {
			free(r);
			return NULL;
		}
	}
	r->next = gpu->res;
	gpu->res = r;
	if (id >= gpu->next_id)
		gpu->next_id = id + 1;
	return r;
}

static void reset_model(struct vmm_gpu *gpu)
{
	while (gpu->res)
		drop_res(gpu, gpu->res->id);
	memset(gpu->scanout, 0, sizeof(gpu->scanout));
	memset(&gpu->cursor, 0, sizeof(gpu->cursor));
	memset(gpu->tl, 0, sizeof(gpu->tl));
	/* A re-probed Linux driver numbers its resources from 1 again. */
	gpu->next_id = 1;
}

uint32_t vmm_gpu_next_resource_id(struct vmm_gpu *gpu) { return gpu->next_id; }
bool vmm_gpu_resource_exists(const struct vmm_gpu *gpu, uint32_t id) { return find_res(gpu, id); }

unsigned vmm_gpu_resource_entries(const struct vmm_gpu *gpu, uint32_t id)
{
	const struct gpu_res *r = find_res(gpu, id);

	return r ? r->nents : 0;
}

bool vmm_gpu_resource_size(const struct vmm_gpu *gpu, uint32_t id, uint32_t *w,
		uint32_t *h)
{
	const struct gpu_res *r = find_res(gpu, id);

	if (!r)
		return false;
	*w = r->width;
	*h = r->height;
	return true;
}

uint32_t vmm_gpu_scanout_resource(const struct vmm_gpu *gpu, uint32_t scanout)
{
	return scanout < VIRTIO_GPU_MAX_SCANOUTS ? gpu->scanout[scanout].res_id : 0;
}

void vmm_gpu_set_verify(struct vmm_gpu *gpu, bool on)
{
	gpu->no_verify = !on;
}

const struct vmm_gpu_stats *vmm_gpu_stats(const struct vmm_gpu *gpu)
{
	return &gpu->stats;
}

/* Copies between a resource's backing (several entries) and a buffer. */
static int backing_io(struct vmm_gpu *gpu, const struct gpu_res *r, uint64_t off,
		void *buf, uint64_t len, bool write)
{
	struct vmm_mem *mem = vmm_dev_mem(gpu->dev);
	uint8_t *p = buf;
	uint64_t base = 0;

	for (unsigned i = 0; i < r->nents && len > 0; i++) {
		uint64_t end = base + r->ents[i].len;

		if (off < end) {
			uint64_t n = end - off < len ? end - off : len;
			uint64_t gpa = r->ents[i].gpa + (off - base);
			int rc = write ? vmm_mem_write(mem, gpa, p, n) : vmm_mem_read(mem, gpa, p, n);

			if (rc < 0)
				return -1;
			p += n;
			off += n;
			len -= n;
		}
		base = end;
	}
	return len == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Pixels                                                              */
/* ------------------------------------------------------------------ */

uint32_t vmm_pattern_pixel(const struct vmm_pattern *p, uint32_t x, uint32_t y,
		uint32_t w, uint32_t h)
{
	switch (p->kind) {
	case VMM_PATTERN_QUADRANTS:
		if (x < w / 2)
			return y < h / 2 ? 0xffff0000u : 0xff0000ffu;
		return y < h / 2 ? 0xff00ff00u : 0xffffffffu;
	case VMM_PATTERN_COORDS:
		/* Unique up to 4096x4096: catches swapped pages and strides. */
		return 0xff000000u | (x & 0xff) << 16 | (y & 0xff) << 8 |
			((x >> 8) & 0xf) | ((y >> 8) & 0xf) << 4;
	case VMM_PATTERN_SOLID:
	default:
		return 0xff000000u | (p->rgb & 0xffffff);
	}
}

int vmm_pattern_parse(const char *text, struct vmm_pattern *p)
{
	char *end;

	memset(p, 0, sizeof(*p));
	if (strcmp(text, "quadrants") == 0) {
		p->kind = VMM_PATTERN_QUADRANTS;
		return 0;
	}
	if (strcmp(text, "coords") == 0) {
		p->kind = VMM_PATTERN_COORDS;
		return 0;
	}
	if (strncmp(text, "solid:", 6) == 0 && strlen(text) == 12) {
		p->kind = VMM_PATTERN_SOLID;
		p->rgb = (uint32_t)strtoul(text + 6, &end, 16);
		return *end ? -1 : 0;
	}
	return -1;
}

/* ARGB to the 32-bit little-endian word of each virtio format (whose names
 * list the bytes in memory order). */
static uint32_t to_format(uint32_t format, uint32_t argb)
{
	uint32_t a = argb >> 24, r = (argb >> 16) & 0xff, g = (argb >> 8) & 0xff, b = argb & 0xff;

	switch (format) {
	case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
	case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
		return b << 24 | g << 16 | r << 8 | a;
	case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
	case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
		return a << 24 | b << 16 | g << 8 | r;
	case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
	case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
		return r << 24 | g << 16 | b << 8 | a;
	default:
		return argb;
	}
}

/* Bits that carry colour; the X byte of X formats is undefined. */
static uint32_t format_mask(uint32_t format)
{
	switch (format) {
	case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
	case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
		return 0x00ffffffu;
	case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
	case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
		return 0xffffff00u;
	default:
		return 0xffffffffu;
	}
}

int vmm_gpu_draw(struct vmm_gpu *gpu, uint32_t id, const struct vmm_pattern *p)
{
	struct gpu_res *r = find_res(gpu, id);
	uint32_t *row;

	if (!r || !r->nents) {
		vmm_dev_fail(gpu->dev, "draw: resource %u has no backing", id);
		return -1;
	}
	row = malloc((size_t)r->width * 4);
	if (!row) {
		vmm_dev_fail(gpu->dev, "draw: out of memory");
		return -1;
	}
	for (uint32_t y = 0; y < r->height; y++) {
		for (uint32_t x = 0; x < r->width; x++)
			row[x] = htole32(to_format(r->format,
					vmm_pattern_pixel(p, x, y, r->width, r->height)));
		if (backing_io(gpu, r, (uint64_t)y * r->width * 4, row,
				(uint64_t)r->width * 4, true) < 0) {
			free(row);
			vmm_dev_fail(gpu->dev, "draw: backing of resource %u is unmapped", id);
			return -1;
		}
	}
	free(row);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Completion                                                          */
/* ------------------------------------------------------------------ */

static void release_buffers(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c)
{
	for (unsigned i = 0; i < 3; i++) {
		if (c->len[i])
			vmm_mem_release(vmm_dev_mem(gpu->dev), c->gpa[i], c->len[i]);
		c->len[i] = 0;
	}
}

static struct timeline *timeline_of(struct vmm_gpu *gpu, const struct vmm_gpu_cmd *c)
{
	struct timeline *free_slot = NULL;

	for (unsigned i = 0; i < MAX_TIMELINES; i++) {
		struct timeline *t = &gpu->tl[i];

		if (!t->used) {
			if (!free_slot)
				free_slot = t;
			continue;
		}
		if (t->per_ring == c->ring_idx_flag && (!t->per_ring ||
				(t->ctx_id == c->ctx_id && t->ring_idx == c->ring_idx)))
			return t;
	}
	if (free_slot)
		*free_slot = (struct timeline){ .used = true, .per_ring = c->ring_idx_flag,
			.ctx_id = c->ctx_id, .ring_idx = c->ring_idx };
	return free_slot;
}

/* Linux signals every lower fence of a timeline when a fence completes,
 * so the device must complete them in order (virtio-gpu.md §3). */
static void check_fence_order(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c)
{
	struct timeline *t = timeline_of(gpu, c);

	gpu->stats.fences_done++;
	if (!t)
		return;
	if (c->fence_id < t->last) {
		gpu->stats.fence_order_violations++;
		cmd_fail(c, "fence %" PRIu64 " completed after fence %" PRIu64
				" of the same timeline", c->fence_id, t->last);
	} else {
		t->last = c->fence_id;
	}
}

static void check_header(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c)
{
	const uint8_t *h = c->resp;
	uint32_t flags = vmm_get32(h + 4);
	int want = expected_resp_size(c->resp_type);

	if (c->used_len < HDR_SIZE) {
		cmd_fail(c, "%s: used len %u is shorter than a response header",
				vmm_gpu_cmd_name(c->type), c->used_len);
		return;
	}
	if (want < 0) {
		cmd_fail(c, "%s: unknown response type 0x%x", vmm_gpu_cmd_name(c->type),
				c->resp_type);
		return;
	}
	if (want > 0 && c->used_len != (uint32_t)want)
		cmd_fail(c, "%s: used len %u for %s, expected %d", vmm_gpu_cmd_name(c->type),
				c->used_len, vmm_gpu_resp_name(c->resp_type), want);
	if (c->fenced) {
		if (!(flags & VIRTIO_GPU_FLAG_FENCE) || vmm_get64(h + 8) != c->fence_id ||
				vmm_get32(h + 16) != c->ctx_id)
			cmd_fail(c, "%s: response does not echo fence %" PRIu64 " ctx %u "
					"(flags 0x%x fence %" PRIu64 " ctx %u)",
					vmm_gpu_cmd_name(c->type), c->fence_id, c->ctx_id,
					flags, vmm_get64(h + 8), vmm_get32(h + 16));
		if (c->ring_idx_flag && (!(flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) ||
				h[20] != c->ring_idx))
			cmd_fail(c, "%s: response does not echo ring_idx %u",
					vmm_gpu_cmd_name(c->type), c->ring_idx);
		check_fence_order(gpu, c);
	}
	if (c->resp_type >= VIRTIO_GPU_RESP_ERR_UNSPEC)
		gpu->stats.errors++;
}

/* TRANSFER_TO_HOST_2D as QEMU does it: rows of rect.width*4 bytes from
 * backing offset + stride*row to the rect in the host copy. */
static void model_transfer(struct vmm_gpu *gpu, const struct vmm_gpu_cmd *c)
{
	struct gpu_res *r = find_res(gpu, c->res_id);
	const uint8_t *q = c->req;
	uint32_t x = vmm_get32(q + 24), y = vmm_get32(q + 28);
	uint32_t w = vmm_get32(q + 32), h = vmm_get32(q + 36);
	uint64_t off = vmm_get64(q + 40), stride;

	if (!r || !r->shadow || (uint64_t)x + w > r->width || (uint64_t)y + h > r->height)
		return;
	stride = (uint64_t)r->width * 4;
	for (uint32_t row = 0; row < h; row++) {
		uint32_t *dst = r->shadow + (uint64_t)(y + row) * r->width + x;

		if (backing_io(gpu, r, off + stride * row, dst, (uint64_t)w * 4, false) < 0)
			return;
	}
}

/* Bookkeeping that depends on the device's answer. */
static void apply_result(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c)
{
	bool ok = c->resp_type == VIRTIO_GPU_RESP_OK_NODATA;
	struct gpu_res *r = find_res(gpu, c->res_id);

	switch (c->type) {
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D:
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB:
		if (!ok)
			drop_res(gpu, c->res_id);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF:
		/* Linux frees the pages after UNREF; no DETACH is sent. */
		if (ok)
			drop_res(gpu, c->res_id);
		break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING:
		if (ok && r)
			free_backing(gpu, r);
		break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D:
		if (ok)
			model_transfer(gpu, c);
		break;
	default:
		break;
	}
}

static void complete(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c, uint32_t used_len)
{
	c->done = true;
	c->used_len = used_len;
	gpu->stats.responses++;
	if (c->len[2]) {
		c->resp_len = c->len[2];
		c->resp = calloc(1, c->resp_len);
		if (!c->resp || vmm_mem_read(vmm_dev_mem(gpu->dev), c->gpa[2], c->resp,
				c->resp_len) < 0) {
			cmd_fail(c, "cannot read the response");
		} else {
			c->resp_type = vmm_get32(c->resp);
			check_header(gpu, c);
			apply_result(gpu, c);
		}
	}
	release_buffers(gpu, c);
}

static int drain(struct vmm_gpu *gpu, unsigned q)
{
	struct vmm_vring *vr = vmm_dev_vring(gpu->dev, q);
	void *token;
	uint32_t len;
	int r;

	if (!vr)
		return 0;
	do {
		while ((r = vmm_vring_pop_used(vr, &token, &len)) == 1)
			complete(gpu, token, len);
		if (r < 0) {
			vmm_dev_fail(gpu->dev, "%s", vmm_vring_error(vr));
			return -1;
		}
	} while (vmm_vring_enable_cb(vr));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Submission and waiting                                              */
/* ------------------------------------------------------------------ */

static int alloc_buf(struct vmm_gpu *gpu, const void *data, uint32_t len,
		uint64_t *gpa)
{
	struct vmm_mem *mem = vmm_dev_mem(gpu->dev);
	unsigned flags = vmm_dev_config(gpu->dev)->span_buffers ? VMM_ALLOC_SPAN : 0;
	/* Spread buffers over all regions so every translation is used. */
	int hint = (int)(gpu->rr++ % vmm_mem_region_count(mem));

	if (vmm_mem_alloc(mem, len, hint, flags, gpa) < 0) {
		vmm_dev_fail(gpu->dev, "out of guest memory for a %u-byte buffer", len);
		return -1;
	}
	if (data && vmm_mem_write(mem, *gpa, data, len) < 0) {
		vmm_mem_release(mem, *gpa, len);
		return -1;
	}
	return 0;
}

static void fill_opts(struct vmm_gpu_cmd *c, const struct vmm_gpu_opts *o)
{
	uint32_t flags = vmm_get32(c->req + 4);

	if (!o)
		return;
	if (o->fence) {
		flags |= VIRTIO_GPU_FLAG_FENCE;
		vmm_put64(c->req + 8, o->fence_id);
	}
	if (o->ring_idx_flag) {
		flags |= VIRTIO_GPU_FLAG_INFO_RING_IDX;
		c->req[20] = o->ring_idx;
	}
	vmm_put32(c->req + 4, flags);
	vmm_put32(c->req + 16, o->ctx_id);
	c->fenced = o->fence;
	c->fence_id = o->fence_id;
	c->ctx_id = o->ctx_id;
	c->ring_idx_flag = o->ring_idx_flag;
	c->ring_idx = o->ring_idx;
	c->nowait = o->nowait;
}

/* Where each command keeps its resource id (virtio-gpu.md §4). */
static uint32_t resource_of(const uint8_t *req, uint32_t len)
{
	uint32_t off;

	switch (vmm_get32(req)) {
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: off = 48; break;
	case VIRTIO_GPU_CMD_SET_SCANOUT: off = 44; break;
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: off = 40; break;
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB: off = 44; break;
	case VIRTIO_GPU_CMD_UPDATE_CURSOR:
	case VIRTIO_GPU_CMD_MOVE_CURSOR: off = 40; break;
	default: off = 24; break;
	}
	return len >= off + 4 ? vmm_get32(req + off) : 0;
}

static struct vmm_gpu_cmd *new_cmd(struct vmm_gpu *gpu, unsigned queue,
		const void *cmd, size_t cmd_len, const struct vmm_gpu_opts *o)
{
	struct vmm_gpu_cmd *c;

	if (cmd_len < HDR_SIZE || cmd_len > MAX_CMD) {
		vmm_dev_fail(gpu->dev, "command of %zu bytes", cmd_len);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		vmm_dev_fail(gpu->dev, "out of memory");
		return NULL;
	}
	c->queue = queue;
	memcpy(c->req, cmd, cmd_len);
	c->req_len = (uint32_t)cmd_len;
	c->type = vmm_get32(c->req);
	c->res_id = resource_of(c->req, c->req_len);
	fill_opts(c, o);
	return c;
}

static int place_buffers(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c,
		const void *extra, size_t extra_len, size_t resp_len,
		struct vmm_vbuf *bufs, unsigned *n)
{
	*n = 0;
	if (alloc_buf(gpu, c->req, c->req_len, &c->gpa[0]) < 0)
		return -1;
	c->len[0] = c->req_len;
	bufs[(*n)++] = (struct vmm_vbuf){ c->gpa[0], c->len[0], false };
	if (extra_len) {
		if (alloc_buf(gpu, extra, (uint32_t)extra_len, &c->gpa[1]) < 0)
			return -1;
		c->len[1] = (uint32_t)extra_len;
		bufs[(*n)++] = (struct vmm_vbuf){ c->gpa[1], c->len[1], false };
	}
	if (resp_len) {
		if (alloc_buf(gpu, NULL, (uint32_t)resp_len, &c->gpa[2]) < 0)
			return -1;
		c->len[2] = (uint32_t)resp_len;
		bufs[(*n)++] = (struct vmm_vbuf){ c->gpa[2], c->len[2], true };
	}
	return 0;
}

static void free_cmd(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c)
{
	release_buffers(gpu, c);
	free(c->resp);
	free(c);
}

static void unlink_cmd(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c)
{
	for (struct vmm_gpu_cmd **p = &gpu->cmds; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			return;
		}
	}
}

static struct vmm_gpu_cmd *submit(struct vmm_gpu *gpu, unsigned queue,
		const void *cmd, size_t cmd_len, const void *extra, size_t extra_len,
		size_t resp_len, const struct vmm_gpu_opts *o)
{
	struct vmm_vring *vr = vmm_dev_vring(gpu->dev, queue);
	struct vmm_vbuf bufs[3];
	struct vmm_gpu_cmd *c;
	unsigned n;

	if (!vr || !vmm_dev_running(gpu->dev)) {
		vmm_dev_fail(gpu->dev, "%s: the device is not running",
				cmd_len >= 4 ? vmm_gpu_cmd_name(vmm_get32(cmd)) : "command");
		return NULL;
	}
	c = new_cmd(gpu, queue, cmd, cmd_len, o);
	if (!c)
		return NULL;
	if (place_buffers(gpu, c, extra, extra_len, resp_len, bufs, &n) < 0)
		goto fail;
	if (vmm_vring_add(vr, bufs, n, c) < 0) {
		vmm_dev_fail(gpu->dev, "%s", vmm_vring_error(vr));
		goto fail;
	}
	c->next = gpu->cmds;
	gpu->cmds = c;
	gpu->stats.commands++;
	if (vmm_dev_kick(gpu->dev, queue) < 0)
		return NULL; /* stays linked: the ring owns it now */
	return c;
fail:
	free_cmd(gpu, c);
	return NULL;
}

/*
 * Interrupt-driven, as the Linux driver is: the used ring is read after an
 * interrupt. A response that is there without one is reported as a lost
 * interrupt.
 */
static int wait_cmd(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c, int timeout_ms)
{
	int64_t deadline = vmm_now_ms() + timeout_ms;

	while (!c->done) {
		struct vmm_vring *vr = vmm_dev_vring(gpu->dev, c->queue);
		int r;

		if (!vr) {
			vmm_dev_fail(gpu->dev, "%s: the device is not running",
					vmm_gpu_cmd_name(c->type));
			return -1;
		}
		r = vmm_dev_wait_call(gpu->dev, c->queue, vmm_remaining_ms(deadline));
		if (r < 0)
			return -1;
		if (r == 0) {
			if (vmm_vring_used_idx(vr) == vmm_vring_last_used(vr)) {
				vmm_dev_fail(gpu->dev, "no response to %s on vq%u within %d ms",
						vmm_gpu_cmd_name(c->type), c->queue, timeout_ms);
				return -1;
			}
			/* The interrupt may be just behind the used index. */
			r = vmm_dev_wait_call(gpu->dev, c->queue, 100);
			if (r <= 0) {
				const struct vmm_dev_stats *st = vmm_dev_stats(gpu->dev);

				vmm_dev_fail(gpu->dev, "vq%u: %s was answered in the used ring "
						"but the call fd was never signalled (signals on "
						"replaced call fds: %" PRIu64 ")", c->queue,
						vmm_gpu_cmd_name(c->type), st->stale_calls[c->queue]);
				return -1;
			}
		}
		if (drain(gpu, c->queue) < 0)
			return -1;
	}
	if (c->status < 0) {
		vmm_dev_fail(gpu->dev, "%s", c->err);
		return -1;
	}
	return 0;
}

/* Waits, copies the response out, frees the command. */
static int finish(struct vmm_gpu *gpu, struct vmm_gpu_cmd *c, void *resp,
		size_t resp_len)
{
	int r = wait_cmd(gpu, c, vmm_dev_config(gpu->dev)->timeout_ms);

	if (r == 0 && resp && c->resp)
		memcpy(resp, c->resp, resp_len < c->resp_len ? resp_len : c->resp_len);
	if (r == 0)
		r = (int)c->resp_type;
	/* An abandoned or answered command can go; one still in the ring
	 * after a timeout stays linked until the device answers or resets. */
	if (c->done) {
		unlink_cmd(gpu, c);
		free_cmd(gpu, c);
	}
	return r;
}

int vmm_gpu_exec(struct vmm_gpu *gpu, unsigned queue, const void *cmd,
		size_t cmd_len, const void *extra, size_t extra_len,
		void *resp, size_t resp_len, const struct vmm_gpu_opts *opts)
{
	struct vmm_gpu_cmd *c = submit(gpu, queue, cmd, cmd_len, extra, extra_len,
			resp_len, opts);

	if (!c)
		return -1;
	if (opts && opts->nowait)
		return 0;
	return finish(gpu, c, resp, resp_len);
}

int vmm_gpu_wait_fence(struct vmm_gpu *gpu, uint64_t fence_id, int timeout_ms)
{
	for (struct vmm_gpu_cmd *c = gpu->cmds; c; c = c->next) {
		int r;

		if (!c->fenced || c->fence_id != fence_id || !c->nowait)
			continue;
		r = wait_cmd(gpu, c, timeout_ms);
		if (r == 0)
			r = (int)c->resp_type;
		if (c->done) {
			unlink_cmd(gpu, c);
			free_cmd(gpu, c);
		}
		return r;
	}
	vmm_dev_fail(gpu->dev, "no outstanding command with fence %" PRIu64, fence_id);
	return -1;
}

int vmm_gpu_wait_all(struct vmm_gpu *gpu, int timeout_ms)
{
	int64_t deadline = vmm_now_ms() + timeout_ms;
	int r = 0;

	while (gpu->cmds) {
		struct vmm_gpu_cmd *c = gpu->cmds;

		if (wait_cmd(gpu, c, vmm_remaining_ms(deadline)) < 0)
			r = -1;
		if (!c->done)
			return -1;
		unlink_cmd(gpu, c);
		free_cmd(gpu, c);
	}
	return r;
}

unsigned vmm_gpu_in_flight(const struct vmm_gpu *gpu)
{
	unsigned n = 0;

	for (const struct vmm_gpu_cmd *c = gpu->cmds; c; c = c->next)
		n += !c->done;
	return n;
}

unsigned vmm_gpu_collect(struct vmm_gpu *gpu)
{
	struct vmm_gpu_cmd **p = &gpu->cmds;
	unsigned n = 0;

	while (*p) {
		struct vmm_gpu_cmd *c = *p;

		if (c->done && c->nowait && !c->fenced) {
			*p = c->next;
			free_cmd(gpu, c);
			n++;
		} else {
			p = &c->next;
		}
	}
	return n;
}

/* For vmm_ctx (vmm_internal.h): asynchronous completion. */
struct vmm_dev *vmm_gpu_dev(struct vmm_gpu *gpu)
{
	return gpu->dev;
}

int vmm_gpu_drain(struct vmm_gpu *gpu, unsigned q)
{
	return drain(gpu, q);
}

int vmm_gpu_fence_state(const struct vmm_gpu *gpu, uint64_t fence_id)
{
	for (const struct vmm_gpu_cmd *c = gpu->cmds; c; c = c->next) {
		if (c->fenced && c->nowait && c->fence_id == fence_id)
			return c->done ? 1 : 0;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* GPU socket verification                                             */
/* ------------------------------------------------------------------ */

/* Pixel the host should show at (x, y) of a resource. */
static int host_pixel(struct vmm_gpu *gpu, const struct gpu_res *r, uint32_t x,
		uint32_t y, uint32_t *px)
{
	if (r->shadow) {
		*px = r->shadow[(uint64_t)y * r->width + x];
		return 0;
	}
	/* GUEST blobs: the host reads guest pages directly. */
	return backing_io(gpu, r, ((uint64_t)y * r->width + x) * 4, px, 4, false);
}

static int compare_rect(struct vmm_gpu *gpu, const struct gpu_res *r, uint32_t x0,
		uint32_t y0, uint32_t w, uint32_t h, const uint8_t *data, char *out,
		size_t outlen)
{
	uint32_t mask = format_mask(r->format);
	uint64_t bad = 0;

	if ((uint64_t)x0 + w > r->width || (uint64_t)y0 + h > r->height) {
		snprintf(out, outlen, "rect %u,%u %ux%u outside resource %u (%ux%u)",
				x0, y0, w, h, r->id, r->width, r->height);
		return -1;
	}
	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			uint32_t want, got = vmm_get32(data + ((uint64_t)y * w + x) * 4);

			if (host_pixel(gpu, r, x0 + x, y0 + y, &want) < 0)
				want = ~got;
			if (((want ^ got) & mask) && bad++ == 0)
				snprintf(out, outlen, "pixel %u,%u is 0x%08x, expected 0x%08x",
						x0 + x, y0 + y, got, want);
		}
	}
	if (bad) {
		size_t n = strlen(out);

		snprintf(out + n, outlen - n, " (%" PRIu64 " of %" PRIu64 " differ)",
				bad, (uint64_t)w * h);
		return -1;
	}
	snprintf(out, outlen, "%" PRIu64 " pixels match", (uint64_t)w * h);
	return 0;
}

static void check_update(struct vmm_gpu *gpu, const uint8_t *p, uint32_t size)
{
	struct vmm_gpu_stats *s = &gpu->stats;
	uint32_t so = vmm_get32(p), x = vmm_get32(p + 4), y = vmm_get32(p + 8);
	uint32_t w = vmm_get32(p + 12), h = vmm_get32(p + 16);
	const struct gpu_res *r = so < VIRTIO_GPU_MAX_SCANOUTS ?
		find_res(gpu, gpu->scanout[so].res_id) : NULL;
	char detail[128] = "";
	int rc;

	if (size != 20 + (uint64_t)w * h * 4) {
		rc = -1;
		snprintf(detail, sizeof(detail), "payload of %u bytes", size);
	} else if (gpu->no_verify) {
		s->updates_unchecked++;
		snprintf(s->last_update, sizeof(s->last_update),
				"update %u: %u,%u %ux%u not compared (verification off)",
				so, x, y, w, h);
		return;
	} else if (!r) {
		rc = -1;
		snprintf(detail, sizeof(detail), "no resource on that scanout");
	} else {
		rc = compare_rect(gpu, r, x, y, w, h, p + 20, detail, sizeof(detail));
	}
	if (rc == 0)
		s->updates_ok++;
	else
		s->updates_bad++;
	snprintf(s->last_update, sizeof(s->last_update), "update %u: %u,%u %ux%u %s%s",
			so, x, y, w, h, rc == 0 ? "" : "MISMATCH ", detail);
}

static void check_scanout(struct vmm_gpu *gpu, const uint8_t *p)
{
	uint32_t so = vmm_get32(p), w = vmm_get32(p + 4), h = vmm_get32(p + 8);
	const struct scanout_model *m = so < VIRTIO_GPU_MAX_SCANOUTS ? &gpu->scanout[so] : NULL;
	bool ok = m && (m->res_id ? (w == m->w && h == m->h) : (w == 0 && h == 0));

	if (ok)
		gpu->stats.scanouts_ok++;
	else
		gpu->stats.scanouts_bad++;
	snprintf(gpu->stats.last_scanout, sizeof(gpu->stats.last_scanout),
			"scanout %u: %ux%u %s", so, w, h, ok ? "as set" : "MISMATCH with SET_SCANOUT");
}

static void check_cursor(struct vmm_gpu *gpu, uint32_t req, const uint8_t *p)
{
	uint32_t so = vmm_get32(p), x = vmm_get32(p + 4), y = vmm_get32(p + 8);
	bool ok = so == gpu->cursor.scanout && x == gpu->cursor.x && y == gpu->cursor.y;

	if (req == VMM_GPU_MSG_CURSOR_POS_HIDE)
		ok = ok && gpu->cursor.res_id == 0;
	if (req == VMM_GPU_MSG_CURSOR_UPDATE) {
		const struct gpu_res *r = find_res(gpu, gpu->cursor.res_id);
		char detail[128];

		ok = ok && r && r->width == CURSOR_SIZE && r->height == CURSOR_SIZE &&
			vmm_get32(p + 12) == gpu->cursor.hot_x &&
			vmm_get32(p + 16) == gpu->cursor.hot_y &&
			(gpu->no_verify || compare_rect(gpu, r, 0, 0, CURSOR_SIZE,
					CURSOR_SIZE, p + 20, detail, sizeof(detail)) == 0);
	}
	if (ok)
		gpu->stats.cursors_ok++;
	else
		gpu->stats.cursors_bad++;
	snprintf(gpu->stats.last_cursor, sizeof(gpu->stats.last_cursor),
			"%s %u: %u,%u %s", req == VMM_GPU_MSG_CURSOR_UPDATE ? "cursor-update" :
			req == VMM_GPU_MSG_CURSOR_POS ? "cursor-pos" : "cursor-hide",
			so, x, y, ok ? "as sent" : "MISMATCH with the cursor queue");
}

static void on_gpu_socket_msg(void *data, uint32_t req, const uint8_t *p, uint32_t size)
{
	struct vmm_gpu *gpu = data;

	/* Sizes were checked by the socket reader; skip malformed ones. */
	switch (req) {
	case VMM_GPU_MSG_UPDATE:
		if (size >= 20)
			check_update(gpu, p, size);
		break;
	case VMM_GPU_MSG_SCANOUT:
		if (size == 12)
			check_scanout(gpu, p);
		break;
	case VMM_GPU_MSG_CURSOR_POS:
	case VMM_GPU_MSG_CURSOR_POS_HIDE:
	case VMM_GPU_MSG_CURSOR_UPDATE:
		if (size >= 12)
			check_cursor(gpu, req, p);
		break;
	default:
		break;
	}
}

/* The device lost its state: every in-flight command is abandoned and the
 * driver starts over, as after a guest driver rebind. */
static void on_device_reset(void *data)
{
	struct vmm_gpu *gpu = data;

	for (struct vmm_gpu_cmd *c = gpu->cmds; c; c = c->next) {
		if (c->done)
			continue;
		c->done = c->abandoned = true;
		cmd_fail(c, "%s abandoned by a device reset", vmm_gpu_cmd_name(c->type));
		release_buffers(gpu, c);
	}
	reset_model(gpu);
}

struct vmm_gpu *vmm_gpu_new(struct vmm_dev *dev)
{
	struct vmm_gpu *gpu = calloc(1, sizeof(*gpu));
	struct vmm_dev_listener l = {
		.gpu_socket_msg = on_gpu_socket_msg,
		.device_reset = on_device_reset,
	};

	if (!gpu)
		return NULL;
	gpu->dev = dev;
	gpu->next_id = 1;
	l.data = gpu;
	vmm_dev_set_listener(dev, &l);
	return gpu;
}

void vmm_gpu_free(struct vmm_gpu *gpu)
{
	if (!gpu)
		return;
	vmm_dev_set_listener(gpu->dev, NULL);
	while (gpu->cmds) {
		struct vmm_gpu_cmd *c = gpu->cmds;

		gpu->cmds = c->next;
		free_cmd(gpu, c);
	}
	reset_model(gpu);
	free(gpu);
}

/* ------------------------------------------------------------------ */
/* Typed commands                                                      */
/* ------------------------------------------------------------------ */

static void put_hdr(uint8_t *b, uint32_t type)
{
	memset(b, 0, HDR_SIZE);
	vmm_put32(b, type);
}

static void put_rect(uint8_t *b, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	vmm_put32(b, x);
	vmm_put32(b + 4, y);
	vmm_put32(b + 8, w);
	vmm_put32(b + 12, h);
}

static int simple(struct vmm_gpu *gpu, const uint8_t *cmd, size_t len,
		const struct vmm_gpu_opts *o)
{
	return vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, len, NULL, 0, NULL, HDR_SIZE, o);
}

int vmm_gpu_get_display_info(struct vmm_gpu *gpu, struct vmm_gpu_display out[16],
		const struct vmm_gpu_opts *o)
{
	uint8_t cmd[HDR_SIZE], resp[408] = { 0 };
	int r;

	put_hdr(cmd, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	r = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), NULL, 0, resp, sizeof(resp), o);
	for (unsigned i = 0; r == VIRTIO_GPU_RESP_OK_DISPLAY_INFO && i < 16; i++) {
		const uint8_t *m = resp + 24 + 24 * i;

		out[i] = (struct vmm_gpu_display){
			vmm_get32(m), vmm_get32(m + 4), vmm_get32(m + 8),
			vmm_get32(m + 12), vmm_get32(m + 16), vmm_get32(m + 20),
		};
	}
	return r;
}

int vmm_gpu_get_edid(struct vmm_gpu *gpu, uint32_t scanout, uint8_t edid[1024],
		uint32_t *size, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32], *resp = calloc(1, 1056);
	int r;

	if (!resp) {
		vmm_dev_fail(gpu->dev, "out of memory");
		return -1;
	}
	put_hdr(cmd, VIRTIO_GPU_CMD_GET_EDID);
	vmm_put32(cmd + 24, scanout);
	vmm_put32(cmd + 28, 0);
	r = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), NULL, 0, resp, 1056, o);
	if (r == VIRTIO_GPU_RESP_OK_EDID) {
		*size = vmm_get32(resp + 24);
		memcpy(edid, resp + 32, 1024);
	}
	free(resp);
	return r;
}

int vmm_gpu_resource_create_2d(struct vmm_gpu *gpu, uint32_t id, uint32_t format,
		uint32_t width, uint32_t height, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[40];

	if (find_res(gpu, id)) {
		vmm_dev_fail(gpu->dev, "resource %u already exists in the driver", id);
		return -1;
	}
	if (!add_res(gpu, id, format, width, height, false)) {
		vmm_dev_fail(gpu->dev, "out of memory");
		return -1;
	}
	put_hdr(cmd, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D);
	vmm_put32(cmd + 24, id);
	vmm_put32(cmd + 28, format);
	vmm_put32(cmd + 32, width);
	vmm_put32(cmd + 36, height);
	return simple(gpu, cmd, sizeof(cmd), o);
}

/* Allocates the backing of r in nents pieces (0: as few as possible). */
static int alloc_backing(struct vmm_gpu *gpu, struct gpu_res *r, unsigned nents)
{
	struct vmm_mem *mem = vmm_dev_mem(gpu->dev);
	unsigned flags = vmm_dev_config(gpu->dev)->span_backing ? VMM_ALLOC_SPAN : 0;
	uint64_t pages = (r->size + VMM_PAGE_SIZE - 1) / VMM_PAGE_SIZE;
	uint64_t done = 0;
	unsigned n = nents ? nents : 1;

	if (n > pages)
		n = (unsigned)pages;
	r->ents = calloc(n, sizeof(*r->ents));
	if (!r->ents)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t np = i + 1 == n ? pages - done : pages / n;
		int hint = (int)(gpu->rr++ % vmm_mem_region_count(mem));

		if (vmm_mem_alloc(mem, np * VMM_PAGE_SIZE, hint, flags, &r->ents[i].gpa) < 0) {
			free_backing(gpu, r);
			/* "As few as possible": fall back to more pieces. */
			return nents == 0 && n < pages ? alloc_backing(gpu, r, n * 2) : -1;
		}
		r->ents[i].len = (uint32_t)(np * VMM_PAGE_SIZE);
		r->nents = i + 1;
		done += np;
	}
	return 0;
}

static uint8_t *mem_entries(const struct gpu_res *r)
{
	uint8_t *e = calloc(r->nents, 16);

	for (unsigned i = 0; e && i < r->nents; i++) {
		vmm_put64(e + 16 * i, r->ents[i].gpa);
		vmm_put32(e + 16 * i + 8, r->ents[i].len);
	}
	return e;
}

int vmm_gpu_attach_backing(struct vmm_gpu *gpu, uint32_t id, unsigned nents,
		const struct vmm_gpu_opts *o)
{
	struct gpu_res *r = find_res(gpu, id);
	uint8_t cmd[32], *ents;
	int rc;

	if (!r || r->nents || r->size == 0 || r->size > UINT32_MAX) {
		vmm_dev_fail(gpu->dev, "attach: resource %u is unknown, already backed or too big", id);
		return -1;
	}
	if (alloc_backing(gpu, r, nents) < 0) {
		vmm_dev_fail(gpu->dev, "attach: out of guest memory for %" PRIu64 " bytes", r->size);
		return -1;
	}
	ents = mem_entries(r);
	if (!ents) {
		vmm_dev_fail(gpu->dev, "out of memory");
		return -1;
	}
	put_hdr(cmd, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
	vmm_put32(cmd + 24, id);
	vmm_put32(cmd + 28, r->nents);
	rc = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), ents, 16u * r->nents,
			NULL, HDR_SIZE, o);
	free(ents);
	return rc;
}

static int resource_cmd(struct vmm_gpu *gpu, uint32_t type, uint32_t id,
		const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32];

	put_hdr(cmd, type);
	vmm_put32(cmd + 24, id);
	vmm_put32(cmd + 28, 0);
	return simple(gpu, cmd, sizeof(cmd), o);
}

int vmm_gpu_detach_backing(struct vmm_gpu *gpu, uint32_t id, const struct vmm_gpu_opts *o)
{
	return resource_cmd(gpu, VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, id, o);
}

int vmm_gpu_resource_unref(struct vmm_gpu *gpu, uint32_t id, const struct vmm_gpu_opts *o)
{
	for (unsigned s = 0; s < VIRTIO_GPU_MAX_SCANOUTS; s++) {
		if (gpu->scanout[s].res_id == id)
			memset(&gpu->scanout[s], 0, sizeof(gpu->scanout[s]));
	}
	return resource_cmd(gpu, VIRTIO_GPU_CMD_RESOURCE_UNREF, id, o);
}

int vmm_gpu_transfer_to_host_2d(struct vmm_gpu *gpu, uint32_t id, uint32_t x,
		uint32_t y, uint32_t w, uint32_t h, const struct vmm_gpu_opts *o)
{
	const struct gpu_res *r = find_res(gpu, id);
	uint8_t cmd[56];

	put_hdr(cmd, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D);
	put_rect(cmd + 24, x, y, w, h);
	/* Linux sends offset = y * stride + x * 4. */
	vmm_put64(cmd + 40, r ? (uint64_t)y * r->width * 4 + (uint64_t)x * 4 : 0);
	vmm_put32(cmd + 48, id);
	vmm_put32(cmd + 52, 0);
	return simple(gpu, cmd, sizeof(cmd), o);
}

int vmm_gpu_set_scanout(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		uint32_t x, uint32_t y, uint32_t w, uint32_t h, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[48];

	if (scanout < VIRTIO_GPU_MAX_SCANOUTS)
		gpu->scanout[scanout] = id ? (struct scanout_model){ id, x, y, w, h } :
			(struct scanout_model){ 0 };
	put_hdr(cmd, VIRTIO_GPU_CMD_SET_SCANOUT);
	put_rect(cmd + 24, x, y, w, h);
	vmm_put32(cmd + 40, scanout);
	vmm_put32(cmd + 44, id);
	return simple(gpu, cmd, sizeof(cmd), o);
}

int vmm_gpu_resource_flush(struct vmm_gpu *gpu, uint32_t id, uint32_t x, uint32_t y,
		uint32_t w, uint32_t h, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[48];

	put_hdr(cmd, VIRTIO_GPU_CMD_RESOURCE_FLUSH);
	put_rect(cmd + 24, x, y, w, h);
	vmm_put32(cmd + 40, id);
	vmm_put32(cmd + 44, 0);
	return simple(gpu, cmd, sizeof(cmd), o);
}

int vmm_gpu_resource_create_blob(struct vmm_gpu *gpu, uint32_t id, uint32_t format,
		uint32_t width, uint32_t height, unsigned nents, const struct vmm_gpu_opts *o)
{
	struct gpu_res *r;
	uint8_t cmd[56], *ents;
	int rc;

	if (find_res(gpu, id)) {
		vmm_dev_fail(gpu->dev, "resource %u already exists in the driver", id);
		return -1;
	}
	r = add_res(gpu, id, format, width, height, true);
	if (!r || r->size == 0 || alloc_backing(gpu, r, nents) < 0 || !(ents = mem_entries(r))) {
		if (r)
			drop_res(gpu, id);
		vmm_dev_fail(gpu->dev, "blob %u: cannot allocate its guest memory", id);
		return -1;
	}
	/* GUEST blob, SHAREABLE, blob_id 0, ctx 0: a Linux dumb buffer. */
	put_hdr(cmd, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB);
	vmm_put32(cmd + 24, id);
	vmm_put32(cmd + 28, VIRTIO_GPU_BLOB_MEM_GUEST);
	vmm_put32(cmd + 32, VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE);
	vmm_put32(cmd + 36, r->nents);
	vmm_put64(cmd + 40, 0);
	vmm_put64(cmd + 48, r->size);
	rc = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), ents, 16u * r->nents,
			NULL, HDR_SIZE, o);
	free(ents);
	return rc;
}

int vmm_gpu_set_scanout_blob(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		const struct vmm_gpu_opts *o)
{
	const struct gpu_res *r = find_res(gpu, id);
	uint8_t cmd[96] = { 0 };

	if (!r) {
		vmm_dev_fail(gpu->dev, "scanout-blob: unknown resource %u", id);
		return -1;
	}
	if (scanout < VIRTIO_GPU_MAX_SCANOUTS)
		gpu->scanout[scanout] = (struct scanout_model){ id, 0, 0, r->width, r->height };
	put_hdr(cmd, VIRTIO_GPU_CMD_SET_SCANOUT_BLOB);
	put_rect(cmd + 24, 0, 0, r->width, r->height);
	vmm_put32(cmd + 40, scanout);
	vmm_put32(cmd + 44, id);
	vmm_put32(cmd + 48, r->width);
	vmm_put32(cmd + 52, r->height);
	vmm_put32(cmd + 56, r->format);
	vmm_put32(cmd + 64, r->width * 4); /* strides[0]; offsets stay 0 */
	return simple(gpu, cmd, sizeof(cmd), o);
}

int vmm_gpu_assign_uuid(struct vmm_gpu *gpu, uint32_t id, uint8_t uuid[16],
		const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32], resp[40] = { 0 };
	int r;

	put_hdr(cmd, VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID);
	vmm_put32(cmd + 24, id);
	vmm_put32(cmd + 28, 0);
	r = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), NULL, 0, resp, sizeof(resp), o);
	if (r == VIRTIO_GPU_RESP_OK_RESOURCE_UUID)
		memcpy(uuid, resp + 24, 16);
	return r;
}

/* Cursor commands: one readable buffer and nothing to write, like Linux. */
static int cursor_cmd(struct vmm_gpu *gpu, uint32_t type, uint32_t scanout,
		uint32_t id, uint32_t x, uint32_t y, uint32_t hot_x, uint32_t hot_y)
{
	uint8_t cmd[56] = { 0 };

	gpu->cursor.scanout = scanout;
	gpu->cursor.res_id = id;
	gpu->cursor.x = x;
	gpu->cursor.y = y;
	if (type == VIRTIO_GPU_CMD_UPDATE_CURSOR) {
		gpu->cursor.hot_x = hot_x;
		gpu->cursor.hot_y = hot_y;
	}
	put_hdr(cmd, type);
	vmm_put32(cmd + 24, scanout);
	vmm_put32(cmd + 28, x);
	vmm_put32(cmd + 32, y);
	vmm_put32(cmd + 40, id);
	vmm_put32(cmd + 44, hot_x);
	vmm_put32(cmd + 48, hot_y);
	return vmm_gpu_exec(gpu, VMM_GPU_CURSORQ, cmd, sizeof(cmd), NULL, 0, NULL, 0, NULL);
}

int vmm_gpu_update_cursor(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		uint32_t x, uint32_t y, uint32_t hot_x, uint32_t hot_y)
{
	return cursor_cmd(gpu, VIRTIO_GPU_CMD_UPDATE_CURSOR, scanout, id, x, y, hot_x, hot_y);
}

int vmm_gpu_move_cursor(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		uint32_t x, uint32_t y)
{
	return cursor_cmd(gpu, VIRTIO_GPU_CMD_MOVE_CURSOR, scanout, id, x, y,
			gpu->cursor.hot_x, gpu->cursor.hot_y);
}

/* ------------------------------------------------------------------ */
/* Fault injection                                                     */
/* ------------------------------------------------------------------ */

static int add_fault_chain(struct vmm_gpu *gpu, struct vmm_vring *vr,
		struct vmm_gpu_cmd *c, enum vmm_gpu_fault fault, uint32_t arg)
{
	uint64_t cmd = c->gpa[0], resp = c->gpa[2];
	uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;
	struct vmm_rawdesc d[2] = {
		{ cmd, HDR_SIZE, N, 1 },
		{ resp, 408, W, 0 },
	};

	switch (fault) {
	case VMM_FAULT_DESC_LOOP:
		d[1].flags = (uint16_t)(W | N);
		d[1].next = 0;
		return vmm_vring_add_raw(vr, d, 2, 408, c);
	case VMM_FAULT_INDIRECT_BADLEN:
		return vmm_vring_add_indirect_raw(vr, d, 2, arg ? arg : 17, 408, c);
	case VMM_FAULT_INDIRECT_LOOP:
		d[1].flags = (uint16_t)(W | N);
		d[1].next = 0;
		return vmm_vring_add_indirect_raw(vr, d, 2, 32, 408, c);
	case VMM_FAULT_DESC_OUTSIDE:
		d[0].addr = vmm_mem_hole_gpa(vmm_dev_mem(gpu->dev));
		return vmm_vring_add_raw(vr, d, 2, 408, c);
	case VMM_FAULT_NEXT_RANGE:
		d[0].next = (uint16_t)(vmm_vring_num(vr) + 3);
		return vmm_vring_add_raw(vr, d, 2, 408, c);
	case VMM_FAULT_LEN_HUGE:
	default:
		d[0].len = 0xffffffffu;
		return vmm_vring_add_raw(vr, d, 2, 408, c);
	}
}

int vmm_gpu_inject(struct vmm_gpu *gpu, enum vmm_gpu_fault fault, uint32_t arg,
		int timeout_ms, uint32_t *used_len, uint32_t *resp_type)
{
	struct vmm_vring *vr = vmm_dev_vring(gpu->dev, VMM_GPU_CTRLQ);
	int64_t deadline = vmm_now_ms() + timeout_ms;
	struct vmm_vbuf bufs[3];
	struct vmm_gpu_cmd *c;
	uint8_t cmd[HDR_SIZE];
	unsigned n;

	if (!vr) {
		vmm_dev_fail(gpu->dev, "fault: the device is not running");
		return -1;
	}
	put_hdr(cmd, VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	c = new_cmd(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), NULL);
	if (!c)
		return -1;
	if (place_buffers(gpu, c, NULL, 0, 408, bufs, &n) < 0) {
		free_cmd(gpu, c);
		return -1;
	}
	if (add_fault_chain(gpu, vr, c, fault, arg) < 0) {
		vmm_dev_fail(gpu->dev, "%s", vmm_vring_error(vr));
		free_cmd(gpu, c);
		return -1;
	}
	c->next = gpu->cmds;
	gpu->cmds = c;
	if (vmm_dev_kick(gpu->dev, VMM_GPU_CTRLQ) < 0)
		return -1;
	while (!c->done) {
		int r = vmm_dev_wait_call(gpu->dev, VMM_GPU_CTRLQ, vmm_remaining_ms(deadline));

		/* Both leave the command linked: in flight until a reset, or
		 * already abandoned because the back end hung up. */
		if (r < 0)
			return vmm_dev_connected(gpu->dev) ? -1 : 0;
		if (r == 0)
			return 0;
		if (drain(gpu, VMM_GPU_CTRLQ) < 0)
			return -1;
	}
	*used_len = c->used_len;
	*resp_type = c->resp_type;
	unlink_cmd(gpu, c);
	free_cmd(gpu, c);
	return 1;
}
