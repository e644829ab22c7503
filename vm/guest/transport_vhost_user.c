/*
 * crossway-guest's transport over our own vhost-user front end (tests/vmm):
 * the proxy runs on the host and talks to crossway's virtio-gpu device
 * directly, as a VM with a Linux 6.1 guest would through the DRM uapi.
 *
 *  - open: fake guest RAM (a memfd sealed like QEMU's memory-backend-memfd),
 *    vhost-user handshake as a generic front end, DRIVER_OK, then the
 *    driver's capset probe (GET_CAPSET_INFO for every index).
 *  - context_create: GET_CAPSET(5) (once, as the kernel caches it) with a
 *    check for the Wayland channel, then CTX_CREATE with context_init 5.
 *  - blob_create: guest pages (scattered like an sg table, mapped into one
 *    linear view) + RESOURCE_CREATE_BLOB(GUEST, MAPPABLE|SHAREABLE, ctx 0)
 *    + CTX_ATTACH_RESOURCE.
 *  - submit: SUBMIT_3D with the context; rings 0/1 with FLAG_FENCE |
 *    FLAG_INFO_RING_IDX; without a ring, a fence on the global timeline as
 *    Linux 6.1's execbuffer always allocates one ("unfenced" option: none,
 *    as Linux >= 6.6).
 *  - completion is interrupt-driven and out of order across rings: the
 *    device holds ring-1 POLL fences until a message arrives. poll_fd is an
 *    epoll fd over the control queue's call fd and the connection's other
 *    fds; dispatch takes what was answered; ring-1 fences are counted per
 *    context and signalled on its eventfd; wait_query waits for ring 0.
 *
 * Options (environment CWG_VHOST_USER_OPTS, comma-separated):
 *   trace            log every vhost-user message
 *   verbose          log every fence as it completes
 *   unfenced         no fence on ring-less submissions (Linux >= 6.6)
 *   mem=MIB          guest RAM size (default 512)
 *   regions=N        guest RAM regions (default 2: QEMU's q35 layout)
 *   chunk=PAGES      blob pages per allocation (default 16)
 *   contiguous       no free page between a blob's chunks
 *   timeout=MS       device answers (default 5000)
 *   fault=KIND[@N]   one malformed SUBMIT_3D, the Nth (default: 1st):
 *                    size (size field 4 KiB beyond the data), ctx (an
 *                    unknown ctx_id), ring (ring_idx 63, fenced)
 * Device protocol violations (bad response headers, fence order, lost
 * interrupts) are fatal: every later call fails with EPROTO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "../cross_domain_protocol.h"
#include "transport.h"
#include "vmm.h"
#include "vmm_ctx.h"

#define TAG "vhost-user transport"
#define CHANNEL_WAYLAND_BIT (1u << XDOM_CHANNEL_WAYLAND)
#define DESTROY_WAIT_MS 1000

enum fault_kind { FAULT_NONE, FAULT_SIZE, FAULT_CTX, FAULT_RING };

struct vu_opts {
	bool trace, verbose, unfenced, contiguous;
	unsigned mem_mib, regions, chunk;
	int timeout_ms;
	enum fault_kind fault;
	unsigned fault_at;
};

struct vu_pending {
	struct vu_pending *next;
	uint64_t fence_id;
	int ring; /* -1: global timeline */
};

struct vu_blob {
	struct vu_blob *next;
	uint32_t res_id;
	struct vmm_blob mem;
};

struct vu_transport;

struct cwg_context {
	struct vu_transport *t;
	struct cwg_context *next;
	uint32_t id;
	int efd;
	int events;             /* ring-1 fences since take_events */
	unsigned query_pending; /* ring-0 fences in flight */
	unsigned query_errors;  /* ring-0 fences answered with an error */
	struct vu_pending *pending;
	struct vu_blob *blobs;
};

struct vu_transport {
	struct cwg_transport base;
	char *path;
	struct vu_opts opts;
	struct vmm_dev *dev;
	struct vmm_gpu *gpu;
	int epfd;
	int broken_fd;          /* in epfd: readable once the transport broke */
	uint32_t next_ctx, next_res;
	uint64_t next_fence;
	unsigned submits;
	bool have_capset, capset_fetched;
	struct vmm_capset_info capset;
	uint32_t capset_data[4];
	uint64_t errors_seen;   /* vmm_gpu's ERR_* count already reported */
	struct cwg_context *contexts;
	int broken;             /* 0, or the errno every call now fails with */
};

static const struct cwg_transport_impl vu_impl;

static void say(const struct vu_transport *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct vu_transport *t, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s %s: ", TAG, t->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The device or the connection broke: report once, then fail everything. */
static int break_transport(struct vu_transport *t, int err, const char *what)
{
	uint64_t one = 1;

	if (!t->broken) {
		say(t, "%s: %s", what, vmm_dev_error(t->dev));
		t->broken = vmm_dev_connected(t->dev) ? err : ECONNRESET;
		/* The closed socket left the epoll set: wake the proxy's loop so
		 * that its next dispatch reports the failure. */
		if (t->broken_fd >= 0 && write(t->broken_fd, &one, sizeof(one)) < 0)
			say(t, "eventfd: %s", strerror(errno));
	}
	return -t->broken;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static int parse_opts(struct vu_opts *o, const char *text)
{
	char *copy, *save = NULL;
	int r = 0;

	*o = (struct vu_opts){ .mem_mib = 512, .regions = 2, .chunk = 16,
		.timeout_ms = 5000, .fault_at = 1 };
	if (!text || !*text)
		return 0;
	copy = strdup(text);
	if (!copy)
		return -1;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');

		if (val)
			*val++ = '\0';
		if (strcmp(tok, "trace") == 0) {
			o->trace = true;
		} else if (strcmp(tok, "verbose") == 0) {
			o->verbose = true;
		} else if (strcmp(tok, "unfenced") == 0) {
			o->unfenced = true;
		} else if (strcmp(tok, "contiguous") == 0) {
			o->contiguous = true;
		} else if (val && strcmp(tok, "mem") == 0) {
			o->mem_mib = (unsigned)strtoul(val, NULL, 0);
		} else if (val && strcmp(tok, "regions") == 0) {
			o->regions = (unsigned)strtoul(val, NULL, 0);
		} else if (val && strcmp(tok, "chunk") == 0) {
			o->chunk = (unsigned)strtoul(val, NULL, 0);
		} else if (val && strcmp(tok, "timeout") == 0) {
			o->timeout_ms = (int)strtol(val, NULL, 0);
		} else if (val && strcmp(tok, "fault") == 0) {
			char *at = strchr(val, '@');

			if (at) {
				*at++ = '\0';
				o->fault_at = (unsigned)strtoul(at, NULL, 0);
			}
			if (strcmp(val, "size") == 0)
				o->fault = FAULT_SIZE;
			else if (strcmp(val, "ctx") == 0)
				o->fault = FAULT_CTX;
			else if (strcmp(val, "ring") == 0)
				o->fault = FAULT_RING;
			else
				r = -1;
		} else {
			r = -1;
		}
		if (r < 0) {
			fprintf(stderr, "%s: unknown option '%s' in CWG_VHOST_USER_OPTS\n",
					TAG, tok);
			break;
		}
	}
	free(copy);
	if (r == 0 && (!o->mem_mib || !o->regions || !o->chunk || o->timeout_ms <= 0)) {
		fprintf(stderr, "%s: CWG_VHOST_USER_OPTS: values must be positive\n", TAG);
		r = -1;
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Completion                                                          */
/* ------------------------------------------------------------------ */

static void signal_events(struct cwg_context *ctx)
{
	uint64_t one = 1;

	ctx->events++;
	/* Non-blocking: a full counter is still readable, which is enough. */
	if (write(ctx->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		say(ctx->t, "context %u: eventfd: %s", ctx->id, strerror(errno));
}

/* Takes every answered fence of every context, in whatever order. */
static int process(struct vu_transport *t)
{
	const struct vmm_gpu_stats *st;

	for (struct cwg_context *ctx = t->contexts; ctx; ctx = ctx->next) {
		struct vu_pending **pp = &ctx->pending;

		while (*pp) {
			struct vu_pending *p = *pp;
			uint32_t type = 0;
			int r = vmm_ctx_fence_take(t->gpu, p->fence_id, &type);

			if (r < 0)
				return break_transport(t, EPROTO, "response to SUBMIT_3D");
			if (r == 0) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			if (t->opts.verbose)
				say(t, "context %u: fence %" PRIu64 " (ring %d) answered %s",
						ctx->id, p->fence_id, p->ring, vmm_gpu_resp_name(type));
			if (type >= VIRTIO_GPU_RESP_ERR_UNSPEC) {
				/* As Linux: logged, the fence still signals. */
				say(t, "*ERROR* response 0x%x (%s) to SUBMIT_3D of context %u "
						"(ring %d, fence %" PRIu64 ")", type,
						vmm_gpu_resp_name(type), ctx->id, p->ring, p->fence_id);
				t->errors_seen++;
				if (p->ring == XDOM_QUERY_RING)
					ctx->query_errors++;
			}
			if (p->ring == XDOM_QUERY_RING)
				ctx->query_pending--;
			else if (p->ring == XDOM_CHANNEL_RING)
				signal_events(ctx);
			free(p);
		}
	}
	/* Unfenced submissions: nothing waits for them, errors are logged. */
	vmm_gpu_collect(t->gpu);
	st = vmm_gpu_stats(t->gpu);
	if (st->errors > t->errors_seen) {
		say(t, "%" PRIu64 " *ERROR* response(s) to unfenced commands",
				st->errors - t->errors_seen);
		t->errors_seen = st->errors;
	}
	return 0;
}

/* Waits up to timeout_ms for an interrupt, then takes what was answered. */
static int pump(struct vu_transport *t, int timeout_ms)
{
	if (t->broken)
		return -t->broken;
	if (vmm_ctx_poll(t->gpu, timeout_ms) < 0)
		return break_transport(t, EPROTO, "control queue");
	return process(t);
}

/* After a synchronous command, whose wait may have taken other answers. */
static int after_sync(struct vu_transport *t, int r, const char *what)
{
	if (r < 0)
		return break_transport(t, EPROTO, what);
	return process(t);
}

/* Linux blocks an execbuffer until the control queue has room. */
static int wait_ring_room(struct vu_transport *t)
{
	struct vmm_vring *vr = vmm_dev_vring(t->dev, VMM_GPU_CTRLQ);
	int64_t deadline = now_ms() + t->opts.timeout_ms;

	while (vr && vmm_vring_num_free(vr) < 3) {
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0) {
			say(t, "the control queue stayed full for %d ms", t->opts.timeout_ms);
			return -ETIMEDOUT;
		}
		r = pump(t, (int)left);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Contexts                                                            */
/* ------------------------------------------------------------------ */

static int fetch_capset(struct vu_transport *t)
{
	uint32_t size = t->capset.max_size;
	uint8_t *data;
	int r;

	if (t->capset_fetched)
		return 0;
	if (size < sizeof(t->capset_data)) {
		say(t, "capset 5 is %u bytes, expected at least %zu", size,
				sizeof(t->capset_data));
		return -EOPNOTSUPP;
	}
	data = calloc(1, size);
	if (!data)
		return -ENOMEM;
	r = vmm_ctx_get_capset(t->gpu, XDOM_CAPSET_ID, t->capset.max_version, data, size, NULL);
	if (r < 0) {
		free(data);
		return break_transport(t, EPROTO, "GET_CAPSET");
	}
	if (r != VIRTIO_GPU_RESP_OK_CAPSET) {
		say(t, "GET_CAPSET(5) answered %s (0x%x)", vmm_gpu_resp_name((uint32_t)r),
				(unsigned)r);
		free(data);
		return -EOPNOTSUPP;
	}
	for (unsigned i = 0; i < 4; i++)
		t->capset_data[i] = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
			(uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
	free(data);
	t->capset_fetched = true;
	return process(t);
}

static struct cwg_context *vu_context_create(struct cwg_transport *transport)
{
	struct vu_transport *t = (struct vu_transport *)transport;
	struct cwg_context *ctx;
	char name[16];
	int r;

	if (t->broken) {
		errno = t->broken;
		return NULL;
	}
	if (!t->have_capset) {
		say(t, "the device offers no context types: no capset 5 (cross-domain) "
				"among its %u capset(s)", vmm_dev_gpu_config(t->dev)->num_capsets);
		errno = EOPNOTSUPP;
		return NULL;
	}
	r = fetch_capset(t);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	if (!(t->capset_data[1] & CHANNEL_WAYLAND_BIT)) {
		say(t, "capset 5 offers no Wayland channel (supported_channels 0x%x)",
				t->capset_data[1]);
		errno = EOPNOTSUPP;
		return NULL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	ctx->t = t;
	ctx->id = t->next_ctx++;
	ctx->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ctx->efd < 0) {
		free(ctx);
		return NULL;
	}
	/* Linux names the context after the task (comm, 15 characters). */
	snprintf(name, sizeof(name), "%s", program_invocation_short_name);
	r = vmm_ctx_create(t->gpu, ctx->id, XDOM_CAPSET_ID & VMM_CTX_INIT_CAPSET_ID_MASK,
			name, NULL);
	if (r != VIRTIO_GPU_RESP_OK_NODATA) {
		int err = r < 0 ? -break_transport(t, EPROTO, "CTX_CREATE") : EINVAL;

		if (r >= 0)
			say(t, "CTX_CREATE (context %u, capset 5) answered %s (0x%x)", ctx->id,
					vmm_gpu_resp_name((uint32_t)r), (unsigned)r);
		close(ctx->efd);
		free(ctx);
		errno = err;
		return NULL;
	}
	ctx->next = t->contexts;
	t->contexts = ctx;
	r = process(t);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	return ctx;
}

static struct vu_blob *find_blob(struct cwg_context *ctx, uint32_t res_id)
{
	for (struct vu_blob *b = ctx->blobs; b; b = b->next) {
		if (b->res_id == res_id)
			return b;
	}
	return NULL;
}

/* CTX_DETACH (unless done) and RESOURCE_UNREF; the pages go back to the
 * allocator only once the device has let go of the resource. */
static void drop_blob(struct cwg_context *ctx, struct vu_blob *b, bool detach)
{
	struct vu_transport *t = ctx->t;
	bool release = false;
	int r;

	if (!t->broken && detach) {
		r = vmm_ctx_detach_resource(t->gpu, ctx->id, b->res_id, NULL);
		if (after_sync(t, r, "CTX_DETACH_RESOURCE") == 0 && r != VIRTIO_GPU_RESP_OK_NODATA)
			say(t, "CTX_DETACH_RESOURCE %u answered %s", b->res_id,
					vmm_gpu_resp_name((uint32_t)r));
	}
	if (!t->broken) {
		r = vmm_gpu_resource_unref(t->gpu, b->res_id, NULL);
		if (after_sync(t, r, "RESOURCE_UNREF") == 0) {
			if (r != VIRTIO_GPU_RESP_OK_NODATA)
				say(t, "RESOURCE_UNREF %u answered %s", b->res_id,
						vmm_gpu_resp_name((uint32_t)r));
			release = true;
		}
	}
	if (release || !vmm_dev_connected(t->dev)) {
		vmm_blob_release(vmm_dev_mem(t->dev), &b->mem);
	} else {
		/* The device may still use the pages: unmap, keep them allocated. */
		free(b->mem.ents);
		b->mem.nents = 0;
		b->mem.ents = NULL;
		vmm_blob_release(vmm_dev_mem(t->dev), &b->mem);
	}
	free(b);
}

static void vu_context_destroy(struct cwg_context *ctx)
{
	struct vu_transport *t;
	int64_t deadline;
	int r;

	if (!ctx)
		return;
	t = ctx->t;
	/* As Linux closing the DRM file: handles go (CTX_DETACH), then the
	 * context (CTX_DESTROY), then the objects (UNREF). */
	for (struct vu_blob *b = ctx->blobs; b && !t->broken; b = b->next) {
		r = vmm_ctx_detach_resource(t->gpu, ctx->id, b->res_id, NULL);
		if (after_sync(t, r, "CTX_DETACH_RESOURCE") == 0 && r != VIRTIO_GPU_RESP_OK_NODATA)
			say(t, "CTX_DETACH_RESOURCE %u answered %s", b->res_id,
					vmm_gpu_resp_name((uint32_t)r));
	}
	if (!t->broken) {
		r = vmm_ctx_destroy(t->gpu, ctx->id, NULL);
		if (after_sync(t, r, "CTX_DESTROY") == 0 && r != VIRTIO_GPU_RESP_OK_NODATA)
			say(t, "CTX_DESTROY %u answered %s", ctx->id,
					vmm_gpu_resp_name((uint32_t)r));
	}
	/* Held POLL fences must come back now that the context is gone. */
	deadline = now_ms() + DESTROY_WAIT_MS;
	while (ctx->pending && !t->broken && now_ms() < deadline)
		pump(t, (int)(deadline - now_ms()));
	if (ctx->pending && !t->broken) {
		unsigned n = 0;

		for (struct vu_pending *p = ctx->pending; p; p = p->next)
			n++;
		say(t, "the device still holds %u fence(s) of destroyed context %u", n, ctx->id);
	}
	while (ctx->blobs) {
		struct vu_blob *b = ctx->blobs;

		ctx->blobs = b->next;
		drop_blob(ctx, b, false);
	}
	while (ctx->pending) {
		struct vu_pending *p = ctx->pending;

		ctx->pending = p->next;
		free(p);
	}
	for (struct cwg_context **pp = &t->contexts; *pp; pp = &(*pp)->next) {
		if (*pp == ctx) {
			*pp = ctx->next;
			break;
		}
	}
	close(ctx->efd);
	free(ctx);
}

/* ------------------------------------------------------------------ */
/* Blobs                                                               */
/* ------------------------------------------------------------------ */

static int vu_blob_create(struct cwg_context *ctx, size_t size, struct cwg_blob *blob)
{
	struct vu_transport *t = ctx->t;
	struct vu_blob *b;
	int r;

	if (t->broken)
		return -t->broken;
	if (size == 0)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (vmm_blob_alloc(vmm_dev_mem(t->dev), size, t->opts.chunk, !t->opts.contiguous,
			&b->mem) < 0) {
		r = -errno;
		say(t, "no guest memory for a %zu-byte blob: %s", size, strerror(errno));
		free(b);
		return r;
	}
	b->res_id = t->next_res++;
	r = vmm_ctx_create_blob(t->gpu, b->res_id, VMM_BLOB_MEM_GUEST,
			VMM_BLOB_FLAG_MAPPABLE | VMM_BLOB_FLAG_SHAREABLE, 0, &b->mem, NULL);
	if (r != VIRTIO_GPU_RESP_OK_NODATA) {
		int err = after_sync(t, r, "RESOURCE_CREATE_BLOB");

		if (err == 0) {
			say(t, "RESOURCE_CREATE_BLOB %u (%" PRIu64 " bytes, %u entries) answered "
					"%s (0x%x)", b->res_id, b->mem.size, b->mem.nents,
					vmm_gpu_resp_name((uint32_t)r), (unsigned)r);
			err = r == VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		}
		if (!t->broken)
			vmm_blob_release(vmm_dev_mem(t->dev), &b->mem);
		free(b);
		return err;
	}
	r = vmm_ctx_attach_resource(t->gpu, ctx->id, b->res_id, NULL);
	if (r != VIRTIO_GPU_RESP_OK_NODATA) {
		int err = after_sync(t, r, "CTX_ATTACH_RESOURCE");

		if (err == 0) {
			say(t, "CTX_ATTACH_RESOURCE %u to context %u answered %s (0x%x)",
					b->res_id, ctx->id, vmm_gpu_resp_name((uint32_t)r),
					(unsigned)r);
			err = -EINVAL;
		}
		drop_blob(ctx, b, false);
		return err;
	}
	b->next = ctx->blobs;
	ctx->blobs = b;
	*blob = (struct cwg_blob){
		.res_id = b->res_id,
		.handle = b->res_id,
		.map = b->mem.map,
		.size = (size_t)b->mem.size,
	};
	return process(t);
}

static void vu_blob_destroy(struct cwg_context *ctx, struct cwg_blob *blob)
{
	struct vu_blob *b = find_blob(ctx, blob->res_id);

	if (!b)
		return;
	for (struct vu_blob **pp = &ctx->blobs; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	drop_blob(ctx, b, true);
	memset(blob, 0, sizeof(*blob));
}

/* ------------------------------------------------------------------ */
/* Submission                                                          */
/* ------------------------------------------------------------------ */

static int vu_submit(struct cwg_context *ctx, const void *cmd, size_t size, int ring,
		const struct cwg_blob *const *blobs, unsigned blob_count)
{
	struct vu_transport *t = ctx->t;
	struct vmm_gpu_opts o = { .ctx_id = ctx->id, .nowait = true };
	struct vu_pending *p = NULL;
	uint32_t size_field = (uint32_t)size, *size_fault = NULL;
	uint32_t ctx_id = ctx->id;
	int r;

	if (t->broken)
		return -t->broken;
	if (!cmd || size == 0 || size > UINT32_MAX)
		return -EINVAL;
	/* Linux: ring_idx < the context's NUM_RINGS (2). */
	if (ring > XDOM_CHANNEL_RING)
		return -EINVAL;
	/* Linux: every bo handle must exist (ENOENT). */
	for (unsigned i = 0; i < blob_count; i++) {
		if (!blobs[i] || !find_blob(ctx, blobs[i]->res_id))
			return -ENOENT;
	}
	r = wait_ring_room(t);
	if (r < 0)
		return r;
	if (ring >= 0 || !t->opts.unfenced) {
		o.fence = true;
		o.fence_id = ++t->next_fence;
	}
	if (ring >= 0) {
		o.ring_idx_flag = true;
		o.ring_idx = (uint8_t)ring;
	}
	if (++t->submits == t->opts.fault_at && t->opts.fault != FAULT_NONE) {
		switch (t->opts.fault) {
		case FAULT_SIZE:
			size_field += 4096;
			size_fault = &size_field;
			break;
		case FAULT_CTX:
			ctx_id += 1000;
			break;
		case FAULT_RING:
			o.fence = true;
			o.fence_id = o.fence_id ? o.fence_id : ++t->next_fence;
			o.ring_idx_flag = true;
			o.ring_idx = 63;
			break;
		default:
			break;
		}
		say(t, "fault: submission %u is malformed on purpose", t->submits);
	}
	if (o.fence) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->fence_id = o.fence_id;
		p->ring = o.ring_idx_flag && o.ring_idx <= XDOM_CHANNEL_RING ?
			(int)o.ring_idx : -1;
	}
	o.ctx_id = ctx_id;
	r = vmm_ctx_submit_3d(t->gpu, ctx_id, cmd, (uint32_t)size, size_fault, &o);
	if (r < 0) {
		free(p);
		return break_transport(t, EPROTO, "SUBMIT_3D");
	}
	if (p) {
		struct vu_pending **tail = &ctx->pending;

		/* In submission order, so that reports follow it too. */
		while (*tail)
			tail = &(*tail)->next;
		*tail = p;
		if (p->ring == XDOM_QUERY_RING)
			ctx->query_pending++;
	}
	return 0;
}

static int vu_wait_query(struct cwg_context *ctx)
{
	struct vu_transport *t = ctx->t;
	int64_t deadline = now_ms() + t->opts.timeout_ms;

	while (ctx->query_pending) {
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0) {
			struct vmm_vring *vr = vmm_dev_vring(t->dev, VMM_GPU_CTRLQ);

			if (vr && vmm_vring_used_idx(vr) != vmm_vring_last_used(vr))
				say(t, "context %u: answers are in the used ring but the call "
						"fd was not signalled (lost interrupt)", ctx->id);
			else
				say(t, "context %u: %u ring-0 fence(s) unanswered after %d ms",
						ctx->id, ctx->query_pending, t->opts.timeout_ms);
			return -ETIMEDOUT;
		}
		r = pump(t, (int)left);
		if (r < 0)
			return r;
	}
	if (ctx->query_errors) {
		ctx->query_errors = 0;
		return -EIO;
	}
	return 0;
}

static int vu_event_fd(struct cwg_context *ctx)
{
	return ctx->efd;
}

static int vu_take_events(struct cwg_context *ctx)
{
	uint64_t v;
	int n = ctx->events;

	if (read(ctx->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	ctx->events = 0;
	return n;
}

static int vu_poll_fd(struct cwg_transport *transport)
{
	return ((struct vu_transport *)transport)->epfd;
}

static int vu_dispatch(struct cwg_transport *transport)
{
	return pump((struct vu_transport *)transport, 0);
}

static void vu_destroy(struct cwg_transport *transport)
{
	struct vu_transport *t = (struct vu_transport *)transport;

	if (!t)
		return;
	/* The VMM goes away: no commands, crossway drops the device's state
	 * when the connection closes. */
	while (t->contexts) {
		struct cwg_context *ctx = t->contexts;

		t->contexts = ctx->next;
		while (ctx->blobs) {
			struct vu_blob *b = ctx->blobs;

			ctx->blobs = b->next;
			vmm_blob_release(vmm_dev_mem(t->dev), &b->mem);
			free(b);
		}
		while (ctx->pending) {
			struct vu_pending *p = ctx->pending;

			ctx->pending = p->next;
			free(p);
		}
		close(ctx->efd);
		free(ctx);
	}
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->broken_fd >= 0)
		close(t->broken_fd);
	vmm_gpu_free(t->gpu);
	vmm_dev_free(t->dev);
	free(t->path);
	free(t);
}

static const struct cwg_transport_impl vu_impl = {
	.name = "vhost-user",
	.context_create = vu_context_create,
	.context_destroy = vu_context_destroy,
	.blob_create = vu_blob_create,
	.blob_destroy = vu_blob_destroy,
	.submit = vu_submit,
	.wait_query = vu_wait_query,
	.event_fd = vu_event_fd,
	.take_events = vu_take_events,
	.poll_fd = vu_poll_fd,
	.dispatch = vu_dispatch,
	.destroy = vu_destroy,
};

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

/* The driver's probe: every capset index the config space announces. */
static int probe_capsets(struct vu_transport *t)
{
	unsigned n = vmm_dev_gpu_config(t->dev)->num_capsets;

	for (unsigned i = 0; i < n; i++) {
		struct vmm_capset_info info;
		int r = vmm_ctx_get_capset_info(t->gpu, i, &info, NULL);

		if (r < 0)
			return break_transport(t, EPROTO, "GET_CAPSET_INFO");
		if (r != VIRTIO_GPU_RESP_OK_CAPSET_INFO) {
			/* Linux logs the error and goes on. */
			say(t, "GET_CAPSET_INFO(%u) answered %s (0x%x)", i,
					vmm_gpu_resp_name((uint32_t)r), (unsigned)r);
			continue;
		}
		if (info.id == XDOM_CAPSET_ID && !t->have_capset) {
			t->have_capset = true;
			t->capset = info;
		}
	}
	return 0;
}

static int setup_epoll(struct vu_transport *t)
{
	int fds[8];
	unsigned n = vmm_ctx_service_fds(t->gpu, fds, 7);

	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->broken_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->broken_fd < 0)
		return -errno;
	fds[n++] = t->broken_fd;
	for (unsigned i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };

		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return -errno;
	}
	return 0;
}

static bool offers(const struct vu_transport *t, unsigned bit)
{
	return vmm_dev_backend_features(t->dev) & (1ull << bit);
}

struct cwg_transport *cwg_transport_vhost_user_open(const char *socket_path)
{
	struct vu_transport *t = calloc(1, sizeof(*t));
	struct vmm_config cfg;
	int err = EIO, r;

	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	t->base.impl = &vu_impl;
	t->epfd = t->broken_fd = -1;
	t->next_ctx = 1;
	t->next_res = 1;
	t->path = strdup(socket_path ? socket_path : "");
	if (!t->path || !socket_path || !*socket_path) {
		fprintf(stderr, "%s: no socket path\n", TAG);
		err = EINVAL;
		goto fail;
	}
	if (parse_opts(&t->opts, getenv("CWG_VHOST_USER_OPTS")) < 0) {
		err = EINVAL;
		goto fail;
	}
	vmm_config_init(&cfg, VMM_PROFILE_GENERIC);
	cfg.mem_size = (uint64_t)t->opts.mem_mib << 20;
	cfg.nregions = t->opts.regions;
	cfg.ctrl_queue_size = 256; /* QEMU's control queue with VIRGL */
	cfg.timeout_ms = t->opts.timeout_ms;
	cfg.trace = t->opts.trace;
	t->dev = vmm_dev_new(&cfg);
	if (!t->dev) {
		err = errno ? errno : ENOMEM;
		say(t, "cannot make %u MiB of guest RAM in %u region(s): %s",
				t->opts.mem_mib, t->opts.regions, strerror(err));
		goto fail;
	}
	t->gpu = vmm_gpu_new(t->dev);
	if (!t->gpu) {
		err = ENOMEM;
		goto fail;
	}
	if (vmm_dev_connect(t->dev, socket_path, t->opts.timeout_ms) < 0) {
		say(t, "%s", vmm_dev_error(t->dev));
		err = ECONNREFUSED;
		goto fail;
	}
	if (vmm_dev_realize(t->dev) < 0) {
		say(t, "vhost-user handshake: %s", vmm_dev_error(t->dev));
		err = EPROTO;
		goto fail;
	}
	if (!offers(t, VIRTIO_GPU_F_VIRGL) || !offers(t, VIRTIO_GPU_F_RESOURCE_BLOB) ||
			!offers(t, VIRTIO_GPU_F_CONTEXT_INIT)) {
		say(t, "the device offers no context types: cross-domain needs VIRGL, "
				"RESOURCE_BLOB and CONTEXT_INIT (offered: %cvirgl %cresource_blob "
				"%ccontext_init; features 0x%" PRIx64 ")",
				offers(t, VIRTIO_GPU_F_VIRGL) ? '+' : '-',
				offers(t, VIRTIO_GPU_F_RESOURCE_BLOB) ? '+' : '-',
				offers(t, VIRTIO_GPU_F_CONTEXT_INIT) ? '+' : '-',
				vmm_dev_backend_features(t->dev));
		err = EOPNOTSUPP;
		goto fail;
	}
	if (vmm_dev_driver_ok(t->dev) < 0) {
		say(t, "DRIVER_OK: %s", vmm_dev_error(t->dev));
		err = EPROTO;
		goto fail;
	}
	if (!vmm_dev_has_feature(t->dev, VIRTIO_GPU_F_CONTEXT_INIT)) {
		say(t, "CONTEXT_INIT was not negotiated (features 0x%" PRIx64 ")",
				vmm_dev_features(t->dev));
		err = EOPNOTSUPP;
		goto fail;
	}
	r = probe_capsets(t);
	if (r == 0)
		r = setup_epoll(t);
	if (r == 0)
		r = process(t);
	if (r < 0) {
		err = -r;
		goto fail;
	}
	return &t->base;
fail:
	vu_destroy(&t->base);
	errno = err;
	return NULL;
}
