/*
 * The vhost-user connection: message transport with strict reply checks,
 * and the handshake phases of vhost-user.md §10.1 exactly as QEMU 7.2 runs
 * them for vhost-user-gpu-pci.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "vmm_internal.h"

/* vhost-user payloads are in host byte order and virtqueues little-endian;
 * the helpers in vmm_internal.h serve both only on a little-endian host. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian hosts only");

/* QEMU 7.2 accepts protocol bits 0..16 (VHOST_USER_PROTOCOL_F_MAX = 17). */
#define QEMU72_PROTOCOL_MASK 0x1ffffull
/* A generic front end: MQ, REPLY_ACK, SLAVE_REQ, CONFIG, CONFIGURE_MEM_SLOTS. */
#define GENERIC_PROTOCOL_MASK (BIT(PF_MQ) | BIT(PF_REPLY_ACK) | BIT(PF_SLAVE_REQ) | \
		BIT(PF_CONFIG) | BIT(PF_CONFIGURE_MEM_SLOTS))

void vmm_config_init(struct vmm_config *cfg, enum vmm_profile profile)
{
	*cfg = (struct vmm_config){
		.profile = profile,
		.mem_size = 512ull << 20,
		.nregions = 2,
		.ctrl_queue_size = 64,
		.cursor_queue_size = 16,
		.indirect_desc = true,
		.event_idx = true,
		.queue_reset = true,
		.edid = true,
		.max_outputs = 1,
		.protocol_mask = profile == VMM_PROFILE_QEMU72 ?
			QEMU72_PROTOCOL_MASK : GENERIC_PROTOCOL_MASK,
		.timeout_ms = 5000,
		.gpu_socket = profile == VMM_PROFILE_QEMU72,
		.gpu_peer = { .num_outputs = 1, .width = 1280, .height = 800 },
	};
}

void vmm_config_set_device(struct vmm_config *cfg, enum vmm_device_kind device)
{
	cfg->device = device;
	if (device == VMM_DEVICE_INPUT) {
		/* hw/input/virtio-input.c: both queues have 64 entries. */
		cfg->ctrl_queue_size = 64;
		cfg->cursor_queue_size = 64;
		cfg->gpu_socket = false;
		cfg->gpu_peer.enabled = false;
		cfg->edid = false;
	}
}

static const char *const request_names[] = {
	[1] = "GET_FEATURES", [2] = "SET_FEATURES", [3] = "SET_OWNER",
	[4] = "RESET_OWNER", [5] = "SET_MEM_TABLE", [6] = "SET_LOG_BASE",
	[7] = "SET_LOG_FD", [8] = "SET_VRING_NUM", [9] = "SET_VRING_ADDR",
	[10] = "SET_VRING_BASE", [11] = "GET_VRING_BASE", [12] = "SET_VRING_KICK",
	[13] = "SET_VRING_CALL", [14] = "SET_VRING_ERR",
	[15] = "GET_PROTOCOL_FEATURES", [16] = "SET_PROTOCOL_FEATURES",
	[17] = "GET_QUEUE_NUM", [18] = "SET_VRING_ENABLE", [19] = "SEND_RARP",
	[20] = "NET_SET_MTU", [21] = "SET_SLAVE_REQ_FD", [22] = "IOTLB_MSG",
	[23] = "SET_VRING_ENDIAN", [24] = "GET_CONFIG", [25] = "SET_CONFIG",
	[26] = "CREATE_CRYPTO_SESSION", [27] = "CLOSE_CRYPTO_SESSION",
	[28] = "POSTCOPY_ADVISE", [29] = "POSTCOPY_LISTEN", [30] = "POSTCOPY_END",
	[31] = "GET_INFLIGHT_FD", [32] = "SET_INFLIGHT_FD",
	[33] = "GPU_SET_SOCKET", [34] = "RESET_DEVICE", [35] = "VRING_KICK",
	[36] = "GET_MAX_MEM_SLOTS", [37] = "ADD_MEM_REG", [38] = "REM_MEM_REG",
	[39] = "SET_STATUS", [40] = "GET_STATUS",
};

const char *vmm_vhost_request_name(uint32_t request)
{
	if (request < sizeof(request_names) / sizeof(request_names[0]) &&
			request_names[request])
		return request_names[request];
	return "UNKNOWN";
}

void vmm_dev_fail(struct vmm_dev *dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dev->err, sizeof(dev->err), fmt, ap);
	va_end(ap);
}

void vmm_dev_note(struct vmm_dev *dev, const char *fmt, ...)
{
	va_list ap;

	(void)dev;
	fputs("vmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* ------------------------------------------------------------------ */
/* Construction                                                        */
/* ------------------------------------------------------------------ */

struct vmm_dev *vmm_dev_new_with_mem(const struct vmm_config *cfg, struct vmm_mem *mem)
{
	struct vmm_dev *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	dev->cfg = *cfg;
	dev->sock = dev->slave_fd = dev->gs.fd = -1;
	for (unsigned q = 0; q < 2; q++) {
		dev->q[q].kick_fd = dev->q[q].call_fd = dev->q[q].err_fd = -1;
		for (unsigned i = 0; i < VMM_STALE_CALLS; i++)
			dev->q[q].stale_call[i] = -1;
	}
	dev->mem = mem;
	dev->owns_mem = !mem;
	if (!dev->mem)
		dev->mem = vmm_mem_new(cfg->mem_size, cfg->nregions);
	if (!dev->mem) {
		free(dev);
		return NULL;
	}
	return dev;
}

struct vmm_dev *vmm_dev_new(const struct vmm_config *cfg)
{
	return vmm_dev_new_with_mem(cfg, NULL);
}

static void free_retired(struct vmm_dev *dev, unsigned q);

static void close_queue_fds(struct vmm_queue *vq)
{
	close_fd(&vq->kick_fd);
	close_fd(&vq->call_fd);
	close_fd(&vq->err_fd);
	for (unsigned i = 0; i < VMM_STALE_CALLS; i++)
		close_fd(&vq->stale_call[i]);
	vq->call_pending = false;
}

void vmm_dev_free(struct vmm_dev *dev)
{
	if (!dev)
		return;
	vmm_dev_disconnect(dev);
	for (unsigned q = 0; q < 2; q++)
		free_retired(dev, q);
	free(dev->gs.payload);
	if (dev->owns_mem)
		vmm_mem_free(dev->mem);
	free(dev->path);
	free(dev);
}

const char *vmm_dev_error(const struct vmm_dev *dev) { return dev->err; }
const struct vmm_config *vmm_dev_config(const struct vmm_dev *dev) { return &dev->cfg; }
struct vmm_mem *vmm_dev_mem(struct vmm_dev *dev) { return dev->mem; }
bool vmm_dev_connected(const struct vmm_dev *dev) { return dev->sock >= 0; }
bool vmm_dev_running(const struct vmm_dev *dev) { return dev->running; }
uint64_t vmm_dev_backend_features(const struct vmm_dev *dev) { return dev->backend_features; }
uint64_t vmm_dev_features(const struct vmm_dev *dev) { return dev->features; }
uint64_t vmm_dev_backend_protocol_features(const struct vmm_dev *dev) { return dev->backend_protocol; }
uint64_t vmm_dev_protocol_features(const struct vmm_dev *dev) { return dev->protocol; }
uint64_t vmm_dev_max_queues(const struct vmm_dev *dev) { return dev->max_queues; }
uint64_t vmm_dev_max_mem_slots(const struct vmm_dev *dev) { return dev->max_mem_slots; }
const struct vmm_gpu_config *vmm_dev_gpu_config(const struct vmm_dev *dev) { return &dev->config; }
const struct vmm_gpu_config *vmm_dev_backend_config(const struct vmm_dev *dev) { return &dev->backend_config; }
const struct vmm_dev_stats *vmm_dev_stats(const struct vmm_dev *dev) { return &dev->stats; }
const struct vmm_gpu_socket_stats *vmm_dev_gpu_socket_stats(const struct vmm_dev *dev) { return &dev->gs.stats; }

bool vmm_dev_has_feature(const struct vmm_dev *dev, unsigned bit)
{
	return bit < 64 && (dev->features & BIT(bit));
}

void vmm_dev_set_listener(struct vmm_dev *dev, const struct vmm_dev_listener *l)
{
	if (l)
		dev->listener = *l;
	else
		memset(&dev->listener, 0, sizeof(dev->listener));
}

struct vmm_vring *vmm_dev_vring(struct vmm_dev *dev, unsigned q)
{
	return q < 2 ? dev->q[q].vr : NULL;
}

/* ------------------------------------------------------------------ */
/* Waiting: every blocking wait also services the side channels        */
/* ------------------------------------------------------------------ */

static bool protocol(const struct vmm_dev *dev, unsigned bit)
{
	return dev->protocol & BIT(bit);
}

static void drain_err_fd(struct vmm_dev *dev, unsigned q)
{
	uint64_t v;

	if (read(dev->q[q].err_fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		dev->stats.err_signals[q] += v;
		vmm_dev_note(dev, "back end signalled the err fd of vq%u", q);
	}
}

static int read_exact_fd(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, MSG_WAITALL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Back-end request channel: QEMU 7.2's vhost-user-gpu handles none of
 * these requests usefully (CONFIG_CHANGE_MSG is refused), so we refuse all
 * of them the way QEMU does: a u64 1 when NEED_REPLY is set.
 */
static int service_slave(struct vmm_dev *dev)
{
	uint8_t hdr[VU_HDR_SIZE], payload[256], reply[VU_HDR_SIZE + 8];
	uint32_t req, flags, size;

	if (read_exact_fd(dev->slave_fd, hdr, sizeof(hdr)) < 0) {
		/* The back end may close its channel; that is not an error. */
		close_fd(&dev->slave_fd);
		return 0;
	}
	req = vmm_get32(hdr);
	flags = vmm_get32(hdr + 4);
	size = vmm_get32(hdr + 8);
	if (size > sizeof(payload) || read_exact_fd(dev->slave_fd, payload, size) < 0) {
		vmm_dev_fail(dev, "back-end channel: bad message %u of size %u", req, size);
		return -1;
	}
	dev->stats.slave_requests++;
	vmm_dev_note(dev, "back-end channel request %u (size %u) refused as QEMU 7.2 does",
			req, size);
	if (!(flags & VU_NEED_REPLY))
		return 0;
	vmm_put32(reply, req);
	vmm_put32(reply + 4, (flags & ~VU_NEED_REPLY) | VU_REPLY);
	vmm_put32(reply + 8, 8);
	vmm_put64(reply + 12, 1);
	if (send(dev->slave_fd, reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply)) {
		vmm_dev_fail(dev, "back-end channel: reply failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The connection is gone: drop everything as a VMM would, so that the
 * driver layer abandons its commands and the caller sees "not connected". */
static int peer_gone(struct vmm_dev *dev, const char *when)
{
	vmm_dev_disconnect(dev);
	vmm_dev_fail(dev, "the back end closed the vhost-user connection%s%s",
			when ? " " : "", when ? when : "");
	return -1;
}

/* The back end may only speak when spoken to: anything readable on the
 * vhost-user socket while no reply is expected is EOF or a violation. */
static int check_idle_socket(struct vmm_dev *dev)
{
	char c;
	ssize_t n = recv(dev->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return peer_gone(dev, NULL);
	if (n > 0) {
		vmm_dev_fail(dev, "unsolicited message from the back end");
		return -1;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	vmm_dev_fail(dev, "vhost-user socket: %s", strerror(errno));
	return -1;
}

enum {
	P_TARGET, P_SOCK, P_GPU, P_SLAVE, P_ERR0, P_ERR1,
	P_STALE, /* VMM_STALE_CALLS per queue */
	P_COUNT = P_STALE + 2 * VMM_STALE_CALLS,
};

static void build_pollset(struct vmm_dev *dev, int fd, struct pollfd *p)
{
	for (unsigned i = 0; i < P_COUNT; i++)
		p[i] = (struct pollfd){ .fd = -1, .events = POLLIN };
	p[P_TARGET].fd = fd;
	if (dev->sock != fd)
		p[P_SOCK].fd = dev->sock;
	if (vmm_gpusock_pollable(dev))
		p[P_GPU].fd = dev->gs.fd;
	p[P_SLAVE].fd = dev->slave_fd;
	p[P_ERR0].fd = dev->q[0].err_fd;
	p[P_ERR1].fd = dev->q[1].err_fd;
	for (unsigned q = 0; q < 2; q++) {
		for (unsigned i = 0; i < VMM_STALE_CALLS; i++)
			p[P_STALE + q * VMM_STALE_CALLS + i].fd = dev->q[q].stale_call[i];
	}
}

static void drain_stale_call(struct vmm_dev *dev, unsigned q, unsigned i)
{
	uint64_t v;

	if (read(dev->q[q].stale_call[i], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		dev->stats.stale_calls[q] += v;
		vmm_dev_note(dev, "vq%u: the back end signalled the call fd replaced "
				"%u SET_VRING_CALL(s) ago (QEMU would lose this interrupt)",
				q, i + 1);
	}
}

static int service_ready(struct vmm_dev *dev, const struct pollfd *p)
{
	if (p[P_SOCK].revents && check_idle_socket(dev) < 0)
		return -1;
	if (p[P_GPU].revents && vmm_gpusock_service(dev) < 0)
		return -1;
	if (p[P_SLAVE].revents && service_slave(dev) < 0)
		return -1;
	for (unsigned q = 0; q < 2; q++) {
		if (p[P_ERR0 + q].revents)
			drain_err_fd(dev, q);
		for (unsigned i = 0; i < VMM_STALE_CALLS; i++) {
			if (p[P_STALE + q * VMM_STALE_CALLS + i].revents)
				drain_stale_call(dev, q, i);
		}
	}
	return 0;
}

int vmm_dev_wait_fd(struct vmm_dev *dev, int fd, int timeout_ms)
{
	int64_t deadline = vmm_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p[P_COUNT];
		int n;

		build_pollset(dev, fd, p);
		n = poll(p, P_COUNT, vmm_remaining_ms(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vmm_dev_fail(dev, "poll: %s", strerror(errno));
			return -1;
		}
		if (service_ready(dev, p) < 0)
			return -1;
		if (p[P_TARGET].revents)
			return 1;
		if (n == 0 || vmm_remaining_ms(deadline) == 0)
			return 0;
	}
}

int vmm_dev_service(struct vmm_dev *dev)
{
	return vmm_dev_wait_fd(dev, -1, 0) < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Transport                                                           */
/* ------------------------------------------------------------------ */

static void trace(struct vmm_dev *dev, char dir, uint32_t req, uint32_t flags,
		uint32_t size, const uint8_t *payload, unsigned nfds)
{
	if (!dev->cfg.trace)
		return;
	fprintf(stderr, "vmm: %c %s(%u) flags 0x%x size %u fds %u", dir,
			vmm_vhost_request_name(req), req, flags, size, nfds);
	if (size == 8)
		fprintf(stderr, " u64 0x%" PRIx64, vmm_get64(payload));
	fputc('\n', stderr);
}

int vmm_dev_send_raw(struct vmm_dev *dev, uint32_t request, uint32_t flags,
		const void *payload, uint32_t size, const int *fds, unsigned nfds)
{
	uint8_t hdr[VU_HDR_SIZE];
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)(uintptr_t)payload, .iov_len = size },
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	ssize_t n;

	if (dev->sock < 0) {
		vmm_dev_fail(dev, "%s: not connected", vmm_vhost_request_name(request));
		return -1;
	}
	if (nfds > 8) {
		vmm_dev_fail(dev, "at most 8 fds per message");
		return -1;
	}
	vmm_put32(hdr, request);
	vmm_put32(hdr + 4, flags);
	vmm_put32(hdr + 8, size);
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	trace(dev, '>', request, flags, size, payload, nfds);
	do {
		n = sendmsg(dev->sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(VU_HDR_SIZE + size)) {
		vmm_dev_fail(dev, "sending %s: %s", vmm_vhost_request_name(request),
				n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	dev->stats.messages_sent++;
	return 0;
}

static void take_fds(struct msghdr *msg, struct vmm_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;
		int fds[16];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > 16)
			n = 16;
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (m->nfds < 8)
				m->fds[m->nfds++] = fds[i];
			else
				close(fds[i]);
		}
	}
}

/* Reads len bytes, waiting (and servicing side channels) until deadline. */
static int recv_bytes(struct vmm_dev *dev, uint8_t *buf, size_t len,
		struct vmm_msg *m, int64_t deadline, const char *what)
{
	while (len > 0) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = buf, .iov_len = len };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n;
		int r = vmm_dev_wait_fd(dev, dev->sock, vmm_remaining_ms(deadline));

		if (r < 0)
			return -1;
		if (r == 0) {
			vmm_dev_fail(dev, "no reply to %s within %d ms", what,
					dev->cfg.timeout_ms);
			return -1;
		}
		n = recvmsg(dev->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			char when[64];

			snprintf(when, sizeof(when), "instead of replying to %s", what);
			return peer_gone(dev, when);
		}
		if (n < 0) {
			vmm_dev_fail(dev, "waiting for the reply to %s: %s", what, strerror(errno));
			return -1;
		}
		take_fds(&msg, m);
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_msg(struct vmm_dev *dev, struct vmm_msg *m, int timeout_ms,
		const char *what)
{
	int64_t deadline = vmm_now_ms() + timeout_ms;
	uint8_t hdr[VU_HDR_SIZE];

	m->nfds = 0;
	if (dev->sock < 0) {
		vmm_dev_fail(dev, "%s: not connected", what);
		return -1;
	}
	if (recv_bytes(dev, hdr, sizeof(hdr), m, deadline, what) < 0)
		return -1;
	m->request = vmm_get32(hdr);
	m->flags = vmm_get32(hdr + 4);
	m->size = vmm_get32(hdr + 8);
	if (m->size > sizeof(m->payload)) {
		vmm_dev_fail(dev, "reply to %s announces %u payload bytes", what, m->size);
		return -1;
	}
	if (recv_bytes(dev, m->payload, m->size, m, deadline, what) < 0)
		return -1;
	dev->stats.replies_received++;
	trace(dev, '<', m->request, m->flags, m->size, m->payload, m->nfds);
	return 0;
}

int vmm_dev_recv_raw(struct vmm_dev *dev, struct vmm_msg *msg, int timeout_ms)
{
	return recv_msg(dev, msg, timeout_ms, "a raw request");
}

static void close_msg_fds(struct vmm_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

/* Reads the reply to `req` and checks it the way QEMU 7.2 does, and more:
 * flags exactly 0x5, same request, exact size, no fds. */
static int expect_reply(struct vmm_dev *dev, uint32_t req, uint32_t size, void *out)
{
	struct vmm_msg *m = &dev->rx;
	const char *name = vmm_vhost_request_name(req);

	if (recv_msg(dev, m, dev->cfg.timeout_ms, name) < 0)
		return -1;
	if (m->nfds) {
		close_msg_fds(m);
		vmm_dev_fail(dev, "reply to %s carries file descriptors", name);
		return -1;
	}
	if (m->flags != (VU_VERSION | VU_REPLY)) {
		vmm_dev_fail(dev, "reply to %s has flags 0x%x instead of 0x5", name, m->flags);
		return -1;
	}
	if (m->request != req) {
		vmm_dev_fail(dev, "reply to %s has request %u (%s)", name, m->request,
				vmm_vhost_request_name(m->request));
		return -1;
	}
	if (m->size != size) {
		vmm_dev_fail(dev, "reply to %s has size %u, expected %u", name, m->size, size);
		return -1;
	}
	memcpy(out, m->payload, size);
	return 0;
}

static int expect_ack(struct vmm_dev *dev, uint32_t req)
{
	uint8_t v[8];

	if (expect_reply(dev, req, 8, v) < 0)
		return -1;
	if (vmm_get64(v) != 0) {
		vmm_dev_fail(dev, "back end refused %s (ack %" PRIu64 ")",
				vmm_vhost_request_name(req), vmm_get64(v));
		return -1;
	}
	return 0;
}

/* Sends a request; with `ack` and REPLY_ACK negotiated it carries
 * NEED_REPLY and the u64 ack is checked. */
static int request(struct vmm_dev *dev, uint32_t req, const void *payload,
		uint32_t size, const int *fds, unsigned nfds, bool ack)
{
	bool need = ack && protocol(dev, PF_REPLY_ACK);

	if (vmm_dev_send_raw(dev, req, VU_VERSION | (need ? VU_NEED_REPLY : 0),
			payload, size, fds, nfds) < 0)
		return -1;
	return need ? expect_ack(dev, req) : 0;
}

static int get_u64(struct vmm_dev *dev, uint32_t req, uint64_t *v)
{
	uint8_t b[8];

	if (vmm_dev_send_raw(dev, req, VU_VERSION, NULL, 0, NULL, 0) < 0 ||
			expect_reply(dev, req, 8, b) < 0)
		return -1;
	*v = vmm_get64(b);
	return 0;
}

static int set_u64(struct vmm_dev *dev, uint32_t req, uint64_t v, bool ack)
{
	uint8_t b[8];

	vmm_put64(b, v);
	return request(dev, req, b, sizeof(b), NULL, 0, ack);
}

static int set_state(struct vmm_dev *dev, uint32_t req, unsigned index, uint32_t num)
{
	uint8_t b[8];

	vmm_put32(b, index);
	vmm_put32(b + 4, num);
	return request(dev, req, b, sizeof(b), NULL, 0, false);
}

/* SET_VRING_KICK/CALL/ERR with a fresh eventfd; returns it. */
static int set_vring_fd(struct vmm_dev *dev, uint32_t req, unsigned q, int *fd_out)
{
	uint8_t b[8];
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0) {
		vmm_dev_fail(dev, "eventfd: %s", strerror(errno));
		return -1;
	}
	vmm_put64(b, q);
	if (request(dev, req, b, sizeof(b), &fd, 1, false) < 0) {
		close(fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
}

/*
 * QEMU swaps call fds (masked notifier, irqfd). A signal already pending on
 * the old fd is forwarded, as QEMU's unmask path does; anything the back end
 * writes to the old fd later is lost, as with QEMU.
 */
static int replace_call_fd(struct vmm_dev *dev, unsigned q)
{
	struct vmm_queue *vq = &dev->q[q];
	uint64_t v;
	int fd;

	if (set_vring_fd(dev, VU_SET_VRING_CALL, q, &fd) < 0)
		return -1;
	if (vq->call_fd >= 0 && read(vq->call_fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		vq->call_pending = true;
		dev->stats.calls_forwarded++;
	}
	/* The oldest replaced fd goes; the others keep being watched. */
	close_fd(&vq->stale_call[VMM_STALE_CALLS - 1]);
	memmove(&vq->stale_call[1], &vq->stale_call[0],
			sizeof(int) * (VMM_STALE_CALLS - 1));
	vq->stale_call[0] = vq->call_fd;
	vq->call_fd = fd;
	return 0;
}

static int replace_err_fd(struct vmm_dev *dev, unsigned q)
{
	int fd;

	if (set_vring_fd(dev, VU_SET_VRING_ERR, q, &fd) < 0)
		return -1;
	close_fd(&dev->q[q].err_fd);
	dev->q[q].err_fd = fd;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

static int try_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int vmm_dev_connect(struct vmm_dev *dev, const char *path, int timeout_ms)
{
	int64_t deadline = vmm_now_ms() + timeout_ms;
	char *copy;
	int fd;

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		vmm_dev_fail(dev, "socket path too long: %s", path);
		return -1;
	}
	copy = strdup(path);
	if (!copy) {
		vmm_dev_fail(dev, "out of memory");
		return -1;
	}
	free(dev->path);
	dev->path = copy;
	/* The back end may still be starting: retry while it is not listening. */
	while ((fd = try_connect(path)) < 0) {
		struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };

		if ((errno != ENOENT && errno != ECONNREFUSED) || vmm_now_ms() >= deadline) {
			vmm_dev_fail(dev, "connect %s: %s", path, strerror(errno));
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return vmm_dev_connect_fd(dev, fd);
}

int vmm_dev_connect_fd(struct vmm_dev *dev, int fd)
{
	if (dev->sock >= 0)
		vmm_dev_disconnect(dev);
	dev->sock = fd;
	return 0;
}

/* Device state is gone: tell the driver layer, as a guest would see a
 * reset device. */
static void notify_reset(struct vmm_dev *dev)
{
	if (dev->listener.device_reset)
		dev->listener.device_reset(dev->listener.data);
}

/* The ring leaves service but stays allocated until new rings exist. */
static void retire_ring(struct vmm_dev *dev, unsigned q, bool stopped)
{
	struct vmm_queue *vq = &dev->q[q];

	if (!vq->vr)
		return;
	free_retired(dev, q);
	vq->retired = vq->vr;
	vq->retired_used = vmm_vring_used_idx(vq->vr);
	vq->retired_stopped = stopped;
	vq->vr = NULL;
}

/* A ring stopped by GET_VRING_BASE must not be written again (vhost-user.md
 * §7); after a hang-up the back end may legitimately finish its work. */
static void free_retired(struct vmm_dev *dev, unsigned q)
{
	struct vmm_queue *vq = &dev->q[q];

	if (!vq->retired)
		return;
	if (vq->retired_stopped && vmm_vring_used_idx(vq->retired) != vq->retired_used) {
		dev->stats.late_used_writes++;
		vmm_dev_note(dev, "vq%u: used idx moved from %u to %u after GET_VRING_BASE",
				q, vq->retired_used, vmm_vring_used_idx(vq->retired));
	}
	vmm_vring_free(vq->retired);
	vq->retired = NULL;
}

void vmm_dev_disconnect(struct vmm_dev *dev)
{
	bool had_state = dev->sock >= 0 || dev->running;

	close_fd(&dev->sock);
	close_fd(&dev->slave_fd);
	vmm_gpusock_close(dev);
	for (unsigned q = 0; q < 2; q++) {
		close_queue_fds(&dev->q[q]);
		retire_ring(dev, q, false);
	}
	memset(dev->region_added, 0, sizeof(dev->region_added));
	dev->realized = dev->probed = dev->running = false;
	if (had_state)
		notify_reset(dev);
}

int vmm_dev_reconnect(struct vmm_dev *dev, int timeout_ms)
{
	char *path = dev->path ? strdup(dev->path) : NULL;
	int r;

	if (!path) {
		vmm_dev_fail(dev, "reconnect: never connected by path");
		return -1;
	}
	vmm_dev_disconnect(dev);
	r = vmm_dev_connect(dev, path, timeout_ms);
	free(path);
	return r < 0 ? -1 : vmm_dev_realize(dev);
}

int vmm_dev_ping(struct vmm_dev *dev)
{
	uint64_t v;

	return get_u64(dev, VU_GET_FEATURES, &v);
}

int vmm_dev_wait_disconnect(struct vmm_dev *dev, int timeout_ms)
{
	int64_t deadline = vmm_now_ms() + timeout_ms;

	while (dev->sock >= 0) {
		char c;
		ssize_t n;
		int r = vmm_dev_wait_fd(dev, dev->sock, vmm_remaining_ms(deadline));

		if (r < 0)
			return -1;
		if (r == 0) {
			vmm_dev_fail(dev, "the back end is still connected after %d ms", timeout_ms);
			return -1;
		}
		n = recv(dev->sock, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		if (n > 0) {
			vmm_dev_fail(dev, "unsolicited message from the back end");
			return -1;
		}
	}
	vmm_dev_disconnect(dev);
	return 0;
}

/* ------------------------------------------------------------------ */
/* A: realize                                                          */
/* ------------------------------------------------------------------ */

static int negotiate_protocol(struct vmm_dev *dev)
{
	if (!(dev->backend_features & BIT(VF_PROTOCOL_FEATURES))) {
		vmm_dev_fail(dev, "back end lacks VHOST_USER_F_PROTOCOL_FEATURES (bit 30), "
				"so it cannot offer CONFIG: QEMU 7.2 refuses it");
		return -1;
	}
	if (get_u64(dev, VU_GET_PROTOCOL_FEATURES, &dev->backend_protocol) < 0)
		return -1;
	dev->protocol = dev->backend_protocol & dev->cfg.protocol_mask;
	if (!protocol(dev, PF_CONFIG)) {
		vmm_dev_fail(dev, "vhost-user device expecting VHOST_USER_PROTOCOL_F_CONFIG "
				"but the vhost-user backend does not support it");
		return -1;
	}
	return set_u64(dev, VU_SET_PROTOCOL_FEATURES, dev->protocol, false);
}

static int query_limits(struct vmm_dev *dev)
{
	dev->max_queues = 1;
	if (protocol(dev, PF_MQ)) {
		if (get_u64(dev, VU_GET_QUEUE_NUM, &dev->max_queues) < 0)
			return -1;
		if (dev->max_queues < 2)
			vmm_dev_note(dev, "back end supports only %" PRIu64 " queues; "
					"virtio-gpu has 2", dev->max_queues);
	}
	dev->max_mem_slots = 8;
	if (protocol(dev, PF_CONFIGURE_MEM_SLOTS)) {
		if (get_u64(dev, VU_GET_MAX_MEM_SLOTS, &dev->max_mem_slots) < 0)
			return -1;
		if (dev->max_mem_slots < vmm_mem_region_count(dev->mem)) {
			vmm_dev_fail(dev, "back end allows %" PRIu64 " memory slots, we have %u regions",
					dev->max_mem_slots, vmm_mem_region_count(dev->mem));
			return -1;
		}
	}
	return 0;
}

static int setup_slave_channel(struct vmm_dev *dev)
{
	int sv[2];
	int r;

	if (!protocol(dev, PF_SLAVE_REQ))
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		vmm_dev_fail(dev, "socketpair: %s", strerror(errno));
		return -1;
	}
	/* QEMU sets NEED_REPLY here whenever REPLY_ACK is negotiated. */
	r = request(dev, VU_SET_SLAVE_REQ_FD, NULL, 0, &sv[1], 1, true);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return -1;
	}
	close_fd(&dev->slave_fd);
	dev->slave_fd = sv[0];
	return 0;
}

int vmm_dev_realize(struct vmm_dev *dev)
{
	uint64_t again;

	if (dev->sock < 0) {
		vmm_dev_fail(dev, "realize: not connected");
		return -1;
	}
	if (get_u64(dev, VU_GET_FEATURES, &dev->backend_features) < 0 ||
			negotiate_protocol(dev) < 0 || query_limits(dev) < 0 ||
			setup_slave_channel(dev) < 0 ||
			request(dev, VU_SET_OWNER, NULL, 0, NULL, 0, false) < 0 ||
			get_u64(dev, VU_GET_FEATURES, &again) < 0)
		return -1;
	if (again != dev->backend_features)
		vmm_dev_note(dev, "GET_FEATURES changed from 0x%" PRIx64 " to 0x%" PRIx64,
				dev->backend_features, again);
	for (unsigned q = 0; q < 2; q++) {
		if (replace_call_fd(dev, q) < 0 || replace_err_fd(dev, q) < 0)
			return -1;
	}
	dev->realized = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* B: probe                                                            */
/* ------------------------------------------------------------------ */

static int get_config(struct vmm_dev *dev)
{
	uint8_t req[CONFIG_HDR_SIZE + GPU_CONFIG_SIZE] = { 0 };
	uint8_t rep[sizeof(req)];
	struct vmm_gpu_config *c = &dev->backend_config;

	vmm_put32(req, 0);               /* offset */
	vmm_put32(req + 4, GPU_CONFIG_SIZE);
	vmm_put32(req + 8, 0);           /* flags: normal access */
	if (vmm_dev_send_raw(dev, VU_GET_CONFIG, VU_VERSION, req, sizeof(req), NULL, 0) < 0 ||
			expect_reply(dev, VU_GET_CONFIG, sizeof(rep), rep) < 0)
		return -1;
	/* QEMU ignores these echoed fields; libvhost-user echoes them. */
	if (vmm_get32(rep) != 0 || vmm_get32(rep + 4) != GPU_CONFIG_SIZE)
		vmm_dev_note(dev, "GET_CONFIG reply echoes offset %u size %u (sent 0, 16)",
				vmm_get32(rep), vmm_get32(rep + 4));
	c->events_read = vmm_get32(rep + 12);
	c->events_clear = vmm_get32(rep + 16);
	c->num_scanouts = vmm_get32(rep + 20);
	c->num_capsets = vmm_get32(rep + 24);
	return 0;
}

int vmm_dev_get_config(struct vmm_dev *dev, uint32_t offset, void *buf, uint32_t size)
{
	uint8_t req[CONFIG_HDR_SIZE + VMM_CONFIG_MAX] = { 0 };
	uint8_t rep[sizeof(req)];

	if (size > VMM_CONFIG_MAX) {
		vmm_dev_fail(dev, "GET_CONFIG of %u bytes: QEMU sends at most %u", size,
				VMM_CONFIG_MAX);
		return -1;
	}
	vmm_put32(req, offset);
	vmm_put32(req + 4, size);
	vmm_put32(req + 8, 0); /* flags: normal access */
	if (vmm_dev_send_raw(dev, VU_GET_CONFIG, VU_VERSION, req, CONFIG_HDR_SIZE + size,
			NULL, 0) < 0 ||
			expect_reply(dev, VU_GET_CONFIG, CONFIG_HDR_SIZE + size, rep) < 0)
		return -1;
	memcpy(buf, rep + CONFIG_HDR_SIZE, size);
	return 0;
}

int vmm_dev_set_config(struct vmm_dev *dev, uint32_t offset, const void *buf,
		uint32_t size)
{
	uint8_t req[CONFIG_HDR_SIZE + VMM_CONFIG_MAX] = { 0 };

	if (size > VMM_CONFIG_MAX) {
		vmm_dev_fail(dev, "SET_CONFIG of %u bytes: QEMU sends at most %u", size,
				VMM_CONFIG_MAX);
		return -1;
	}
	vmm_put32(req, offset);
	vmm_put32(req + 4, size);
	vmm_put32(req + 8, 0); /* VHOST_SET_CONFIG_TYPE_MASTER */
	memcpy(req + CONFIG_HDR_SIZE, buf, size);
	/* vhost_user_set_config asks for an ack whenever REPLY_ACK is there. */
	return request(dev, VU_SET_CONFIG, req, CONFIG_HDR_SIZE + size, NULL, 0, true);
}

int vmm_dev_probe(struct vmm_dev *dev)
{
	struct vmm_gpu_config *g = &dev->config;

	if (!dev->realized) {
		vmm_dev_fail(dev, "probe: device not realized");
		return -1;
	}
	if (dev->cfg.device == VMM_DEVICE_INPUT) {
		/* The input driver reads its config itself, field by field. */
		dev->probed = true;
		return 0;
	}
	/* Linux reads the config twice while probing (obs). */
	if (get_config(dev) < 0 || get_config(dev) < 0)
		return -1;
	*g = dev->backend_config;
	if (dev->cfg.profile == VMM_PROFILE_QEMU72) {
		/* QEMU owns these three fields. */
		g->events_read = 0;
		g->events_clear = 0;
		g->num_scanouts = dev->cfg.max_outputs;
	} else {
		if (dev->cfg.force_num_scanouts)
			g->num_scanouts = dev->cfg.force_num_scanouts;
		/* Linux refuses a device without scanouts. */
		if (g->num_scanouts < 1 || g->num_scanouts > VIRTIO_GPU_MAX_SCANOUTS) {
			vmm_dev_fail(dev, "config num_scanouts %u is outside 1..16", g->num_scanouts);
			return -1;
		}
	}
	dev->probed = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* C: DRIVER_OK                                                        */
/* ------------------------------------------------------------------ */

/* What SET_FEATURES carries: the features the guest acked, plus bit 30. */
static uint64_t compute_features(const struct vmm_dev *dev)
{
	const struct vmm_config *c = &dev->cfg;
	/* virtio-input has no device feature bits; Linux 6.1 acks none. */
	uint64_t device = c->device == VMM_DEVICE_INPUT ? 0 :
		BIT(VIRTIO_GPU_F_VIRGL) | (c->edid ? BIT(VIRTIO_GPU_F_EDID) : 0);
	uint64_t ring = (c->indirect_desc ? BIT(VF_INDIRECT_DESC) : 0) |
		(c->event_idx ? BIT(VF_EVENT_IDX) : 0) | BIT(VF_VERSION_1) |
		(c->queue_reset ? BIT(VF_RING_RESET) : 0);
	uint64_t acked;

	if (c->profile == VMM_PROFILE_QEMU72) {
		/* Only VIRGL and EDID pass through; the ring bits come from
		 * device properties whatever the back end offers (§10.2.2-3). */
		acked = (dev->backend_features & device) | ring;
	} else {
		if (c->device == VMM_DEVICE_GPU)
			device |= BIT(VIRTIO_GPU_F_RESOURCE_UUID) |
				BIT(VIRTIO_GPU_F_RESOURCE_BLOB) | BIT(VIRTIO_GPU_F_CONTEXT_INIT);
		acked = dev->backend_features & (device | ring);
	}
	acked |= dev->backend_features & BIT(VF_PROTOCOL_FEATURES);
	return (acked | c->features_add) & ~c->features_del;
}

static int send_mem_table(struct vmm_dev *dev)
{
	unsigned n = vmm_mem_region_count(dev->mem);
	uint8_t b[8 + 32 * 8] = { 0 };
	int fds[8];

	if (n > 8) {
		vmm_dev_fail(dev, "SET_MEM_TABLE carries at most 8 regions, we have %u", n);
		return -1;
	}
	vmm_put32(b, n);
	for (unsigned i = 0; i < n; i++) {
		const struct vmm_region *r = vmm_mem_region(dev->mem, i);
		uint8_t *e = b + 8 + 32 * i;

		vmm_put64(e, r->gpa);
		vmm_put64(e + 8, r->size);
		vmm_put64(e + 16, r->uaddr);
		vmm_put64(e + 24, r->mmap_offset);
		fds[i] = vmm_mem_fd(dev->mem); /* one fd per region, same memfd */
	}
	return request(dev, VU_SET_MEM_TABLE, b, 8 + 32 * n, fds, n, true);
}

/* Like QEMU's shadow table: regions the back end already has are not sent
 * again, so a rebind with CONFIGURE_MEM_SLOTS sends no memory messages. */
static int add_mem_regions(struct vmm_dev *dev)
{
	int fd = vmm_mem_fd(dev->mem);

	for (unsigned i = 0; i < vmm_mem_region_count(dev->mem); i++) {
		const struct vmm_region *r = vmm_mem_region(dev->mem, i);
		uint8_t b[40] = { 0 };

		if (dev->region_added[i])
			continue;
		vmm_put64(b + 8, r->gpa);
		vmm_put64(b + 16, r->size);
		vmm_put64(b + 24, r->uaddr);
		vmm_put64(b + 32, r->mmap_offset);
		if (request(dev, VU_ADD_MEM_REG, b, sizeof(b), &fd, 1, true) < 0)
			return -1;
		dev->region_added[i] = true;
	}
	return 0;
}

static int send_memory(struct vmm_dev *dev)
{
	if (protocol(dev, PF_CONFIGURE_MEM_SLOTS))
		return add_mem_regions(dev);
	return send_mem_table(dev);
}

static int make_rings(struct vmm_dev *dev)
{
	unsigned sizes[2] = { dev->cfg.ctrl_queue_size, dev->cfg.cursor_queue_size };
	/* ctrlq in the small low region (mmap_offset 0), cursorq in the last
	 * region: both translations get exercised. */
	int hints[2] = { 0, (int)vmm_mem_region_count(dev->mem) - 1 };

	for (unsigned q = 0; q < 2; q++) {
		if (dev->q[q].vr)
			continue;
		dev->q[q].vr = vmm_vring_new(dev->mem, q, sizes[q], hints[q]);
		if (!dev->q[q].vr) {
			vmm_dev_fail(dev, "cannot allocate vq%u of size %u", q, sizes[q]);
			return -1;
		}
	}
	/* The old rings go only now, so the new ones got other addresses. */
	for (unsigned q = 0; q < 2; q++)
		free_retired(dev, q);
	return 0;
}

static int send_vring_addr(struct vmm_dev *dev, unsigned q, uint64_t desc,
		uint64_t used, uint64_t avail, uint64_t log, bool ack)
{
	uint8_t b[40] = { 0 };

	vmm_put32(b, q);
	vmm_put32(b + 4, 0); /* no VHOST_VRING_F_LOG */
	vmm_put64(b + 8, desc);
	vmm_put64(b + 16, used);
	vmm_put64(b + 24, avail);
	vmm_put64(b + 32, log);
	return request(dev, VU_SET_VRING_ADDR, b, sizeof(b), NULL, 0, ack);
}

static int start_ring(struct vmm_dev *dev, unsigned q)
{
	struct vmm_vring *vr = dev->q[q].vr;
	uint64_t desc, used, avail;

	vmm_vring_set_features(vr, vmm_dev_has_feature(dev, VF_INDIRECT_DESC),
			vmm_dev_has_feature(dev, VF_EVENT_IDX));
	if (vmm_mem_gpa_to_uaddr(dev->mem, vmm_vring_desc_gpa(vr), &desc) < 0 ||
			vmm_mem_gpa_to_uaddr(dev->mem, vmm_vring_used_gpa(vr), &used) < 0 ||
			vmm_mem_gpa_to_uaddr(dev->mem, vmm_vring_avail_gpa(vr), &avail) < 0) {
		vmm_dev_fail(dev, "vq%u is outside guest RAM", q);
		return -1;
	}
	close_fd(&dev->q[q].kick_fd);
	/* QEMU logs the GPA of the used ring in log_guest_addr. */
	if (set_state(dev, VU_SET_VRING_NUM, q, vmm_vring_num(vr)) < 0 ||
			set_state(dev, VU_SET_VRING_BASE, q, vmm_vring_avail_idx(vr)) < 0 ||
			send_vring_addr(dev, q, desc, used, avail, vmm_vring_used_gpa(vr), false) < 0 ||
			set_vring_fd(dev, VU_SET_VRING_KICK, q, &dev->q[q].kick_fd) < 0)
		return -1;
	return 0;
}

static int open_gpu_socket(struct vmm_dev *dev)
{
	int theirs, r;

	if (!dev->cfg.gpu_socket)
		return 0;
	if (vmm_gpusock_open(dev, &theirs) < 0)
		return -1;
	/* size 0, one fd, no reply (vhost-user-gpu-socket.md §1). */
	r = vmm_dev_send_raw(dev, VU_GPU_SET_SOCKET, VU_VERSION, NULL, 0, &theirs, 1);
	close(theirs);
	/* QEMU services the socket only once the DRIVER_OK burst is over. */
	dev->gs.deferred = true;
	return r;
}

int vmm_dev_driver_ok(struct vmm_dev *dev)
{
	if (dev->running) {
		vmm_dev_fail(dev, "driver-ok: already running (reset first)");
		return -1;
	}
	if (!dev->probed && vmm_dev_probe(dev) < 0)
		return -1;
	dev->features = compute_features(dev);
	if (open_gpu_socket(dev) < 0 ||
			replace_call_fd(dev, 0) < 0 || replace_call_fd(dev, 1) < 0 ||
			set_u64(dev, VU_SET_FEATURES, dev->features, false) < 0 ||
			send_memory(dev) < 0 || make_rings(dev) < 0 ||
			start_ring(dev, 0) < 0 || start_ring(dev, 1) < 0)
		return -1;
	if (dev->features & BIT(VF_PROTOCOL_FEATURES)) {
		if (set_state(dev, VU_SET_VRING_ENABLE, 0, 1) < 0 ||
				set_state(dev, VU_SET_VRING_ENABLE, 1, 1) < 0)
			return -1;
	}
	/* The final call fds: the ones the back end must signal. */
	if (replace_call_fd(dev, 0) < 0 || replace_call_fd(dev, 1) < 0)
		return -1;
	dev->gs.deferred = false;
	dev->running = true;
	return vmm_dev_service(dev);
}

/* ------------------------------------------------------------------ */
/* D: reset, E: rebind                                                 */
/* ------------------------------------------------------------------ */

static int stop_ring(struct vmm_dev *dev, unsigned q)
{
	struct vmm_vring *vr = dev->q[q].vr;
	uint8_t b[8];
	uint16_t used, avail;
	uint32_t base;

	vmm_put32(b, q);
	vmm_put32(b + 4, 0);
	if (vmm_dev_send_raw(dev, VU_GET_VRING_BASE, VU_VERSION, b, sizeof(b), NULL, 0) < 0 ||
			expect_reply(dev, VU_GET_VRING_BASE, sizeof(b), b) < 0)
		return -1;
	if (vmm_get32(b) != q) {
		vmm_dev_fail(dev, "GET_VRING_BASE(%u) answered for index %u", q, vmm_get32(b));
		return -1;
	}
	base = vmm_get32(b + 4);
	used = vmm_vring_used_idx(vr);
	avail = vmm_vring_avail_idx(vr);
	/* The back end's next avail index lies between what it completed and
	 * what we published. */
	if (base > 0xffff || (uint16_t)(base - used) > (uint16_t)(avail - used)) {
		vmm_dev_fail(dev, "GET_VRING_BASE(%u) = %u, outside used %u .. avail %u",
				q, base, used, avail);
		return -1;
	}
	dev->stats.vring_base[q] = (uint16_t)base;
	close_fd(&dev->q[q].kick_fd);
	retire_ring(dev, q, true);
	return 0;
}

int vmm_dev_reset(struct vmm_dev *dev)
{
	int r = 0;

	if (!dev->running) {
		vmm_dev_fail(dev, "reset: device not running");
		return -1;
	}
	/* QEMU closes its end of the GPU socket first. */
	vmm_gpusock_close(dev);
	if (set_state(dev, VU_SET_VRING_ENABLE, 0, 0) < 0 ||
			set_state(dev, VU_SET_VRING_ENABLE, 1, 0) < 0 ||
			stop_ring(dev, 0) < 0 || stop_ring(dev, 1) < 0 ||
			replace_call_fd(dev, 0) < 0 || replace_call_fd(dev, 1) < 0)
		r = -1;
	dev->running = false;
	dev->probed = false;
	notify_reset(dev);
	return r;
}

int vmm_dev_rebind(struct vmm_dev *dev)
{
	if (dev->running && vmm_dev_reset(dev) < 0)
		return -1;
	if (vmm_dev_probe(dev) < 0)
		return -1;
	return vmm_dev_driver_ok(dev);
}

/* ------------------------------------------------------------------ */
/* Notifications                                                       */
/* ------------------------------------------------------------------ */

int vmm_dev_kick(struct vmm_dev *dev, unsigned q)
{
	struct vmm_queue *vq = &dev->q[q];
	uint64_t one = 1;

	if (!vq->vr || vq->kick_fd < 0) {
		vmm_dev_fail(dev, "kick vq%u: ring not running", q);
		return -1;
	}
	if (!vmm_vring_kick_prepare(vq->vr)) {
		dev->stats.kicks_suppressed++;
		return 0;
	}
	if (write(vq->kick_fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
		vmm_dev_fail(dev, "kick vq%u: %s", q, strerror(errno));
		return -1;
	}
	dev->stats.kicks++;
	return 0;
}

int vmm_dev_wait_call(struct vmm_dev *dev, unsigned q, int timeout_ms)
{
	struct vmm_queue *vq = &dev->q[q];
	uint64_t v;
	int r;

	if (vq->call_pending) {
		vq->call_pending = false;
		return 1;
	}
	if (vq->call_fd < 0) {
		vmm_dev_fail(dev, "vq%u has no call fd", q);
		return -1;
	}
	r = vmm_dev_wait_fd(dev, vq->call_fd, timeout_ms);
	if (r <= 0)
		return r;
	if (read(vq->call_fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		vmm_dev_fail(dev, "reading the call fd of vq%u: %s", q, strerror(errno));
		return -1;
	}
	dev->stats.calls[q] += 1;
	return 1;
}

int vmm_dev_set_vring_addr_raw(struct vmm_dev *dev, unsigned q,
		uint64_t desc, uint64_t used, uint64_t avail, uint64_t *ack)
{
	bool need = protocol(dev, PF_REPLY_ACK);
	uint8_t b[40] = { 0 }, a[8];

	*ack = 0;
	vmm_put32(b, q);
	vmm_put64(b + 8, desc);
	vmm_put64(b + 16, used);
	vmm_put64(b + 24, avail);
	if (vmm_dev_send_raw(dev, VU_SET_VRING_ADDR,
			VU_VERSION | (need ? VU_NEED_REPLY : 0), b, sizeof(b), NULL, 0) < 0)
		return -1;
	if (!need)
		return 0;
	if (expect_reply(dev, VU_SET_VRING_ADDR, 8, a) < 0)
		return -1;
	*ack = vmm_get64(a);
	return 0;
}
