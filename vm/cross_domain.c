/*
 * The cross-domain engine of one guest context: commands 1-7 as crosvm's
 * rutabaga runs them (so existing guest proxies work as far as guest
 * memory allows), plus crossway's extensions for crossway-guest (streamed
 * memory, blob replacement). Facts: ../shared/reference/cross-domain.md.
 *
 * Every value the guest sends is checked against the command buffer (a
 * host copy made by the device) and every host write into the guest is
 * checked against the ring resource. Nothing blocks: every fd is
 * non-blocking and is waited on as an event source only while the engine
 * may take more from it, which bounds what waits for a guest that does not
 * poll.
 */
#define _GNU_SOURCE
#include "cross_domain.h"

#include <drm_fourcc.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>
#include <wlr/util/log.h>

#include "cross_domain_protocol.h"
#include "vhost_user.h"

#define IMAGE_STRIDE_ALIGN 256 // what vgpu_blob_image_get_dmabuf wants for GPU imports
#define IMAGE_SIZE_ALIGN 4096
#define MAP_CACHE_CACHED 0x01  // rutabaga's map_info: cache type ...
#define MAP_ACCESS_RW 0x30     // ... | read | write
#define FD_CMSG_SPACE CMSG_SPACE(sizeof(int) * XDOM_MAX_IDENTIFIERS)

/* A host message waiting for a POLL: a whole RECEIVE or READ, as the ring gets it. */
struct queued_msg {
	struct wl_list link; // xdom_context.queue
	struct read_pipe *pipe; // the read pipe it came from, if any
	bool receive;
	size_t size;
	uint8_t data[];
};

/* Host to guest: the guest reads what the compositor's client writes. */
struct read_pipe {
	struct wl_list link; // xdom_context.read_pipes
	struct xdom_context *ctx;
	uint32_t id;
	int fd; // -1 after EOF
	struct wl_event_source *source; // only while nothing of it waits in the queue
	bool queued;
};

/* Guest to host: the guest writes what the compositor's client reads. */
struct write_pipe {
	struct wl_list link; // xdom_context.write_pipes
	struct xdom_context *ctx;
	uint32_t id;
	int fd; // -1 once the reader went away (the guest's data is then dropped)
	struct wl_event_source *source; // only while `buf` holds data
	uint8_t *buf;
	size_t len;   // bytes of `buf` waiting
	size_t cap;   // its allocation, charged to the VM's budget
	bool hang_up; // the guest is done: close once `buf` is written
};

/* A host memory fd whose bytes go to a crossway guest as READ chunks. */
struct stream {
	struct wl_list link; // xdom_context.streams
	uint32_t id;
	int fd;
	uint64_t size, offset;
};

/* Guest data (and fds) the compositor has not taken yet. */
struct out_msg {
	struct wl_list link; // xdom_context.out
	uint8_t *data;
	size_t len, off;
	int fds[XDOM_MAX_IDENTIFIERS];
	unsigned nfds; // sent with the first byte, then closed
};

struct image_entry {
	uint32_t width, height, format;
	struct xdom_image_requirements reqs;
};

struct xdom_context {
	struct wl_event_loop *loop;
	char *vm_name;
	char prefix[48];
	uint32_t ctx_id;
	const void *owner;
	const struct xdom_ops *ops;
	void *data;

	bool initialized;
	bool crossway; // the guest announced crossway's extensions
	uint32_t query_ring, channel_ring, channel_type;

	int wayland_fd;
	struct wl_event_source *wayland_source;
	bool wayland_hup; // the compositor hung up while we were not reading
	struct wl_list out; // out_msg.link
	size_t out_bytes; // data and per-message overhead of `out`
	unsigned fds_queued; // fds in `out`, not sent yet
	uint64_t fds_given;  // fds written to the Wayland connection so far
	struct xdom_budget *budget; // the VM's, or NULL
	bool ring_error_logged;

	struct wl_list queue; // queued_msg.link, oldest first
	unsigned queued;
	bool receive_pending; // a RECEIVE waits in the queue: the socket is not read
	struct wl_list streams; // stream.link: the last RECEIVE's streamed items, in order
	bool stream_turn; // alternate stream chunks and queued messages
	unsigned polls;
	uint32_t messages;

	struct wl_list read_pipes, write_pipes;
	unsigned read_count, write_count;
	uint32_t next_read_pipe; // the id the guest must name in its next READ_PIPE
	uint32_t next_image_id, next_item_id, next_stream_id;
	struct image_entry images[XDOM_MAX_IMAGE_CACHE];
	unsigned image_count, image_next;
};

static void xdom_log(const struct xdom_context *ctx, enum wlr_log_importance level,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
xdom_log(const struct xdom_context *ctx, enum wlr_log_importance level, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	vu_vm_logv(level, ctx->vm_name, ctx->prefix, fmt, args);
	va_end(args);
}

static uint32_t
rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static void update_wayland_source(struct xdom_context *ctx);
static void update_read_pipe(struct read_pipe *pipe);
static void pump(struct xdom_context *ctx);

/* --- ids ---------------------------------------------------------------------------- */

static bool
write_pipe_id_used(const struct xdom_context *ctx, uint32_t id)
{
	const struct write_pipe *p;
	wl_list_for_each(p, &ctx->write_pipes, link) {
		if (p->id == id) {
			return true;
		}
	}
	return false;
}

/* Odd ids (crosvm: host items, first 3), below the read-pipe range, unused. */
static uint32_t
next_odd_id(struct xdom_context *ctx)
{
	do {
		ctx->next_item_id += 2;
		if (ctx->next_item_id >= XDOM_PIPE_READ_START) {
			ctx->next_item_id = 3;
		}
	} while (write_pipe_id_used(ctx, ctx->next_item_id));
	return ctx->next_item_id;
}

/* Even ids (crosvm: image requirement items, first 4). */
static uint32_t
next_even_id(struct xdom_context *ctx)
{
	ctx->next_image_id += 2;
	if (ctx->next_image_id >= XDOM_PIPE_READ_START) {
		ctx->next_image_id = 4;
	}
	return ctx->next_image_id;
}

static uint32_t
next_stream_id(struct xdom_context *ctx)
{
	ctx->next_stream_id++;
	if (ctx->next_stream_id >= XDOM_RING_NONE - 1) {
		ctx->next_stream_id = XDOM_STREAM_START + 1;
	}
	return ctx->next_stream_id;
}

/* --- the channel ring and its queue ------------------------------------------------- */

static struct queued_msg *
enqueue(struct xdom_context *ctx, const void *msg, size_t size)
{
	struct queued_msg *q = calloc(1, sizeof(*q) + size);
	if (q == NULL) {
		xdom_log(ctx, WLR_ERROR, "out of memory: a host message is lost");
		return NULL;
	}
	memcpy(q->data, msg, size);
	q->size = size;
	wl_list_insert(ctx->queue.prev, &q->link);
	ctx->queued++;
	return q;
}

/* Writes one message at offset 0 of the channel ring and signals one POLL. */
static bool
write_channel(struct xdom_context *ctx, const void *msg, size_t size)
{
	struct vgpu_resource *ring = ctx->ops->resource(ctx->data, ctx->channel_ring);
	int r = ring == NULL ? -ENOENT :
		vgpu_resource_write_guest(ring, ctx->ops->memory(ctx->data), 0, msg, size);
	if (r < 0) {
		/* Once per context: a guest that detaches its ring while polling would flood the log. */
		xdom_log(ctx, ctx->ring_error_logged ? WLR_DEBUG : WLR_ERROR, "channel ring %u: a "
			"%zu-byte message cannot be written (%s): dropped%s", ctx->channel_ring, size,
			ring == NULL ? "not attached" : strerror(-r),
			ctx->ring_error_logged ? "" : " (later ones are not logged)");
		ctx->ring_error_logged = true;
		return false;
	}
	ctx->polls--;
	ctx->messages++;
	ctx->ops->poll_done(ctx->data);
	return true;
}

static void
read_pipe_free(struct read_pipe *pipe)
{
	if (pipe->source != NULL) {
		wl_event_source_remove(pipe->source);
	}
	if (pipe->fd >= 0) {
		close(pipe->fd);
	}
	wl_list_remove(&pipe->link);
	pipe->ctx->read_count--;
	free(pipe);
}

static void
write_queued(struct xdom_context *ctx)
{
	struct queued_msg *q = wl_container_of(ctx->queue.next, q, link);
	write_channel(ctx, q->data, q->size);
	wl_list_remove(&q->link);
	ctx->queued--;
	if (q->receive) {
		ctx->receive_pending = false; // its streams, if any, may go now
		update_wayland_source(ctx);
	}
	struct read_pipe *pipe = q->pipe;
	free(q);
	if (pipe != NULL) {
		pipe->queued = false;
		if (pipe->fd < 0) {
			read_pipe_free(pipe); // that was its hang_up
		} else {
			update_read_pipe(pipe);
		}
	}
}

/* The next READ chunk of the oldest stream (pread: the sender's offset does not matter). */
static void
write_stream_chunk(struct xdom_context *ctx)
{
	struct stream *s = wl_container_of(ctx->streams.next, s, link);
	uint8_t msg[XDOM_RING_SIZE];
	struct xdom_read_write *hdr = (struct xdom_read_write *)msg;
	uint64_t want = s->size - s->offset;
	if (want > XDOM_MAX_READ_DATA) {
		want = XDOM_MAX_READ_DATA;
	}
	ssize_t n = want == 0 ? 0 : pread(s->fd, msg + sizeof(*hdr), (size_t)want, (off_t)s->offset);
	if (n < 0) {
		xdom_log(ctx, WLR_ERROR, "streamed item 0x%x: read failed at %llu of %llu bytes (%s)",
			s->id, (unsigned long long)s->offset, (unsigned long long)s->size, strerror(errno));
		n = 0;
	}
	s->offset += (uint64_t)n;
	/* A file that shrank under us ends early: the guest gets what there was. */
	bool done = s->offset >= s->size || n == 0;
	memset(hdr, 0, sizeof(*hdr));
	hdr->hdr.cmd = XDOM_CMD_READ;
	hdr->hdr.cmd_size = htole16((uint16_t)(sizeof(*hdr) + (size_t)n));
	hdr->identifier = htole32(s->id);
	hdr->hang_up = htole32(done ? 1 : 0);
	hdr->opaque_data_size = htole32((uint32_t)n);
	if (!write_channel(ctx, msg, sizeof(*hdr) + (size_t)n)) {
		done = true; // no ring to stream into: drop the rest, not one log line per chunk
	}
	if (done) {
		close(s->fd);
		wl_list_remove(&s->link);
		free(s);
		if (wl_list_empty(&ctx->streams)) {
			update_wayland_source(ctx); // the next RECEIVE may come
		}
	}
}

/* Writes what waits, one message per POLL, as long as POLLs wait. */
static void
pump(struct xdom_context *ctx)
{
	while (ctx->polls > 0) {
		/* A RECEIVE's streamed items follow it, never precede it. */
		bool stream_ready = !wl_list_empty(&ctx->streams) && !ctx->receive_pending;
		bool queue_ready = !wl_list_empty(&ctx->queue);
		if (stream_ready && (!queue_ready || ctx->stream_turn)) {
			write_stream_chunk(ctx);
			ctx->stream_turn = false;
		} else if (queue_ready) {
			write_queued(ctx);
			ctx->stream_turn = true;
		} else {
			break;
		}
	}
}

void
xdom_context_add_poll(struct xdom_context *ctx)
{
	ctx->polls++;
	pump(ctx);
}

void
xdom_context_cancel_polls(struct xdom_context *ctx)
{
	if (ctx->polls == 0) {
		return;
	}
	ctx->polls = 0;
	/* The guest reads the ring at its early fence: make it see no message. */
	struct vgpu_resource *ring = ctx->ops->resource(ctx->data, ctx->channel_ring);
	struct xdom_header empty = {0};
	if (ctx->initialized && ring != NULL) {
		vgpu_resource_write_guest(ring, ctx->ops->memory(ctx->data), 0, &empty, sizeof(empty));
	}
}

/* --- the VM's budget --------------------------------------------------------------------- */

/* Takes `bytes` of the VM's engine memory; false (nothing taken) if that is spent. */
static bool
charge(struct xdom_context *ctx, size_t bytes)
{
	if (ctx->budget == NULL) {
		return true;
	}
	if (ctx->budget->memory > XDOM_MAX_VM_MEMORY ||
			bytes > XDOM_MAX_VM_MEMORY - ctx->budget->memory) {
		return false;
	}
	ctx->budget->memory += bytes;
	return true;
}

static void
uncharge(struct xdom_context *ctx, size_t bytes)
{
	if (ctx->budget != NULL) {
		ctx->budget->memory -= bytes;
	}
}

/* --- the Wayland connection ----------------------------------------------------------- */

/* What a queued SEND costs besides its data. */
#define OUT_MSG_OVERHEAD sizeof(struct out_msg)

static void
close_fds(int *fds, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
		}
	}
}

static void
out_msg_free(struct xdom_context *ctx, struct out_msg *m)
{
	close_fds(m->fds, m->nfds);
	ctx->fds_queued -= m->nfds;
	ctx->out_bytes -= m->len - m->off + OUT_MSG_OVERHEAD;
	uncharge(ctx, m->len + OUT_MSG_OVERHEAD);
	wl_list_remove(&m->link);
	free(m->data);
	free(m);
}

static void
free_out(struct xdom_context *ctx)
{
	struct out_msg *m, *tmp;
	wl_list_for_each_safe(m, tmp, &ctx->out, link) {
		out_msg_free(ctx, m);
	}
}

static void
close_channel(struct xdom_context *ctx)
{
	if (ctx->wayland_source != NULL) {
		wl_event_source_remove(ctx->wayland_source);
		ctx->wayland_source = NULL;
	}
	if (ctx->wayland_fd >= 0) {
		close(ctx->wayland_fd);
		ctx->wayland_fd = -1;
	}
	free_out(ctx);
}

/* Sends what the compositor can take now; fds go with the message's first byte. */
static void
flush_out(struct xdom_context *ctx)
{
	while (!wl_list_empty(&ctx->out) && ctx->wayland_fd >= 0) {
		struct out_msg *m = wl_container_of(ctx->out.next, m, link);
		struct iovec iov = {.iov_base = m->data + m->off, .iov_len = m->len - m->off};
		union {
			char buf[FD_CMSG_SPACE];
			struct cmsghdr align;
		} control;
		memset(&control, 0, sizeof(control));
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (m->nfds > 0) {
			msg.msg_control = control.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
			struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			cmsg->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
			memcpy(CMSG_DATA(cmsg), m->fds, sizeof(int) * m->nfds);
		}
		ssize_t n = sendmsg(ctx->wayland_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				return;
			}
			xdom_log(ctx, WLR_INFO, "Wayland connection lost (%s)", strerror(errno));
			close_channel(ctx);
			return;
		}
		close_fds(m->fds, m->nfds); // the compositor has its own copies now
		ctx->fds_given += m->nfds;
		ctx->fds_queued -= m->nfds;
		m->nfds = 0;
		m->off += (size_t)n;
		ctx->out_bytes -= (size_t)n;
		if (m->off < m->len) {
			return;
		}
		out_msg_free(ctx, m);
	}
}

unsigned
xdom_context_fds_held(const struct xdom_context *ctx)
{
	uint64_t held = ctx->fds_queued;
	if (ctx->wayland_fd >= 0 && ctx->ops->fds_taken != NULL) {
		/* Given but not taken: they wait in libwayland's connection of that client. */
		uint64_t taken = ctx->ops->fds_taken(ctx->data);
		if (taken < ctx->fds_given) {
			held += ctx->fds_given - taken;
		}
	}
	return held > UINT_MAX ? UINT_MAX : (unsigned)held;
}

/* Fds the engine may take from the compositor: one RECEIVE at a time, after its streams. */
static bool
reading_allowed(const struct xdom_context *ctx)
{
	return ctx->wayland_fd >= 0 && !ctx->receive_pending && wl_list_empty(&ctx->streams);
}

static int handle_wayland(int fd, uint32_t mask, void *data);

/*
 * Watches the socket only for what may happen now. Without interest the
 * source is removed, not muted: epoll reports a hang-up even to an empty
 * mask, which would spin while the guest does not poll.
 */
static void
update_wayland_source(struct xdom_context *ctx)
{
	if (ctx->wayland_fd < 0) {
		return;
	}
	uint32_t mask = 0;
	if (reading_allowed(ctx)) {
		mask |= WL_EVENT_READABLE;
	}
	if (!wl_list_empty(&ctx->out) && !ctx->wayland_hup) {
		mask |= WL_EVENT_WRITABLE;
	}
	if (mask == 0) {
		if (ctx->wayland_source != NULL) {
			wl_event_source_remove(ctx->wayland_source);
			ctx->wayland_source = NULL;
		}
	} else if (ctx->wayland_source == NULL) {
		ctx->wayland_source = wl_event_loop_add_fd(ctx->loop, ctx->wayland_fd, mask,
			handle_wayland, ctx);
		if (ctx->wayland_source == NULL) {
			xdom_log(ctx, WLR_ERROR, "cannot watch the Wayland connection: closing it");
			close_channel(ctx);
		}
	} else {
		wl_event_source_fd_update(ctx->wayland_source, mask);
	}
}

enum fd_kind { FD_UNKNOWN, FD_WRITE_PIPE, FD_MEMORY };

static enum fd_kind
classify_fd(int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		return FD_UNKNOWN;
	}
	if (S_ISFIFO(st.st_mode)) {
		int flags = fcntl(fd, F_GETFL);
		return flags >= 0 && (flags & O_ACCMODE) == O_WRONLY ? FD_WRITE_PIPE : FD_UNKNOWN;
	}
	/*
	 * Memory only: memfds and unlinked shm files (wlroots' keymap is an
	 * unlinked /dev/shm file), never a file with a name: the engine reads
	 * what it streams with crossway's rights, and a host file is no
	 * business of a guest. dma-bufs and sockets are not regular files.
	 */
	struct statfs sfs;
	if (S_ISREG(st.st_mode) && st.st_nlink == 0 && fstatfs(fd, &sfs) == 0 &&
			(sfs.f_type == TMPFS_MAGIC || sfs.f_type == HUGETLBFS_MAGIC) &&
			lseek(fd, 0, SEEK_CUR) >= 0) {
		*size = (uint64_t)st.st_size;
		return FD_MEMORY;
	}
	return FD_UNKNOWN;
}

static bool
add_write_pipe(struct xdom_context *ctx, int fd, uint32_t id)
{
	struct write_pipe *pipe = calloc(1, sizeof(*pipe));
	if (pipe == NULL) {
		return false;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	pipe->ctx = ctx;
	pipe->id = id;
	pipe->fd = fd;
	wl_list_insert(ctx->write_pipes.prev, &pipe->link);
	ctx->write_count++;
	return true;
}

static bool
add_stream(struct xdom_context *ctx, int fd, uint32_t id, uint64_t size)
{
	struct stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return false;
	}
	s->id = id;
	s->fd = fd;
	s->size = size;
	wl_list_insert(ctx->streams.prev, &s->link);
	return true;
}

/*
 * Checks every fd of a received message first: the message keeps all of
 * them or none (an fd the guest cannot use would shift the others).
 */
static bool
fds_acceptable(struct xdom_context *ctx, const int *fds, unsigned count, enum fd_kind *kinds,
	uint64_t *sizes)
{
	unsigned pipes = 0;
	for (unsigned i = 0; i < count; i++) {
		kinds[i] = classify_fd(fds[i], &sizes[i]);
		if (kinds[i] == FD_UNKNOWN) {
			xdom_log(ctx, WLR_ERROR, "RECEIVE: fd %u of %u is neither memory (a memfd or an "
				"unlinked shm file) nor a write pipe: the message's fds are dropped", i + 1, count);
			return false;
		}
		if (kinds[i] == FD_WRITE_PIPE && ctx->write_count + ++pipes > XDOM_MAX_PIPES) {
			xdom_log(ctx, WLR_ERROR, "RECEIVE: more than %d write pipes: the message's fds "
				"are dropped", XDOM_MAX_PIPES);
			return false;
		}
		if (kinds[i] == FD_MEMORY && ctx->crossway && sizes[i] > XDOM_MAX_STREAMED_SIZE) {
			xdom_log(ctx, WLR_ERROR, "RECEIVE: a %llu-byte memory fd is over the %u-byte "
				"streaming limit: the message's fds are dropped",
				(unsigned long long)sizes[i], XDOM_MAX_STREAMED_SIZE);
			return false;
		}
	}
	return true;
}

/*
 * Turns the fds into identifiers (consuming them). Memory for crosvm-style
 * proxies gets crosvm's odd id and its size: only a HOST3D blob could
 * resolve it, and this device refuses HOST3D blobs (it has no host-visible
 * memory to map them into), so the fd is closed now rather than kept for a
 * resolution that cannot come.
 */
static void
translate_fds(struct xdom_context *ctx, struct xdom_send_receive *msg, int *fds,
	unsigned count)
{
	enum fd_kind kinds[XDOM_MAX_IDENTIFIERS];
	uint64_t sizes[XDOM_MAX_IDENTIFIERS];
	if (!fds_acceptable(ctx, fds, count, kinds, sizes)) {
		close_fds(fds, count);
		return;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < count; i++) {
		uint32_t id, type, size = 0;
		bool kept = false;
		if (kinds[i] == FD_WRITE_PIPE) {
			id = next_odd_id(ctx);
			type = XDOM_ID_TYPE_WRITE_PIPE;
			kept = add_write_pipe(ctx, fds[i], id);
		} else if (ctx->crossway) {
			id = next_stream_id(ctx);
			type = XDOM_ID_TYPE_STREAMED_MEMORY;
			size = (uint32_t)sizes[i];
			kept = add_stream(ctx, fds[i], id, sizes[i]);
		} else {
			id = next_odd_id(ctx);
			type = XDOM_ID_TYPE_VIRTGPU_BLOB;
			size = sizes[i] > UINT32_MAX ? UINT32_MAX : (uint32_t)sizes[i];
			close(fds[i]);
			kept = true;
		}
		if (!kept) {
			xdom_log(ctx, WLR_ERROR, "RECEIVE: out of memory: fd %u dropped", i + 1);
			close(fds[i]);
			continue;
		}
		msg->identifiers[n] = htole32(id);
		msg->identifier_types[n] = htole32(type);
		msg->identifier_sizes[n] = htole32(size);
		n++;
	}
	msg->num_identifiers = htole32(n);
}

/* Collects the SCM_RIGHTS fds of a received message; false if some were lost. */
static bool
collect_fds(struct msghdr *msg, int *fds, unsigned *count)
{
	bool complete = !(msg->msg_flags & MSG_CTRUNC);
	*count = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*count < XDOM_MAX_IDENTIFIERS) {
				fds[(*count)++] = fd;
			} else {
				close(fd);
				complete = false;
			}
		}
	}
	return complete;
}

/* Reads one message from the compositor and queues it as a RECEIVE. */
static void
receive(struct xdom_context *ctx)
{
	uint8_t buf[XDOM_RING_SIZE];
	struct xdom_send_receive *msg = (struct xdom_send_receive *)buf;
	union {
		char buf[FD_CMSG_SPACE];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf + sizeof(*msg), .iov_len = XDOM_MAX_SEND_DATA};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
		.msg_controllen = sizeof(control.buf)};
	ssize_t n = recvmsg(ctx->wayland_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	}
	int fds[XDOM_MAX_IDENTIFIERS];
	unsigned count = 0;
	bool complete = n >= 0 ? collect_fds(&mh, fds, &count) : true;
	if (n <= 0 && count == 0) {
		xdom_log(ctx, WLR_INFO, "the compositor closed the Wayland connection%s%s",
			n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		close_channel(ctx);
		return;
	}
	memset(msg, 0, sizeof(*msg));
	if (!complete) {
		xdom_log(ctx, WLR_ERROR, "RECEIVE: more than %d fds in one message: its fds are dropped",
			XDOM_MAX_IDENTIFIERS);
		close_fds(fds, count);
		count = 0;
	}
	translate_fds(ctx, msg, fds, count);
	msg->hdr.cmd = XDOM_CMD_RECEIVE;
	msg->hdr.cmd_size = htole16((uint16_t)(sizeof(*msg) + (size_t)n));
	msg->opaque_data_size = htole32((uint32_t)n);
	struct queued_msg *q = enqueue(ctx, buf, sizeof(*msg) + (size_t)n);
	if (q != NULL) {
		q->receive = true;
		ctx->receive_pending = true;
	}
}

static int
handle_wayland(int fd, uint32_t mask, void *data)
{
	struct xdom_context *ctx = data;
	(void)fd;
	if (mask & WL_EVENT_WRITABLE) {
		flush_out(ctx);
	}
	if (ctx->wayland_fd < 0) {
		return 0;
	}
	if ((mask & (WL_EVENT_READABLE | WL_EVENT_HANGUP | WL_EVENT_ERROR)) && reading_allowed(ctx)) {
		receive(ctx); // reads what is left, then the hang-up as EOF
	} else if (mask & (WL_EVENT_HANGUP | WL_EVENT_ERROR)) {
		/* Nobody reads what we would send; what it sent waits until we read. */
		ctx->wayland_hup = true;
		free_out(ctx);
	}
	update_wayland_source(ctx);
	pump(ctx);
	return 0;
}

/* --- pipes ------------------------------------------------------------------------------ */

static int handle_read_pipe(int fd, uint32_t mask, void *data);

static void
update_read_pipe(struct read_pipe *pipe)
{
	bool want = pipe->fd >= 0 && !pipe->queued;
	if (want && pipe->source == NULL) {
		pipe->source = wl_event_loop_add_fd(pipe->ctx->loop, pipe->fd, WL_EVENT_READABLE,
			handle_read_pipe, pipe);
	} else if (!want && pipe->source != NULL) {
		/* Not muted but removed: a hang-up would be reported to an empty mask. */
		wl_event_source_remove(pipe->source);
		pipe->source = NULL;
	}
}

/* One chunk of the pipe becomes a READ; at EOF a READ with hang_up. */
static int
handle_read_pipe(int fd, uint32_t mask, void *data)
{
	struct read_pipe *pipe = data;
	struct xdom_context *ctx = pipe->ctx;
	(void)mask;
	uint8_t msg[XDOM_RING_SIZE];
	struct xdom_read_write *hdr = (struct xdom_read_write *)msg;
	ssize_t n = read(fd, msg + sizeof(*hdr), XDOM_MAX_READ_DATA);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return 0;
	}
	if (n < 0) {
		xdom_log(ctx, WLR_ERROR, "read pipe 0x%x: %s: hanging up", pipe->id, strerror(errno));
		n = 0;
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->hdr.cmd = XDOM_CMD_READ;
	hdr->hdr.cmd_size = htole16((uint16_t)(sizeof(*hdr) + (size_t)n));
	hdr->identifier = htole32(pipe->id);
	hdr->hang_up = htole32(n == 0 ? 1 : 0);
	hdr->opaque_data_size = htole32((uint32_t)n);
	if (n == 0) {
		close(pipe->fd);
		pipe->fd = -1;
	}
	struct queued_msg *q = enqueue(ctx, msg, sizeof(*hdr) + (size_t)n);
	if (q == NULL) {
		if (pipe->fd < 0) {
			read_pipe_free(pipe);
		}
		return 0;
	}
	q->pipe = pipe;
	pipe->queued = true;
	update_read_pipe(pipe);
	pump(ctx);
	return 0;
}

static void
write_pipe_free(struct write_pipe *pipe)
{
	if (pipe->source != NULL) {
		wl_event_source_remove(pipe->source);
	}
	if (pipe->fd >= 0) {
		close(pipe->fd);
	}
	wl_list_remove(&pipe->link);
	pipe->ctx->write_count--;
	uncharge(pipe->ctx, pipe->cap);
	free(pipe->buf);
	free(pipe);
}

/* The reader went away or is too slow: later data from the guest is dropped. */
static void
write_pipe_break(struct write_pipe *pipe, const char *why)
{
	xdom_log(pipe->ctx, WLR_INFO, "write pipe 0x%x: %s: the guest's data is dropped",
		pipe->id, why);
	if (pipe->source != NULL) {
		wl_event_source_remove(pipe->source);
		pipe->source = NULL;
	}
	close(pipe->fd);
	pipe->fd = -1;
	uncharge(pipe->ctx, pipe->cap);
	free(pipe->buf);
	pipe->buf = NULL;
	pipe->len = 0;
	pipe->cap = 0;
}

/* write() without SIGPIPE: crossway does not ignore it, and the reader may be gone. */
static ssize_t
write_no_sigpipe(int fd, const void *buf, size_t len)
{
	sigset_t set, old, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	ssize_t n = write(fd, buf, len);
	int err = errno;
	if (n < 0 && err == EPIPE && !was_pending) {
		struct timespec zero = {0, 0};
		sigtimedwait(&set, NULL, &zero); // consume the SIGPIPE this write raised
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

static int handle_write_pipe(int fd, uint32_t mask, void *data);

/* Writes what the pipe takes now; false if the pipe broke. */
static bool
write_pipe_flush(struct write_pipe *pipe)
{
	while (pipe->len > 0) {
		ssize_t n = write_no_sigpipe(pipe->fd, pipe->buf, pipe->len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			break;
		}
		if (n <= 0) {
			write_pipe_break(pipe, "the reader went away");
			return false;
		}
		memmove(pipe->buf, pipe->buf + n, pipe->len - (size_t)n);
		pipe->len -= (size_t)n;
	}
	if (pipe->len == 0 && pipe->buf != NULL) {
		free(pipe->buf); // an idle pipe holds no memory
		pipe->buf = NULL;
		uncharge(pipe->ctx, pipe->cap);
		pipe->cap = 0;
	}
	if (pipe->len > 0 && pipe->source == NULL) {
		pipe->source = wl_event_loop_add_fd(pipe->ctx->loop, pipe->fd, WL_EVENT_WRITABLE,
			handle_write_pipe, pipe);
	} else if (pipe->len == 0 && pipe->source != NULL) {
		wl_event_source_remove(pipe->source);
		pipe->source = NULL;
	}
	return true;
}

static int
handle_write_pipe(int fd, uint32_t mask, void *data)
{
	struct write_pipe *pipe = data;
	(void)fd;
	if (mask & (WL_EVENT_HANGUP | WL_EVENT_ERROR)) {
		write_pipe_break(pipe, "the reader went away");
	} else {
		write_pipe_flush(pipe);
	}
	if (pipe->len == 0 && pipe->hang_up) {
		write_pipe_free(pipe);
	}
	return 0;
}

/* --- commands ---------------------------------------------------------------------------- */

static const char *
cmd_name(uint8_t cmd)
{
	switch (cmd) {
	case XDOM_CMD_INIT: return "INIT";
	case XDOM_CMD_GET_IMAGE_REQUIREMENTS: return "GET_IMAGE_REQUIREMENTS";
	case XDOM_CMD_POLL: return "POLL";
	case XDOM_CMD_SEND: return "SEND";
	case XDOM_CMD_RECEIVE: return "RECEIVE";
	case XDOM_CMD_READ: return "READ";
	case XDOM_CMD_WRITE: return "WRITE";
	case XDOM_CMD_BLOB_REPLACE: return "BLOB_REPLACE";
	default: return "unknown command";
	}
}

/* A ring resource attached to this context, holding at least one ring page. */
static bool
ring_ok(struct xdom_context *ctx, uint32_t id, const char *what)
{
	struct vgpu_resource *res = ctx->ops->resource(ctx->data, id);
	if (res == NULL || vgpu_resource_guest_size(res) < XDOM_RING_SIZE) {
		xdom_log(ctx, WLR_ERROR, "INIT: %s ring %u is %s", what, id,
			res == NULL ? "not a resource attached to this context" :
			"smaller than a ring page or has no guest pages");
		return false;
	}
	return true;
}

static int
cmd_init(struct xdom_context *ctx, const uint8_t *cmd, size_t size)
{
	if (ctx->initialized) {
		xdom_log(ctx, WLR_ERROR, "INIT: the context is already initialised");
		return -EINVAL;
	}
	uint32_t query, channel, type, version = 0;
	switch (size) {
	case 16: // legacy: one ring serves both roles
		query = channel = rd32(cmd + 8);
		type = rd32(cmd + 12);
		break;
	case 20:
	case 24:
	case 36: // 36: magma's socket uuid follows; crossway has no internal sockets
		query = rd32(cmd + 8);
		channel = rd32(cmd + 12);
		type = rd32(cmd + 16);
		version = size == 24 ? rd32(cmd + 20) : 0;
		break;
	default:
		xdom_log(ctx, WLR_ERROR, "INIT: %zu bytes (16, 20, 24 or 36 are known)", size);
		return -EINVAL;
	}
	if (type != 0 && type != XDOM_CHANNEL_WAYLAND) {
		xdom_log(ctx, WLR_ERROR, "INIT: channel type %u is not offered", type);
		return -EINVAL;
	}
	if (!ring_ok(ctx, query, "query") || !ring_ok(ctx, channel, "channel")) {
		return -EINVAL;
	}
	if (type == XDOM_CHANNEL_WAYLAND) {
		int fd = ctx->ops->connect_wayland != NULL ? ctx->ops->connect_wayland(ctx->data) : -ENOTSUP;
		if (fd < 0) {
			xdom_log(ctx, WLR_ERROR, "INIT: no Wayland connection (%s)", strerror(-fd));
			return -EINVAL;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		ctx->wayland_fd = fd;
	}
	ctx->initialized = true;
	ctx->query_ring = query;
	ctx->channel_ring = channel;
	ctx->channel_type = type;
	ctx->crossway = version == XDOM_CROSSWAY_VERSION;
	xdom_log(ctx, WLR_DEBUG, "INIT: %zu bytes, rings %u/%u, channel %u%s", size, query,
		channel, type, ctx->crossway ? ", crossway-guest" : "");
	update_wayland_source(ctx);
	return 0;
}

static bool
require_init(struct xdom_context *ctx, uint8_t cmd)
{
	if (!ctx->initialized) {
		xdom_log(ctx, WLR_ERROR, "%s before INIT", cmd_name(cmd));
	}
	return ctx->initialized;
}

/* Bytes per pixel of the single-plane formats a linear layout is given for; 0 otherwise. */
static uint32_t
format_bpp(uint32_t format)
{
	switch (format) {
	case DRM_FORMAT_R8:
		return 1;
	case DRM_FORMAT_GR88: case DRM_FORMAT_RG88: case DRM_FORMAT_RGB565: case DRM_FORMAT_BGR565:
	case DRM_FORMAT_R16:
		return 2;
	case DRM_FORMAT_RGB888: case DRM_FORMAT_BGR888:
		return 3;
	case DRM_FORMAT_XRGB8888: case DRM_FORMAT_ARGB8888: case DRM_FORMAT_XBGR8888:
	case DRM_FORMAT_ABGR8888: case DRM_FORMAT_RGBX8888: case DRM_FORMAT_RGBA8888:
	case DRM_FORMAT_BGRX8888: case DRM_FORMAT_BGRA8888: case DRM_FORMAT_XRGB2101010:
	case DRM_FORMAT_ARGB2101010: case DRM_FORMAT_XBGR2101010: case DRM_FORMAT_ABGR2101010:
		return 4;
	case DRM_FORMAT_XBGR16161616F: case DRM_FORMAT_ABGR16161616F:
		return 8;
	default:
		return 0;
	}
}

/* A linear layout (cached per size and format, as guests cache the answer too). */
static const struct xdom_image_requirements *
image_requirements(struct xdom_context *ctx, uint32_t width, uint32_t height, uint32_t format)
{
	for (unsigned i = 0; i < ctx->image_count; i++) {
		struct image_entry *e = &ctx->images[i];
		if (e->width == width && e->height == height && e->format == format) {
			return &e->reqs;
		}
	}
	uint32_t bpp = format_bpp(format);
	uint64_t row = (uint64_t)width * bpp;
	uint64_t stride = (row + IMAGE_STRIDE_ALIGN - 1) / IMAGE_STRIDE_ALIGN * IMAGE_STRIDE_ALIGN;
	/* wl_shm pools come as R8 width = pool size, height 1: bounded like a blob. */
	if (bpp == 0 || width == 0 || height == 0 || stride > VGPU_MAX_BLOB_SIZE ||
			height > VGPU_MAX_BLOB_SIZE / stride) {
		return NULL;
	}
	uint64_t size = (stride * height + IMAGE_SIZE_ALIGN - 1) / IMAGE_SIZE_ALIGN * IMAGE_SIZE_ALIGN;
	/* Bounded: the oldest entry makes room (the guest then gets a new id for it). */
	struct image_entry *e = &ctx->images[ctx->image_next];
	ctx->image_next = (ctx->image_next + 1) % XDOM_MAX_IMAGE_CACHE;
	if (ctx->image_count < XDOM_MAX_IMAGE_CACHE) {
		ctx->image_count++;
	}
	memset(e, 0, sizeof(*e));
	e->width = width;
	e->height = height;
	e->format = format;
	e->reqs.strides[0] = htole32((uint32_t)stride);
	e->reqs.modifier = htole64(DRM_FORMAT_MOD_LINEAR);
	e->reqs.size = htole64(size);
	e->reqs.blob_id = htole32(next_even_id(ctx));
	e->reqs.map_info = htole32(MAP_CACHE_CACHED | MAP_ACCESS_RW);
	e->reqs.memory_idx = (int32_t)htole32((uint32_t)-1);
	e->reqs.physical_device_idx = (int32_t)htole32((uint32_t)-1);
	return &e->reqs;
}

static int
cmd_get_image_requirements(struct xdom_context *ctx, const uint8_t *cmd, size_t size)
{
	if (!require_init(ctx, XDOM_CMD_GET_IMAGE_REQUIREMENTS)) {
		return -EINVAL;
	}
	if (size < sizeof(struct xdom_get_image_requirements)) {
		xdom_log(ctx, WLR_ERROR, "GET_IMAGE_REQUIREMENTS: %zu bytes", size);
		return -EINVAL;
	}
	uint32_t width = rd32(cmd + 8), height = rd32(cmd + 12), format = rd32(cmd + 16);
	const struct xdom_image_requirements *reqs = image_requirements(ctx, width, height, format);
	if (reqs == NULL) {
		xdom_log(ctx, WLR_ERROR, "GET_IMAGE_REQUIREMENTS: %ux%u of format 0x%08x has no "
			"linear layout here", width, height, format);
		return -EINVAL;
	}
	struct vgpu_resource *ring = ctx->ops->resource(ctx->data, ctx->query_ring);
	int r = ring == NULL ? -ENOENT :
		vgpu_resource_write_guest(ring, ctx->ops->memory(ctx->data), 0, reqs, sizeof(*reqs));
	if (r < 0) {
		xdom_log(ctx, WLR_ERROR, "GET_IMAGE_REQUIREMENTS: query ring %u cannot be written",
			ctx->query_ring);
		return -EINVAL;
	}
	return 0;
}

/* The fd a SEND identifier stands for, or -1 (logged). Read pipes are made later. */
static int
send_blob_fd(struct xdom_context *ctx, uint32_t id)
{
	struct vgpu_resource *res = ctx->ops->resource(ctx->data, id);
	if (res == NULL || !res->blob) {
		xdom_log(ctx, WLR_ERROR, "SEND: resource %u is %s", id,
			res == NULL ? "not attached to this context" : "not a guest blob");
		return -1;
	}
	int fd = vgpu_blob_export_fd(res, ctx->owner);
	if (fd < 0) {
		xdom_log(ctx, WLR_ERROR, "SEND: blob %u cannot be exported (%s)", id, strerror(-fd));
		return -1;
	}
	return fd;
}

static bool
add_read_pipe(struct xdom_context *ctx, int fd, uint32_t id)
{
	struct read_pipe *pipe = calloc(1, sizeof(*pipe));
	if (pipe == NULL) {
		return false;
	}
	pipe->ctx = ctx;
	pipe->id = id;
	pipe->fd = fd;
	wl_list_insert(ctx->read_pipes.prev, &pipe->link);
	ctx->read_count++;
	update_read_pipe(pipe);
	return true;
}

/* Builds the fds of a SEND; false (nothing left open) if an identifier is refused. */
static bool
send_fds(struct xdom_context *ctx, const struct xdom_send_receive *msg, uint32_t count,
	int *fds, int *read_end)
{
	*read_end = -1;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t id = le32toh(msg->identifiers[i]), type = le32toh(msg->identifier_types[i]);
		fds[i] = -1;
		if (type == XDOM_ID_TYPE_VIRTGPU_BLOB) {
			fds[i] = send_blob_fd(ctx, id);
		} else if (type == XDOM_ID_TYPE_READ_PIPE) {
			int p[2];
			if (*read_end >= 0 || id != ctx->next_read_pipe ||
					ctx->read_count >= XDOM_MAX_PIPES) {
				xdom_log(ctx, WLR_ERROR, "SEND: read pipe 0x%x refused (expected 0x%x, at most "
					"one per SEND and %d open)", id, ctx->next_read_pipe, XDOM_MAX_PIPES);
			} else if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
				xdom_log(ctx, WLR_ERROR, "SEND: no pipe: %s", strerror(errno));
			} else {
				*read_end = p[0];
				fds[i] = p[1];
			}
		} else {
			xdom_log(ctx, WLR_ERROR, "SEND: identifier type %u is not accepted", type);
		}
		if (fds[i] < 0) {
			close_fds(fds, i);
			if (*read_end >= 0) {
				close(*read_end);
			}
			return false;
		}
	}
	return true;
}

static int
cmd_send(struct xdom_context *ctx, const uint8_t *cmd, size_t size)
{
	if (!require_init(ctx, XDOM_CMD_SEND)) {
		return -EINVAL;
	}
	struct xdom_send_receive msg;
	if (size < sizeof(msg)) {
		xdom_log(ctx, WLR_ERROR, "SEND: %zu bytes, shorter than its header", size);
		return -EINVAL;
	}
	memcpy(&msg, cmd, sizeof(msg));
	uint32_t count = le32toh(msg.num_identifiers), len = le32toh(msg.opaque_data_size);
	if (count > XDOM_MAX_IDENTIFIERS || len > size - sizeof(msg) || (count > 0 && len == 0)) {
		xdom_log(ctx, WLR_ERROR, "SEND: %u identifiers, %u bytes of data in a %zu-byte command",
			count, len, size);
		return -EINVAL;
	}
	if (ctx->wayland_fd < 0) {
		xdom_log(ctx, WLR_ERROR, "SEND: the context has no open Wayland connection");
		return -EINVAL;
	}
	if (len == 0) {
		return 0;
	}
	size_t cost = len + OUT_MSG_OVERHEAD;
	if (ctx->out_bytes + cost > XDOM_MAX_OUT_BUFFER) {
		xdom_log(ctx, WLR_ERROR, "SEND: the compositor is %zu bytes behind: message refused",
			ctx->out_bytes);
		return -EINVAL;
	}
	/*
	 * fds that no Wayland request takes stay in libwayland's connection
	 * until the client goes (up to about a thousand per client): bounded
	 * per context and per VM.
	 */
	if (count > 0) {
		unsigned held = xdom_context_fds_held(ctx);
		unsigned vm_held = ctx->ops->vm_fds_held != NULL ? ctx->ops->vm_fds_held(ctx->data) : held;
		if (held + count > XDOM_MAX_HELD_FDS || vm_held + count > XDOM_MAX_VM_HELD_FDS) {
			xdom_log(ctx, WLR_ERROR, "SEND: %u fds refused: %u sent fds of this context (%u of "
				"the VM) wait for a request to take them (at most %d, and %d)", count, held,
				vm_held, XDOM_MAX_HELD_FDS, XDOM_MAX_VM_HELD_FDS);
			return -EINVAL;
		}
	}
	if (!charge(ctx, cost)) {
		xdom_log(ctx, WLR_ERROR, "SEND: the VM's contexts buffer %u bytes already: message "
			"refused", XDOM_MAX_VM_MEMORY);
		return -EINVAL;
	}
	struct out_msg *m = calloc(1, sizeof(*m));
	uint8_t *data = malloc(len);
	int read_end = -1;
	if (m == NULL || data == NULL || !send_fds(ctx, &msg, count, m->fds, &read_end)) {
		uncharge(ctx, cost);
		free(m);
		free(data);
		return -EINVAL;
	}
	memcpy(data, cmd + sizeof(msg), len);
	m->data = data;
	m->len = len;
	m->nfds = count;
	if (read_end >= 0) {
		if (!add_read_pipe(ctx, read_end, ctx->next_read_pipe)) {
			close(read_end); // the compositor's client sees EOF at once
		}
		ctx->next_read_pipe++;
	}
	wl_list_insert(ctx->out.prev, &m->link);
	ctx->out_bytes += cost;
	ctx->fds_queued += count;
	flush_out(ctx);
	update_wayland_source(ctx);
	return 0;
}

static struct write_pipe *
find_write_pipe(struct xdom_context *ctx, uint32_t id)
{
	struct write_pipe *p;
	wl_list_for_each(p, &ctx->write_pipes, link) {
		if (p->id == id) {
			return p;
		}
	}
	return NULL;
}

/* Guest data for a write pipe: written now, or kept (bounded) until the pipe takes it. */
static void
write_pipe_append(struct write_pipe *pipe, const uint8_t *data, size_t len)
{
	if (pipe->fd < 0 || len == 0) {
		return;
	}
	if (pipe->len + len > XDOM_MAX_PIPE_BUFFER) {
		write_pipe_break(pipe, "the reader is too slow");
		return;
	}
	if (pipe->len + len > pipe->cap) {
		size_t grow = pipe->len + len - pipe->cap;
		if (!charge(pipe->ctx, grow)) {
			write_pipe_break(pipe, "the VM's contexts buffer too much already");
			return;
		}
		uint8_t *buf = realloc(pipe->buf, pipe->len + len);
		if (buf == NULL) {
			uncharge(pipe->ctx, grow);
			write_pipe_break(pipe, "out of memory");
			return;
		}
		pipe->buf = buf;
		pipe->cap = pipe->len + len;
	}
	memcpy(pipe->buf + pipe->len, data, len);
	pipe->len += len;
	write_pipe_flush(pipe);
}

static int
cmd_write(struct xdom_context *ctx, const uint8_t *cmd, size_t size)
{
	if (!require_init(ctx, XDOM_CMD_WRITE)) {
		return -EINVAL;
	}
	if (size < sizeof(struct xdom_read_write)) {
		xdom_log(ctx, WLR_ERROR, "WRITE: %zu bytes, shorter than its header", size);
		return -EINVAL;
	}
	uint32_t id = rd32(cmd + 8), hang_up = rd32(cmd + 12), len = rd32(cmd + 16);
	if (len > size - sizeof(struct xdom_read_write)) {
		xdom_log(ctx, WLR_ERROR, "WRITE: %u bytes of data in a %zu-byte command", len, size);
		return -EINVAL;
	}
	struct write_pipe *pipe = find_write_pipe(ctx, id);
	if (pipe == NULL) {
		xdom_log(ctx, WLR_ERROR, "WRITE: 0x%x is not a write pipe of this context", id);
		return -EINVAL;
	}
	write_pipe_append(pipe, cmd + sizeof(struct xdom_read_write), len);
	if (hang_up != 0) {
		pipe->hang_up = true;
		if (pipe->len == 0) {
			write_pipe_free(pipe);
		}
	}
	return 0;
}

static int
cmd_blob_replace(struct xdom_context *ctx, const uint8_t *cmd, size_t size)
{
	if (!ctx->crossway || size < sizeof(struct xdom_blob_replace)) {
		xdom_log(ctx, WLR_ERROR, "BLOB_REPLACE: %s", !ctx->crossway ?
			"the guest did not announce crossway's extensions" : "too short");
		return -EINVAL;
	}
	uint32_t old_id = rd32(cmd + 8), new_id = rd32(cmd + 12);
	struct vgpu_resource *old_blob = ctx->ops->resource(ctx->data, old_id);
	struct vgpu_resource *new_blob = ctx->ops->resource(ctx->data, new_id);
	int r = old_blob != NULL && new_blob != NULL ?
		vgpu_blob_replace(old_blob, new_blob, ctx->owner) : -EINVAL;
	if (r < 0) {
		xdom_log(ctx, WLR_ERROR, "BLOB_REPLACE %u -> %u: both must be guest blobs attached "
			"to this context", old_id, new_id);
		return -EINVAL;
	}
	return 0;
}

static int
run_command(struct xdom_context *ctx, uint8_t cmd, const uint8_t *data, size_t size,
	bool *polled)
{
	switch (cmd) {
	case XDOM_CMD_INIT:
		return cmd_init(ctx, data, size);
	case XDOM_CMD_GET_IMAGE_REQUIREMENTS:
		return cmd_get_image_requirements(ctx, data, size);
	case XDOM_CMD_POLL:
		/* The waiting happens on the fence the device gives with add_poll. */
		*polled = true;
		return 0;
	case XDOM_CMD_SEND:
		return cmd_send(ctx, data, size);
	case XDOM_CMD_WRITE:
		return cmd_write(ctx, data, size);
	case XDOM_CMD_BLOB_REPLACE:
		return cmd_blob_replace(ctx, data, size);
	default:
		/* RECEIVE/READ go host to guest; forks' 8-13 collide: refuse them all. */
		xdom_log(ctx, WLR_ERROR, "command %u (%s) refused", cmd, cmd_name(cmd));
		return -EINVAL;
	}
}

int
xdom_context_submit(struct xdom_context *ctx, const void *cmds, size_t size, bool *polled)
{
	const uint8_t *p = cmds;
	*polled = false;
	size_t off = 0;
	int r = 0;
	while (off < size && r == 0) {
		struct xdom_header hdr;
		if (size - off < sizeof(hdr)) {
			xdom_log(ctx, WLR_ERROR, "%zu bytes after the last command", size - off);
			r = -EINVAL;
			break;
		}
		memcpy(&hdr, p + off, sizeof(hdr));
		size_t cmd_size = le16toh(hdr.cmd_size);
		if (cmd_size < sizeof(hdr) || cmd_size > size - off) {
			xdom_log(ctx, WLR_ERROR, "%s: cmd_size %zu with %zu bytes left in the buffer",
				cmd_name(hdr.cmd), cmd_size, size - off);
			r = -EINVAL;
			break;
		}
		r = run_command(ctx, hdr.cmd, p + off, cmd_size, polled);
		off += cmd_size;
	}
	pump(ctx); // a command may have freed room (e.g. nothing) or queued nothing: cheap
	return r;
}

/* --- lifetime ----------------------------------------------------------------------------- */

struct xdom_context *
xdom_context_create(struct wl_event_loop *loop, const char *vm_name, uint32_t ctx_id,
	const void *owner, const struct xdom_ops *ops, void *data)
{
	struct xdom_context *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		return NULL;
	}
	ctx->vm_name = strdup(vm_name);
	if (ctx->vm_name == NULL) {
		free(ctx);
		return NULL;
	}
	snprintf(ctx->prefix, sizeof(ctx->prefix), "cross-domain context %u: ", ctx_id);
	ctx->loop = loop;
	ctx->ctx_id = ctx_id;
	ctx->owner = owner;
	ctx->ops = ops;
	ctx->data = data;
	ctx->wayland_fd = -1;
	wl_list_init(&ctx->out);
	wl_list_init(&ctx->queue);
	wl_list_init(&ctx->streams);
	wl_list_init(&ctx->read_pipes);
	wl_list_init(&ctx->write_pipes);
	ctx->next_read_pipe = XDOM_PIPE_READ_START + 1;
	ctx->next_image_id = 2; // first id 4, as crosvm
	ctx->next_item_id = 1;  // first id 3
	ctx->next_stream_id = XDOM_STREAM_START;
	return ctx;
}

void
xdom_context_destroy(struct xdom_context *ctx)
{
	if (ctx == NULL) {
		return;
	}
	close_channel(ctx);
	struct queued_msg *q, *qtmp;
	wl_list_for_each_safe(q, qtmp, &ctx->queue, link) {
		wl_list_remove(&q->link);
		free(q);
	}
	struct stream *s, *stmp;
	wl_list_for_each_safe(s, stmp, &ctx->streams, link) {
		close(s->fd);
		wl_list_remove(&s->link);
		free(s);
	}
	struct read_pipe *rp, *rtmp;
	wl_list_for_each_safe(rp, rtmp, &ctx->read_pipes, link) {
		read_pipe_free(rp);
	}
	struct write_pipe *wp, *wtmp;
	wl_list_for_each_safe(wp, wtmp, &ctx->write_pipes, link) {
		write_pipe_free(wp);
	}
	free(ctx->vm_name);
	free(ctx);
}

void
xdom_context_set_budget(struct xdom_context *ctx, struct xdom_budget *budget)
{
	ctx->budget = budget;
}

void
xdom_context_get_stats(const struct xdom_context *ctx, struct xdom_stats *stats)
{
	*stats = (struct xdom_stats){
		.polls = ctx->polls,
		.queued = ctx->queued,
		.read_pipes = ctx->read_count,
		.write_pipes = ctx->write_count,
		.streams = (unsigned)wl_list_length(&ctx->streams),
		.initialized = ctx->initialized,
		.wayland_open = ctx->wayland_fd >= 0,
		.wayland_reading = ctx->wayland_source != NULL && reading_allowed(ctx),
		.out_bytes = ctx->out_bytes,
		.fds_held = xdom_context_fds_held(ctx),
		.messages = ctx->messages,
	};
}
