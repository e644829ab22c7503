/*
 * test-xdomain-transport: crossway-guest's vhost-user transport
 * (vm/guest/transport_vhost_user.c) against a running crossway.
 *
 *   test-xdomain-transport SOCKET              the whole cross-domain path
 *   test-xdomain-transport SOCKET --no-contexts
 *       the device offers no context types: opening must fail with
 *       EOPNOTSUPP, and raw context commands must get error responses
 *
 * The whole path: a context (capset 5), two 4 KiB ring blobs, INIT (24
 * bytes, crossway-guest's version; --legacy-init: 20 bytes), POLL on ring 1
 * (held by the device), GET_IMAGE_REQUIREMENTS on ring 0 answered while
 * the POLL is still held (out-of-order completion), then a Wayland
 * get_registry + sync through SEND, and RECEIVEs until the sync's done
 * event: the compositor's globals, printed one per line. Exit 0 on success.
 *
 *   test-xdomain-transport SOCKET --device [--pid PID] [--other SOCKET2]
 *                          [--only TEST] [--rss-bound KIB]
 *       device-level checks of the context path with our raw front end
 *       (vmm, as QEMU/crosvm + the Linux driver send it), every answer
 *       compared exactly: capsets; CTX_CREATE/DESTROY/ATTACH/DETACH and
 *       their errors (capsets 5/0/other, duplicate ids, 16 contexts per VM);
 *       INIT variants and refused rings; GET_IMAGE_REQUIREMENTS values;
 *       POLLs held until a message and one message per POLL; per-timeline
 *       order (a held ring-1 POLL holds back nothing else); fences on rings
 *       > 1 refused; SUBMIT_3D limits; CTX_DESTROY and RESOURCE_UNREF with
 *       a POLL held; a flood by a guest that never polls (responsiveness;
 *       with --pid, crossway's RSS growth under KIB, default 4096); reset,
 *       rebind and reconnection with live contexts (with --pid, crossway's
 *       fd count back to what it was); with --other, a second VM whose blob
 *       ids resolve to its own blobs only. TESTs: capsets contexts init
 *       queries-polls roundtrip submit destroy-held flood two-vms reset.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "../../vm/cross_domain_protocol.h"
#include "transport.h"
#include "vmm.h"
#include "vmm_ctx.h"

#define DRM_FORMAT_XRGB8888 0x34325258u
#define GBM_USE_SCANOUT (1u << 0)
#define GBM_USE_LINEAR (1u << 4)

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("test-xdomain-transport: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------ */
/* No context types: the error path                                    */
/* ------------------------------------------------------------------ */

static bool is_err(int r)
{
	return r >= VIRTIO_GPU_RESP_ERR_UNSPEC && r <= VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
}

static int no_contexts(const char *sock)
{
	struct cwg_transport *t = cwg_transport_vhost_user_open(sock);
	struct vmm_config cfg;
	struct vmm_dev *dev;
	struct vmm_gpu *gpu;
	struct vmm_capset_info info;
	uint8_t cmd[16] = { XDOM_CMD_POLL, 0, 16, 0 };
	int r, bad = 0;

	if (t) {
		t->impl->destroy(t);
		return fail("the transport opened although the device should offer no "
				"context types");
	}
	if (errno != EOPNOTSUPP)
		return fail("opening failed with %s, expected EOPNOTSUPP", strerror(errno));
	printf("open: EOPNOTSUPP\n");

	/* The same commands sent anyway, as a buggy guest would. */
	vmm_config_init(&cfg, VMM_PROFILE_GENERIC);
	dev = vmm_dev_new(&cfg);
	gpu = dev ? vmm_gpu_new(dev) : NULL;
	if (!gpu || vmm_dev_connect(dev, sock, 5000) < 0 || vmm_dev_realize(dev) < 0 ||
			vmm_dev_driver_ok(dev) < 0) {
		bad = fail("raw connection: %s", dev ? vmm_dev_error(dev) : "no memory");
		goto out;
	}
	printf("raw: num_capsets %u\n", vmm_dev_gpu_config(dev)->num_capsets);
	r = vmm_ctx_get_capset_info(gpu, 0, &info, NULL);
	printf("GET_CAPSET_INFO(0): %s\n", r < 0 ? vmm_dev_error(dev) : vmm_gpu_resp_name((uint32_t)r));
	bad |= !is_err(r);
	r = vmm_ctx_get_capset(gpu, XDOM_CAPSET_ID, 0, NULL, XDOM_CAPSET_SIZE, NULL);
	printf("GET_CAPSET(5): %s\n", r < 0 ? vmm_dev_error(dev) : vmm_gpu_resp_name((uint32_t)r));
	bad |= !is_err(r);
	r = vmm_ctx_create(gpu, 1, XDOM_CAPSET_ID, "test", NULL);
	printf("CTX_CREATE(1, capset 5): %s\n", r < 0 ? vmm_dev_error(dev) : vmm_gpu_resp_name((uint32_t)r));
	bad |= !is_err(r);
	{
		struct vmm_gpu_opts o = { .fence = true, .fence_id = 1, .ring_idx_flag = true,
			.ring_idx = 1 };

		r = vmm_ctx_submit_3d(gpu, 1, cmd, sizeof(cmd), NULL, &o);
		printf("SUBMIT_3D(ctx 1, ring 1, fenced): %s\n",
				r < 0 ? vmm_dev_error(dev) : vmm_gpu_resp_name((uint32_t)r));
		bad |= !is_err(r);
	}
	/* Still a working device afterwards. */
	if (vmm_dev_ping(dev) < 0)
		bad = fail("the device stopped answering: %s", vmm_dev_error(dev));
	if (bad)
		fail("a context command did not get an error response");
out:
	vmm_gpu_free(gpu);
	vmm_dev_free(dev);
	if (!bad)
		printf("ok: the device offers no context types\n");
	return bad ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* The whole path                                                      */
/* ------------------------------------------------------------------ */

struct session {
	struct cwg_transport *t;
	struct cwg_context *ctx;
	struct cwg_blob query, channel;
	uint8_t wl[65536]; /* Wayland bytes received, not parsed yet */
	size_t wl_len;
	unsigned globals;
	bool compositor, done;
};

static int submit(struct session *s, const void *cmd, size_t len, int ring)
{
	const struct cwg_blob *blobs[2] = { &s->query, &s->channel };
	int r = s->t->impl->submit(s->ctx, cmd, len, ring, blobs, 2);

	if (r < 0)
		return fail("submit (cmd %u, ring %d): %s", ((const uint8_t *)cmd)[0], ring,
				strerror(-r));
	return 0;
}

static int submit_poll(struct session *s)
{
	struct xdom_poll p = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
		.cmd_size = sizeof(p) } };

	return submit(s, &p, sizeof(p), XDOM_CHANNEL_RING);
}

/* Wayland events from the compositor: registry globals, the sync's done. */
static int parse_wayland(struct session *s)
{
	size_t off = 0;

	while (s->wl_len - off >= 8) {
		const uint8_t *m = s->wl + off;
		uint32_t obj = get32(m), size = get32(m + 4) >> 16, op = get32(m + 4) & 0xffff;

		if (size < 8 || size % 4)
			return fail("malformed Wayland message (object %u size %u)", obj, size);
		if (s->wl_len - off < size)
			break;
		if (obj == 2 && op == 0 && size >= 16) {
			uint32_t name = get32(m + 8), slen = get32(m + 12);

			if (16 + ((slen + 3) & ~3u) + 4 > size || slen == 0)
				return fail("malformed wl_registry.global");
			printf("global %u: %.*s v%u\n", name, (int)slen - 1, (const char *)m + 16,
					get32(m + 16 + ((slen + 3) & ~3u)));
			s->globals++;
			if (strcmp((const char *)m + 16, "wl_compositor") == 0)
				s->compositor = true;
		} else if (obj == 3 && op == 0) {
			s->done = true;
		} else if (obj == 1 && op == 0) {
			return fail("wl_display.error from the compositor");
		}
		off += size;
	}
	memmove(s->wl, s->wl + off, s->wl_len - off);
	s->wl_len -= off;
	return 0;
}

/* One message in the channel ring (the fence that said so is taken). */
static int take_message(struct session *s)
{
	const uint8_t *ring = s->channel.map;
	struct xdom_header h;

	memcpy(&h, ring, sizeof(h));
	if (h.cmd == XDOM_CMD_RECEIVE) {
		struct xdom_send_receive r;

		memcpy(&r, ring, sizeof(r));
		if (r.hdr.cmd_size < sizeof(r) || r.opaque_data_size > XDOM_MAX_SEND_DATA ||
				sizeof(r) + r.opaque_data_size > r.hdr.cmd_size)
			return fail("RECEIVE: cmd_size %u, %u data bytes", r.hdr.cmd_size,
					r.opaque_data_size);
		if (r.num_identifiers)
			return fail("RECEIVE carries %u identifiers; none expected",
					r.num_identifiers);
		if (s->wl_len + r.opaque_data_size > sizeof(s->wl))
			return fail("too many Wayland bytes");
		memcpy(s->wl + s->wl_len, ring + sizeof(r), r.opaque_data_size);
		s->wl_len += r.opaque_data_size;
		printf("RECEIVE: %u bytes\n", r.opaque_data_size);
		return parse_wayland(s);
	}
	return fail("channel ring holds command %u, expected RECEIVE", h.cmd);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The proxy's loop: the transport's fd and the context's event fd. */
static int run_until_done(struct session *s, int timeout_ms)
{
	const struct cwg_transport_impl *impl = s->t->impl;
	int64_t deadline = now_ms() + timeout_ms;

	while (!s->done) {
		struct pollfd p[2] = {
			{ .fd = impl->poll_fd(s->t), .events = POLLIN },
			{ .fd = impl->event_fd(s->ctx), .events = POLLIN },
		};
		int64_t left = deadline - now_ms();
		int n, r;

		if (left <= 0)
			return fail("no wl_callback.done within %d ms", timeout_ms);
		n = poll(p, 2, (int)left);
		if (n < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		if (p[0].revents && (r = impl->dispatch(s->t)) < 0)
			return fail("dispatch: %s", strerror(-r));
		if (p[1].revents) {
			int events = impl->take_events(s->ctx);

			if (events < 0)
				return fail("take_events: %s", strerror(-events));
			if (events > 1)
				return fail("%d ring-1 fences at once with one POLL in flight", events);
			if (events == 1) {
				if (take_message(s) || (!s->done && submit_poll(s)))
					return 1;
			}
		}
	}
	return 0;
}

static int whole_path(const char *sock, bool legacy_init)
{
	struct session s = { 0 };
	const struct cwg_transport_impl *impl;
	uint8_t init[24] = { 0 }, send[sizeof(struct xdom_send_receive) + 24] = { 0 };
	struct xdom_get_image_requirements q = {
		.hdr = { .cmd = XDOM_CMD_GET_IMAGE_REQUIREMENTS, .cmd_size = sizeof(q) },
		.width = 64, .height = 64, .drm_format = DRM_FORMAT_XRGB8888,
		.flags = GBM_USE_SCANOUT | GBM_USE_LINEAR,
	};
	struct xdom_image_requirements req;
	struct xdom_send_receive *sr = (struct xdom_send_receive *)send;
	int r, rc = 1, events;

	s.t = cwg_transport_vhost_user_open(sock);
	if (!s.t)
		return fail("open: %s", strerror(errno));
	impl = s.t->impl;
	s.ctx = impl->context_create(s.t);
	if (!s.ctx) {
		fail("context_create: %s", strerror(errno));
		goto out;
	}
	printf("context: created\n");
	if ((r = impl->blob_create(s.ctx, XDOM_RING_SIZE, &s.query)) < 0 ||
			(r = impl->blob_create(s.ctx, XDOM_RING_SIZE, &s.channel)) < 0) {
		fail("blob_create: %s", strerror(-r));
		goto out;
	}
	printf("rings: resources %u and %u\n", s.query.res_id, s.channel.res_id);

	init[0] = XDOM_CMD_INIT;
	init[2] = legacy_init ? 20 : 24;
	put32(init + 8, s.query.res_id);
	put32(init + 12, s.channel.res_id);
	put32(init + 16, XDOM_CHANNEL_WAYLAND);
	put32(init + 20, XDOM_CROSSWAY_VERSION);
	if (submit(&s, init, init[2], -1) || submit_poll(&s))
		goto out;

	/* Ring 0 completes while the device holds the ring-1 POLL. */
	memset(s.query.map, 0xee, sizeof(req));
	if (submit(&s, &q, sizeof(q), XDOM_QUERY_RING))
		goto out;
	r = impl->wait_query(s.ctx);
	if (r < 0) {
		fail("wait_query: %s", strerror(-r));
		goto out;
	}
	memcpy(&req, s.query.map, sizeof(req));
	printf("image requirements 64x64 XR24: stride %u offset %u size %llu "
			"modifier 0x%llx blob_id %u\n", req.strides[0], req.offsets[0],
			(unsigned long long)req.size, (unsigned long long)req.modifier,
			req.blob_id);
	if (req.strides[0] < 64 * 4 || req.size < (uint64_t)req.strides[0] * 64) {
		fail("implausible image requirements");
		goto out;
	}
	if ((r = impl->dispatch(s.t)) < 0 || (events = impl->take_events(s.ctx)) != 0) {
		fail("the POLL completed before any message (dispatch %d)", r);
		goto out;
	}
	printf("out of order: ring 0 answered, ring-1 POLL still held\n");

	/* wl_display@1.get_registry(new id 2), wl_display@1.sync(new id 3). */
	sr->hdr.cmd = XDOM_CMD_SEND;
	sr->hdr.cmd_size = sizeof(send);
	sr->opaque_data_size = 24;
	{
		uint8_t *w = send + sizeof(*sr);

		put32(w, 1);
		put32(w + 4, 12u << 16 | 1);
		put32(w + 8, 2);
		put32(w + 12, 1);
		put32(w + 16, 12u << 16 | 0);
		put32(w + 20, 3);
	}
	if (submit(&s, send, sizeof(send), -1))
		goto out;
	if (run_until_done(&s, 5000))
		goto out;
	if (!s.compositor) {
		fail("no wl_compositor among %u globals", s.globals);
		goto out;
	}
	printf("ok: %u globals through the cross-domain channel\n", s.globals);
	rc = 0;
out:
	if (s.ctx)
		impl->context_destroy(s.ctx);
	impl->destroy(s.t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Device level: the context path as QEMU/crosvm + Linux drive it       */
/* ------------------------------------------------------------------ */

/*
 * --device: raw virtio-gpu commands through our front end (vmm), each
 * answer checked exactly. Every check prints "ok: ..." or fails the run
 * with "FAIL: ..." (exit 1). --pid PID (crossway's) enables the RSS and fd
 * checks; --other SOCKET the two-VM checks.
 */

#define OK_NODATA VIRTIO_GPU_RESP_OK_NODATA
#define E_UNSPEC VIRTIO_GPU_RESP_ERR_UNSPEC
#define E_OOM VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY
#define E_RES VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID
#define E_CTX VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID
#define E_PARAM VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER
#define DRM_FORMAT_R8 0x20203852u
#define MAX_SUBMIT (64u << 10) /* crossway's XDOM_MAX_SUBMIT_SIZE */
#define MAX_CONTEXTS 16u /* crossway's default max_contexts (vgpu_limits_default) */
#define WL_MAX_CALLBACKS 65536u

struct vm {
	const char *name;
	struct vmm_dev *dev;
	struct vmm_gpu *gpu;
	uint64_t next_fence;
	uint32_t next_res;
};

struct ring {
	uint32_t res;
	struct vmm_blob mem;
};

/* What a guest client learnt from the compositor's events. */
struct wl_state {
	uint8_t buf[1 << 16];
	size_t len;
	unsigned globals, events, receives;
	uint32_t shm_name, shm_version;
	uint8_t done[WL_MAX_CALLBACKS / 8];
	bool error;
	uint32_t err_obj, err_code;
	char err_msg[160];
};

struct xctx {
	uint32_t id;
	struct ring q, ch;
	struct wl_state *wl;
};

static pid_t cw_pid;
static long fd_base = -1; /* crossway's fds before our first connection */
static long rss_bound = 4096; /* KiB crossway's RSS may grow by during the flood */

#define CHECK(cond, ...) do { if (!(cond)) return fail(__VA_ARGS__); } while (0)

static int ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ok(const char *fmt, ...)
{
	va_list ap;

	fputs("ok: ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	return 0;
}

static const char *rname(int r, const struct vm *v)
{
	return r < 0 ? vmm_dev_error(v->dev) : vmm_gpu_resp_name((uint32_t)r);
}

/* An exact response type. */
static int expect(const struct vm *v, int r, int want, const char *what)
{
	if (r != want)
		return fail("%s [vm %s]: answered %s (0x%x), expected %s", what, v->name,
				rname(r, v), (unsigned)r, vmm_gpu_resp_name((uint32_t)want));
	return ok("%s [vm %s]: %s", what, v->name, vmm_gpu_resp_name((uint32_t)want));
}

static int vm_open(struct vm *v, const char *name, const char *sock)
{
	struct vmm_config cfg;

	memset(v, 0, sizeof(*v));
	v->name = name;
	v->next_res = 100;
	vmm_config_init(&cfg, VMM_PROFILE_GENERIC);
	cfg.ctrl_queue_size = 256; /* QEMU's with VIRGL */
	cfg.timeout_ms = 5000;
	v->dev = vmm_dev_new(&cfg);
	v->gpu = v->dev ? vmm_gpu_new(v->dev) : NULL;
	if (!v->gpu)
		return fail("out of memory");
	if (vmm_dev_connect(v->dev, sock, 5000) < 0 || vmm_dev_realize(v->dev) < 0 ||
			vmm_dev_driver_ok(v->dev) < 0)
		return fail("vm %s: %s", name, vmm_dev_error(v->dev));
	CHECK(vmm_dev_has_feature(v->dev, VIRTIO_GPU_F_VIRGL) &&
			vmm_dev_has_feature(v->dev, VIRTIO_GPU_F_CONTEXT_INIT) &&
			vmm_dev_has_feature(v->dev, VIRTIO_GPU_F_RESOURCE_BLOB),
			"vm %s: VIRGL, CONTEXT_INIT and RESOURCE_BLOB are not all negotiated", name);
	return 0;
}

static void vm_close(struct vm *v)
{
	vmm_gpu_free(v->gpu);
	vmm_dev_free(v->dev);
	v->gpu = NULL;
	v->dev = NULL;
}

static struct vmm_gpu_opts fenced(struct vm *v, int ring, bool nowait)
{
	struct vmm_gpu_opts o = { .fence = true, .fence_id = ++v->next_fence,
		.nowait = nowait };

	if (ring >= 0) {
		o.ring_idx_flag = true;
		o.ring_idx = (uint8_t)ring;
	}
	return o;
}

/* ring: -2 unfenced, -1 global fence, else a fence on that ring; synchronous. */
static int submit3d(struct vm *v, uint32_t ctx, const void *cmds, uint32_t len, int ring)
{
	struct vmm_gpu_opts o = fenced(v, ring, false);

	return vmm_ctx_submit_3d(v->gpu, ctx, cmds, len, NULL, ring == -2 ? NULL : &o);
}

/* A fenced submission left in flight; its fence id in *fence. */
static int submit3d_nowait(struct vm *v, uint32_t ctx, const void *cmds, uint32_t len,
		int ring, uint64_t *fence)
{
	struct vmm_gpu_opts o = fenced(v, ring, true);

	*fence = o.fence_id;
	if (vmm_ctx_submit_3d(v->gpu, ctx, cmds, len, NULL, &o) < 0)
		return fail("vm %s: SUBMIT_3D: %s", v->name, vmm_dev_error(v->dev));
	return 0;
}

static int64_t ms_now(void)
{
	return now_ms();
}

/* The response type of a nowait fence once answered within ms; 0 if not;
 * -1 on a protocol error (header, echo, order: checked by vmm_gpu). */
static int fence_wait(struct vm *v, uint64_t fence, int ms)
{
	int64_t deadline = ms_now() + ms;

	for (;;) {
		uint32_t type;
		int r = vmm_ctx_fence_take(v->gpu, fence, &type);
		int64_t left;

		if (r < 0)
			return -1;
		if (r == 1)
			return (int)type;
		left = deadline - ms_now();
		if (left <= 0)
			return 0;
		if (vmm_ctx_poll(v->gpu, (int)left) < 0)
			return -1;
	}
}

static int fence_expect(struct vm *v, uint64_t fence, int want, int ms, const char *what)
{
	int r = fence_wait(v, fence, ms);

	if (r == 0)
		return fail("%s [vm %s]: fence %llu not answered within %d ms", what, v->name,
				(unsigned long long)fence, ms);
	return expect(v, r, want, what);
}

/* The fence is still held after ms (the device answers nothing for it). */
static int fence_held(struct vm *v, uint64_t fence, int ms, const char *what)
{
	int r = fence_wait(v, fence, ms);

	if (r != 0)
		return fail("%s [vm %s]: fence %llu answered %s; it must be held", what, v->name,
				(unsigned long long)fence, rname(r, v));
	return ok("%s [vm %s]: fence %llu held for %d ms", what, v->name,
			(unsigned long long)fence, ms);
}

static int ring_make(struct vm *v, uint32_t ctx, struct ring *r, uint64_t size)
{
	int x;

	if (vmm_blob_alloc(vmm_dev_mem(v->dev), size, 16, true, &r->mem) < 0)
		return fail("no guest memory for a ring: %s", strerror(errno));
	r->res = v->next_res++;
	x = vmm_ctx_create_blob(v->gpu, r->res, VMM_BLOB_MEM_GUEST,
			VMM_BLOB_FLAG_MAPPABLE | VMM_BLOB_FLAG_SHAREABLE, 0, &r->mem, NULL);
	if (x != OK_NODATA)
		return fail("RESOURCE_CREATE_BLOB %u [vm %s]: %s", r->res, v->name, rname(x, v));
	if (ctx) {
		x = vmm_ctx_attach_resource(v->gpu, ctx, r->res, NULL);
		if (x != OK_NODATA)
			return fail("CTX_ATTACH_RESOURCE %u to %u [vm %s]: %s", r->res, ctx,
					v->name, rname(x, v));
	}
	return 0;
}

static void init_cmd(uint8_t *b, unsigned size, uint32_t q, uint32_t ch, uint32_t type)
{
	memset(b, 0, size);
	b[0] = XDOM_CMD_INIT;
	b[2] = (uint8_t)size;
	put32(b + 8, q);
	if (size == 16) {
		put32(b + 12, type);
	} else {
		put32(b + 12, ch);
		put32(b + 16, type);
	}
}

/* A capset-5 context with two attached 4 KiB rings, INIT (20 bytes). */
static int xctx_open(struct vm *v, struct xctx *c, uint32_t id, uint32_t channel)
{
	uint8_t init[20];
	int r;

	memset(c, 0, sizeof(*c));
	c->id = id;
	c->wl = calloc(1, sizeof(*c->wl));
	if (!c->wl)
		return fail("out of memory");
	r = vmm_ctx_create(v->gpu, id, XDOM_CAPSET_ID, "test", NULL);
	if (r != OK_NODATA)
		return fail("CTX_CREATE %u [vm %s]: %s", id, v->name, rname(r, v));
	if (ring_make(v, id, &c->q, XDOM_RING_SIZE) || ring_make(v, id, &c->ch, XDOM_RING_SIZE))
		return 1;
	init_cmd(init, sizeof(init), c->q.res, c->ch.res, channel);
	r = submit3d(v, id, init, sizeof(init), -1);
	if (r != OK_NODATA)
		return fail("INIT of context %u [vm %s]: %s", id, v->name, rname(r, v));
	return 0;
}

static void xctx_free(struct vm *v, struct xctx *c)
{
	/* The pages only: the device drops the resources with the device. */
	if (c->q.mem.map)
		vmm_blob_release(vmm_dev_mem(v->dev), &c->q.mem);
	if (c->ch.mem.map)
		vmm_blob_release(vmm_dev_mem(v->dev), &c->ch.mem);
	free(c->wl);
	c->wl = NULL;
}

/* SEND of Wayland bytes with identifiers (VIRTGPU_BLOB resource ids). */
static int send_wl(struct vm *v, struct xctx *c, const void *data, uint32_t len,
		const uint32_t *blobs, unsigned nblobs, int *resp)
{
	static uint8_t buf[XDOM_RING_SIZE];
	struct xdom_send_receive *m = (struct xdom_send_receive *)buf;

	if (len > XDOM_MAX_SEND_DATA || nblobs > XDOM_MAX_IDENTIFIERS)
		return fail("SEND of %u bytes", len);
	memset(buf, 0, sizeof(*m));
	m->hdr.cmd = XDOM_CMD_SEND;
	m->hdr.cmd_size = (uint16_t)(sizeof(*m) + len);
	m->num_identifiers = nblobs;
	m->opaque_data_size = len;
	for (unsigned i = 0; i < nblobs; i++) {
		m->identifiers[i] = blobs[i];
		m->identifier_types[i] = XDOM_ID_TYPE_VIRTGPU_BLOB;
	}
	memcpy(buf + sizeof(*m), data, len);
	*resp = submit3d(v, c->id, buf, (uint32_t)(sizeof(*m) + len), -1);
	return *resp < 0 ? fail("SEND [vm %s]: %s", v->name, vmm_dev_error(v->dev)) : 0;
}

/* Wayland request builder. */
struct wl_msg {
	uint8_t b[XDOM_MAX_SEND_DATA];
	uint32_t len;
};

static void wl_begin(struct wl_msg *m, uint32_t obj, uint32_t op, uint32_t *start)
{
	*start = m->len;
	put32(m->b + m->len, obj);
	put32(m->b + m->len + 4, op);
	m->len += 8;
}

static void wl_u32(struct wl_msg *m, uint32_t v)
{
	put32(m->b + m->len, v);
	m->len += 4;
}

static void wl_str(struct wl_msg *m, const char *s)
{
	uint32_t n = (uint32_t)strlen(s) + 1, padded = (n + 3) & ~3u;

	wl_u32(m, n);
	memset(m->b + m->len, 0, padded);
	memcpy(m->b + m->len, s, n);
	m->len += padded;
}

static void wl_end(struct wl_msg *m, uint32_t start)
{
	uint32_t op = get32(m->b + start + 4);

	put32(m->b + start + 4, (m->len - start) << 16 | op);
}

static void wl_sync(struct wl_msg *m, uint32_t callback)
{
	uint32_t s;

	wl_begin(m, 1, 0, &s);
	wl_u32(m, callback);
	wl_end(m, s);
}

static void wl_get_registry(struct wl_msg *m, uint32_t registry)
{
	uint32_t s;

	wl_begin(m, 1, 1, &s);
	wl_u32(m, registry);
	wl_end(m, s);
}

/* Events of the compositor: registry (object 2) globals, callbacks, errors. */
static int wl_parse(struct wl_state *w)
{
	size_t off = 0;

	while (w->len - off >= 8) {
		const uint8_t *m = w->buf + off;
		uint32_t obj = get32(m), size = get32(m + 4) >> 16, op = get32(m + 4) & 0xffff;

		if (size < 8 || size % 4)
			return fail("malformed Wayland event (object %u size %u)", obj, size);
		if (w->len - off < size)
			break;
		w->events++;
		if (obj == 1 && op == 0 && size >= 20) {
			uint32_t slen = get32(m + 16);

			w->error = true;
			w->err_obj = get32(m + 8);
			w->err_code = get32(m + 12);
			snprintf(w->err_msg, sizeof(w->err_msg), "%.*s",
					(int)(slen > 0 && 20 + slen <= size ? slen - 1 : 0),
					(const char *)m + 20);
		} else if (obj >= 2 && obj < WL_MAX_CALLBACKS && op == 0 && size == 12) {
			w->done[obj / 8] |= (uint8_t)(1u << (obj % 8));
		} else if (obj == 2 && op == 0 && size >= 16) {
			uint32_t slen = get32(m + 12);

			if (slen == 0 || 16 + ((slen + 3) & ~3u) + 4 > size)
				return fail("malformed wl_registry.global");
			w->globals++;
			if (strcmp((const char *)m + 16, "wl_shm") == 0) {
				w->shm_name = get32(m + 8);
				w->shm_version = get32(m + 16 + ((slen + 3) & ~3u));
			}
		}
		off += size;
	}
	memmove(w->buf, w->buf + off, w->len - off);
	w->len -= off;
	return 0;
}

static bool wl_done(const struct wl_state *w, uint32_t cb)
{
	return cb < WL_MAX_CALLBACKS && (w->done[cb / 8] & (1u << (cb % 8)));
}

static int take_receive(struct xctx *c);

/* One POLL on ring 1, answered with one message: RECEIVE data appended. */
static int poll_one(struct vm *v, struct xctx *c, int ms)
{
	struct xdom_poll p = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
		.cmd_size = sizeof(p) } };
	uint64_t f;
	int x;

	if (submit3d_nowait(v, c->id, &p, sizeof(p), XDOM_CHANNEL_RING, &f))
		return 1;
	x = fence_wait(v, f, ms);
	if (x != OK_NODATA)
		return fail("POLL [vm %s, context %u]: %s", v->name, c->id,
				x == 0 ? "no message in time" : rname(x, v));
	return take_receive(c);
}

/* The RECEIVE at offset 0 of the channel ring, its data appended and parsed. */
static int take_receive(struct xctx *c)
{
	struct xdom_send_receive r;

	memcpy(&r, c->ch.mem.map, sizeof(r));
	if (r.hdr.cmd != XDOM_CMD_RECEIVE)
		return fail("channel ring of context %u holds command %u, expected RECEIVE",
				c->id, r.hdr.cmd);
	if (r.hdr.cmd_size != sizeof(r) + r.opaque_data_size ||
			r.opaque_data_size > XDOM_MAX_SEND_DATA)
		return fail("RECEIVE: cmd_size %u with %u data bytes", r.hdr.cmd_size,
				r.opaque_data_size);
	if (c->wl->len + r.opaque_data_size > sizeof(c->wl->buf))
		return fail("too many Wayland bytes");
	memcpy(c->wl->buf + c->wl->len, (uint8_t *)c->ch.mem.map + sizeof(r),
			r.opaque_data_size);
	c->wl->len += r.opaque_data_size;
	c->wl->receives++;
	return wl_parse(c->wl);
}

/* POLLs until callback cb is done (or the compositor sent an error). */
static int poll_until_done(struct vm *v, struct xctx *c, uint32_t cb, int ms)
{
	int64_t deadline = ms_now() + ms;

	while (!wl_done(c->wl, cb) && !c->wl->error) {
		int64_t left = deadline - ms_now();

		if (left <= 0)
			return fail("no wl_callback.done for %u within %d ms", cb, ms);
		if (poll_one(v, c, (int)left))
			return 1;
	}
	return 0;
}

static long proc_value(const char *file, const char *key)
{
	char path[64], line[256];
	FILE *f;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)cw_pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)) == 0) {
			v = strtol(line + strlen(key), NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static long rss_kib(void)
{
	return proc_value("status", "VmRSS:");
}

static long fd_count(void)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	long n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)cw_pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Waits until crossway's fd count is back to `want` (it closes at its own pace). */
static int fds_back_to(long want, const char *what)
{
	int64_t deadline = ms_now() + 10000;
	long n;

	while ((n = fd_count()) != want && ms_now() < deadline)
		usleep(20000);
	CHECK(n == want, "%s: crossway holds %ld fds, %ld before", what, n, want);
	return ok("%s: crossway's fds back to %ld", what, want);
}

/* --- capsets ------------------------------------------------------- */

static int t_capsets(struct vm *v)
{
	struct vmm_capset_info info = { 0 };
	uint8_t data[16];
	int r;

	CHECK(vmm_dev_gpu_config(v->dev)->num_capsets == 1, "num_capsets %u, expected 1",
			vmm_dev_gpu_config(v->dev)->num_capsets);
	ok("num_capsets 1");
	r = vmm_ctx_get_capset_info(v->gpu, 0, &info, NULL);
	if (expect(v, r, VIRTIO_GPU_RESP_OK_CAPSET_INFO, "GET_CAPSET_INFO(0)"))
		return 1;
	CHECK(info.id == 5 && info.max_version == 0 && info.max_size == 16,
			"capset info: id %u max_version %u max_size %u, expected 5 0 16",
			info.id, info.max_version, info.max_size);
	ok("capset info: id 5, max_version 0, max_size 16");
	if (expect(v, vmm_ctx_get_capset_info(v->gpu, 1, &info, NULL), E_PARAM,
			"GET_CAPSET_INFO(1), past num_capsets"))
		return 1;
	memset(data, 0xee, sizeof(data));
	r = vmm_ctx_get_capset(v->gpu, 5, 0, data, sizeof(data), NULL);
	if (expect(v, r, VIRTIO_GPU_RESP_OK_CAPSET, "GET_CAPSET(5, version 0)"))
		return 1;
	CHECK(get32(data) == 1 && get32(data + 4) == 2 && get32(data + 8) == 0 &&
			get32(data + 12) == 0,
			"capset 5 data %u %u %u %u, expected 1 2 0 0 (version, Wayland only, "
			"no dmabuf, no external memory)", get32(data), get32(data + 4),
			get32(data + 8), get32(data + 12));
	ok("capset 5 data: version 1, supported_channels 0x2, supports_dmabuf 0, "
			"supports_external_gpu_memory 0");
	return expect(v, vmm_ctx_get_capset(v->gpu, 5, 1, data, sizeof(data), NULL), E_PARAM,
			"GET_CAPSET(5, version 1), past max_version") ||
		expect(v, vmm_ctx_get_capset(v->gpu, 4, 0, data, sizeof(data), NULL), E_PARAM,
			"GET_CAPSET(4), not offered");
}

/* --- CTX_CREATE / DESTROY / ATTACH / DETACH ------------------------- */

static int t_contexts(struct vm *v)
{
	uint8_t poll[16] = { XDOM_CMD_POLL, 0, 16 };
	unsigned max = MAX_CONTEXTS, made = 0;
	int r;

	if (expect(v, vmm_ctx_create(v->gpu, 1, 5, "cross-domain", NULL), OK_NODATA,
				"CTX_CREATE(1, capset 5)") ||
			expect(v, vmm_ctx_create(v->gpu, 2, 0, "fbdev", NULL), OK_NODATA,
				"CTX_CREATE(2, capset 0: Linux's per-file context)") ||
			expect(v, vmm_ctx_create(v->gpu, 3, 4, "venus", NULL), E_PARAM,
				"CTX_CREATE(3, capset 4: not offered)") ||
			expect(v, vmm_ctx_create(v->gpu, 4, 0x105, "high bits", NULL), OK_NODATA,
				"CTX_CREATE(4, context_init 0x105: capset 5 in bits 0-7)") ||
			expect(v, vmm_ctx_create(v->gpu, 1, 5, "again", NULL), E_CTX,
				"CTX_CREATE(1) twice") ||
			expect(v, vmm_ctx_create(v->gpu, 2, 5, "again", NULL), E_CTX,
				"CTX_CREATE(2) again with another capset") ||
			expect(v, vmm_ctx_create(v->gpu, 0, 5, "zero", NULL), E_CTX,
				"CTX_CREATE(0)"))
		return 1;
	/* A capset-0 context runs nothing. */
	if (expect(v, submit3d(v, 2, poll, sizeof(poll), -2), E_PARAM,
			"SUBMIT_3D to a capset-0 context"))
		return 1;
	/* Three exist; the VM's limit is MAX_CONTEXTS. */
	for (uint32_t id = 10; made < max - 3; id++, made++) {
		r = vmm_ctx_create(v->gpu, id, made % 2 ? 0 : 5, "many", NULL);
		if (r != OK_NODATA)
			return fail("CTX_CREATE(%u), context %u of %u: %s", id, made + 4, max,
					rname(r, v));
	}
	ok("%u contexts made", max);
	if (expect(v, vmm_ctx_create(v->gpu, 1000, 5, "65th", NULL), E_OOM,
				"CTX_CREATE of one context too many") ||
			expect(v, vmm_ctx_create(v->gpu, 1001, 0, "65th", NULL), E_OOM,
				"CTX_CREATE of one context too many (capset 0)") ||
			expect(v, vmm_ctx_destroy(v->gpu, 10, NULL), OK_NODATA, "CTX_DESTROY(10)") ||
			expect(v, vmm_ctx_create(v->gpu, 1000, 5, "room", NULL), OK_NODATA,
				"CTX_CREATE once there is room again") ||
			expect(v, vmm_ctx_destroy(v->gpu, 10, NULL), E_CTX,
				"CTX_DESTROY(10) twice") ||
			expect(v, vmm_ctx_destroy(v->gpu, 777, NULL), E_CTX,
				"CTX_DESTROY of an unknown context"))
		return 1;
	for (uint32_t id = 11; id < 10 + max - 3; id++) {
		r = vmm_ctx_destroy(v->gpu, id, NULL);
		if (r != OK_NODATA)
			return fail("CTX_DESTROY(%u): %s", id, rname(r, v));
	}
	if (expect(v, vmm_ctx_destroy(v->gpu, 1000, NULL), OK_NODATA, "CTX_DESTROY(1000)") ||
			expect(v, vmm_ctx_destroy(v->gpu, 4, NULL), OK_NODATA, "CTX_DESTROY(4)"))
		return 1;

	/* Attachments: unknown resources and contexts. */
	{
		struct ring r1;

		if (ring_make(v, 0, &r1, XDOM_RING_SIZE))
			return 1;
		if (expect(v, vmm_ctx_attach_resource(v->gpu, 1, 9999, NULL), E_RES,
					"CTX_ATTACH_RESOURCE of an unknown resource") ||
				expect(v, vmm_ctx_detach_resource(v->gpu, 1, 9999, NULL), E_RES,
					"CTX_DETACH_RESOURCE of an unknown resource") ||
				expect(v, vmm_ctx_attach_resource(v->gpu, 777, r1.res, NULL), E_CTX,
					"CTX_ATTACH_RESOURCE to an unknown context") ||
				expect(v, vmm_ctx_detach_resource(v->gpu, 777, r1.res, NULL), E_CTX,
					"CTX_DETACH_RESOURCE from an unknown context") ||
				expect(v, vmm_ctx_detach_resource(v->gpu, 1, r1.res, NULL), OK_NODATA,
					"CTX_DETACH_RESOURCE of a resource never attached") ||
				expect(v, vmm_ctx_attach_resource(v->gpu, 1, r1.res, NULL), OK_NODATA,
					"CTX_ATTACH_RESOURCE") ||
				expect(v, vmm_ctx_attach_resource(v->gpu, 1, r1.res, NULL), OK_NODATA,
					"CTX_ATTACH_RESOURCE twice") ||
				expect(v, vmm_ctx_detach_resource(v->gpu, 1, r1.res, NULL), OK_NODATA,
					"CTX_DETACH_RESOURCE") ||
				expect(v, vmm_gpu_resource_unref(v->gpu, r1.res, NULL), OK_NODATA,
					"RESOURCE_UNREF of the detached blob"))
			return 1;
		vmm_blob_release(vmm_dev_mem(v->dev), &r1.mem);
	}
	return expect(v, vmm_ctx_destroy(v->gpu, 1, NULL), OK_NODATA, "CTX_DESTROY(1)") ||
		expect(v, vmm_ctx_destroy(v->gpu, 2, NULL), OK_NODATA, "CTX_DESTROY(2)");
}

/* --- INIT ------------------------------------------------------------ */

static int t_init(struct vm *v)
{
	struct ring q, ch, loose, small;
	uint8_t b[36];
	struct xdom_get_image_requirements gir = {
		.hdr = { .cmd = XDOM_CMD_GET_IMAGE_REQUIREMENTS, .cmd_size = sizeof(gir) },
		.width = 64, .height = 64, .drm_format = DRM_FORMAT_XRGB8888,
	};
	uint32_t ctx = 20, nopages;
	int r;

	if (expect(v, vmm_ctx_create(v->gpu, ctx, 5, "init", NULL), OK_NODATA, "CTX_CREATE(20)") ||
			ring_make(v, ctx, &q, XDOM_RING_SIZE) ||
			ring_make(v, ctx, &ch, XDOM_RING_SIZE) || ring_make(v, 0, &loose, XDOM_RING_SIZE))
		return 1;
	/*
	 * Rings smaller than a page: a 16x16 2D resource whose backing is one
	 * 1 KiB entry (a 2 KiB guest blob is refused: blobs are whole pages),
	 * and a 2D resource without pages.
	 */
	{
		static struct vmm_blob_entry ent;
		uint8_t cmd[32] = { 0 }, e[16] = { 0 };

		if (vmm_mem_alloc(vmm_dev_mem(v->dev), VMM_PAGE_SIZE, VMM_REGION_ANY, 0, &ent.gpa) < 0)
			return fail("no guest memory");
		ent.len = 2048;
		small.mem = (struct vmm_blob){ .size = 2048, .nents = 1, .ents = &ent };
		small.res = v->next_res++;
		r = vmm_ctx_create_blob(v->gpu, small.res, VMM_BLOB_MEM_GUEST,
				VMM_BLOB_FLAG_MAPPABLE | VMM_BLOB_FLAG_SHAREABLE, 0, &small.mem, NULL);
		if (expect(v, r, E_PARAM, "RESOURCE_CREATE_BLOB of 2 KiB (not whole pages)"))
			return 1;
		r = vmm_gpu_resource_create_2d(v->gpu, small.res, 2, 16, 16, NULL);
		if (expect(v, r, OK_NODATA, "RESOURCE_CREATE_2D 16x16"))
			return 1;
		put32(cmd, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING);
		put32(cmd + 24, small.res);
		put32(cmd + 28, 1);
		put32(e, (uint32_t)ent.gpa);
		put32(e + 4, (uint32_t)(ent.gpa >> 32));
		put32(e + 8, 1024);
		r = vmm_gpu_exec(v->gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), e, sizeof(e), NULL, 24,
				NULL);
		if (expect(v, r, OK_NODATA, "RESOURCE_ATTACH_BACKING of one 1 KiB entry") ||
				expect(v, vmm_ctx_attach_resource(v->gpu, ctx, small.res, NULL), OK_NODATA,
					"CTX_ATTACH_RESOURCE of the 1 KiB resource"))
			return 1;
		nopages = v->next_res++;
		r = vmm_gpu_resource_create_2d(v->gpu, nopages, 2, 64, 64, NULL);
		if (expect(v, r, OK_NODATA, "RESOURCE_CREATE_2D 64x64 (no backing)") ||
				expect(v, vmm_ctx_attach_resource(v->gpu, ctx, nopages, NULL), OK_NODATA,
					"CTX_ATTACH_RESOURCE of it"))
			return 1;
	}
	if (expect(v, submit3d(v, ctx, &gir, sizeof(gir), 0), E_PARAM,
			"GET_IMAGE_REQUIREMENTS before INIT"))
		return 1;
	init_cmd(b, 20, 9999, ch.res, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM, "INIT: query ring missing"))
		return 1;
	init_cmd(b, 20, q.res, 9998, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM, "INIT: channel ring missing"))
		return 1;
	init_cmd(b, 20, q.res, loose.res, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM,
			"INIT: channel ring exists but is not attached to the context"))
		return 1;
	init_cmd(b, 20, small.res, ch.res, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM,
			"INIT: query ring of 1 KiB, smaller than a ring page"))
		return 1;
	init_cmd(b, 20, q.res, small.res, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM,
			"INIT: channel ring of 1 KiB"))
		return 1;
	init_cmd(b, 16, small.res, 0, 0);
	if (expect(v, submit3d(v, ctx, b, 16, -1), E_PARAM, "INIT (16-byte legacy): 1 KiB ring"))
		return 1;
	init_cmd(b, 20, q.res, nopages, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM,
			"INIT: channel ring is a 2D resource without guest pages"))
		return 1;
	init_cmd(b, 20, q.res, ch.res, 2);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM, "INIT: channel type 2 (camera)"))
		return 1;
	init_cmd(b, 20, q.res, ch.res, 0);
	b[2] = 28;
	if (expect(v, submit3d(v, ctx, b, 28, -1), E_PARAM, "INIT of 28 bytes (no such variant)"))
		return 1;
	init_cmd(b, 20, q.res, ch.res, 0);
	b[2] = 12;
	if (expect(v, submit3d(v, ctx, b, 12, -1), E_PARAM, "INIT of 12 bytes"))
		return 1;
	/* The failed INITs left the context uninitialised. */
	if (expect(v, submit3d(v, ctx, &gir, sizeof(gir), 0), E_PARAM,
			"GET_IMAGE_REQUIREMENTS after refused INITs"))
		return 1;
	/* Detach then name it: refused; attach again: accepted. */
	if (expect(v, vmm_ctx_detach_resource(v->gpu, ctx, ch.res, NULL), OK_NODATA,
			"CTX_DETACH_RESOURCE of the channel ring"))
		return 1;
	init_cmd(b, 20, q.res, ch.res, 0);
	if (expect(v, submit3d(v, ctx, b, 20, -1), E_PARAM, "INIT: channel ring detached"))
		return 1;
	if (expect(v, vmm_ctx_attach_resource(v->gpu, ctx, ch.res, NULL), OK_NODATA,
			"CTX_ATTACH_RESOURCE of the channel ring again"))
		return 1;
	/* Accepted variants, each on a fresh context. */
	{
		static const struct { unsigned size; uint32_t type; const char *what; } ok_init[] = {
			{ 20, 0, "INIT (20 bytes, channel 0: image queries only)" },
			{ 16, 0, "INIT (16-byte legacy, one ring)" },
			{ 24, 0, "INIT (24 bytes, libkrun's protocol_version)" },
			{ 36, 0, "INIT (36 bytes, magma's socket uuid)" },
			{ 20, 1, "INIT (20 bytes, Wayland channel)" },
			{ 16, 1, "INIT (16-byte legacy, Wayland channel)" },
		};

		for (unsigned i = 0; i < sizeof(ok_init) / sizeof(ok_init[0]); i++) {
			uint32_t id = 30 + i;
			struct ring rq, rc;

			if (expect(v, vmm_ctx_create(v->gpu, id, 5, "variant", NULL), OK_NODATA,
					"CTX_CREATE") || ring_make(v, id, &rq, XDOM_RING_SIZE) ||
					ring_make(v, id, &rc, XDOM_RING_SIZE))
				return 1;
			init_cmd(b, ok_init[i].size, rq.res, rc.res, ok_init[i].type);
			if (ok_init[i].size == 24)
				put32(b + 20, 1);
			if (expect(v, submit3d(v, id, b, ok_init[i].size, -1), OK_NODATA,
					ok_init[i].what))
				return 1;
			if (expect(v, submit3d(v, id, b, ok_init[i].size, -1), E_PARAM,
					"the same INIT again"))
				return 1;
			if (expect(v, submit3d(v, id, &gir, sizeof(gir), 0), OK_NODATA,
					"GET_IMAGE_REQUIREMENTS after it"))
				return 1;
			if (ok_init[i].type == 0) {
				uint8_t send[sizeof(struct xdom_send_receive) + 12] = { XDOM_CMD_SEND };

				send[2] = (uint8_t)sizeof(send);
				send[3] = (uint8_t)(sizeof(send) >> 8);
				put32(send + 12, 12);
				if (expect(v, submit3d(v, id, send, sizeof(send), -1), E_PARAM,
						"SEND on a context without a Wayland channel"))
					return 1;
			}
			if (expect(v, vmm_ctx_destroy(v->gpu, id, NULL), OK_NODATA, "CTX_DESTROY"))
				return 1;
			vmm_gpu_resource_unref(v->gpu, rq.res, NULL);
			vmm_gpu_resource_unref(v->gpu, rc.res, NULL);
			vmm_blob_release(vmm_dev_mem(v->dev), &rq.mem);
			vmm_blob_release(vmm_dev_mem(v->dev), &rc.mem);
		}
	}
	if (expect(v, vmm_ctx_destroy(v->gpu, ctx, NULL), OK_NODATA, "CTX_DESTROY(20)"))
		return 1;
	vmm_gpu_resource_unref(v->gpu, q.res, NULL);
	vmm_gpu_resource_unref(v->gpu, ch.res, NULL);
	vmm_gpu_resource_unref(v->gpu, loose.res, NULL);
	vmm_gpu_resource_unref(v->gpu, small.res, NULL);
	vmm_gpu_resource_unref(v->gpu, nopages, NULL);
	vmm_mem_release(vmm_dev_mem(v->dev), small.mem.ents[0].gpa, VMM_PAGE_SIZE);
	vmm_blob_release(vmm_dev_mem(v->dev), &q.mem);
	vmm_blob_release(vmm_dev_mem(v->dev), &ch.mem);
	vmm_blob_release(vmm_dev_mem(v->dev), &loose.mem);
	return 0;
}

/* --- image requirements, POLL, timelines ----------------------------- */

static int check_reqs(const struct xctx *c, uint32_t stride, uint64_t size, uint32_t blob_id,
		const char *what)
{
	struct xdom_image_requirements r;

	memcpy(&r, c->q.mem.map, sizeof(r));
	CHECK(r.strides[0] == stride && !r.strides[1] && !r.strides[2] && !r.strides[3] &&
			!r.offsets[0] && !r.offsets[1] && !r.offsets[2] && !r.offsets[3] &&
			r.modifier == 0 && r.size == size && r.blob_id == blob_id &&
			r.map_info == 0x31 && r.memory_idx == -1 && r.physical_device_idx == -1,
			"%s: stride %u offset %u modifier 0x%llx size %llu blob_id %u map_info 0x%x "
			"memory_idx %d physical_device_idx %d; expected stride %u offset 0 modifier 0 "
			"size %llu blob_id %u map_info 0x31 -1 -1", what, r.strides[0], r.offsets[0],
			(unsigned long long)r.modifier, (unsigned long long)r.size, r.blob_id,
			r.map_info, r.memory_idx, r.physical_device_idx, stride,
			(unsigned long long)size, blob_id);
	return ok("%s: stride %u size %llu blob_id %u map_info 0x31 (LINEAR, CACHED|RW)", what,
			stride, (unsigned long long)size, blob_id);
}

static struct xdom_get_image_requirements gir_cmd(uint32_t w, uint32_t h, uint32_t format)
{
	return (struct xdom_get_image_requirements){
		.hdr = { .cmd = XDOM_CMD_GET_IMAGE_REQUIREMENTS, .cmd_size = 24 },
		.width = w, .height = h, .drm_format = format,
		.flags = GBM_USE_SCANOUT | GBM_USE_LINEAR,
	};
}

static int t_queries_and_polls(struct vm *v)
{
	struct xctx c;
	struct xdom_poll poll = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
		.cmd_size = sizeof(poll) } };
	struct xdom_get_image_requirements g;
	uint64_t fpoll, fq, fg, f2, f3, f4;
	struct wl_msg m = { .len = 0 };
	int r, send_r;

	if (xctx_open(v, &c, 40, XDOM_CHANNEL_WAYLAND))
		return 1;
	ok("context 40: capset 5, two 4 KiB rings, INIT with the Wayland channel");
	/* A ring-1 POLL is held: nothing came from the compositor yet. */
	memset(c.ch.mem.map, 0xcc, 64);
	if (submit3d_nowait(v, c.id, &poll, sizeof(poll), 1, &fpoll) ||
			fence_held(v, fpoll, 300, "ring-1 POLL with no message"))
		return 1;
	/* Ring 0: answered at once, the reply in the query ring, POLL still held. */
	memset(c.q.mem.map, 0xee, 64);
	g = gir_cmd(64, 64, DRM_FORMAT_XRGB8888);
	if (submit3d_nowait(v, c.id, &g, sizeof(g), 0, &fq) ||
			fence_expect(v, fq, OK_NODATA, 1000,
				"GET_IMAGE_REQUIREMENTS on ring 0 while the ring-1 POLL is held") ||
			check_reqs(&c, 256, 16384, 4, "64x64 XR24"))
		return 1;
	g = gir_cmd(100, 10, DRM_FORMAT_R8);
	if (expect(v, submit3d(v, c.id, &g, sizeof(g), 0), OK_NODATA,
			"GET_IMAGE_REQUIREMENTS 100x10 R8") ||
			check_reqs(&c, 256, 4096, 6, "100x10 R8 (second item: next even id)"))
		return 1;
	g = gir_cmd(64, 64, DRM_FORMAT_XRGB8888);
	if (expect(v, submit3d(v, c.id, &g, sizeof(g), 0), OK_NODATA,
			"GET_IMAGE_REQUIREMENTS 64x64 XR24 again") ||
			check_reqs(&c, 256, 16384, 4, "64x64 XR24 again (cached item)"))
		return 1;
	memset(c.q.mem.map, 0xee, 64);
	g = gir_cmd(64, 64, 0x3231564e /* NV12: no linear single-plane layout */);
	if (expect(v, submit3d(v, c.id, &g, sizeof(g), 0), E_PARAM,
			"GET_IMAGE_REQUIREMENTS of NV12"))
		return 1;
	g = gir_cmd(0, 64, DRM_FORMAT_XRGB8888);
	if (expect(v, submit3d(v, c.id, &g, sizeof(g), 0), E_PARAM,
			"GET_IMAGE_REQUIREMENTS of width 0"))
		return 1;
	CHECK(((uint8_t *)c.q.mem.map)[0] == 0xee && ((uint8_t *)c.q.mem.map)[63] == 0xee,
			"a refused query wrote into the query ring");
	ok("refused queries leave the query ring alone");
	/* Unfenced and global-timeline commands are not held behind the POLL. */
	if (expect(v, submit3d(v, c.id, &g, 0, -2), OK_NODATA,
				"unfenced empty SUBMIT_3D while the POLL is held") ||
			expect(v, vmm_ctx_attach_resource(v->gpu, c.id, c.q.res, NULL), OK_NODATA,
				"unfenced CTX_ATTACH_RESOURCE while the POLL is held"))
		return 1;
	g = gir_cmd(64, 64, DRM_FORMAT_XRGB8888);
	if (submit3d_nowait(v, c.id, &g, sizeof(g), -1, &fg) ||
			fence_expect(v, fg, OK_NODATA, 1000,
				"GET_IMAGE_REQUIREMENTS on the global timeline while the POLL is held"))
		return 1;
	/* The same timeline stays in order: a ring-1 query waits for the POLL. */
	if (submit3d_nowait(v, c.id, &g, sizeof(g), 1, &f2) ||
			fence_held(v, f2, 200, "ring-1 GET_IMAGE_REQUIREMENTS behind the held POLL"))
		return 1;
	wl_get_registry(&m, 2);
	wl_sync(&m, 3);
	if (send_wl(v, &c, m.b, m.len, NULL, 0, &send_r) ||
			expect(v, send_r, OK_NODATA, "SEND get_registry + sync"))
		return 1;
	r = fence_wait(v, fpoll, 5000);
	if (expect(v, r, OK_NODATA, "the held POLL, once the compositor answered"))
		return 1;
	{
		struct xdom_send_receive rcv;

		memcpy(&rcv, c.ch.mem.map, sizeof(rcv));
		CHECK(rcv.hdr.cmd == XDOM_CMD_RECEIVE && rcv.num_identifiers == 0 &&
				rcv.opaque_data_size > 0 &&
				rcv.hdr.cmd_size == sizeof(rcv) + rcv.opaque_data_size,
				"channel ring after the POLL: cmd %u, cmd_size %u, %u identifiers, "
				"%u bytes", rcv.hdr.cmd, rcv.hdr.cmd_size, rcv.num_identifiers,
				rcv.opaque_data_size);
		ok("RECEIVE of %u bytes at offset 0 of the channel ring", rcv.opaque_data_size);
	}
	if (take_receive(&c))
		return 1;
	/* vmm_gpu fails any answer out of fence order on a timeline. */
	if (fence_expect(v, f2, OK_NODATA, 1000, "ring-1 query after the POLL, in order") ||
			poll_until_done(v, &c, 3, 5000))
		return 1;
	/* Two POLLs held: one message each, in fence order. */
	if (submit3d_nowait(v, c.id, &poll, sizeof(poll), 1, &f3) ||
			submit3d_nowait(v, c.id, &poll, sizeof(poll), 1, &f4) ||
			fence_held(v, f3, 200, "first of two POLLs, no message"))
		return 1;
	m.len = 0;
	wl_sync(&m, 4);
	if (send_wl(v, &c, m.b, m.len, NULL, 0, &send_r) ||
			expect(v, send_r, OK_NODATA, "SEND sync") ||
			fence_expect(v, f3, OK_NODATA, 2000, "the first POLL gets the sync's answer") ||
			take_receive(&c) ||
			fence_held(v, f4, 300, "the second POLL (one message per POLL)"))
		return 1;
	CHECK(wl_done(c.wl, 4) && c.wl->len == 0, "the sync's answer is not one whole RECEIVE");
	ok("one RECEIVE: delete_id + done of the sync");
	m.len = 0;
	wl_sync(&m, 5);
	if (send_wl(v, &c, m.b, m.len, NULL, 0, &send_r) ||
			expect(v, send_r, OK_NODATA, "SEND sync") ||
			fence_expect(v, f4, OK_NODATA, 2000, "the second POLL gets the next answer") ||
			take_receive(&c))
		return 1;
	CHECK(wl_done(c.wl, 5), "the second POLL's message is not the second sync's answer");
	ok("the second POLL's RECEIVE answers the second sync");
	xctx_free(v, &c);
	return expect(v, vmm_ctx_destroy(v->gpu, 40, NULL), OK_NODATA, "CTX_DESTROY(40)");
}

/* The Wayland round trip with exact counts: registry globals and done. */
static int t_roundtrip(struct vm *v)
{
	struct xctx c;
	struct wl_msg m = { .len = 0 };
	int r;

	if (xctx_open(v, &c, 41, XDOM_CHANNEL_WAYLAND))
		return 1;
	wl_get_registry(&m, 2);
	wl_sync(&m, 3);
	if (send_wl(v, &c, m.b, m.len, NULL, 0, &r) || expect(v, r, OK_NODATA, "SEND") ||
			poll_until_done(v, &c, 3, 5000))
		return 1;
	CHECK(!c.wl->error, "wl_display.error: %s", c.wl->err_msg);
	CHECK(c.wl->globals >= 5 && c.wl->shm_name != 0, "%u globals, wl_shm %u",
			c.wl->globals, c.wl->shm_name);
	CHECK(c.wl->len == 0, "%zu bytes of a partial Wayland message left", c.wl->len);
	ok("registry: %u globals (wl_shm among them) and the sync's done in %u RECEIVEs",
			c.wl->globals, c.wl->receives);
	xctx_free(v, &c);
	return expect(v, vmm_ctx_destroy(v->gpu, 41, NULL), OK_NODATA, "CTX_DESTROY(41)");
}

/* --- rings beyond 1, SUBMIT_3D limits -------------------------------- */

static int t_submit(struct vm *v)
{
	struct xctx c;
	struct xdom_poll poll = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
		.cmd_size = sizeof(poll) } };
	struct xdom_get_image_requirements g = gir_cmd(32, 32, DRM_FORMAT_XRGB8888);
	uint8_t *big;
	uint64_t f;
	uint32_t size_field;
	int r;

	if (xctx_open(v, &c, 50, XDOM_CHANNEL_WAYLAND))
		return 1;
	/* crosvm: a fence on a ring other than 0 and 1 is a spec violation. */
	if (submit3d_nowait(v, c.id, &poll, sizeof(poll), 2, &f) ||
			fence_expect(v, f, E_PARAM, 1000, "POLL fenced on ring 2"))
		return 1;
	if (submit3d_nowait(v, c.id, &poll, sizeof(poll), 63, &f) ||
			fence_expect(v, f, E_PARAM, 1000, "POLL fenced on ring 63"))
		return 1;
	memset(c.q.mem.map, 0xee, 64);
	if (submit3d_nowait(v, c.id, &g, sizeof(g), 5, &f) ||
			fence_expect(v, f, E_PARAM, 1000, "GET_IMAGE_REQUIREMENTS fenced on ring 5"))
		return 1;
	CHECK(((uint8_t *)c.q.mem.map)[0] == 0xee,
			"a submission refused for its ring still ran its commands");
	ok("a submission refused for its ring ran nothing");
	/* Unfenced, global and ring-0 POLLs: nothing to wait for. */
	if (expect(v, submit3d(v, c.id, &poll, sizeof(poll), -2), OK_NODATA, "unfenced POLL") ||
			expect(v, submit3d(v, c.id, &poll, sizeof(poll), -1), OK_NODATA,
				"POLL fenced on the global timeline") ||
			expect(v, submit3d(v, c.id, &poll, sizeof(poll), 0), OK_NODATA,
				"POLL fenced on ring 0"))
		return 1;

	/* Sizes: exactly the limit, one command more, more than sent. */
	big = calloc(1, MAX_SUBMIT + 16);
	if (!big)
		return fail("out of memory");
	for (uint32_t off = 0; off < MAX_SUBMIT + 16; off += 16) {
		big[off] = XDOM_CMD_POLL;
		big[off + 2] = 16;
	}
	r = submit3d(v, c.id, big, MAX_SUBMIT, -2);
	if (expect(v, r, OK_NODATA, "SUBMIT_3D of exactly 64 KiB (4096 unfenced POLLs)"))
		goto out;
	r = submit3d(v, c.id, big, MAX_SUBMIT + 16, -2);
	if (expect(v, r, E_PARAM, "SUBMIT_3D of 64 KiB + 16"))
		goto out;
	size_field = sizeof(g) + 4096;
	r = vmm_ctx_submit_3d(v->gpu, c.id, &g, sizeof(g), &size_field, NULL);
	if (expect(v, r, E_PARAM, "SUBMIT_3D whose size goes 4 KiB beyond the chain"))
		goto out;
	size_field = 0xffffffffu;
	r = vmm_ctx_submit_3d(v->gpu, c.id, &g, sizeof(g), &size_field, NULL);
	if (expect(v, r, E_PARAM, "SUBMIT_3D of size 0xffffffff"))
		goto out;
	r = submit3d(v, 4242, &g, sizeof(g), -2);
	if (expect(v, r, E_CTX, "SUBMIT_3D to an unknown context"))
		goto out;
	{
		struct vmm_gpu_opts o = fenced(v, 0, false);

		o.ctx_id = 4242;
		r = vmm_ctx_submit_3d(v->gpu, 4242, &g, sizeof(g), NULL, &o);
		if (expect(v, r, E_CTX, "SUBMIT_3D fenced on ring 0 of an unknown context"))
			goto out;
	}
	r = submit3d(v, c.id, big, 0, -2);
	if (expect(v, r, OK_NODATA, "SUBMIT_3D of 0 bytes"))
		goto out;
	/* Malformed command streams; what came before the bad command ran. */
	{
		uint8_t s[64];

		memset(s, 0, sizeof(s));
		s[0] = XDOM_CMD_POLL;
		s[2] = 0;
		r = submit3d(v, c.id, s, 16, -2);
		if (expect(v, r, E_PARAM, "a command with cmd_size 0"))
			goto out;
		s[2] = 32;
		r = submit3d(v, c.id, s, 16, -2);
		if (expect(v, r, E_PARAM, "a command with cmd_size beyond the buffer"))
			goto out;
		r = submit3d(v, c.id, s, 4, -2);
		if (expect(v, r, E_PARAM, "4 bytes, shorter than a header"))
			goto out;
		memset(c.q.mem.map, 0xee, 64);
		g = gir_cmd(48, 48, DRM_FORMAT_XRGB8888);
		memcpy(s, &g, sizeof(g));
		memset(s + 24, 0, 16);
		s[24] = 9; /* libkrun's FUTEX_SIGNAL: refused */
		s[26] = 16;
		r = submit3d(v, c.id, s, 40, -2);
		if (expect(v, r, E_PARAM, "GET_IMAGE_REQUIREMENTS then command 9"))
			goto out;
		if (check_reqs(&c, 256, 12288, 4, "the query before the refused command ran"))
			goto out;
		s[24] = XDOM_CMD_RECEIVE;
		r = submit3d(v, c.id, s + 24, 16, -2);
		if (expect(v, r, E_PARAM, "RECEIVE sent by the guest"))
			goto out;
	}
	free(big);
	xctx_free(v, &c);
	return expect(v, vmm_ctx_destroy(v->gpu, 50, NULL), OK_NODATA, "CTX_DESTROY(50)");
out:
	free(big);
	return 1;
}

/* --- CTX_DESTROY and RESOURCE_UNREF with a held POLL ------------------ */

static int t_destroy_held(struct vm *v)
{
	struct xctx c;
	struct xdom_poll poll = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
		.cmd_size = sizeof(poll) } };
	struct xdom_header h;
	uint64_t f1, f2;
	int r;

	if (xctx_open(v, &c, 60, XDOM_CHANNEL_WAYLAND))
		return 1;
	memset(c.ch.mem.map, 0xcc, 64);
	if (submit3d_nowait(v, c.id, &poll, sizeof(poll), 1, &f1) ||
			fence_held(v, f1, 200, "POLL before CTX_DESTROY"))
		return 1;
	/* The destroy is answered; the held POLL must come back too. */
	if (expect(v, vmm_ctx_destroy(v->gpu, c.id, NULL), OK_NODATA,
			"CTX_DESTROY with a held POLL"))
		return 1;
	r = fence_wait(v, f1, 1000);
	if (expect(v, r, OK_NODATA, "the held POLL came back with the destroy"))
		return 1;
	memcpy(&h, c.ch.mem.map, sizeof(h));
	CHECK(h.cmd == 0 && h.cmd_size == 0, "the channel ring's header after the early "
			"fence: cmd %u size %u, expected cleared (no message)", h.cmd, h.cmd_size);
	ok("the channel ring's header is cleared: the guest sees no message");
	xctx_free(v, &c);

	/* RESOURCE_UNREF of the attached rings. */
	if (xctx_open(v, &c, 61, XDOM_CHANNEL_WAYLAND))
		return 1;
	if (expect(v, vmm_gpu_resource_unref(v->gpu, c.q.res, NULL), OK_NODATA,
			"RESOURCE_UNREF of the attached query ring"))
		return 1;
	{
		struct xdom_get_image_requirements g = gir_cmd(16, 16, DRM_FORMAT_XRGB8888);

		if (expect(v, submit3d(v, c.id, &g, sizeof(g), 0), E_PARAM,
				"GET_IMAGE_REQUIREMENTS into the freed query ring"))
			return 1;
	}
	if (submit3d_nowait(v, c.id, &poll, sizeof(poll), 1, &f2) ||
			fence_held(v, f2, 200, "POLL on the channel ring"))
		return 1;
	if (expect(v, vmm_gpu_resource_unref(v->gpu, c.ch.res, NULL), OK_NODATA,
			"RESOURCE_UNREF of the channel ring with a POLL held on it"))
		return 1;
	{
		struct wl_msg m = { .len = 0 };

		wl_sync(&m, 2);
		if (send_wl(v, &c, m.b, m.len, NULL, 0, &r) || expect(v, r, OK_NODATA,
				"SEND sync (its answer has no ring to go to)"))
			return 1;
	}
	/*
	 * The answer cannot be written (logged, dropped): the POLL stays held,
	 * it never signals a message the guest could not read, and comes back
	 * with the context.
	 */
	if (fence_held(v, f2, 500, "POLL whose channel ring was freed, after a message came") ||
			expect(v, vmm_ctx_destroy(v->gpu, c.id, NULL), OK_NODATA,
				"CTX_DESTROY after its rings were freed") ||
			fence_expect(v, f2, OK_NODATA, 1000, "the POLL came back with the destroy"))
		return 1;
	if (vmm_dev_ping(v->dev) < 0)
		return fail("the device stopped answering: %s", vmm_dev_error(v->dev));
	/* The pages are the guest's again only now. */
	vmm_blob_release(vmm_dev_mem(v->dev), &c.q.mem);
	vmm_blob_release(vmm_dev_mem(v->dev), &c.ch.mem);
	xctx_free(v, &c);
	return 0;
}

/* --- a guest that never polls ----------------------------------------- */

static int t_flood(struct vm *v)
{
	struct xctx c, probe;
	struct wl_msg m = { .len = 0 };
	const unsigned sends = 1000, per = XDOM_MAX_SEND_DATA / 12;
	unsigned accepted = 0, refused = 0;
	long rss0 = cw_pid ? rss_kib() : -1, rss1, worst = 0;
	int64_t slowest = 0;
	int r;

	if (xctx_open(v, &c, 70, XDOM_CHANNEL_WAYLAND))
		return 1;
	for (unsigned i = 0; i < sends; i++) {
		int64_t t0;

		m.len = 0;
		for (unsigned k = 0; k < per; k++)
			wl_sync(&m, 2 + k); /* ids reused: the client's object map stays small */
		if (send_wl(v, &c, m.b, m.len, NULL, 0, &r))
			return 1;
		if (r == OK_NODATA) {
			CHECK(refused == 0, "SEND %u accepted after an earlier one was refused", i);
			accepted++;
		} else if (r == E_PARAM) {
			refused++;
		} else {
			return fail("SEND %u answered %s", i, rname(r, v));
		}
		/* Responsive throughout: a display-info round trip. */
		t0 = ms_now();
		{
			struct vmm_gpu_display d[16];

			r = vmm_gpu_get_display_info(v->gpu, d, NULL);
		}
		if (r != VIRTIO_GPU_RESP_OK_DISPLAY_INFO)
			return fail("GET_DISPLAY_INFO during the flood: %s", rname(r, v));
		if (ms_now() - t0 > slowest)
			slowest = ms_now() - t0;
		if (cw_pid && i % 50 == 49) {
			long now = rss_kib();

			if (now - rss0 > worst)
				worst = now - rss0;
		}
	}
	printf("flood: %u SENDs of %u syncs each: %u accepted, %u refused; slowest "
			"GET_DISPLAY_INFO %lld ms\n", sends, per, accepted, refused,
			(long long)slowest);
	CHECK(accepted > 0, "no SEND was accepted");
	CHECK(slowest < 1000, "GET_DISPLAY_INFO took %lld ms during the flood",
			(long long)slowest);
	ok("crossway stayed responsive (slowest round trip %lld ms)", (long long)slowest);
	/* Another context of the same VM still gets its round trip. */
	if (xctx_open(v, &probe, 71, XDOM_CHANNEL_WAYLAND))
		return 1;
	m.len = 0;
	wl_sync(&m, 2);
	if (send_wl(v, &probe, m.b, m.len, NULL, 0, &r) || expect(v, r, OK_NODATA, "SEND") ||
			poll_until_done(v, &probe, 2, 5000))
		return 1;
	ok("another context of the flooded VM gets its sync answered");
	xctx_free(v, &probe);
	if (expect(v, vmm_ctx_destroy(v->gpu, 71, NULL), OK_NODATA, "CTX_DESTROY(71)"))
		return 1;
	if (cw_pid) {
		rss1 = rss_kib();
		if (rss1 - rss0 > worst)
			worst = rss1 - rss0;
		printf("flood: crossway RSS %ld KiB before, %ld KiB after, worst growth %ld KiB\n",
				rss0, rss1, worst);
		CHECK(worst < rss_bound, "crossway's RSS grew by %ld KiB during the flood "
				"(bound %ld KiB)", worst, rss_bound);
		ok("crossway's RSS grew by %ld KiB at most (bound: %ld KiB)", worst, rss_bound);
	}
	/* The guest polls at last: the first message is the first sync's answer. */
	if (poll_one(v, &c, 2000))
		return 1;
	CHECK(wl_done(c.wl, 2), "the first RECEIVE after the flood does not answer the first "
			"sync (callback 2)");
	ok("the first RECEIVE after the flood answers the first sync");
	if (refused) {
		/*
		 * The compositor dropped the client that did not read (libwayland
		 * does when a client's socket is full): all crossway had kept for
		 * the guest was the one RECEIVE it had read. Nothing more comes.
		 */
		struct xdom_poll p = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
			.cmd_size = sizeof(p) } };
		uint64_t f;

		if (submit3d_nowait(v, c.id, &p, sizeof(p), 1, &f) ||
				fence_held(v, f, 300, "POLL after the one RECEIVE kept for the guest"))
			return 1;
		ok("crossway kept one message for the guest that did not poll, no more");
		xctx_free(v, &c);
		return expect(v, vmm_ctx_destroy(v->gpu, 70, NULL), OK_NODATA,
				"CTX_DESTROY(70) with that POLL held") ||
			fence_expect(v, f, OK_NODATA, 1000, "the POLL came back with the destroy");
	}
	printf("note: the compositor kept the flooded client: nothing more to check\n");
	xctx_free(v, &c);
	return expect(v, vmm_ctx_destroy(v->gpu, 70, NULL), OK_NODATA, "CTX_DESTROY(70)");
}

/* --- reset and reconnection with live contexts ------------------------- */

static int live_contexts(struct vm *v, struct xctx *c, unsigned n, uint32_t first,
		uint64_t *polls)
{
	struct xdom_poll poll = { .hdr = { .cmd = XDOM_CMD_POLL, .ring_idx = 1,
		.cmd_size = sizeof(poll) } };

	for (unsigned i = 0; i < n; i++) {
		if (xctx_open(v, &c[i], first + i, XDOM_CHANNEL_WAYLAND) ||
				submit3d_nowait(v, c[i].id, &poll, sizeof(poll), 1, &polls[i]))
			return 1;
	}
	return 0;
}

static int t_reset(const char *sock)
{
	struct vm v;
	struct xctx c[4];
	uint64_t polls[4];
	long base = fd_base, live;
	uint8_t poll[16] = { XDOM_CMD_POLL, 0, 16 };

	if (vm_open(&v, "reset", sock) || live_contexts(&v, c, 4, 80, polls))
		return 1;
	if (cw_pid) {
		live = fd_count();
		printf("reset: crossway holds %ld fds idle, %ld with a VM and 4 live contexts\n",
				base, live);
		CHECK(live >= base + 8, "4 Wayland contexts should hold at least 8 fds "
				"(%ld -> %ld)", base, live);
	}
	/* Driver reset and rebind (unbind/rebind, reboot): the contexts go. */
	if (vmm_dev_reset(v.dev) < 0 || vmm_dev_rebind(v.dev) < 0)
		return fail("reset/rebind: %s", vmm_dev_error(v.dev));
	for (unsigned i = 0; i < 4; i++)
		xctx_free(&v, &c[i]);
	if (expect(&v, submit3d(&v, 80, poll, sizeof(poll), -2), E_CTX,
				"SUBMIT_3D to a context of before the reset") ||
			expect(&v, vmm_ctx_create(v.gpu, 80, 5, "again", NULL), OK_NODATA,
				"CTX_CREATE with the same id after the reset") ||
			expect(&v, vmm_ctx_destroy(v.gpu, 80, NULL), OK_NODATA, "CTX_DESTROY"))
		return 1;
	if (live_contexts(&v, c, 4, 90, polls))
		return 1;
	/* The VMM dies with four live contexts and held POLLs. */
	vmm_dev_disconnect(v.dev);
	for (unsigned i = 0; i < 4; i++)
		xctx_free(&v, &c[i]);
	vm_close(&v);
	if (cw_pid && fds_back_to(base, "VMM gone with live contexts"))
		return 1;
	/* Reconnection: a fresh device; then reset with live contexts, disconnect. */
	for (unsigned round = 0; round < 3; round++) {
		if (vm_open(&v, "reset", sock) || live_contexts(&v, c, 2, 100, polls))
			return 1;
		if (vmm_dev_reset(v.dev) < 0)
			return fail("reset: %s", vmm_dev_error(v.dev));
		vmm_dev_disconnect(v.dev);
		for (unsigned i = 0; i < 2; i++)
			xctx_free(&v, &c[i]);
		vm_close(&v);
	}
	if (cw_pid && fds_back_to(base, "three reconnections with live contexts"))
		return 1;
	return 0;
}

/* --- two VMs ------------------------------------------------------------ */

/* wl_registry@2.bind(wl_shm as 4), wl_shm@4.create_pool(5, blob, size), sync(6). */
static int wl_bind_shm_pool(struct vm *v, struct xctx *c, uint32_t blob, int32_t size,
		int *resp)
{
	struct wl_msg m = { .len = 0 };
	uint32_t s;

	wl_begin(&m, 2, 0, &s);
	wl_u32(&m, c->wl->shm_name);
	wl_str(&m, "wl_shm");
	wl_u32(&m, 1);
	wl_u32(&m, 4);
	wl_end(&m, s);
	wl_begin(&m, 4, 0, &s);
	wl_u32(&m, 5);
	wl_u32(&m, (uint32_t)size);
	wl_end(&m, s);
	wl_sync(&m, 6);
	return send_wl(v, c, m.b, m.len, &blob, 1, resp);
}

static int t_two_vms(struct vm *a, const char *other)
{
	struct vm b;
	struct xctx ca, cb;
	struct ring ba, bb;
	struct wl_msg m = { .len = 0 };
	int r;

	if (vm_open(&b, "beta", other))
		return 1;
	if (xctx_open(a, &ca, 110, XDOM_CHANNEL_WAYLAND) ||
			xctx_open(&b, &cb, 110, XDOM_CHANNEL_WAYLAND))
		return 1;
	/* The same resource id in both VMs: 8 KiB in a, 4 KiB in b. */
	a->next_res = b.next_res = 500;
	if (ring_make(a, ca.id, &ba, 8192))
		return 1;
	if (ring_make(&b, 0, &bb, 4096))
		return 1;
	CHECK(ba.res == bb.res, "ids differ");
	/* b's registry. */
	wl_get_registry(&m, 2);
	wl_sync(&m, 2 + 1);
	if (send_wl(&b, &cb, m.b, m.len, NULL, 0, &r) || expect(&b, r, OK_NODATA, "SEND") ||
			poll_until_done(&b, &cb, 3, 5000))
		return 1;
	/* Not attached in b (only in a): refused. */
	if (wl_bind_shm_pool(&b, &cb, bb.res, 4096, &r) ||
			expect(&b, r, E_PARAM, "SEND of a blob id attached only in the other VM"))
		return 1;
	if (wl_bind_shm_pool(&b, &cb, 4242, 4096, &r) ||
			expect(&b, r, E_PARAM, "SEND of a blob id unknown in this VM"))
		return 1;
	if (expect(&b, vmm_ctx_attach_resource(b.gpu, cb.id, bb.res, NULL), OK_NODATA,
			"CTX_ATTACH_RESOURCE of b's own blob with the same id"))
		return 1;
	/* 8 KiB would fit a's blob: refused, so the id named b's 4 KiB blob. */
	if (wl_bind_shm_pool(&b, &cb, bb.res, 8192, &r) ||
			expect(&b, r, OK_NODATA, "SEND create_pool(8 KiB) with b's blob") ||
			poll_until_done(&b, &cb, 6, 5000))
		return 1;
	CHECK(cb.wl->error, "a pool of 8 KiB over b's 4 KiB blob was accepted: the id "
			"resolved to the other VM's blob");
	ok("create_pool(8 KiB) on b's 4 KiB blob: wl_display.error on object %u code %u (%s)",
			cb.wl->err_obj, cb.wl->err_code, cb.wl->err_msg);
	/* A fresh client of b: a pool that fits b's blob is accepted. */
	xctx_free(&b, &cb);
	if (expect(&b, vmm_ctx_destroy(b.gpu, 110, NULL), OK_NODATA, "CTX_DESTROY") ||
			xctx_open(&b, &cb, 111, XDOM_CHANNEL_WAYLAND) ||
			expect(&b, vmm_ctx_attach_resource(b.gpu, cb.id, bb.res, NULL), OK_NODATA,
				"CTX_ATTACH_RESOURCE"))
		return 1;
	m.len = 0;
	wl_get_registry(&m, 2);
	wl_sync(&m, 3);
	if (send_wl(&b, &cb, m.b, m.len, NULL, 0, &r) || poll_until_done(&b, &cb, 3, 5000) ||
			wl_bind_shm_pool(&b, &cb, bb.res, 4096, &r) ||
			expect(&b, r, OK_NODATA, "SEND create_pool(4 KiB) with b's blob") ||
			poll_until_done(&b, &cb, 6, 5000))
		return 1;
	CHECK(!cb.wl->error, "create_pool(4 KiB) on b's own blob: wl_display.error %s",
			cb.wl->err_msg);
	ok("create_pool(4 KiB) on b's own 4 KiB blob accepted: a blob id resolves in its "
			"own VM only");
	xctx_free(a, &ca);
	xctx_free(&b, &cb);
	vmm_blob_release(vmm_dev_mem(a->dev), &ba.mem);
	vmm_blob_release(vmm_dev_mem(b.dev), &bb.mem);
	vmm_dev_disconnect(b.dev);
	vm_close(&b);
	return expect(a, vmm_ctx_destroy(a->gpu, 110, NULL), OK_NODATA, "CTX_DESTROY(110)");
}

static int device_tests(const char *sock, const char *other, const char *only)
{
	struct vm v;
	static const struct {
		const char *name;
		int (*fn)(struct vm *v);
	} tests[] = {
		{ "capsets", t_capsets },
		{ "contexts", t_contexts },
		{ "init", t_init },
		{ "queries-polls", t_queries_and_polls },
		{ "roundtrip", t_roundtrip },
		{ "submit", t_submit },
		{ "destroy-held", t_destroy_held },
		{ "flood", t_flood },
	};
	int rc = 0;

	if (vm_open(&v, "alpha", sock))
		return 1;
	for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]) && !rc; i++) {
		if (only && strcmp(only, tests[i].name) != 0)
			continue;
		printf("== %s\n", tests[i].name);
		rc = tests[i].fn(&v);
		if (!rc && vmm_gpu_stats(v.gpu)->fence_order_violations)
			rc = fail("fence order violations");
	}
	if (!rc && other && (!only || strcmp(only, "two-vms") == 0)) {
		printf("== two-vms\n");
		rc = t_two_vms(&v, other);
	}
	if (!rc) {
		const struct vmm_gpu_stats *st = vmm_gpu_stats(v.gpu);

		printf("stats: %llu commands, %llu fences, %llu order violations\n",
				(unsigned long long)st->commands, (unsigned long long)st->fences_done,
				(unsigned long long)st->fence_order_violations);
	}
	vmm_dev_disconnect(v.dev);
	vm_close(&v);
	if (!rc && (!only || strcmp(only, "reset") == 0)) {
		printf("== reset\n");
		rc = t_reset(sock);
	}
	if (!rc)
		printf("ok: every device-level check passed\n");
	return rc;
}

int main(int argc, char **argv)
{
	bool none = false, legacy = false, device = false;
	const char *sock = NULL, *other = NULL, *only = NULL;
	static const char usage[] =
		"usage: %s SOCKET [--no-contexts] [--legacy-init]\n"
		"       %s SOCKET --device [--pid CROSSWAY_PID] [--other SOCKET] [--only TEST]\n"
		"              [--rss-bound KIB]\n"
		"options for the transport: CWG_VHOST_USER_OPTS\n";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-contexts") == 0)
			none = true;
		else if (strcmp(argv[i], "--legacy-init") == 0)
			legacy = true;
		else if (strcmp(argv[i], "--device") == 0)
			device = true;
		else if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc)
			cw_pid = (pid_t)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--other") == 0 && i + 1 < argc)
			other = argv[++i];
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--rss-bound") == 0 && i + 1 < argc)
			rss_bound = strtol(argv[++i], NULL, 10);
		else if (argv[i][0] != '-' && !sock)
			sock = argv[i];
		else {
			fprintf(stderr, usage, argv[0], argv[0]);
			return 2;
		}
	}
	if (!sock) {
		fprintf(stderr, usage, argv[0], argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (device) {
		if (cw_pid && (fd_base = fd_count()) < 0) {
			fprintf(stderr, "cannot read /proc/%d/fd\n", (int)cw_pid);
			return 2;
		}
		return device_tests(sock, other, only);
	}
	return none ? no_contexts(sock) : whole_path(sock, legacy);
}
