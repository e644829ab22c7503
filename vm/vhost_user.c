/* accept4, MSG_CMSG_CLOEXEC */
#define _GNU_SOURCE

#include "vhost_user.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <wlr/util/log.h>

/*
 * Protocol reference: ../shared/reference/vhost-user.md (QEMU 7.2 as it
 * really behaves). Section numbers below refer to it.
 */

/* Header flags (§2). */
#define VHOST_USER_VERSION 0x1
#define VHOST_USER_VERSION_MASK 0x3
#define VHOST_USER_REPLY 0x4
#define VHOST_USER_NEED_REPLY 0x8
/* QEMU 7.2 rejects any reply whose flags are not exactly this. */
#define VHOST_USER_REPLY_FLAGS (VHOST_USER_VERSION | VHOST_USER_REPLY)

#define VHOST_USER_HDR_SIZE 12
#define VHOST_USER_MAX_FDS 8
#define VHOST_USER_MAX_CONFIG_SIZE 256
#define VHOST_USER_CONFIG_HDR_SIZE 12
#define VHOST_USER_MEM_TABLE_MAX_REGIONS 8
#define VHOST_USER_REGION_SIZE 32
/* The largest valid payload: GET/SET_CONFIG with a full config space. */
#define VHOST_USER_MAX_PAYLOAD (VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG_SIZE)
#define VHOST_USER_VRING_IDX_MASK 0xffull
#define VHOST_USER_VRING_NOFD_MASK 0x100ull

/* Virtio feature bits (§5). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VIRTIO_F_VERSION_1 32
#define DEVICE_FEATURE_MASK 0xffffffull // bits 0-23

/* Protocol feature bits (§5). */
#define PROTOCOL_F_MQ 0
#define PROTOCOL_F_REPLY_ACK 3
#define PROTOCOL_F_SLAVE_REQ 5
#define PROTOCOL_F_CONFIG 9
#define PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define BIT(n) (1ull << (n))
/* Always offered: CONFIG is mandatory for QEMU, the rest make it simpler and stricter. */
#define PROTOCOL_FEATURES_DEFAULT \
	(BIT(PROTOCOL_F_MQ) | BIT(PROTOCOL_F_REPLY_ACK) | BIT(PROTOCOL_F_CONFIG) | \
		BIT(PROTOCOL_F_CONFIGURE_MEM_SLOTS))
/*
 * Everything this back end can honour. A bit outside it would make QEMU send
 * requests we do not handle (SLAVE_REQ, LOG_SHMFD, INFLIGHT...), so it is
 * never offered even if a device asks for it.
 */
#define PROTOCOL_FEATURES_SUPPORTED (PROTOCOL_FEATURES_DEFAULT | BIT(PROTOCOL_F_SLAVE_REQ))
/* Back-end requests (§9) this back end sends. */
#define VHOST_USER_BACKEND_CONFIG_CHANGE_MSG 2

/* Handled requests and their wire numbers (§4). */
enum vhost_user_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_SET_SLAVE_REQ_FD = 21,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_GPU_SET_SOCKET = 33,
	VHOST_USER_GET_MAX_MEM_SLOTS = 36,
	VHOST_USER_ADD_MEM_REG = 37,
	VHOST_USER_REM_MEM_REG = 38,
	VHOST_USER_REQUEST_MAX = 41,
};

/* How many messages one wakeup handles before yielding to the rest of the compositor. */
#define MESSAGES_PER_DISPATCH 64

struct vu_vring {
	struct vu_dev *dev;
	unsigned index;
	struct vu_virtqueue vq;
	/* What the front end configured; applied when the ring starts. */
	uint16_t num;
	uint16_t base;
	bool addr_set;
	uint64_t desc_uaddr, avail_uaddr, used_uaddr;
	int kick_fd, call_fd, err_fd;
	struct wl_event_source *kick_source;
	bool started; // SET_VRING_KICK arrived and the ring maps; until GET_VRING_BASE
	bool enabled; // SET_VRING_ENABLE(1)
	bool reported_broken;
};

struct vu_dev {
	struct vu_server *server;
	int fd;
	struct wl_event_source *source;
	struct vu_guest_memory mem;
	uint64_t features;          // SET_FEATURES
	uint64_t protocol_features; // SET_PROTOCOL_FEATURES
	bool protocol_negotiated;   // rings then start disabled (§7)
	unsigned num_queues;
	struct vu_vring vrings[VU_MAX_QUEUES];

	/* The message being received: header, then payload, possibly in pieces. */
	uint8_t msg[VHOST_USER_HDR_SIZE + VHOST_USER_MAX_PAYLOAD];
	size_t msg_have;
	int msg_fds[VHOST_USER_MAX_FDS];
	unsigned msg_nfds;

	/* Rings that came up: the device looks at them once the messages are read. */
	uint32_t deferred_kicks; // bit per ring
	struct wl_event_source *deferred_kick_source;

	/* The back-end request channel (SET_SLAVE_REQ_FD), or -1. */
	int slave_fd;

	/* Re-entrancy: a device callback may ask to disconnect while we are inside a handler. */
	unsigned busy;
	bool closing;
};

struct vu_server {
	struct wl_event_loop *loop;
	char *path;
	char *name;
	int listen_fd;
	struct wl_event_source *listen_source;
	const struct vu_device_ops *ops;
	void *data;
	struct vu_dev *dev;
};

/* The parsed header of the message being handled. */
struct message {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	const uint8_t *payload;
};

/* --- logging ---------------------------------------------------------------- */

static void server_log(const struct vu_server *server, enum wlr_log_importance verb,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Every line names the VM, since one compositor serves several. */
static void
server_log(const struct vu_server *server, enum wlr_log_importance verb, const char *fmt, ...)
{
	if (verb > wlr_log_get_verbosity()) {
		return;
	}
	char line[512];
	va_list args;
	va_start(args, fmt);
	vsnprintf(line, sizeof(line), fmt, args);
	va_end(args);
	wlr_log(verb, "VM %s: %s", server->name, line);
}

void
vu_vm_logv(enum wlr_log_importance level, const char *vm_name, const char *prefix,
	const char *fmt, va_list args)
{
	if (level > wlr_log_get_verbosity()) {
		return;
	}
	char message[512];
	vsnprintf(message, sizeof(message), fmt, args);
	wlr_log(level, "[vm %s] %s%s", vm_name, prefix, message);
}

#define dev_log(dev, verb, ...) server_log((dev)->server, verb, __VA_ARGS__)

static const char *
request_name(uint32_t request)
{
	static const char *const names[VHOST_USER_REQUEST_MAX] = {
		[1] = "GET_FEATURES", [2] = "SET_FEATURES", [3] = "SET_OWNER",
		[4] = "RESET_OWNER", [5] = "SET_MEM_TABLE", [6] = "SET_LOG_BASE",
		[7] = "SET_LOG_FD", [8] = "SET_VRING_NUM", [9] = "SET_VRING_ADDR",
		[10] = "SET_VRING_BASE", [11] = "GET_VRING_BASE", [12] = "SET_VRING_KICK",
		[13] = "SET_VRING_CALL", [14] = "SET_VRING_ERR", [15] = "GET_PROTOCOL_FEATURES",
		[16] = "SET_PROTOCOL_FEATURES", [17] = "GET_QUEUE_NUM", [18] = "SET_VRING_ENABLE",
		[19] = "SEND_RARP", [20] = "NET_SET_MTU", [21] = "SET_SLAVE_REQ_FD",
		[22] = "IOTLB_MSG", [23] = "SET_VRING_ENDIAN", [24] = "GET_CONFIG",
		[25] = "SET_CONFIG", [26] = "CREATE_CRYPTO_SESSION", [27] = "CLOSE_CRYPTO_SESSION",
		[28] = "POSTCOPY_ADVISE", [29] = "POSTCOPY_LISTEN", [30] = "POSTCOPY_END",
		[31] = "GET_INFLIGHT_FD", [32] = "SET_INFLIGHT_FD", [33] = "GPU_SET_SOCKET",
		[34] = "RESET_DEVICE", [35] = "VRING_KICK", [36] = "GET_MAX_MEM_SLOTS",
		[37] = "ADD_MEM_REG", [38] = "REM_MEM_REG", [39] = "SET_STATUS", [40] = "GET_STATUS",
	};
	return request < VHOST_USER_REQUEST_MAX && names[request] ? names[request] : "unknown";
}

/* --- small helpers ------------------------------------------------------------ */

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* The front end shares eventfds with us and they must never block the event loop. */
static void
set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && !(flags & O_NONBLOCK)) {
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	}
}

static uint64_t
offered_features(const struct vu_server *server)
{
	return BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_INDIRECT_DESC) |
		BIT(VIRTIO_F_RING_EVENT_IDX) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
		(server->ops->device_features & DEVICE_FEATURE_MASK);
}

static uint64_t
offered_protocol_features(const struct vu_server *server)
{
	return (PROTOCOL_FEATURES_DEFAULT | server->ops->protocol_features) &
		PROTOCOL_FEATURES_SUPPORTED;
}

/* --- disconnecting --------------------------------------------------------------- */

static void
vring_stop_kicks(struct vu_vring *r)
{
	if (r->kick_source != NULL) {
		wl_event_source_remove(r->kick_source);
		r->kick_source = NULL;
	}
	close_fd(&r->kick_fd);
}

static void
dev_destroy(struct vu_dev *dev)
{
	struct vu_server *server = dev->server;
	dev->closing = true;
	if (server->ops->disconnected != NULL) {
		server->ops->disconnected(server->data, dev);
	}
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_vring *r = &dev->vrings[i];
		vring_stop_kicks(r);
		close_fd(&r->call_fd);
		close_fd(&r->err_fd);
	}
	close_fd(&dev->slave_fd);
	for (unsigned i = 0; i < dev->msg_nfds; i++) {
		close(dev->msg_fds[i]);
	}
	vu_mem_finish(&dev->mem);
	if (dev->deferred_kick_source != NULL) {
		wl_event_source_remove(dev->deferred_kick_source);
	}
	if (dev->source != NULL) {
		wl_event_source_remove(dev->source);
	}
	close(dev->fd);
	server->dev = NULL;
	free(dev);
	server_log(server, WLR_INFO, "front end disconnected; listening on %s", server->path);
}

/*
 * Handlers and device callbacks run with dev->busy raised. A disconnect
 * requested meanwhile only sets `closing`; the outermost handler frees the
 * device when it unwinds, so nobody touches freed memory.
 */
static void
dev_enter(struct vu_dev *dev)
{
	dev->busy++;
}

/* Returns true if the device is gone. */
static bool
dev_leave(struct vu_dev *dev)
{
	if (--dev->busy == 0 && dev->closing) {
		dev_destroy(dev);
		return true;
	}
	return false;
}

static void dev_fail(struct vu_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A protocol violation by the front end: log it and drop the connection. */
static void
dev_fail(struct vu_dev *dev, const char *fmt, ...)
{
	if (dev->closing) {
		return;
	}
	char reason[256];
	va_list args;
	va_start(args, fmt);
	vsnprintf(reason, sizeof(reason), fmt, args);
	va_end(args);
	dev_log(dev, WLR_ERROR, "protocol error: %s; disconnecting", reason);
	dev->closing = true;
}

void
vu_dev_disconnect(struct vu_dev *dev, const char *reason)
{
	if (dev->closing) {
		return;
	}
	dev_log(dev, WLR_ERROR, "disconnecting: %s", reason ? reason : "requested by the device");
	dev->closing = true;
	if (dev->busy == 0) {
		dev_destroy(dev);
	}
}

/* --- rings --------------------------------------------------------------------- */

/* Rings wait for SET_VRING_ENABLE only once PROTOCOL_FEATURES is negotiated (§7). */
static bool
vring_active(const struct vu_vring *r)
{
	return r->started && (r->enabled || !r->dev->protocol_negotiated);
}

static void
notify_kicked(struct vu_vring *r)
{
	const struct vu_server *server = r->dev->server;
	if (server->ops->queue_kicked != NULL && !r->dev->closing) {
		server->ops->queue_kicked(server->data, r->dev, r->index);
	}
}

static void
run_deferred_kicks(void *data)
{
	struct vu_dev *dev = data;
	dev->deferred_kick_source = NULL;
	uint32_t kicks = dev->deferred_kicks;
	dev->deferred_kicks = 0;
	dev_enter(dev);
	for (unsigned i = 0; i < dev->num_queues && !dev->closing; i++) {
		if ((kicks & (1u << i)) && vring_active(&dev->vrings[i])) {
			notify_kicked(&dev->vrings[i]);
		}
	}
	dev_leave(dev);
}

/* Called after anything that may start or enable a ring. */
static void
vring_changed(struct vu_vring *r, bool was_active)
{
	/*
	 * The driver may have queued requests before the ring came up. They are
	 * looked at after the messages already received: QEMU sends the final
	 * call fds right after SET_VRING_ENABLE, and an answer signalled on the
	 * previous call fd would be lost.
	 */
	if (was_active || !vring_active(r)) {
		return;
	}
	struct vu_dev *dev = r->dev;
	dev->deferred_kicks |= 1u << r->index;
	if (dev->deferred_kick_source == NULL) {
		dev->deferred_kick_source = wl_event_loop_add_idle(dev->server->loop,
			run_deferred_kicks, dev);
	}
}

static void
notify_stopped(struct vu_dev *dev, unsigned index)
{
	const struct vu_server *server = dev->server;
	if (server->ops->queue_stopped != NULL) {
		server->ops->queue_stopped(server->data, dev, index);
	}
}

/* (Re)maps the ring at the front end's addresses, resuming at next_avail. */
static int
vring_map(struct vu_vring *r, uint16_t next_avail)
{
	struct vu_dev *dev = r->dev;
	if (r->num == 0 || !r->addr_set) {
		return -EINVAL;
	}
	return vu_virtq_setup(&r->vq, &dev->mem, r->num, r->desc_uaddr, r->avail_uaddr,
		r->used_uaddr, next_avail, dev->features & BIT(VIRTIO_F_RING_EVENT_IDX),
		dev->features & BIT(VIRTIO_F_RING_INDIRECT_DESC));
}

static void
vring_start(struct vu_vring *r)
{
	int ret = vring_map(r, r->base);
	if (ret < 0) {
		dev_fail(r->dev, "queue %u cannot start: %s", r->index,
			ret == -EFAULT ? "ring outside guest memory" : "bad size, alignment or address");
		return;
	}
	r->started = true;
	r->reported_broken = false;
}

/* GET_VRING_BASE: no more reads or writes of this ring until it is started again. */
static void
vring_stop(struct vu_vring *r)
{
	if (r->started) {
		notify_stopped(r->dev, r->index);
		r->base = r->vq.last_avail_idx;
	}
	r->started = false;
	vu_virtq_reset(&r->vq);
	vring_stop_kicks(r);
}

/*
 * The memory table changed under running rings: their host pointers are
 * stale. Re-translate them, keeping the ring position.
 */
static void
remap_started_rings(struct vu_dev *dev)
{
	for (unsigned i = 0; i < dev->num_queues && !dev->closing; i++) {
		struct vu_vring *r = &dev->vrings[i];
		if (r->started && vring_map(r, r->vq.last_avail_idx) < 0) {
			r->started = false;
			dev_fail(dev, "queue %u is no longer in guest memory", i);
		}
	}
}

static void
stop_all_queue_users(struct vu_dev *dev)
{
	for (unsigned i = 0; i < dev->num_queues; i++) {
		notify_stopped(dev, i);
	}
}

static void read_and_dispatch(struct vu_dev *dev);

static int
handle_kick(int fd, uint32_t mask, void *data)
{
	struct vu_vring *r = data;
	struct vu_dev *dev = r->dev;
	uint64_t value;
	/* Clears the eventfd; a failed read (spurious wakeup) is harmless. */
	ssize_t n = read(fd, &value, sizeof(value));
	(void)n;
	dev_enter(dev);
	/*
	 * A kick and the front end's last messages (a new call fd, say) can be
	 * ready in the same loop turn: handle the messages first, or a reply
	 * could go to a call fd that was already replaced and be lost.
	 */
	read_and_dispatch(dev);
	if (!dev->closing && vring_active(r)) {
		notify_kicked(r);
	}
	dev_leave(dev);
	return 0;
}

static void
signal_fd(struct vu_dev *dev, int fd, const char *what, unsigned index)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the guest is already signalled. */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
		dev_log(dev, WLR_ERROR, "queue %u: cannot signal the %s eventfd: %s", index, what,
			strerror(errno));
	}
}

/* --- request handlers ---------------------------------------------------------- */

/* What a handler tells the dispatcher about the reply. */
enum reply {
	REPLY_NONE,    // nothing, or an ack of 0 if NEED_REPLY
	REPLY_FAILED,  // nothing, or an ack of 1 if NEED_REPLY
	REPLY_PAYLOAD, // the handler sent its own reply
	REPLY_NEVER,   // no reply even with NEED_REPLY (GPU_SET_SOCKET)
};

struct request_ctx {
	struct vu_dev *dev;
	const struct message *msg;
	int *fds;      // fds received with the message; a handler takes one by setting it to -1
	unsigned nfds;
};

static bool
send_reply(struct vu_dev *dev, uint32_t request, const void *payload, uint32_t size)
{
	uint32_t header[3] = {request, VHOST_USER_REPLY_FLAGS, size};
	struct iovec iov[2] = {
		{.iov_base = header, .iov_len = sizeof(header)},
		{.iov_base = (void *)payload, .iov_len = size},
	};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = size > 0 ? 2 : 1};
	ssize_t n;
	do {
		n = sendmsg(dev->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	/*
	 * Replies are tiny and the front end waits for each one, so a full
	 * socket buffer means it stopped reading: give up rather than block.
	 */
	if (n != (ssize_t)(sizeof(header) + size)) {
		dev_fail(dev, "cannot send the %s reply: %s", request_name(request),
			n < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

static enum reply
reply_u64(struct request_ctx *ctx, uint64_t value)
{
	send_reply(ctx->dev, ctx->msg->request, &value, sizeof(value));
	return REPLY_PAYLOAD;
}

/* The vring index in a state/address payload, or NULL (protocol error) if out of range. */
static struct vu_vring *
vring_at(struct vu_dev *dev, uint64_t index)
{
	if (index >= dev->num_queues) {
		dev_fail(dev, "queue index %llu out of range (%u queues)", (unsigned long long)index,
			dev->num_queues);
		return NULL;
	}
	return &dev->vrings[index];
}

static enum reply
get_features(struct request_ctx *ctx)
{
	return reply_u64(ctx, offered_features(ctx->dev->server));
}

static enum reply
set_features(struct request_ctx *ctx)
{
	struct vu_dev *dev = ctx->dev;
	/* Unknown bits (QEMU forces e.g. RING_RESET, bit 40) are tolerated, not refused. */
	dev->features = get_u64(ctx->msg->payload);
	if (dev->features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		dev->protocol_negotiated = true;
	}
	dev_log(dev, WLR_DEBUG, "features 0x%llx", (unsigned long long)dev->features);
	const struct vu_server *server = dev->server;
	if (server->ops->features_set != NULL) {
		server->ops->features_set(server->data, dev->features);
	}
	return REPLY_NONE;
}

static enum reply
ignore(struct request_ctx *ctx)
{
	return REPLY_NONE;
}

static enum reply
get_protocol_features(struct request_ctx *ctx)
{
	return reply_u64(ctx, offered_protocol_features(ctx->dev->server));
}

static enum reply
set_protocol_features(struct request_ctx *ctx)
{
	struct vu_dev *dev = ctx->dev;
	uint64_t value = get_u64(ctx->msg->payload);
	uint64_t offered = offered_protocol_features(dev->server);
	if (value & ~offered) {
		dev_log(dev, WLR_INFO, "front end acked protocol features 0x%llx we never offered",
			(unsigned long long)(value & ~offered));
	}
	dev->protocol_features = value & offered;
	dev->protocol_negotiated = true;
	return REPLY_NONE;
}

static enum reply
get_queue_num(struct request_ctx *ctx)
{
	return reply_u64(ctx, ctx->dev->num_queues);
}

static enum reply
get_max_mem_slots(struct request_ctx *ctx)
{
	return reply_u64(ctx, VU_MAX_MEM_REGIONS);
}

static void
log_region(struct vu_dev *dev, const char *what, const uint8_t *p)
{
	dev_log(dev, WLR_DEBUG, "%s gpa 0x%llx size 0x%llx uaddr 0x%llx offset 0x%llx", what,
		(unsigned long long)get_u64(p), (unsigned long long)get_u64(p + 8),
		(unsigned long long)get_u64(p + 16), (unsigned long long)get_u64(p + 24));
}

static int
add_region(struct vu_dev *dev, const uint8_t *p, int fd)
{
	log_region(dev, "map", p);
	int ret = vu_mem_add_region(&dev->mem, fd, get_u64(p), get_u64(p + 8), get_u64(p + 16),
		get_u64(p + 24));
	if (ret < 0) {
		dev_log(dev, WLR_ERROR, "cannot map a guest memory region: %s", strerror(-ret));
	}
	return ret;
}

static enum reply
set_mem_table(struct request_ctx *ctx)
{
	struct vu_dev *dev = ctx->dev;
	const uint8_t *p = ctx->msg->payload;
	uint32_t nregions = get_u32(p);
	if (nregions > VHOST_USER_MEM_TABLE_MAX_REGIONS ||
			ctx->msg->size != 8 + VHOST_USER_REGION_SIZE * nregions) {
		dev_fail(dev, "SET_MEM_TABLE: %u regions in %u bytes", nregions, ctx->msg->size);
		return REPLY_NEVER;
	}
	if (ctx->nfds != nregions) {
		dev_fail(dev, "SET_MEM_TABLE: %u regions but %u fds", nregions, ctx->nfds);
		return REPLY_NEVER;
	}
	/* The table is replaced whole (§6): nothing may keep pointers into the old one. */
	stop_all_queue_users(dev);
	vu_mem_finish(&dev->mem);
	int ret = 0;
	for (uint32_t i = 0; i < nregions && ret == 0; i++) {
		ret = add_region(dev, p + 8 + VHOST_USER_REGION_SIZE * i, ctx->fds[i]);
	}
	if (ret < 0) {
		vu_mem_finish(&dev->mem);
	}
	remap_started_rings(dev);
	return ret < 0 ? REPLY_FAILED : REPLY_NONE;
}

static enum reply
add_mem_reg(struct request_ctx *ctx)
{
	if (ctx->nfds != 1) {
		dev_fail(ctx->dev, "ADD_MEM_REG with %u fds", ctx->nfds);
		return REPLY_NEVER;
	}
	/* Existing mappings stay where they are, so running rings are unaffected. */
	int ret = add_region(ctx->dev, ctx->msg->payload + 8, ctx->fds[0]);
	return ret < 0 ? REPLY_FAILED : REPLY_NONE;
}

static enum reply
rem_mem_reg(struct request_ctx *ctx)
{
	struct vu_dev *dev = ctx->dev;
	const uint8_t *p = ctx->msg->payload + 8;
	log_region(dev, "unmap", p);
	/* Held chains may point into the region about to disappear. */
	stop_all_queue_users(dev);
	int ret = vu_mem_remove_region(&dev->mem, get_u64(p), get_u64(p + 8), get_u64(p + 16));
	if (ret < 0) {
		dev_log(dev, WLR_ERROR, "REM_MEM_REG: no such region");
		return REPLY_FAILED;
	}
	remap_started_rings(dev);
	return REPLY_NONE;
}

static enum reply
set_vring_num(struct request_ctx *ctx)
{
	struct vu_vring *r = vring_at(ctx->dev, get_u32(ctx->msg->payload));
	uint32_t num = get_u32(ctx->msg->payload + 4);
	if (r == NULL) {
		return REPLY_NEVER;
	}
	if (num == 0 || num > VU_MAX_QUEUE_SIZE || (num & (num - 1)) != 0) {
		dev_fail(ctx->dev, "queue %u: size %u is not a power of two <= %u", r->index, num,
			VU_MAX_QUEUE_SIZE);
		return REPLY_NEVER;
	}
	r->num = (uint16_t)num;
	return REPLY_NONE;
}

static enum reply
set_vring_addr(struct request_ctx *ctx)
{
	const uint8_t *p = ctx->msg->payload;
	struct vu_vring *r = vring_at(ctx->dev, get_u32(p));
	if (r == NULL) {
		return REPLY_NEVER;
	}
	/* The order on the wire is desc, used, avail (§3); flags (LOG) need LOG_ALL, never offered. */
	r->desc_uaddr = get_u64(p + 8);
	r->used_uaddr = get_u64(p + 16);
	r->avail_uaddr = get_u64(p + 24);
	r->addr_set = true;
	dev_log(ctx->dev, WLR_DEBUG, "queue %u: desc 0x%llx avail 0x%llx used 0x%llx", r->index,
		(unsigned long long)r->desc_uaddr, (unsigned long long)r->avail_uaddr,
		(unsigned long long)r->used_uaddr);
	/* A running ring moves at once (QEMU does this when logging is toggled). */
	if (r->started && vring_map(r, r->vq.last_avail_idx) < 0) {
		r->started = false;
		dev_fail(ctx->dev, "queue %u: new ring addresses are not in guest memory", r->index);
	}
	return REPLY_NONE;
}

static enum reply
set_vring_base(struct request_ctx *ctx)
{
	struct vu_vring *r = vring_at(ctx->dev, get_u32(ctx->msg->payload));
	if (r == NULL) {
		return REPLY_NEVER;
	}
	/* Split rings: the next avail index. Takes effect when the ring starts. */
	r->base = (uint16_t)get_u32(ctx->msg->payload + 4);
	return REPLY_NONE;
}

static enum reply
get_vring_base(struct request_ctx *ctx)
{
	struct vu_vring *r = vring_at(ctx->dev, get_u32(ctx->msg->payload));
	if (r == NULL) {
		return REPLY_NEVER;
	}
	vring_stop(r);
	uint32_t state[2] = {r->index, r->base};
	dev_log(ctx->dev, WLR_DEBUG, "queue %u stopped at avail index %u", r->index, r->base);
	send_reply(ctx->dev, ctx->msg->request, state, sizeof(state));
	return REPLY_PAYLOAD;
}

/*
 * KICK/CALL/ERR payload: index in bits 0-7, NOFD in bit 8. Returns the ring
 * and the new fd (taken from the message), or NULL on a protocol error.
 */
static struct vu_vring *
vring_fd_request(struct request_ctx *ctx, int *fd)
{
	uint64_t value = get_u64(ctx->msg->payload);
	struct vu_vring *r = vring_at(ctx->dev, value & VHOST_USER_VRING_IDX_MASK);
	if (r == NULL) {
		return NULL;
	}
	*fd = -1;
	if (value & VHOST_USER_VRING_NOFD_MASK) {
		return r; // any fd that came along anyway is closed by the dispatcher
	}
	if (ctx->nfds != 1) {
		dev_fail(ctx->dev, "%s for queue %u with %u fds", request_name(ctx->msg->request),
			r->index, ctx->nfds);
		return NULL;
	}
	*fd = ctx->fds[0];
	ctx->fds[0] = -1;
	set_nonblocking(*fd);
	return r;
}

static enum reply
set_vring_kick(struct request_ctx *ctx)
{
	int fd;
	struct vu_vring *r = vring_fd_request(ctx, &fd);
	if (r == NULL) {
		return REPLY_NEVER;
	}
	bool was_active = vring_active(r);
	vring_stop_kicks(r);
	r->kick_fd = fd;
	if (fd >= 0) {
		struct wl_event_loop *loop = ctx->dev->server->loop;
		r->kick_source = wl_event_loop_add_fd(loop, fd, WL_EVENT_READABLE, handle_kick, r);
		if (r->kick_source == NULL) {
			dev_fail(ctx->dev, "queue %u: the kick fd cannot be polled", r->index);
			return REPLY_NEVER;
		}
	} else {
		/* Polling the ring would mean busy-waiting; QEMU 7.2 always sends an fd (KVM). */
		dev_log(ctx->dev, WLR_ERROR, "queue %u: no kick fd; only processed when it starts",
			r->index);
	}
	/* libvhost-user starts the ring here: the kick fd is the last piece of setup. */
	if (!r->started) {
		vring_start(r);
	}
	vring_changed(r, was_active);
	return REPLY_NONE;
}

static enum reply
set_vring_call(struct request_ctx *ctx)
{
	int fd;
	struct vu_vring *r = vring_fd_request(ctx, &fd);
	if (r == NULL) {
		return REPLY_NEVER;
	}
	/* QEMU swaps call fds when it masks interrupts; only the newest one reaches the guest. */
	close_fd(&r->call_fd);
	r->call_fd = fd;
	return REPLY_NONE;
}

static enum reply
set_vring_err(struct request_ctx *ctx)
{
	int fd;
	struct vu_vring *r = vring_fd_request(ctx, &fd);
	if (r == NULL) {
		return REPLY_NEVER;
	}
	close_fd(&r->err_fd);
	r->err_fd = fd;
	return REPLY_NONE;
}

static enum reply
set_vring_enable(struct request_ctx *ctx)
{
	struct vu_vring *r = vring_at(ctx->dev, get_u32(ctx->msg->payload));
	uint32_t enable = get_u32(ctx->msg->payload + 4);
	if (r == NULL) {
		return REPLY_NEVER;
	}
	if (enable > 1) {
		dev_fail(ctx->dev, "SET_VRING_ENABLE(%u, %u)", r->index, enable);
		return REPLY_NEVER;
	}
	bool was_active = vring_active(r);
	r->enabled = enable;
	vring_changed(r, was_active);
	return REPLY_NONE;
}

/* GET/SET_CONFIG payload: u32 offset, u32 size, u32 flags, u8 data[size]. */
static bool
check_config(struct request_ctx *ctx, uint32_t *offset, uint32_t *size)
{
	const uint8_t *p = ctx->msg->payload;
	*offset = get_u32(p);
	*size = get_u32(p + 4);
	if (*size > VHOST_USER_MAX_CONFIG_SIZE ||
			ctx->msg->size != VHOST_USER_CONFIG_HDR_SIZE + *size) {
		dev_fail(ctx->dev, "%s: %u config bytes in a %u-byte payload",
			request_name(ctx->msg->request), *size, ctx->msg->size);
		return false;
	}
	return true;
}

static enum reply
get_config(struct request_ctx *ctx)
{
	uint32_t offset, size;
	if (!check_config(ctx, &offset, &size)) {
		return REPLY_NEVER;
	}
	const struct vu_server *server = ctx->dev->server;
	uint8_t reply[VHOST_USER_MAX_PAYLOAD];
	memcpy(reply, ctx->msg->payload, VHOST_USER_CONFIG_HDR_SIZE);
	memset(reply + VHOST_USER_CONFIG_HDR_SIZE, 0, size);
	bool ok = size > 0 && server->ops->get_config != NULL &&
		server->ops->get_config(server->data, offset, reply + VHOST_USER_CONFIG_HDR_SIZE, size);
	/* An empty reply is how vhost-user says "refused" (QEMU then fails the read). */
	send_reply(ctx->dev, ctx->msg->request, reply, ok ? VHOST_USER_CONFIG_HDR_SIZE + size : 0);
	return REPLY_PAYLOAD;
}

static enum reply
set_config(struct request_ctx *ctx)
{
	uint32_t offset, size;
	if (!check_config(ctx, &offset, &size)) {
		return REPLY_NEVER;
	}
	const struct vu_server *server = ctx->dev->server;
	bool ok = server->ops->set_config != NULL &&
		server->ops->set_config(server->data, offset,
			ctx->msg->payload + VHOST_USER_CONFIG_HDR_SIZE, size);
	return ok ? REPLY_NONE : REPLY_FAILED;
}

static enum reply
set_slave_req_fd(struct request_ctx *ctx)
{
	struct vu_dev *dev = ctx->dev;
	if (!(dev->protocol_features & BIT(PROTOCOL_F_SLAVE_REQ)) || ctx->nfds != 1) {
		dev_fail(dev, "SET_SLAVE_REQ_FD without SLAVE_REQ negotiated or without its fd");
		return REPLY_NEVER;
	}
	close_fd(&dev->slave_fd);
	dev->slave_fd = ctx->fds[0];
	ctx->fds[0] = -1;
	return REPLY_NONE;
}

bool
vu_dev_notify_config_change(struct vu_dev *dev)
{
	if (dev->slave_fd < 0) {
		return false;
	}
	/* No NEED_REPLY: nobody reads the back-end channel's acks here. */
	uint32_t header[3] = {VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, VHOST_USER_VERSION, 0};
	if (send(dev->slave_fd, header, sizeof(header), MSG_DONTWAIT | MSG_NOSIGNAL) !=
			(ssize_t)sizeof(header)) {
		dev_log(dev, WLR_ERROR, "the back-end channel is gone (%s)", strerror(errno));
		close_fd(&dev->slave_fd);
		return false;
	}
	return true;
}

static enum reply
gpu_set_socket(struct request_ctx *ctx)
{
	struct vu_dev *dev = ctx->dev;
	if (ctx->nfds != 1) {
		dev_fail(dev, "GPU_SET_SOCKET with %u fds", ctx->nfds);
		return REPLY_NEVER;
	}
	int fd = ctx->fds[0];
	ctx->fds[0] = -1;
	/* Re-sent at every DRIVER_OK (§10.2.5): the device drops the old socket for this one. */
	const struct vu_server *server = dev->server;
	if (server->ops->gpu_socket != NULL) {
		server->ops->gpu_socket(server->data, fd);
	} else {
		close(fd);
	}
	return REPLY_NEVER;
}

/* --- dispatch ------------------------------------------------------------------- */

enum payload_kind {
	PAYLOAD_EXACT,  // size must equal `size`
	PAYLOAD_UP_TO,  // size may be anything up to `size` (checked again by the handler)
};

struct request_info {
	enum reply (*handle)(struct request_ctx *ctx);
	enum payload_kind kind;
	uint32_t size;
	unsigned max_fds; // more are closed unread
};

static const struct request_info requests[VHOST_USER_REQUEST_MAX] = {
	[VHOST_USER_GET_FEATURES] = {get_features, PAYLOAD_EXACT, 0, 0},
	[VHOST_USER_SET_FEATURES] = {set_features, PAYLOAD_EXACT, 8, 0},
	[VHOST_USER_SET_OWNER] = {ignore, PAYLOAD_EXACT, 0, 0},
	/* Deprecated; QEMU 7.2 never sends it for the GPU (§10.1). */
	[VHOST_USER_RESET_OWNER] = {ignore, PAYLOAD_EXACT, 0, 0},
	[VHOST_USER_SET_MEM_TABLE] = {set_mem_table, PAYLOAD_UP_TO,
		8 + VHOST_USER_REGION_SIZE * VHOST_USER_MEM_TABLE_MAX_REGIONS,
		VHOST_USER_MEM_TABLE_MAX_REGIONS},
	[VHOST_USER_SET_VRING_NUM] = {set_vring_num, PAYLOAD_EXACT, 8, 0},
	[VHOST_USER_SET_VRING_ADDR] = {set_vring_addr, PAYLOAD_EXACT, 40, 0},
	[VHOST_USER_SET_VRING_BASE] = {set_vring_base, PAYLOAD_EXACT, 8, 0},
	[VHOST_USER_GET_VRING_BASE] = {get_vring_base, PAYLOAD_EXACT, 8, 0},
	[VHOST_USER_SET_VRING_KICK] = {set_vring_kick, PAYLOAD_EXACT, 8, 1},
	[VHOST_USER_SET_VRING_CALL] = {set_vring_call, PAYLOAD_EXACT, 8, 1},
	[VHOST_USER_SET_VRING_ERR] = {set_vring_err, PAYLOAD_EXACT, 8, 1},
	[VHOST_USER_GET_PROTOCOL_FEATURES] = {get_protocol_features, PAYLOAD_EXACT, 0, 0},
	[VHOST_USER_SET_PROTOCOL_FEATURES] = {set_protocol_features, PAYLOAD_EXACT, 8, 0},
	[VHOST_USER_GET_QUEUE_NUM] = {get_queue_num, PAYLOAD_EXACT, 0, 0},
	[VHOST_USER_SET_VRING_ENABLE] = {set_vring_enable, PAYLOAD_EXACT, 8, 0},
	[VHOST_USER_GET_CONFIG] = {get_config, PAYLOAD_UP_TO, VHOST_USER_MAX_PAYLOAD, 0},
	[VHOST_USER_SET_CONFIG] = {set_config, PAYLOAD_UP_TO, VHOST_USER_MAX_PAYLOAD, 0},
	[VHOST_USER_GPU_SET_SOCKET] = {gpu_set_socket, PAYLOAD_EXACT, 0, 1},
	[VHOST_USER_SET_SLAVE_REQ_FD] = {set_slave_req_fd, PAYLOAD_EXACT, 0, 1},
	[VHOST_USER_GET_MAX_MEM_SLOTS] = {get_max_mem_slots, PAYLOAD_EXACT, 0, 0},
	[VHOST_USER_ADD_MEM_REG] = {add_mem_reg, PAYLOAD_EXACT, 40, 1},
	/* A region fd may come along; it is closed (§6). */
	[VHOST_USER_REM_MEM_REG] = {rem_mem_reg, PAYLOAD_EXACT, 40, 1},
};

static const struct request_info *
lookup_request(uint32_t request)
{
	if (request >= VHOST_USER_REQUEST_MAX || requests[request].handle == NULL) {
		return NULL;
	}
	return &requests[request];
}

/* Checks a complete header before its payload is read; false = protocol error. */
static bool
check_header(struct vu_dev *dev, const struct message *msg)
{
	if ((msg->flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION) {
		dev_fail(dev, "request %u with flags 0x%x: bad version", msg->request, msg->flags);
		return false;
	}
	const struct request_info *info = lookup_request(msg->request);
	if (info == NULL) {
		dev_fail(dev, "unsupported request %u (%s)%s", msg->request,
			request_name(msg->request),
			msg->flags & VHOST_USER_NEED_REPLY ? " wants a reply" : "");
		return false;
	}
	bool size_ok = info->kind == PAYLOAD_EXACT ? msg->size == info->size
						    : msg->size >= 8 && msg->size <= info->size;
	if (!size_ok) {
		dev_fail(dev, "%s with a %u-byte payload", request_name(msg->request), msg->size);
		return false;
	}
	return true;
}

static struct message
parse_header(const struct vu_dev *dev)
{
	return (struct message){
		.request = get_u32(dev->msg),
		.flags = get_u32(dev->msg + 4),
		.size = get_u32(dev->msg + 8),
		.payload = dev->msg + VHOST_USER_HDR_SIZE,
	};
}

static void
dispatch(struct vu_dev *dev, const struct message *msg)
{
	const struct request_info *info = lookup_request(msg->request);
	dev_log(dev, WLR_DEBUG, "%s (flags 0x%x, %u bytes, %u fds)", request_name(msg->request),
		msg->flags, msg->size, dev->msg_nfds);
	unsigned nfds = dev->msg_nfds;
	/* Fds beyond what the request uses (or on one that takes none) are closed below. */
	struct request_ctx ctx = {.dev = dev, .msg = msg, .fds = dev->msg_fds,
		.nfds = nfds < info->max_fds ? nfds : info->max_fds};
	if (nfds > info->max_fds) {
		dev_log(dev, WLR_INFO, "%s carried %u fds; closing %u unused", request_name(msg->request),
			nfds, nfds - info->max_fds);
	}
	enum reply reply = info->handle(&ctx);
	/* Whatever a handler did not take (mem table fds are mapped, not kept) is closed. */
	for (unsigned i = 0; i < nfds; i++) {
		close_fd(&dev->msg_fds[i]);
	}
	dev->msg_nfds = 0;
	if (dev->closing) {
		return;
	}
	/* REPLY_ACK: requests without a reply of their own answer NEED_REPLY with a u64. */
	if ((msg->flags & VHOST_USER_NEED_REPLY) && (reply == REPLY_NONE || reply == REPLY_FAILED)) {
		uint64_t ack = reply == REPLY_FAILED;
		send_reply(dev, msg->request, &ack, sizeof(ack));
	} else if (reply == REPLY_FAILED) {
		dev_log(dev, WLR_ERROR, "%s failed (the front end did not ask for an ack)",
			request_name(msg->request));
	}
}

/* Takes the fds of SCM_RIGHTS messages; false if there were too many. */
static bool
collect_fds(struct vu_dev *dev, struct msghdr *mh)
{
	bool ok = !(mh->msg_flags & MSG_CTRUNC);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const uint8_t *data = CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, data + i * sizeof(int), sizeof(int));
			if (dev->msg_nfds < VHOST_USER_MAX_FDS) {
				dev->msg_fds[dev->msg_nfds++] = fd;
			} else {
				close(fd);
				ok = false;
			}
		}
	}
	return ok;
}

enum read_result {
	READ_AGAIN,    // nothing more to read now
	READ_PROGRESS, // some bytes arrived
	READ_CLOSED,   // EOF or error: the device is closing
};

/*
 * Reads what is missing from the current message, never past its end, so
 * that the fds of the next message are not received with this one. A
 * message may arrive in pieces; the socket is non-blocking throughout.
 */
static enum read_result
read_message_part(struct vu_dev *dev)
{
	size_t want = VHOST_USER_HDR_SIZE;
	if (dev->msg_have >= VHOST_USER_HDR_SIZE) {
		want += get_u32(dev->msg + 8); // validated by check_header already
	}
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = dev->msg + dev->msg_have, .iov_len = want - dev->msg_have};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
		.msg_controllen = sizeof(control.buf)};
	ssize_t n = recvmsg(dev->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			return READ_AGAIN;
		}
		dev_log(dev, WLR_ERROR, "connection error: %s", strerror(errno));
		dev->closing = true;
		return READ_CLOSED;
	}
	if (!collect_fds(dev, &mh)) {
		dev_fail(dev, "more than %d fds with one message", VHOST_USER_MAX_FDS);
		return READ_CLOSED;
	}
	if (n == 0) {
		if (dev->msg_have > 0) {
			dev_fail(dev, "connection closed in the middle of a message (%zu of %zu bytes)",
				dev->msg_have, want);
		} else {
			dev_log(dev, WLR_INFO, "front end closed the connection");
			dev->closing = true;
		}
		return READ_CLOSED;
	}
	dev->msg_have += (size_t)n;
	return READ_PROGRESS;
}

/* Returns true when a whole message is buffered (and valid so far). */
static bool
message_complete(struct vu_dev *dev)
{
	if (dev->msg_have < VHOST_USER_HDR_SIZE) {
		return false;
	}
	struct message msg = parse_header(dev);
	if (dev->msg_have == VHOST_USER_HDR_SIZE && !check_header(dev, &msg)) {
		return false;
	}
	return dev->msg_have == VHOST_USER_HDR_SIZE + msg.size;
}

/* Handles the messages waiting on the connection (bounded per call). */
static void
read_and_dispatch(struct vu_dev *dev)
{
	unsigned handled = 0;
	while (!dev->closing && handled < MESSAGES_PER_DISPATCH) {
		enum read_result r = read_message_part(dev);
		if (r != READ_PROGRESS) {
			break;
		}
		if (!message_complete(dev)) {
			continue;
		}
		struct message msg = parse_header(dev);
		dispatch(dev, &msg);
		dev->msg_have = 0;
		handled++;
	}
}

static int
handle_connection(int fd, uint32_t mask, void *data)
{
	struct vu_dev *dev = data;
	dev_enter(dev);
	read_and_dispatch(dev);
	dev_leave(dev);
	return 0;
}

/* --- server ---------------------------------------------------------------------- */

static void
accept_front_end(struct vu_server *server, int fd)
{
	struct vu_dev *dev = calloc(1, sizeof(*dev));
	if (dev == NULL) {
		server_log(server, WLR_ERROR, "out of memory; dropping the front end");
		close(fd);
		return;
	}
	dev->server = server;
	dev->fd = fd;
	dev->slave_fd = -1;
	vu_mem_init(&dev->mem);
	dev->num_queues = server->ops->num_queues;
	if (dev->num_queues > VU_MAX_QUEUES) {
		dev->num_queues = VU_MAX_QUEUES;
	}
	for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_vring *r = &dev->vrings[i];
		r->dev = dev;
		r->index = i;
		r->kick_fd = r->call_fd = r->err_fd = -1;
	}
	dev->source = wl_event_loop_add_fd(server->loop, fd, WL_EVENT_READABLE, handle_connection,
		dev);
	if (dev->source == NULL) {
		server_log(server, WLR_ERROR, "cannot poll the front end connection");
		close(fd);
		free(dev);
		return;
	}
	server->dev = dev;
	server_log(server, WLR_INFO, "front end connected");
	dev_enter(dev);
	if (server->ops->connected != NULL) {
		server->ops->connected(server->data, dev);
	}
	dev_leave(dev);
}

static int
handle_listen(int fd, uint32_t mask, void *data)
{
	struct vu_server *server = data;
	for (;;) {
		int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				server_log(server, WLR_ERROR, "accept failed: %s", strerror(errno));
			}
			return 0;
		}
		if (server->dev != NULL) {
			server_log(server, WLR_ERROR,
				"a second front end connected while one is active; closing it");
			close(conn);
			continue;
		}
		accept_front_end(server, conn);
	}
}

/* True if something accepts connections on the socket file at `addr`. */
static bool
socket_in_use(const struct sockaddr_un *addr)
{
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0) {
		return true;
	}
	int ret = connect(probe, (const struct sockaddr *)addr, sizeof(*addr));
	/* EAGAIN: a listener whose backlog is full is still a listener. */
	bool in_use = ret == 0 || errno == EAGAIN || errno == EINPROGRESS;
	close(probe);
	return in_use;
}

/* A socket file left behind by an earlier run: nobody listens on it any more. */
static bool
is_stale_socket(const struct sockaddr_un *addr)
{
	struct stat st;
	return lstat(addr->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && !socket_in_use(addr);
}

/* Returns the listening fd, or -errno. */
static int
bind_socket(struct vu_server *server, const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	int ret = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
	if (ret != 0 && errno == EADDRINUSE) {
		if (is_stale_socket(addr)) {
			server_log(server, WLR_INFO, "replacing stale socket %s", addr->sun_path);
			unlink(addr->sun_path);
			ret = bind(fd, (const struct sockaddr *)addr, sizeof(*addr));
		} else {
			errno = EADDRINUSE;
		}
	}
	if (ret != 0 || listen(fd, 4) != 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

struct vu_server *
vu_server_create(struct wl_event_loop *loop, const char *path, const char *name,
	const struct vu_device_ops *ops, void *data)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		wlr_log(WLR_ERROR, "VM %s: socket path too long: %s", name, path);
		return NULL;
	}
	strcpy(addr.sun_path, path);
	struct vu_server *server = calloc(1, sizeof(*server));
	if (server == NULL) {
		return NULL;
	}
	server->loop = loop;
	server->ops = ops;
	server->data = data;
	server->listen_fd = -1;
	server->path = strdup(path);
	server->name = strdup(name);
	if (server->path == NULL || server->name == NULL) {
		goto error;
	}
	if (ops->protocol_features & ~PROTOCOL_FEATURES_SUPPORTED) {
		server_log(server, WLR_INFO, "not offering unsupported protocol features 0x%llx",
			(unsigned long long)(ops->protocol_features & ~PROTOCOL_FEATURES_SUPPORTED));
	}
	int fd = bind_socket(server, &addr);
	if (fd < 0) {
		server_log(server, WLR_ERROR, "cannot listen on %s: %s", path, strerror(-fd));
		goto error;
	}
	server->listen_fd = fd;
	server->listen_source = wl_event_loop_add_fd(loop, server->listen_fd, WL_EVENT_READABLE,
		handle_listen, server);
	if (server->listen_source == NULL) {
		server_log(server, WLR_ERROR, "cannot poll %s", path);
		unlink(path);
		goto error;
	}
	server_log(server, WLR_INFO, "vhost-user back end listening on %s", path);
	return server;

error:
	if (server->listen_fd >= 0) {
		close(server->listen_fd);
	}
	free(server->path);
	free(server->name);
	free(server);
	return NULL;
}

void
vu_server_destroy(struct vu_server *server)
{
	if (server == NULL) {
		return;
	}
	if (server->dev != NULL) {
		vu_dev_disconnect(server->dev, "the back end is shutting down");
	}
	wl_event_source_remove(server->listen_source);
	close(server->listen_fd);
	unlink(server->path);
	free(server->path);
	free(server->name);
	free(server);
}

const char *
vu_server_name(const struct vu_server *server)
{
	return server->name;
}

/* --- device API ----------------------------------------------------------------- */

const struct vu_guest_memory *
vu_dev_memory(struct vu_dev *dev)
{
	return &dev->mem;
}

uint64_t
vu_dev_features(struct vu_dev *dev)
{
	return dev->features;
}

const char *
vu_dev_name(const struct vu_dev *dev)
{
	return dev->server->name;
}

int
vu_dev_pop(struct vu_dev *dev, unsigned index, struct vu_chain *chain)
{
	if (index >= dev->num_queues || dev->closing || !vring_active(&dev->vrings[index])) {
		return 0;
	}
	struct vu_vring *r = &dev->vrings[index];
	int ret = vu_virtq_pop(&r->vq, chain);
	if (ret < 0 && !r->reported_broken) {
		/* Tell the front end too: QEMU logs ring errors signalled on the err fd. */
		r->reported_broken = true;
		dev_log(dev, WLR_ERROR, "queue %u: the guest broke the ring (%s); queue halted", index,
			strerror(-ret));
		signal_fd(dev, r->err_fd, "err", index);
	}
	return ret;
}

void
vu_dev_push(struct vu_dev *dev, unsigned index, const struct vu_chain *chain, uint32_t written)
{
	/* A stopped ring's memory is off limits (§7); its chains are simply dropped. */
	if (index >= dev->num_queues || dev->closing || !dev->vrings[index].started) {
		return;
	}
	struct vu_vring *r = &dev->vrings[index];
	vu_virtq_push(&r->vq, chain, written);
	/* A disabled ring must have no side effects, so only an active one interrupts. */
	if (vring_active(r) && vu_virtq_should_notify(&r->vq)) {
		signal_fd(dev, r->call_fd, "call", index);
	}
}
