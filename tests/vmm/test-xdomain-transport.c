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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int main(int argc, char **argv)
{
	bool none = false, legacy = false;
	const char *sock = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-contexts") == 0)
			none = true;
		else if (strcmp(argv[i], "--legacy-init") == 0)
			legacy = true;
		else if (argv[i][0] != '-' && !sock)
			sock = argv[i];
		else {
			fprintf(stderr, "usage: %s SOCKET [--no-contexts] [--legacy-init]\n"
					"options for the transport: CWG_VHOST_USER_OPTS\n", argv[0]);
			return 2;
		}
	}
	if (!sock) {
		fprintf(stderr, "usage: %s SOCKET [--no-contexts] [--legacy-init]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return none ? no_contexts(sock) : whole_path(sock, legacy);
}
