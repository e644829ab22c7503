/*
 * Fuzz target for the cross-domain engine (vm/cross_domain.c): the command
 * buffers a guest submits, interleaved with POLL fences, the compositor's
 * messages (with pipe, memory and socket fds) and event-loop turns. The
 * input is a list of operations: [op u8][len u16 LE][len bytes]. Built as a
 * libFuzzer target with clang (-Dfuzz=true); otherwise a reproducible
 * randomised batch of mostly well-formed commands with broken fields.
 *
 * Properties: submit returns 0 or -EINVAL; the engine writes guest RAM only
 * inside the first ring page (4 KiB, or less) of attached blobs; every message in the channel ring is a
 * RECEIVE or READ whose sizes agree and fit the ring; POLLs completed never
 * exceed POLLs given; no fd outlives the context.
 */
#define _GNU_SOURCE

#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wayland-server-core.h>
#include <wlr/util/log.h>

#include "cross_domain.h"
#include "cross_domain_protocol.h"
#include "guest_memory.h"
#include "vgpu_resource.h"
#include "vm_fixture.h"

#define PAGES 16
#define PAGE 4096u
#define CANARY 0xa5
/* Resource ids: rings, a blob, a detached blob, a too-small blob. */
#define QUERY 1     // page 0
#define CHANNEL 2   // page 2 (pages 1 and 3 are canaries)
#define BLOB 3      // pages 4-7
#define DETACHED 4  // page 8
#define SMALL 5     // page 9, 2048 bytes

enum op { OP_SUBMIT, OP_POLL, OP_COMPOSITOR_SEND, OP_DISPATCH, OP_CANCEL, OP_DRAIN, OP_COUNT };

static struct wl_event_loop *loop;
static int compositor = -1;
static unsigned polls_given, polls_done;
static unsigned long total_messages, total_ok, total_refused; // how deep the batch got

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz-cross-domain: %s\n", what);
	abort();
}

/* Whether a ring page holds one whole RECEIVE or READ whose sizes agree. */
static bool
valid_message(const uint8_t *ring)
{
	uint16_t size;
	uint32_t len;
	memcpy(&size, ring + 2, 2);
	if (ring[0] == XDOM_CMD_RECEIVE) {
		memcpy(&len, ring + 12, 4);
		return size == sizeof(struct xdom_send_receive) + len && len <= XDOM_MAX_SEND_DATA;
	}
	if (ring[0] == XDOM_CMD_READ) {
		memcpy(&len, ring + 16, 4);
		return size == sizeof(struct xdom_read_write) + len && len <= XDOM_MAX_READ_DATA;
	}
	return false;
}

static void
f_poll_done(void *data)
{
	(void)data;
	polls_done++;
	if (polls_done > polls_given) {
		fail("more POLLs completed than given");
	}
	/* The guest may have made any of its blobs the channel ring. */
	const uint8_t *ram = vm_fixture.ram;
	if (!valid_message(ram) && !valid_message(ram + 2 * PAGE) && !valid_message(ram + 4 * PAGE)) {
		fail("a POLL completed without a whole message in a ring");
	}
}

static int
f_connect(void *data)
{
	(void)data;
	int fd = vm_fixture_wayland_pair(&compositor);
	if (fd >= 0) {
		fcntl(compositor, F_SETFL, O_NONBLOCK);
	}
	return fd;
}

static const struct xdom_ops ops = {
	.resource = vm_fixture_resource,
	.memory = vm_fixture_memory,
	.poll_done = f_poll_done,
	.connect_wayland = f_connect,
};

static void
make_blob(uint32_t id, unsigned page, unsigned pages, uint64_t size)
{
	if (vm_fixture_add_blob(id, page, pages, size) != 0) {
		fail("cannot make a blob");
	}
}

static void
init_world(void)
{
	wlr_log_init(WLR_SILENT, NULL);
	if (vm_fixture_init(PAGES * PAGE) != 0) {
		fail("cannot create guest memory");
	}
	memset(vm_fixture.ram, CANARY, PAGES * PAGE);
	loop = wl_event_loop_create();
	make_blob(QUERY, 0, 1, PAGE);
	make_blob(CHANNEL, 2, 1, PAGE);
	make_blob(BLOB, 4, 4, 4 * PAGE);
	make_blob(DETACHED, 8, 1, PAGE);
	vm_fixture.attached[DETACHED] = false;
	make_blob(SMALL, 9, 1, 2048);
	/* The blob's placeholder lives in the registry as long as the blob: make it now. */
	int placeholder = vgpu_blob_export_fd(vm_fixture.resources[BLOB], &vm_fixture.mem);
	if (placeholder < 0) {
		fail("cannot export the blob");
	}
	close(placeholder);
}

/*
 * The guest may name any attached resource as a ring, but the engine
 * writes only the first ring page of one: the first page of each attached
 * blob (the first half of the 2048-byte one) may change, nothing else.
 */
static void
check_canaries(void)
{
	for (unsigned page = 0; page < PAGES; page++) {
		if (page == 0 || page == 2 || page == 4) {
			continue; // QUERY, CHANNEL, BLOB's first page
		}
		const uint8_t *p = vm_fixture.ram + page * (size_t)PAGE;
		for (unsigned i = page == 9 ? 2048 : 0; i < PAGE; i++) {
			if (p[i] != CANARY) {
				fail("guest RAM written outside the rings");
			}
		}
	}
}

static int
lowest_free_fd(void)
{
	int fd = dup(0);
	if (fd >= 0) {
		close(fd);
	}
	return fd;
}

/* The compositor sends data, with an fd whose kind the first byte picks. */
static void
compositor_send(const uint8_t *data, size_t len)
{
	if (compositor < 0 || len == 0) {
		return;
	}
	int fd = -1, other = -1;
	int p[2];
	switch (data[0] % 5) {
	case 1: // a write pipe (a data source's send)
		if (pipe2(p, O_CLOEXEC) == 0) {
			fd = p[1];
			other = p[0];
		}
		break;
	case 2: // memory of some size
		fd = memfd_create("fuzz-memory", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, (off_t)((len > 1 ? data[1] : 0) * 97)) != 0) {
			fail("ftruncate");
		}
		break;
	case 3: // an fd of an unknown kind
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == 0) {
			fd = p[0];
			other = p[1];
		}
		break;
	default:
		break;
	}
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	memset(&control, 0, sizeof(control));
	struct iovec iov = {(void *)data, len};
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
	sendmsg(compositor, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (fd >= 0) {
		close(fd);
	}
	if (other >= 0) {
		close(other);
	}
}

/* The compositor takes what was sent, closes the fds and writes into read pipes. */
static void
compositor_drain(void)
{
	for (int i = 0; i < 16 && compositor >= 0; i++) {
		char buf[4096];
		union {
			char b[CMSG_SPACE(sizeof(int) * XDOM_MAX_IDENTIFIERS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b,
			.msg_controllen = sizeof(control.b)};
		if (recvmsg(compositor, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) {
			return;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t k = 0; k < n; k++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				if (write(fd, "data", 4) < 0) {
					// a placeholder is sealed: refused, as expected
				}
				close(fd);
			}
		}
	}
}

static void
run_ops(const uint8_t *data, size_t size)
{
	int fd_mark = lowest_free_fd();
	polls_given = polls_done = 0;
	struct xdom_context *ctx = xdom_context_create(loop, "fuzz", 1, &vm_fixture.mem, &ops, NULL);
	if (ctx == NULL) {
		fail("no context");
	}
	size_t off = 0;
	while (size - off >= 3) {
		uint8_t op = data[off] % OP_COUNT;
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		off += 3;
		if (len > size - off) {
			len = size - off;
		}
		const uint8_t *arg = data + off;
		off += len;
		bool polled;
		switch (op) {
		case OP_SUBMIT: {
			/* The device hands the engine a host copy of at most 64 KiB. */
			int r = xdom_context_submit(ctx, arg, len, &polled);
			if (r != 0 && r != -EINVAL) {
				fail("submit returned something else than 0 or -EINVAL");
			}
			*(r == 0 ? &total_ok : &total_refused) += 1;
			break;
		}
		case OP_POLL:
			polls_given++;
			xdom_context_add_poll(ctx);
			break;
		case OP_COMPOSITOR_SEND:
			compositor_send(arg, len);
			break;
		case OP_DISPATCH:
			wl_event_loop_dispatch(loop, 0);
			break;
		case OP_CANCEL: {
			struct xdom_stats st;
			xdom_context_get_stats(ctx, &st);
			polls_given -= st.polls; // those fences were signalled early
			xdom_context_cancel_polls(ctx);
			break;
		}
		case OP_DRAIN:
			compositor_drain();
			break;
		}
	}
	total_messages += polls_done;
	xdom_context_destroy(ctx);
	if (compositor >= 0) {
		close(compositor);
		compositor = -1;
	}
	wl_event_loop_dispatch(loop, 0);
	check_canaries();
	if (lowest_free_fd() != fd_mark) {
		fail("an fd outlived its context");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (loop == NULL) {
		init_world();
	}
	run_ops(data, size);
	return 0;
}

#ifndef CW_LIBFUZZER
#include "fuzz_random.h"

static uint8_t input[1 << 16];
static size_t input_len;

static void
put(const void *p, size_t len)
{
	if (len > 0 && input_len + len <= sizeof(input)) {
		memcpy(input + input_len, p, len);
		input_len += len;
	}
}

static void
put_op(uint8_t op, const void *arg, size_t len)
{
	uint8_t h[3] = {op, (uint8_t)len, (uint8_t)(len >> 8)};
	put(h, 3);
	put(arg, len);
}

/* Values biased towards the ones that mean something, with random ones between. */
static uint32_t
pick32(void)
{
	static const uint32_t values[] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 28, 29, 3744, 3745, 4072, 4096,
		XDOM_PIPE_READ_START + 1, XDOM_PIPE_READ_START + 2, XDOM_STREAM_START + 1,
		XDOM_CROSSWAY_VERSION, 0xffffffffu, 0x7fffffffu, DRM_FORMAT_XRGB8888, DRM_FORMAT_R8};
	uint64_t r = next_random();
	return (r & 3) == 0 ? (uint32_t)(r >> 32) : values[(r >> 8) % (sizeof(values) / 4)];
}

/* One command: a known type with a plausible (or deliberately wrong) size and fields. */
static size_t
random_command(uint8_t *cmd, size_t room)
{
	static const uint8_t types[] = {1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 7, 7, 8, 64, 64, 0, 200};
	static const size_t sizes[] = {8, 16, 20, 24, 36, 24, 16, 352, 353, 360, 24, 28, 16};
	uint64_t r = next_random();
	uint8_t type = types[r % sizeof(types)];
	size_t size = (r >> 8) & 3 ? sizes[(r >> 16) % (sizeof(sizes) / sizeof(sizes[0]))]
				  : (size_t)((r >> 24) % 1200);
	if (type == 4 && (r >> 40) % 3 == 0) {
		size = 352 + (size_t)((r >> 44) % 200);
	}
	if (size > room) {
		size = room;
	}
	if (size < 8) {
		return 0;
	}
	memset(cmd, 0, size);
	for (size_t i = 8; i + 4 <= size && i < 360; i += 4) {
		uint32_t v = (next_random() & 1) ? pick32() : 0;
		memcpy(cmd + i, &v, 4);
	}
	cmd[0] = type;
	/* cmd_size mostly right, sometimes lying. */
	uint16_t claimed = (r >> 50) % 8 ? (uint16_t)size : (uint16_t)next_random();
	memcpy(cmd + 2, &claimed, 2);
	if (type == 4 || type == 7) {
		/* num_identifiers / opaque sizes mostly consistent with the command. */
		uint32_t n = (uint32_t)(next_random() % 3), len;
		if (type == 4 && size >= 352) {
			len = (uint32_t)(size - 352);
			memcpy(cmd + 8, &n, 4);
			memcpy(cmd + 12, (next_random() % 6) ? &len : &(uint32_t){pick32()}, 4);
			for (uint32_t i = 0; i < n; i++) {
				uint32_t id = (uint32_t)(next_random() % 7), type_v = 1 + (uint32_t)(next_random() % 4);
				if (type_v == XDOM_ID_TYPE_READ_PIPE) {
					id = XDOM_PIPE_READ_START + 1 + (uint32_t)(next_random() % 3);
				}
				memcpy(cmd + 16 + 4 * i, &id, 4);
				memcpy(cmd + 128 + 4 * i, &type_v, 4);
			}
		} else if (type == 7 && size >= 24) {
			len = (uint32_t)(size - 24);
			uint32_t id = 3 + 2 * (uint32_t)(next_random() % 4);
			memcpy(cmd + 8, &id, 4);
			memcpy(cmd + 16, (next_random() % 6) ? &len : &(uint32_t){pick32()}, 4);
		}
	}
	if (type == 1 && size >= 20) {
		uint32_t q = QUERY, c = (next_random() % 8) ? CHANNEL : (uint32_t)(next_random() % 7);
		uint32_t t = (next_random() % 8) ? XDOM_CHANNEL_WAYLAND : pick32();
		memcpy(cmd + 8, &q, 4);
		memcpy(cmd + 12, size == 16 ? &t : &c, 4);
		if (size >= 20) {
			memcpy(cmd + 16, &t, 4);
		}
	}
	return size;
}

int
main(int argc, char *argv[])
{
	long runs = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	init_world();
	/* Each run is a whole session: cheaper sessions, same number of commands. */
	long sessions = runs / 5 > 0 ? runs / 5 : 1;
	static uint8_t buf[8192];
	for (long s = 0; s < sessions; s++) {
		input_len = 0;
		/* Mostly start with a valid INIT (plain or crossway), so later commands matter. */
		uint64_t r = next_random();
		if (r & 7) {
			uint8_t init[24] = {XDOM_CMD_INIT, 0, 24, 0};
			uint32_t q = QUERY, c = CHANNEL, t = XDOM_CHANNEL_WAYLAND;
			uint32_t v = (r >> 3) & 1 ? XDOM_CROSSWAY_VERSION : 0;
			memcpy(init + 8, &q, 4);
			memcpy(init + 12, &c, 4);
			memcpy(init + 16, &t, 4);
			memcpy(init + 20, &v, 4);
			put_op(OP_SUBMIT, init, sizeof(init));
		}
		unsigned ops = 1 + (unsigned)(next_random() % 40);
		for (unsigned i = 0; i < ops; i++) {
			uint64_t k = next_random();
			switch (k % 8) {
			case 0: case 1: case 2: { // a buffer of one to three commands
				size_t len = 0;
				unsigned n = 1 + (unsigned)((k >> 8) % 3);
				for (unsigned j = 0; j < n; j++) {
					len += random_command(buf + len, sizeof(buf) - len);
				}
				put_op(OP_SUBMIT, buf, len);
				break;
			}
			case 3:
				put_op(OP_POLL, NULL, 0);
				break;
			case 4: {
				size_t len = 1 + (size_t)((k >> 8) % 5000);
				for (size_t j = 0; j < len; j++) {
					buf[j] = (uint8_t)next_random();
				}
				put_op(OP_COMPOSITOR_SEND, buf, len);
				break;
			}
			case 5: case 6:
				put_op(OP_DISPATCH, NULL, 0);
				break;
			default:
				put_op((k >> 8) & 1 ? OP_CANCEL : OP_DRAIN, NULL, 0);
				break;
			}
		}
		run_ops(input, input_len);
	}
	wl_event_loop_destroy(loop);
	vm_fixture_finish();
	printf("%ld sessions run: %lu buffers accepted, %lu refused, %lu messages in the ring\n",
		sessions, total_ok, total_refused, total_messages);
	return 0;
}
#endif
