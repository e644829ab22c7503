/*
 * The cross-domain engine (vm/cross_domain.c) driven directly: guest blobs
 * in a memfd "guest RAM" serve as rings and sent buffers, a socketpair is
 * the Wayland connection (this test plays the compositor), and the test's
 * ops stand in for the device (attachments, POLL fences).
 */
#define _GNU_SOURCE
#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wayland-server-core.h>
#include <wlr/util/log.h>

#include "check.h"
#include "cross_domain.h"
#include "cross_domain_protocol.h"
#include "guest_memory.h"
#include "vgpu_resource.h"
#include "vm_fixture.h"

#define MIB (1024 * 1024)
#define QUERY 1
#define CHANNEL 2
#define BLOB_A 10
#define BLOB_B 11
#define BLOB_DETACHED 12
#define SMALL_RING 13
#define RES_2D 20

static struct wl_event_loop *loop;
static int polls_done;
static int compositor = -1; // our end of the context's Wayland connection
static bool refuse_connect;
static const int owner_token = 1, other_owner = 2;
#define OWNER ((const void *)&owner_token)

/* --- the fake device ----------------------------------------------------------- */

static void
t_poll_done(void *data)
{
	(void)data;
	polls_done++;
}

static int
t_connect(void *data)
{
	(void)data;
	if (refuse_connect) {
		return -ECONNREFUSED;
	}
	int fd = vm_fixture_wayland_pair(&compositor);
	CHECK(fd >= 0);
	return fd;
}

static const struct xdom_ops ops = {
	.resource = vm_fixture_resource,
	.memory = vm_fixture_memory,
	.poll_done = t_poll_done,
	.connect_wayland = t_connect,
};

/* A guest blob of `pages` pages at page `page` of guest RAM, attached. */
static void
make_blob(uint32_t id, unsigned page, unsigned pages, uint64_t size)
{
	CHECK(vm_fixture_add_blob(id, page, pages, size) == 0);
}

/* Where the guest writes resource `id`'s first byte. */
static uint8_t *
resource_ram(uint32_t id)
{
	return vm_fixture_bytes(vm_fixture.resources[id], 0);
}

static void
spin(void)
{
	for (int i = 0; i < 8; i++) {
		wl_event_loop_dispatch(loop, 0);
	}
}

static void
reset_compositor(void)
{
	if (compositor >= 0) {
		close(compositor);
		compositor = -1;
	}
}

/* Open fds of this process (the compositor's end closed first, so counts compare). */
static int
open_fds(void)
{
	reset_compositor();
	return vm_fixture_open_fds();
}

/* --- commands ------------------------------------------------------------------- */

static int
submit(struct xdom_context *ctx, const void *buf, size_t size, bool *polled)
{
	bool dummy;
	return xdom_context_submit(ctx, buf, size, polled != NULL ? polled : &dummy);
}

static int
init(struct xdom_context *ctx, size_t size, uint32_t query, uint32_t channel, uint32_t type,
	uint32_t version)
{
	uint8_t b[36] = {0};
	cmd_header(b, XDOM_CMD_INIT, size);
	put32(b + 8, query);
	if (size == 16) {
		put32(b + 12, type);
	} else {
		put32(b + 12, channel);
		put32(b + 16, type);
		put32(b + 20, version);
	}
	return submit(ctx, b, size, NULL);
}

static int
image_query(struct xdom_context *ctx, uint32_t w, uint32_t h, uint32_t format,
	struct xdom_image_requirements *out)
{
	uint8_t b[24];
	cmd_header(b, XDOM_CMD_GET_IMAGE_REQUIREMENTS, sizeof(b));
	put32(b + 8, w);
	put32(b + 12, h);
	put32(b + 16, format);
	put32(b + 20, 0x11);
	memset(resource_ram(QUERY), 0xee, 64);
	int r = submit(ctx, b, sizeof(b), NULL);
	memcpy(out, resource_ram(QUERY), sizeof(*out));
	return r;
}

static int
send_cmd(struct xdom_context *ctx, uint32_t count, const uint32_t *ids, const uint32_t *types,
	const char *data, uint32_t announced)
{
	static uint8_t b[XDOM_RING_SIZE];
	size_t len = strlen(data);
	size_t size = sizeof(struct xdom_send_receive) + len;
	memset(b, 0, sizeof(b));
	cmd_header(b, XDOM_CMD_SEND, size);
	put32(b + 8, count);
	put32(b + 12, announced);
	for (uint32_t i = 0; i < count && i < XDOM_MAX_IDENTIFIERS; i++) {
		put32(b + 16 + 4 * i, ids[i]);
		put32(b + 128 + 4 * i, types[i]);
	}
	memcpy(b + sizeof(struct xdom_send_receive), data, len);
	return submit(ctx, b, size, NULL);
}

static int
write_cmd(struct xdom_context *ctx, uint32_t id, bool hang_up, const char *data, uint32_t announced)
{
	uint8_t b[256];
	size_t len = strlen(data);
	cmd_header(b, XDOM_CMD_WRITE, 24 + len);
	put32(b + 8, id);
	put32(b + 12, hang_up);
	put32(b + 16, announced);
	put32(b + 20, 0);
	memcpy(b + 24, data, len);
	return submit(ctx, b, 24 + len, NULL);
}

static void
poll_once(struct xdom_context *ctx)
{
	uint8_t b[16];
	cmd_header(b, XDOM_CMD_POLL, sizeof(b));
	memset(b + 8, 0, 8);
	bool polled = false;
	CHECK(submit(ctx, b, sizeof(b), &polled) == 0 && polled);
	xdom_context_add_poll(ctx);
}

/* Receives what the context sent to the compositor: data and at most one fd. */
static ssize_t
compositor_recv(char *buf, size_t size, int *fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {buf, size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b,
		.msg_controllen = sizeof(control.b)};
	ssize_t n = recvmsg(compositor, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	*fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n >= 0 && c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_type == SCM_RIGHTS) {
			memcpy(fd, CMSG_DATA(c), sizeof(int));
		}
	}
	return n;
}

static void
compositor_send(const char *data, int fd)
{
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	memset(&control, 0, sizeof(control));
	struct iovec iov = {(void *)data, strlen(data)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		msg.msg_control = control.b;
		msg.msg_controllen = sizeof(control.b);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	CHECK(sendmsg(compositor, &msg, MSG_NOSIGNAL) == (ssize_t)strlen(data));
}

static const uint8_t *
channel_ring(void)
{
	return resource_ram(CHANNEL);
}

/* --- tests ---------------------------------------------------------------------- */

static void
test_uninitialised_and_malformed(void)
{
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(ctx != NULL);
	uint32_t id = BLOB_A, type = XDOM_ID_TYPE_VIRTGPU_BLOB;
	CHECK(send_cmd(ctx, 1, &id, &type, "x", 1) == -EINVAL);     // SEND before INIT
	struct xdom_image_requirements reqs;
	CHECK(image_query(ctx, 4, 4, DRM_FORMAT_XRGB8888, &reqs) == -EINVAL);
	CHECK(write_cmd(ctx, 3, false, "x", 1) == -EINVAL);

	/* Walking the buffer: sizes that leave it, zero sizes, trailing bytes. */
	uint8_t b[64] = {0};
	CHECK(submit(ctx, b, 0, NULL) == 0);   // an empty buffer is fine
	CHECK(submit(ctx, b, 8, NULL) == -EINVAL);   // cmd_size 0
	cmd_header(b, XDOM_CMD_POLL, 17);
	CHECK(submit(ctx, b, 16, NULL) == -EINVAL);  // beyond the buffer
	cmd_header(b, XDOM_CMD_POLL, 16);
	CHECK(submit(ctx, b, 20, NULL) == -EINVAL);  // 4 bytes after the last command
	cmd_header(b, 9, 16);
	CHECK(submit(ctx, b, 16, NULL) == -EINVAL);  // a fork's command
	cmd_header(b, XDOM_CMD_RECEIVE, 16);
	CHECK(submit(ctx, b, 16, NULL) == -EINVAL);  // host to guest only
	cmd_header(b, 0xff, 8);
	CHECK(submit(ctx, b, 8, NULL) == -EINVAL);

	/* INIT: sizes, rings, channel types, the compositor refusing. */
	CHECK(init(ctx, 28, QUERY, CHANNEL, 1, 0) == -EINVAL);
	CHECK(init(ctx, 20, BLOB_DETACHED, CHANNEL, 1, 0) == -EINVAL);
	CHECK(init(ctx, 20, QUERY, 99, 1, 0) == -EINVAL);
	CHECK(init(ctx, 20, QUERY, SMALL_RING, 1, 0) == -EINVAL);   // less than a ring page
	CHECK(init(ctx, 20, QUERY, CHANNEL, 2, 0) == -EINVAL);      // camera: not offered
	refuse_connect = true;
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == -EINVAL);
	refuse_connect = false;
	struct xdom_stats st;
	xdom_context_get_stats(ctx, &st);
	CHECK(!st.initialized);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == -EINVAL);      // twice
	xdom_context_get_stats(ctx, &st);
	CHECK(st.initialized && st.wayland_open && st.wayland_reading);
	xdom_context_destroy(ctx);

	/* The legacy 16-byte form (one ring) and channel type 0 (image queries only). */
	ctx = xdom_context_create(loop, "test", 2, OWNER, &ops, NULL);
	CHECK(init(ctx, 16, QUERY, 0, 0, 0) == 0);
	CHECK(image_query(ctx, 4, 4, DRM_FORMAT_XRGB8888, &reqs) == 0);
	CHECK(send_cmd(ctx, 0, NULL, NULL, "x", 1) == -EINVAL);    // no Wayland channel
	xdom_context_destroy(ctx);
	/* The 36-byte form (magma's uuid). */
	ctx = xdom_context_create(loop, "test", 3, OWNER, &ops, NULL);
	CHECK(init(ctx, 36, QUERY, CHANNEL, 1, 0) == 0);
	xdom_context_destroy(ctx);
}

static void
test_image_requirements(void)
{
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 0, 0) == 0);
	struct xdom_image_requirements r;
	CHECK(image_query(ctx, 64, 32, DRM_FORMAT_XRGB8888, &r) == 0);
	CHECK(le32toh(r.strides[0]) == 256 && le32toh(r.offsets[0]) == 0);
	CHECK(le64toh(r.size) == 8192 && le32toh(r.blob_id) == 4);
	CHECK(r.modifier == DRM_FORMAT_MOD_LINEAR && (int32_t)le32toh((uint32_t)r.memory_idx) == -1);
	CHECK(image_query(ctx, 64, 32, DRM_FORMAT_XRGB8888, &r) == 0 && le32toh(r.blob_id) == 4);
	CHECK(image_query(ctx, 65, 32, DRM_FORMAT_ARGB8888, &r) == 0 && le32toh(r.blob_id) == 6);
	CHECK(le32toh(r.strides[0]) == 512);
	/* A wl_shm pool as sommelier asks for it: R8, width = pool size, height 1. */
	CHECK(image_query(ctx, 100000, 1, DRM_FORMAT_R8, &r) == 0);
	CHECK(le32toh(r.strides[0]) == 100096 && le64toh(r.size) == 102400);
	CHECK(image_query(ctx, 0, 1, DRM_FORMAT_R8, &r) == -EINVAL);
	CHECK(image_query(ctx, 16, 16, DRM_FORMAT_NV12, &r) == -EINVAL);
	CHECK(image_query(ctx, 0xffffffff, 0xffffffff, DRM_FORMAT_ABGR16161616F, &r) == -EINVAL);
	/* Many sizes: the cache stays bounded, ids stay even. */
	for (uint32_t i = 1; i <= 3 * XDOM_MAX_IMAGE_CACHE; i++) {
		CHECK(image_query(ctx, i, 1, DRM_FORMAT_R8, &r) == 0 && le32toh(r.blob_id) % 2 == 0);
	}
	uint8_t b[16];
	cmd_header(b, XDOM_CMD_GET_IMAGE_REQUIREMENTS, sizeof(b)); // too short
	CHECK(submit(ctx, b, sizeof(b), NULL) == -EINVAL);
	xdom_context_destroy(ctx);
}

static void
test_send(void)
{
	int fds_before = open_fds();
	unsigned placeholders_before = vgpu_blob_placeholder_count();
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	char buf[4096];
	int fd;

	/* Plain data reaches the compositor as it is. */
	CHECK(send_cmd(ctx, 0, NULL, NULL, "hello", 5) == 0);
	CHECK(compositor_recv(buf, sizeof(buf), &fd) == 5 && memcmp(buf, "hello", 5) == 0);
	CHECK(fd < 0);

	/* Malformed SENDs: nothing goes out, nothing stays open. */
	uint32_t ids[30], types[30];
	for (int i = 0; i < 30; i++) {
		ids[i] = BLOB_A;
		types[i] = XDOM_ID_TYPE_VIRTGPU_BLOB;
	}
	CHECK(send_cmd(ctx, 29, ids, types, "x", 1) == -EINVAL);        // > 28 identifiers
	CHECK(send_cmd(ctx, 0, NULL, NULL, "abc", 4) == -EINVAL);       // data beyond the command
	CHECK(send_cmd(ctx, 0, NULL, NULL, "abc", 0xffffffff) == -EINVAL);
	uint32_t id = BLOB_DETACHED, type = XDOM_ID_TYPE_VIRTGPU_BLOB;
	CHECK(send_cmd(ctx, 1, &id, &type, "x", 1) == -EINVAL);         // not attached
	id = RES_2D;
	CHECK(send_cmd(ctx, 1, &id, &type, "x", 1) == -EINVAL);         // not a blob
	id = BLOB_A;
	type = XDOM_ID_TYPE_VIRTGPU_SYNC;
	CHECK(send_cmd(ctx, 1, &id, &type, "x", 1) == -EINVAL);
	type = XDOM_ID_TYPE_STREAMED_MEMORY;
	CHECK(send_cmd(ctx, 1, &id, &type, "x", 1) == -EINVAL);
	type = XDOM_ID_TYPE_VIRTGPU_BLOB;
	CHECK(send_cmd(ctx, 1, &id, &type, "", 0) == -EINVAL);          // fds need data
	/* A blob then a bad one: the first one's fd is not leaked. */
	uint32_t two_ids[2] = {BLOB_A, 99}, two_types[2] = {1, 1};
	CHECK(send_cmd(ctx, 2, two_ids, two_types, "x", 1) == -EINVAL);
	CHECK(compositor_recv(buf, sizeof(buf), &fd) < 0 && errno == EAGAIN);

	/* A blob becomes a placeholder the compositor turns back into the blob. */
	CHECK(send_cmd(ctx, 1, &id, &type, "pool", 4) == 0);
	CHECK(compositor_recv(buf, sizeof(buf), &fd) == 4 && fd >= 0);
	struct vgpu_resource *got = vgpu_blob_import_fd(fd, OWNER);
	CHECK(got == vm_fixture.resources[BLOB_A]);
	if (got != NULL) {
		wlr_buffer_unlock(&got->base);
	}
	CHECK(vgpu_blob_import_fd(fd, &other_owner) == NULL);          // another VM
	CHECK(vgpu_blob_import_fd(compositor, OWNER) == NULL);         // not a placeholder
	int second;
	CHECK(send_cmd(ctx, 1, &id, &type, "pool", 4) == 0);
	CHECK(compositor_recv(buf, sizeof(buf), &second) == 4 && second >= 0);
	struct stat a, b;
	CHECK(fstat(fd, &a) == 0 && fstat(second, &b) == 0 && a.st_ino == b.st_ino); // one inode per blob
	CHECK(vgpu_blob_placeholder_count() == placeholders_before + 1);
	close(second);
	/* The placeholder is sealed and empty. */
	CHECK(a.st_size == 0 && write(fd, "x", 1) < 0);
	/* Stale: the guest dropped the blob. */
	vm_fixture_drop(BLOB_A);
	CHECK(vgpu_blob_import_fd(fd, OWNER) == NULL);
	CHECK(vgpu_blob_placeholder_count() == placeholders_before);
	close(fd);
	make_blob(BLOB_A, 16, 4, 4 * 4096);

	/* A SEND to a context whose compositor went away fails. */
	close(compositor);
	compositor = -1;
	(void)send_cmd(ctx, 0, NULL, NULL, "lost", 4); // the socket may take it before EPIPE
	spin();
	CHECK(send_cmd(ctx, 0, NULL, NULL, "lost", 4) == -EINVAL);
	xdom_context_destroy(ctx);
	CHECK(open_fds() == fds_before);
}

static void
test_polls_and_receive(void)
{
	int fds_before = open_fds();
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	polls_done = 0;
	struct xdom_stats st;

	/* A POLL with nothing to say waits. */
	poll_once(ctx);
	spin();
	CHECK(polls_done == 0);
	/* The compositor speaks: the waiting POLL completes with a RECEIVE. */
	compositor_send("event-1", -1);
	spin();
	CHECK(polls_done == 1);
	CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE);
	CHECK(get32(channel_ring() + 8) == 0 && get32(channel_ring() + 12) == 7);
	CHECK(memcmp(channel_ring() + 352, "event-1", 7) == 0);

	/* A guest that does not poll: one message waits, the socket is not read. */
	const char *bulk = "event-bulk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	size_t bulk_len = strlen(bulk);
	for (int i = 0; i < 200; i++) {
		compositor_send(bulk, -1);
	}
	spin();
	xdom_context_get_stats(ctx, &st);
	CHECK(st.queued == 1 && !st.wayland_reading && st.polls == 0);
	CHECK(polls_done == 1);
	/* Each POLL takes exactly one message, in order. */
	size_t total = 0;
	for (int i = 0; i < 400 && total < 200 * bulk_len; i++) {
		int before = polls_done;
		poll_once(ctx);
		spin();
		if (polls_done == before) {
			break;
		}
		CHECK(polls_done == before + 1);
		CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE);
		uint32_t n = get32(channel_ring() + 12);
		CHECK(n > 0 && n <= XDOM_MAX_SEND_DATA);
		CHECK(memcmp(channel_ring() + 352, bulk + total % bulk_len,
			total % bulk_len + 8 <= bulk_len ? 8 : 0) == 0);
		total += n;
	}
	CHECK(total == 200 * bulk_len);
	int before = polls_done;
	poll_once(ctx); // nothing more to say: this one waits
	spin();
	CHECK(polls_done == before);
	xdom_context_get_stats(ctx, &st);
	CHECK(st.queued == 0 && st.polls == 1 && st.wayland_reading);

	/* cancel_polls: the waiting POLL is forgotten and the ring shows no message. */
	xdom_context_cancel_polls(ctx);
	CHECK(channel_ring()[0] == 0);
	compositor_send("after-cancel", -1);
	spin();
	xdom_context_get_stats(ctx, &st);
	CHECK(st.polls == 0 && st.queued == 1);
	poll_once(ctx);
	CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE);

	/* A write pipe from the compositor (a data source's send): guest WRITEs land in it. */
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	compositor_send("send", p[1]);
	close(p[1]);
	poll_once(ctx);
	spin();
	CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE);
	CHECK(get32(channel_ring() + 8) == 1);
	uint32_t pipe_id = get32(channel_ring() + 16);
	CHECK(get32(channel_ring() + 128) == XDOM_ID_TYPE_WRITE_PIPE && pipe_id % 2 == 1);
	CHECK(write_cmd(ctx, pipe_id, false, "clip", 4) == 0);
	CHECK(write_cmd(ctx, pipe_id, false, "board", 99) == -EINVAL); // data beyond the command
	CHECK(write_cmd(ctx, pipe_id + 2, false, "x", 1) == -EINVAL);  // no such pipe
	CHECK(write_cmd(ctx, pipe_id, true, "-data", 5) == 0);
	char buf[64] = {0};
	CHECK(read(p[0], buf, sizeof(buf)) == 9 && memcmp(buf, "clip-data", 9) == 0);
	CHECK(read(p[0], buf, sizeof(buf)) == 0); // hang_up closed it
	CHECK(write_cmd(ctx, pipe_id, false, "x", 1) == -EINVAL);     // gone after hang_up
	close(p[0]);
	/* The reader goes away first: the guest's data is dropped, no SIGPIPE. */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	compositor_send("send", p[1]);
	close(p[1]);
	poll_once(ctx);
	spin();
	pipe_id = get32(channel_ring() + 16);
	close(p[0]);
	CHECK(write_cmd(ctx, pipe_id, false, "nobody reads", 12) == 0);
	CHECK(write_cmd(ctx, pipe_id, true, "", 0) == 0);
	xdom_context_get_stats(ctx, &st);
	CHECK(st.write_pipes == 0);

	/* crosvm-style context: a memory fd is announced as an odd VIRTGPU_BLOB id with its size. */
	int memfd = memfd_create("keymap", MFD_CLOEXEC);
	CHECK(ftruncate(memfd, 12345) == 0);
	compositor_send("keymap", memfd);
	close(memfd);
	poll_once(ctx);
	spin();
	CHECK(get32(channel_ring() + 8) == 1);
	CHECK(get32(channel_ring() + 128) == XDOM_ID_TYPE_VIRTGPU_BLOB);
	CHECK(get32(channel_ring() + 16) % 2 == 1 && get32(channel_ring() + 240) == 12345);

	/* An fd of unknown kind (a socket): the message's fds are dropped, its data kept. */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	compositor_send("odd-fd", sv[0]);
	close(sv[0]);
	poll_once(ctx);
	spin();
	CHECK(get32(channel_ring() + 8) == 0 && get32(channel_ring() + 12) == 6);
	char c;
	CHECK(read(sv[1], &c, 1) == 0); // the engine closed its copy
	close(sv[1]);

	/* The compositor hangs up: the context stays, its channel is closed. */
	close(compositor);
	compositor = -1;
	spin();
	xdom_context_get_stats(ctx, &st);
	CHECK(!st.wayland_open);
	xdom_context_destroy(ctx);
	CHECK(open_fds() == fds_before);
}

static void
test_read_pipes(void)
{
	int fds_before = open_fds();
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	char buf[64];
	int fd;
	uint32_t id = XDOM_PIPE_READ_START + 2, type = XDOM_ID_TYPE_READ_PIPE;
	CHECK(send_cmd(ctx, 1, &id, &type, "receive", 7) == -EINVAL);  // not the predicted id
	uint32_t ids[2] = {XDOM_PIPE_READ_START + 1, XDOM_PIPE_READ_START + 2};
	uint32_t types[2] = {XDOM_ID_TYPE_READ_PIPE, XDOM_ID_TYPE_READ_PIPE};
	CHECK(send_cmd(ctx, 2, ids, types, "receive", 7) == -EINVAL);  // two in one SEND
	id = XDOM_PIPE_READ_START + 1;
	CHECK(send_cmd(ctx, 1, &id, &type, "receive", 7) == 0);
	CHECK(compositor_recv(buf, sizeof(buf), &fd) == 7 && fd >= 0);
	/* The compositor's client writes more than one chunk, then closes. */
	static char big[XDOM_MAX_READ_DATA + 100];
	memset(big, 'q', sizeof(big));
	CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
	close(fd);
	polls_done = 0;
	size_t got = 0;
	bool hung_up = false;
	for (int i = 0; i < 10 && !hung_up; i++) {
		poll_once(ctx);
		spin();
		CHECK(polls_done == i + 1);
		CHECK(channel_ring()[0] == XDOM_CMD_READ && get32(channel_ring() + 8) == id);
		uint32_t n = get32(channel_ring() + 16);
		CHECK(n <= XDOM_MAX_READ_DATA);
		got += n;
		hung_up = get32(channel_ring() + 12) == 1;
	}
	CHECK(hung_up && got == sizeof(big));
	struct xdom_stats st;
	xdom_context_get_stats(ctx, &st);
	CHECK(st.read_pipes == 0);
	/* The next predicted id follows. */
	id = XDOM_PIPE_READ_START + 2;
	CHECK(send_cmd(ctx, 1, &id, &type, "receive", 7) == 0);
	CHECK(compositor_recv(buf, sizeof(buf), &fd) == 7 && fd >= 0);
	close(fd);
	xdom_context_destroy(ctx); // with a waiting POLL and an open pipe
	CHECK(open_fds() == fds_before);
}

static void
test_crossway_extensions(void)
{
	int fds_before = open_fds();
	unsigned placeholders_before = vgpu_blob_placeholder_count();
	/* BLOB_REPLACE needs the announcement. */
	struct xdom_context *plain = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(plain, 24, QUERY, CHANNEL, 1, 1) == 0); // libkrun's version 1: not crossway
	uint8_t b[16];
	cmd_header(b, XDOM_CMD_BLOB_REPLACE, 16);
	put32(b + 8, BLOB_A);
	put32(b + 12, BLOB_B);
	CHECK(submit(plain, b, 16, NULL) == -EINVAL);
	xdom_context_destroy(plain);

	struct xdom_context *ctx = xdom_context_create(loop, "test", 2, OWNER, &ops, NULL);
	CHECK(init(ctx, 24, QUERY, CHANNEL, 1, XDOM_CROSSWAY_VERSION) == 0);
	polls_done = 0;

	/* Streamed memory: size announced, bytes follow as READ chunks, offset ignored. */
	int memfd = memfd_create("keymap", MFD_CLOEXEC);
	static uint8_t content[10000];
	for (size_t i = 0; i < sizeof(content); i++) {
		content[i] = (uint8_t)(i * 7);
	}
	CHECK(write(memfd, content, sizeof(content)) == (ssize_t)sizeof(content)); // offset at the end
	int empty = memfd_create("empty", MFD_CLOEXEC);
	/* Both fds in one message. */
	union {
		char c[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} control;
	memset(&control, 0, sizeof(control));
	struct iovec iov = {"km", 2};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.c,
		.msg_controllen = sizeof(control.c)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
	int both[2] = {memfd, empty};
	memcpy(CMSG_DATA(c), both, sizeof(both));
	CHECK(sendmsg(compositor, &msg, 0) == 2);
	close(memfd);
	close(empty);
	compositor_send("next", -1); // must wait until both streams are done
	poll_once(ctx);
	spin();
	CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE && get32(channel_ring() + 8) == 2);
	uint32_t id0 = get32(channel_ring() + 16), id1 = get32(channel_ring() + 20);
	CHECK(id0 == XDOM_STREAM_START + 1 && id1 == XDOM_STREAM_START + 2);
	CHECK(get32(channel_ring() + 128) == XDOM_ID_TYPE_STREAMED_MEMORY);
	CHECK(get32(channel_ring() + 240) == sizeof(content) && get32(channel_ring() + 244) == 0);
	struct xdom_stats st;
	xdom_context_get_stats(ctx, &st);
	CHECK(st.streams == 2 && !st.wayland_reading);
	static uint8_t streamed[sizeof(content)];
	size_t got = 0;
	bool done = false;
	for (int i = 0; i < 5 && !done; i++) {
		poll_once(ctx);
		spin();
		CHECK(channel_ring()[0] == XDOM_CMD_READ && get32(channel_ring() + 8) == id0);
		uint32_t n = get32(channel_ring() + 16);
		CHECK(n <= XDOM_MAX_READ_DATA && got + n <= sizeof(streamed));
		if (got + n <= sizeof(streamed)) {
			memcpy(streamed + got, channel_ring() + 24, n);
		}
		got += n;
		done = get32(channel_ring() + 12) == 1;
	}
	CHECK(done && got == sizeof(content) && memcmp(streamed, content, sizeof(content)) == 0);
	poll_once(ctx); // the empty one: one empty READ with hang_up
	spin();
	CHECK(channel_ring()[0] == XDOM_CMD_READ && get32(channel_ring() + 8) == id1);
	CHECK(get32(channel_ring() + 12) == 1 && get32(channel_ring() + 16) == 0);
	poll_once(ctx); // then the next RECEIVE
	spin();
	CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE && memcmp(channel_ring() + 352, "next", 4) == 0);

	/* Too big to stream: dropped with its message's fds. */
	int huge = memfd_create("huge", MFD_CLOEXEC);
	CHECK(ftruncate(huge, XDOM_MAX_STREAMED_SIZE + 1) == 0);
	compositor_send("huge", huge);
	close(huge);
	poll_once(ctx);
	spin();
	CHECK(channel_ring()[0] == XDOM_CMD_RECEIVE && get32(channel_ring() + 8) == 0);

	/* BLOB_REPLACE: the placeholder the compositor holds follows the pool to the new blob. */
	char buf[16];
	int fd;
	uint32_t id = BLOB_A, type = XDOM_ID_TYPE_VIRTGPU_BLOB;
	CHECK(send_cmd(ctx, 1, &id, &type, "pool", 4) == 0);
	CHECK(compositor_recv(buf, sizeof(buf), &fd) == 4 && fd >= 0);
	put32(b + 12, BLOB_DETACHED);
	CHECK(submit(ctx, b, 16, NULL) == -EINVAL);                // not attached
	put32(b + 12, RES_2D);
	CHECK(submit(ctx, b, 16, NULL) == -EINVAL);                // not a blob
	cmd_header(b, XDOM_CMD_BLOB_REPLACE, 12);
	CHECK(submit(ctx, b, 12, NULL) == -EINVAL);                // short
	cmd_header(b, XDOM_CMD_BLOB_REPLACE, 16);
	put32(b + 12, BLOB_B);
	CHECK(submit(ctx, b, 16, NULL) == 0);
	struct vgpu_resource *got_blob = vgpu_blob_import_fd(fd, OWNER);
	CHECK(got_blob == vm_fixture.resources[BLOB_B]);
	if (got_blob != NULL) {
		wlr_buffer_unlock(&got_blob->base);
	}
	vm_fixture_drop(BLOB_A); // the guest drops the old pool blob: the placeholder lives on
	got_blob = vgpu_blob_import_fd(fd, OWNER);
	CHECK(got_blob == vm_fixture.resources[BLOB_B]);
	if (got_blob != NULL) {
		wlr_buffer_unlock(&got_blob->base);
	}
	CHECK(vgpu_blob_placeholder_count() == placeholders_before + 1);
	vm_fixture_drop(BLOB_B);
	CHECK(vgpu_blob_import_fd(fd, OWNER) == NULL);
	CHECK(vgpu_blob_placeholder_count() == placeholders_before);
	close(fd);
	make_blob(BLOB_A, 16, 4, 4 * 4096);
	make_blob(BLOB_B, 20, 4, 4 * 4096);

	xdom_context_destroy(ctx);
	CHECK(open_fds() == fds_before);
}

/* Rings that are gone or too small never get written outside their pages. */
static void
test_ring_bounds(void)
{
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	polls_done = 0;
	/* The guest detaches its channel ring: messages are dropped, not written anywhere. */
	vm_fixture.attached[CHANNEL] = false;
	compositor_send("lost", -1);
	poll_once(ctx);
	spin();
	CHECK(polls_done == 0);
	vm_fixture.attached[CHANNEL] = true;
	struct xdom_stats st;
	xdom_context_get_stats(ctx, &st);
	CHECK(st.queued == 0 && st.polls == 1);
	/* vgpu_resource_write_guest itself refuses ranges beyond the blob. */
	uint8_t x[8] = {0};
	struct vgpu_resource *small = vm_fixture.resources[SMALL_RING];
	const struct vu_guest_memory *mem = &vm_fixture.mem;
	CHECK(vgpu_resource_write_guest(small, mem, 2048, x, 8) == -EINVAL);
	CHECK(vgpu_resource_write_guest(small, mem, 2040, x, 8) == 0);
	CHECK(vgpu_resource_write_guest(small, mem, UINT64_MAX - 2, x, 8) == -EINVAL);
	CHECK(vgpu_resource_write_guest(vm_fixture.resources[RES_2D], mem, 0, x, 8) == -EINVAL); // no backing
	xdom_context_destroy(ctx);
}

/* Counts log lines that contain `log_match`, and prints every line as the default would. */
static const char *log_match;
static int log_matches;

static void
counting_log(enum wlr_log_importance importance, const char *fmt, va_list args)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, args);
	if (importance <= WLR_ERROR) {
		fprintf(stderr, "%s\n", line);
	}
	if (importance == WLR_ERROR && log_match != NULL && strstr(line, log_match) != NULL) {
		log_matches++;
	}
}

/* A detached channel ring with POLLs pending logs one ERROR per context, not one per message. */
static void
test_ring_error_logged_once(void)
{
	wlr_log_init(WLR_ERROR, counting_log);
	log_match = "cannot be written";
	log_matches = 0;
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	vm_fixture.attached[CHANNEL] = false;
	for (int i = 0; i < 5; i++) {
		compositor_send("lost", -1);
		poll_once(ctx);
		spin();
	}
	vm_fixture.attached[CHANNEL] = true;
	CHECK(log_matches == 1);
	xdom_context_destroy(ctx);
	log_match = NULL;
	wlr_log_init(WLR_ERROR, NULL);
}

/*
 * Only memory is streamed to a guest: memfds and unlinked tmpfs files
 * (wlroots' keymap is an unlinked /dev/shm file). A file with a name, or
 * one on another file system, is an unknown fd (closed, logged): the
 * engine reads what it streams with crossway's rights.
 */
static void
test_streamed_kinds(void)
{
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	CHECK(init(ctx, 24, QUERY, CHANNEL, 1, XDOM_CROSSWAY_VERSION) == 0);
	char named[] = "/tmp/crossway-test-XXXXXX";
	int files[4];
	bool streamed[4];
	files[0] = mkstemp(named); // a host file with a name
	streamed[0] = false;
	char shm_named[] = "/dev/shm/crossway-test-XXXXXX";
	files[1] = mkstemp(shm_named); // tmpfs, but linked
	streamed[1] = false;
	files[2] = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); // unlinked tmpfs
	streamed[2] = true;
	files[3] = memfd_create("keymap", MFD_CLOEXEC);
	streamed[3] = true;
	for (int i = 0; i < 4; i++) {
		if (files[i] < 0) {
			fprintf(stderr, "streamed kind %d: no such file here (%s): skipped\n", i,
				strerror(errno));
			continue;
		}
		CHECK(write(files[i], "secret", 6) == 6);
		compositor_send("fd", files[i]);
		close(files[i]);
		poll_once(ctx);
		spin();
		const uint8_t *ring = channel_ring();
		CHECK(ring[0] == XDOM_CMD_RECEIVE);
		CHECK(get32(ring + 8) == (streamed[i] ? 1u : 0u));
		if (streamed[i]) {
			CHECK(get32(ring + 128) == XDOM_ID_TYPE_STREAMED_MEMORY);
			poll_once(ctx); // its READ chunk
			spin();
			CHECK(ring[0] == XDOM_CMD_READ && get32(ring + 16) == 6);
			CHECK(memcmp(ring + 24, "secret", 6) == 0);
		}
	}
	unlink(named);
	unlink(shm_named);
	struct xdom_stats st;
	xdom_context_get_stats(ctx, &st);
	CHECK(st.streams == 0);
	xdom_context_destroy(ctx);
}

static void
drain_compositor(void)
{
	char buf[4096];
	while (recv(compositor, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
	}
}

/*
 * What a context buffers for a compositor that does not read counts every
 * message's overhead (1-byte SENDs cost far more than 1 byte each), and the
 * VM's contexts share one budget.
 */
static void
test_budgets(void)
{
	struct xdom_budget budget = {0};
	struct xdom_context *ctx = xdom_context_create(loop, "test", 1, OWNER, &ops, NULL);
	xdom_context_set_budget(ctx, &budget);
	CHECK(init(ctx, 20, QUERY, CHANNEL, 1, 0) == 0);
	CHECK(send_cmd(ctx, 0, NULL, NULL, "hello", 5) == 0);
	CHECK(budget.memory == 0); // sent at once: nothing stays
	drain_compositor();

	/* Fill the compositor's socket. */
	static char big[XDOM_MAX_SEND_DATA + 1];
	memset(big, 'x', XDOM_MAX_SEND_DATA);
	struct xdom_stats st;
	int sends = 0;
	do {
		CHECK(send_cmd(ctx, 0, NULL, NULL, big, XDOM_MAX_SEND_DATA) == 0);
		xdom_context_get_stats(ctx, &st);
	} while (st.out_bytes == 0 && ++sends < 10000);
	CHECK(st.out_bytes > 0 && budget.memory >= st.out_bytes);
	/* Now 1-byte messages: bounded by what they cost, not by their bytes. */
	int accepted = 0;
	while (accepted < 200000 && send_cmd(ctx, 0, NULL, NULL, "y", 1) == 0) {
		accepted++;
	}
	xdom_context_get_stats(ctx, &st);
	fprintf(stderr, "1-byte SENDs queued for a compositor that does not read: %d (%zu bytes "
		"counted)\n", accepted, st.out_bytes);
	CHECK(accepted < (int)(XDOM_MAX_OUT_BUFFER / 64));
	CHECK(st.out_bytes <= XDOM_MAX_OUT_BUFFER && budget.memory >= st.out_bytes);
	/* The compositor reads everything: the budget is back to nothing. */
	for (int i = 0; i < 1000 && st.out_bytes > 0; i++) {
		drain_compositor();
		spin();
		xdom_context_get_stats(ctx, &st);
	}
	CHECK(st.out_bytes == 0 && budget.memory == 0);

	/* The VM's other contexts buffer nearly all of the budget: this one gets no more. */
	budget.memory = XDOM_MAX_VM_MEMORY - 10;
	CHECK(send_cmd(ctx, 0, NULL, NULL, "more than ten bytes", 19) == -EINVAL);
	CHECK(budget.memory == XDOM_MAX_VM_MEMORY - 10);
	budget.memory = 0;

	/* Destroyed with messages waiting: every byte goes back. */
	do {
		CHECK(send_cmd(ctx, 0, NULL, NULL, big, XDOM_MAX_SEND_DATA) == 0);
		xdom_context_get_stats(ctx, &st);
	} while (st.out_bytes == 0 && ++sends < 20000);
	CHECK(budget.memory > 0);
	xdom_context_destroy(ctx);
	CHECK(budget.memory == 0);
	drain_compositor();
}

int
main(void)
{
	CHECK(vm_fixture_init(4 * MIB) == 0);
	loop = wl_event_loop_create();
	make_blob(QUERY, 0, 1, 4096);
	make_blob(CHANNEL, 4, 1, 4096);
	make_blob(BLOB_A, 16, 4, 4 * 4096);
	make_blob(BLOB_B, 20, 4, 4 * 4096);
	make_blob(BLOB_DETACHED, 24, 1, 4096);
	vm_fixture.attached[BLOB_DETACHED] = false;
	make_blob(SMALL_RING, 28, 1, 2048);
	vm_fixture.resources[RES_2D] = vgpu_resource_create_2d(RES_2D, 2, 16, 16);
	vm_fixture.attached[RES_2D] = true;

	test_uninitialised_and_malformed();
	test_image_requirements();
	test_send();
	test_polls_and_receive();
	test_read_pipes();
	test_crossway_extensions();
	test_ring_bounds();
	test_ring_error_logged_once();
	test_streamed_kinds();
	test_budgets();

	if (compositor >= 0) {
		close(compositor);
	}
	wl_event_loop_destroy(loop);
	vm_fixture_finish();
	CHECK_DONE();
}
