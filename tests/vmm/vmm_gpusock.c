/*
 * Our end of the vhost-user-gpu display socket (vhost-user-gpu-socket.md).
 * It is always read without blocking, messages are reassembled, counted and
 * checked, and with the peer option enabled the requests are answered the
 * way QEMU 7.2 answers them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "vmm_internal.h"

#define DISPLAY_INFO_SIZE 408u
#define EDID_RESP_SIZE 1056u

static void gs_error(struct vmm_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void gs_error(struct vmm_dev *dev, const char *fmt, ...)
{
	struct vmm_gpu_socket_stats *s = &dev->gs.stats;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
	va_end(ap);
	s->errors++;
	vmm_dev_note(dev, "GPU socket: %s", s->last_error);
}

int vmm_gpusock_open(struct vmm_dev *dev, int *their_end)
{
	struct vmm_gpusock *gs = &dev->gs;
	int sv[2];

	vmm_gpusock_close(dev);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		vmm_dev_fail(dev, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		vmm_dev_fail(dev, "fcntl: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	gs->fd = sv[0];
	gs->hdr_got = gs->got = 0;
	gs->in_payload = false;
	gs->protocol = 0;
	gs->stats.eof = false;
	gs->stats.sockets++;
	memset(gs->scanout_seen, 0, sizeof(gs->scanout_seen));
	*their_end = sv[1];
	return 0;
}

void vmm_gpusock_close(struct vmm_dev *dev)
{
	if (dev->gs.fd >= 0) {
		close(dev->gs.fd);
		dev->gs.fd = -1;
	}
	dev->gs.deferred = false;
}

bool vmm_gpusock_pollable(const struct vmm_dev *dev)
{
	return dev->gs.fd >= 0 && !dev->gs.deferred && !dev->gs.stats.eof;
}

/* ------------------------------------------------------------------ */
/* The QEMU side: answers                                              */
/* ------------------------------------------------------------------ */

static int send_reply(struct vmm_dev *dev, uint32_t request, const void *payload,
		uint32_t size)
{
	uint8_t *b = malloc(GS_HDR_SIZE + size);
	ssize_t n;

	if (!b) {
		vmm_dev_fail(dev, "out of memory");
		return -1;
	}
	vmm_put32(b, request);
	vmm_put32(b + 4, GS_FLAG_REPLY);
	vmm_put32(b + 8, size);
	if (size)
		memcpy(b + GS_HDR_SIZE, payload, size);
	/* Replies are small: they always fit in the socket buffer. */
	n = send(dev->gs.fd, b, GS_HDR_SIZE + size, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(b);
	if (n != (ssize_t)(GS_HDR_SIZE + size)) {
		gs_error(dev, "reply to request %u not sent: %s", request,
				n < 0 ? strerror(errno) : "short write");
		return 0;
	}
	dev->gs.stats.replies++;
	return 0;
}

static void fill_display_info(const struct vmm_gpu_socket_peer *peer, uint8_t *b)
{
	memset(b, 0, DISPLAY_INFO_SIZE);
	vmm_put32(b, VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	for (unsigned i = 0; i < peer->num_outputs && i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
		uint8_t *m = b + 24 + 24 * i;

		vmm_put32(m + 8, peer->width);
		vmm_put32(m + 12, peer->height);
		vmm_put32(m + 16, 1); /* enabled */
	}
}

/* A minimal EDID 1.4 block whose preferred mode is width x height. */
static void fill_edid(const struct vmm_gpu_socket_peer *peer, uint8_t *b)
{
	static const uint8_t header[8] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };
	uint8_t *e = b + 32, *dtd = e + 54, sum = 0;
	uint32_t w = peer->width, h = peer->height;

	memset(b, 0, EDID_RESP_SIZE);
	vmm_put32(b, VIRTIO_GPU_RESP_OK_EDID);
	vmm_put32(b + 24, 128);
	memcpy(e, header, sizeof(header));
	e[8] = 0x04;  /* manufacturer "AAA" */
	e[9] = 0x21;
	e[18] = 1;    /* version 1.4 */
	e[19] = 4;
	e[20] = 0x80; /* digital input */
	vmm_put32(dtd, 0);
	dtd[0] = 0x10; /* pixel clock (10 kHz units), non-zero */
	dtd[1] = 0x27;
	dtd[2] = (uint8_t)w;
	dtd[4] = (uint8_t)((w >> 8) << 4);
	dtd[5] = (uint8_t)h;
	dtd[7] = (uint8_t)((h >> 8) << 4);
	for (unsigned i = 0; i < 127; i++)
		sum = (uint8_t)(sum + e[i]);
	e[127] = (uint8_t)(0x100 - sum);
}

static int answer(struct vmm_dev *dev, uint32_t req)
{
	const struct vmm_gpu_socket_peer *peer = &dev->cfg.gpu_peer;
	uint8_t b[EDID_RESP_SIZE];

	switch (req) {
	case VMM_GPU_MSG_GET_PROTOCOL_FEATURES:
		vmm_put64(b, peer->protocol_features);
		return send_reply(dev, req, b, 8);
	case VMM_GPU_MSG_GET_DISPLAY_INFO:
		fill_display_info(peer, b);
		return send_reply(dev, req, b, DISPLAY_INFO_SIZE);
	case VMM_GPU_MSG_DMABUF_UPDATE:
		/* We have no GL display: answer at once, as QEMU does then. */
		return send_reply(dev, req, NULL, 0);
	case VMM_GPU_MSG_GET_EDID:
		/* 7.2 logs it as unhandled and never answers. */
		if (!(peer->protocol_features & BIT(GS_PROTOCOL_F_EDID)))
			return 0;
		fill_edid(peer, b);
		return send_reply(dev, req, b, EDID_RESP_SIZE);
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

static bool size_ok(uint32_t req, const uint8_t *p, uint32_t size)
{
	static const uint32_t fixed[VMM_GPU_MSG_MAX] = {
		[VMM_GPU_MSG_GET_PROTOCOL_FEATURES] = 0,
		[VMM_GPU_MSG_SET_PROTOCOL_FEATURES] = 8,
		[VMM_GPU_MSG_GET_DISPLAY_INFO] = 0,
		[VMM_GPU_MSG_CURSOR_POS] = 12,
		[VMM_GPU_MSG_CURSOR_POS_HIDE] = 12,
		[VMM_GPU_MSG_CURSOR_UPDATE] = 16404,
		[VMM_GPU_MSG_SCANOUT] = 12,
		[VMM_GPU_MSG_DMABUF_SCANOUT] = 40,
		[VMM_GPU_MSG_DMABUF_UPDATE] = 20,
		[VMM_GPU_MSG_GET_EDID] = 4,
		[VMM_GPU_MSG_DMABUF_SCANOUT2] = 48,
	};

	if (req == VMM_GPU_MSG_UPDATE) {
		uint64_t w, h;

		if (size < 20)
			return false;
		w = vmm_get32(p + 12);
		h = vmm_get32(p + 16);
		return size == 20 + w * h * 4;
	}
	return req == 0 || req >= VMM_GPU_MSG_MAX || size == fixed[req];
}

/* What would break QEMU 7.2 (vhost-user-gpu-socket.md §3, §10.2.8). */
static void check_message(struct vmm_dev *dev, uint32_t req, const uint8_t *p,
		uint32_t size)
{
	struct vmm_gpusock *gs = &dev->gs;
	uint32_t scanout = size >= 4 ? vmm_get32(p) : 0;

	if (req == 0 || req >= VMM_GPU_MSG_MAX) {
		gs_error(dev, "unknown request %u", req);
		return;
	}
	if (!size_ok(req, p, size)) {
		gs_error(dev, "request %u has a payload of %u bytes", req, size);
		return;
	}
	if (req == VMM_GPU_MSG_GET_EDID && !(gs->protocol & BIT(GS_PROTOCOL_F_EDID)))
		gs_error(dev, "GET_EDID without the EDID protocol feature (QEMU 7.2 never answers)");
	if (req == VMM_GPU_MSG_DMABUF_SCANOUT2 && !(gs->protocol & BIT(GS_PROTOCOL_F_DMABUF2)))
		gs_error(dev, "DMABUF_SCANOUT2 without the DMABUF2 protocol feature");
	if (req == VMM_GPU_MSG_SCANOUT && scanout < 16)
		gs->scanout_seen[scanout] = vmm_get32(p + 4) > 0;
	if (req == VMM_GPU_MSG_UPDATE && (scanout >= 16 || !gs->scanout_seen[scanout]))
		gs_error(dev, "UPDATE on scanout %u before any SCANOUT (crashes QEMU 7.2)", scanout);
}

static int dispatch(struct vmm_dev *dev)
{
	struct vmm_gpusock *gs = &dev->gs;
	uint32_t req = gs->request;

	gs->stats.msgs[req < VMM_GPU_MSG_MAX ? req : 0]++;
	gs->stats.bytes += GS_HDR_SIZE + gs->size;
	/* Gates GET_EDID and DMABUF_SCANOUT2, answered or not. */
	if (req == VMM_GPU_MSG_SET_PROTOCOL_FEATURES && gs->size == 8)
		gs->protocol = vmm_get64(gs->payload);
	check_message(dev, req, gs->payload, gs->size);
	if (dev->cfg.gpu_peer.enabled && answer(dev, req) < 0)
		return -1;
	if (dev->listener.gpu_socket_msg)
		dev->listener.gpu_socket_msg(dev->listener.data, req, gs->payload, gs->size);
	gs->hdr_got = gs->got = 0;
	gs->in_payload = false;
	return 0;
}

static int start_payload(struct vmm_dev *dev)
{
	struct vmm_gpusock *gs = &dev->gs;

	gs->request = vmm_get32(gs->hdr);
	gs->flags = vmm_get32(gs->hdr + 4); /* not checked: 7.2 sends garbage */
	gs->size = vmm_get32(gs->hdr + 8);
	if (gs->size > GS_MAX_PAYLOAD) {
		gs_error(dev, "request %u announces %u bytes; closing", gs->request, gs->size);
		vmm_gpusock_close(dev);
		return -1;
	}
	if (gs->size > gs->cap || !gs->payload) {
		uint8_t *p = realloc(gs->payload, gs->size ? gs->size : 1);

		if (!p) {
			vmm_dev_fail(dev, "out of memory");
			return -1;
		}
		gs->payload = p;
		gs->cap = gs->size;
	}
	gs->in_payload = true;
	gs->got = 0;
	return 0;
}

static void close_received_fds(struct vmm_dev *dev, struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
			dev->gs.stats.fds++;
		}
	}
}

/* One non-blocking read; 1 if something was read, 0 if nothing, -1. */
static int read_some(struct vmm_dev *dev)
{
	struct vmm_gpusock *gs = &dev->gs;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;

	if (gs->in_payload) {
		iov.iov_base = gs->payload + gs->got;
		iov.iov_len = gs->size - gs->got;
	} else {
		iov.iov_base = gs->hdr + gs->hdr_got;
		iov.iov_len = GS_HDR_SIZE - gs->hdr_got;
	}
	n = recvmsg(gs->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* A back end that dies with our reply unread resets the socket:
	 * that is a hang-up like EOF, not a protocol error. */
	if (n < 0 && errno != ECONNRESET)
		return -1;
	if (n > 0)
		close_received_fds(dev, &msg);
	if (n <= 0) {
		if (gs->hdr_got || gs->in_payload)
			gs_error(dev, "EOF in the middle of a message");
		gs->stats.eof = true;
		return 0;
	}
	if (gs->in_payload)
		gs->got += (size_t)n;
	else
		gs->hdr_got += (size_t)n;
	return 1;
}

int vmm_gpusock_service(struct vmm_dev *dev)
{
	struct vmm_gpusock *gs = &dev->gs;

	while (gs->fd >= 0 && !gs->stats.eof) {
		int r = read_some(dev);

		if (r < 0) {
			gs_error(dev, "read: %s", strerror(errno));
			vmm_gpusock_close(dev);
			return 0;
		}
		if (r == 0)
			break;
		if (!gs->in_payload && gs->hdr_got == GS_HDR_SIZE && start_payload(dev) < 0)
			return gs->fd < 0 ? 0 : -1;
		if (gs->in_payload && gs->got == gs->size && dispatch(dev) < 0)
			return -1;
	}
	return 0;
}
