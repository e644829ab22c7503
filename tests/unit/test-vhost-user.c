/*
 * The vhost-user back end against a mini front end living in this test: a
 * real AF_UNIX client that replays QEMU 7.2's message sequences A-E
 * (vhost-user.md §10.1) and plays the guest driver on rings in memfd guest
 * memory laid out like QEMU's 512 MiB q35 guest (§6). The server runs in a
 * wl_event_loop that the test dispatches while it waits for replies.
 *
 * Then it misbehaves (wrong sizes, unknown requests, too many fds, a
 * truncated header, a broken ring, a second front end) and checks that each
 * case disconnects cleanly, leaving no fd or mapping behind, and that the
 * next front end is served.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <wayland-server-core.h>
#include <wlr/util/log.h>

#include "check.h"
#include "vhost_user.h"

/* Requests (vhost-user.md §4). */
enum {
	GET_FEATURES = 1,
	SET_FEATURES = 2,
	SET_OWNER = 3,
	SET_MEM_TABLE = 5,
	SET_VRING_NUM = 8,
	SET_VRING_ADDR = 9,
	SET_VRING_BASE = 10,
	GET_VRING_BASE = 11,
	SET_VRING_KICK = 12,
	SET_VRING_CALL = 13,
	SET_VRING_ERR = 14,
	GET_PROTOCOL_FEATURES = 15,
	SET_PROTOCOL_FEATURES = 16,
	GET_QUEUE_NUM = 17,
	SET_VRING_ENABLE = 18,
	SET_SLAVE_REQ_FD = 21,
	GET_CONFIG = 24,
	SET_CONFIG = 25,
	GPU_SET_SOCKET = 33,
	GET_MAX_MEM_SLOTS = 36,
	ADD_MEM_REG = 37,
	REM_MEM_REG = 38,
};

#define F_REQ 0x1       // QEMU's flags on most requests
#define F_NEED_REPLY 0x9 // ... and on SET_MEM_TABLE / ADD_MEM_REG with REPLY_ACK
#define NOFD 0x100

#define PROTO_MQ (1ull << 0)
#define PROTO_REPLY_ACK (1ull << 3)
#define PROTO_CONFIG (1ull << 9)
#define PROTO_MEM_SLOTS (1ull << 15)

/* The guest: 512 MiB of memfd RAM as two regions (vhost-user.md §6). */
#define RAM_SIZE 0x20000000ull
#define R0_SIZE 0xa0000ull
#define R1_GPA 0xc0000ull
#define R1_SIZE 0x1ff40000ull
#define UADDR_OF_GPA0 0x7fff8ffff000ull // QEMU's user address of GPA 0
#define RAM_NAME "cw-vu-ram"

/* Guest buffers for requests and responses. */
#define REQ_GPA 0x01000000ull
#define RESP_GPA 0x01100000ull
#define TABLE_GPA 0x01200000ull

#define TIMEOUT_MS 3000

static struct wl_event_loop *loop;
static uint8_t *ram;      // the guest's view of its RAM
static int ram_fd = -1;
static char socket_dir[32];
static char socket_path[64];

/* --- the device: records every callback ------------------------------------ */

struct recorder {
	struct vu_dev *dev;
	int connected, disconnected;
	int kicked[2], stopped[2];
	int gpu_fd, gpu_sockets;
	uint64_t features;
	int features_calls;
	int set_config_calls;
	uint32_t set_config_value;
	int served, pop_errors;
	bool disconnect_on_error;
};

static struct recorder rec;

static const uint8_t config_space[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};

static bool
rec_get_config(void *data, uint32_t offset, uint8_t *buf, uint32_t size)
{
	if (offset > sizeof(config_space) || size > sizeof(config_space) - offset) {
		return false;
	}
	memcpy(buf, config_space + offset, size);
	return true;
}

static bool
rec_set_config(void *data, uint32_t offset, const uint8_t *buf, uint32_t size)
{
	if (offset != 4 || size != 4) {
		return false;
	}
	rec.set_config_calls++;
	memcpy(&rec.set_config_value, buf, 4);
	return true;
}

static void
rec_features_set(void *data, uint64_t features)
{
	rec.features = features;
	rec.features_calls++;
}

/* Answers each request "ok <request>" and returns the chain, like a device would. */
static void
rec_queue_kicked(void *data, struct vu_dev *dev, unsigned index)
{
	CHECK(dev == rec.dev && index < 2);
	rec.kicked[index]++;
	struct vu_chain chain;
	int ret;
	while ((ret = vu_dev_pop(dev, index, &chain)) == 1) {
		char req[32] = {0};
		size_t n = vu_chain_read(&chain, 0, req, sizeof(req) - 1);
		char resp[48];
		int len = snprintf(resp, sizeof(resp), "ok %.*s", (int)n, req);
		size_t written = vu_chain_write(&chain, 0, resp, (size_t)len);
		vu_dev_push(dev, index, &chain, (uint32_t)written);
		rec.served++;
	}
	if (ret < 0) {
		rec.pop_errors++;
		if (rec.disconnect_on_error) {
			vu_dev_disconnect(dev, "the guest broke a ring");
			/* Callbacks may still use dev until they return. */
			CHECK(vu_dev_pop(dev, index, &chain) == 0);
			CHECK(strcmp(vu_dev_name(dev), "test-vm") == 0);
		}
	}
}

static void
rec_queue_stopped(void *data, struct vu_dev *dev, unsigned index)
{
	CHECK(dev == rec.dev && index < 2);
	rec.stopped[index]++;
}

static void
rec_gpu_socket(void *data, int fd)
{
	/* The device adopts the new socket and drops the old one (§10.2.5). */
	if (rec.gpu_fd >= 0) {
		close(rec.gpu_fd);
	}
	rec.gpu_fd = fd;
	rec.gpu_sockets++;
}

static void
rec_connected(void *data, struct vu_dev *dev)
{
	CHECK(rec.dev == NULL);
	rec.dev = dev;
	rec.connected++;
	CHECK(strcmp(vu_dev_name(dev), "test-vm") == 0);
}

static void
rec_disconnected(void *data, struct vu_dev *dev)
{
	CHECK(dev == rec.dev);
	rec.dev = NULL;
	rec.disconnected++;
	if (rec.gpu_fd >= 0) {
		close(rec.gpu_fd);
		rec.gpu_fd = -1;
	}
}

static const struct vu_device_ops ops = {
	/* EDID, plus a transport bit that must not leak into the device bits. */
	.device_features = (1ull << 1) | (1ull << 33),
	/* LOG_SHMFD: never offered, whatever the device asks (SLAVE_REQ is, when asked). */
	.protocol_features = 1ull << 1,
	.num_queues = 2,
	.get_config = rec_get_config,
	.set_config = rec_set_config,
	.features_set = rec_features_set,
	.queue_kicked = rec_queue_kicked,
	.queue_stopped = rec_queue_stopped,
	.gpu_socket = rec_gpu_socket,
	.connected = rec_connected,
	.disconnected = rec_disconnected,
};

/* --- the front end's side of the wire ------------------------------------------ */

static void
pump(void)
{
	for (int i = 0; i < 4; i++) {
		wl_event_loop_dispatch(loop, 0);
	}
}

static long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
connect_front_end(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, socket_path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		perror("connect");
		cw_check_failures++;
	}
	pump();
	return fd;
}

static void
send_raw(int sock, const void *data, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds > 0) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
		perror("sendmsg");
		cw_check_failures++;
	}
}

static void
send_msg(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
	const int *fds, unsigned nfds)
{
	uint8_t buf[12 + 512];
	memcpy(buf, &request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size > 0) {
		memcpy(buf + 12, payload, size);
	}
	send_raw(sock, buf, 12 + size, fds, nfds);
}

static void
send_u64(int sock, uint32_t request, uint32_t flags, uint64_t value, const int *fds,
	unsigned nfds)
{
	send_msg(sock, request, flags, &value, 8, fds, nfds);
}

static void
send_state(int sock, uint32_t request, uint32_t index, uint32_t num)
{
	uint32_t state[2] = {index, num};
	send_msg(sock, request, F_REQ, state, 8, NULL, 0);
}

static void
send_fd(int sock, uint32_t request, uint32_t index, int fd)
{
	send_u64(sock, request, F_REQ, index, &fd, 1);
}

/* Reads exactly len bytes while running the server; false on EOF or timeout. */
static bool
recv_bytes(int sock, void *buf, size_t len)
{
	size_t have = 0;
	long deadline = now_ms() + TIMEOUT_MS;
	while (have < len) {
		ssize_t n = recv(sock, (uint8_t *)buf + have, len - have, MSG_DONTWAIT);
		if (n > 0) {
			have += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR) || now_ms() > deadline) {
			return false;
		} else {
			wl_event_loop_dispatch(loop, 10);
		}
	}
	return true;
}

/* Reads a reply header and checks it; returns the payload size (or -1). */
static int
recv_reply(int sock, uint32_t request, void *payload, size_t max)
{
	uint32_t hdr[3];
	if (!recv_bytes(sock, hdr, sizeof(hdr))) {
		fprintf(stderr, "no reply to request %u\n", request);
		cw_check_failures++;
		return -1;
	}
	CHECK(hdr[0] == request);
	CHECK(hdr[1] == 0x5); // QEMU 7.2 accepts nothing else
	if (hdr[2] > max || !recv_bytes(sock, payload, hdr[2])) {
		fprintf(stderr, "bad payload of %u bytes for request %u\n", hdr[2], request);
		cw_check_failures++;
		return -1;
	}
	return (int)hdr[2];
}

static uint64_t
recv_u64(int sock, uint32_t request)
{
	uint64_t value = UINT64_MAX;
	CHECK(recv_reply(sock, request, &value, sizeof(value)) == 8);
	return value;
}

static uint64_t
query_u64(int sock, uint32_t request)
{
	send_msg(sock, request, F_REQ, NULL, 0, NULL, 0);
	return recv_u64(sock, request);
}

/* True once the server has closed the connection. */
static bool
wait_eof(int sock)
{
	long deadline = now_ms() + TIMEOUT_MS;
	while (now_ms() < deadline) {
		char c;
		ssize_t n = recv(sock, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			return true;
		}
		if (n > 0) {
			fprintf(stderr, "unexpected data while waiting for EOF\n");
			return false;
		}
		wl_event_loop_dispatch(loop, 10);
	}
	return false;
}

static int
count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int count = 0;
	while (dir != NULL && readdir(dir) != NULL) {
		count++;
	}
	if (dir != NULL) {
		closedir(dir);
	}
	return count;
}

static int
count_ram_mappings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int count = 0;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		count += strstr(line, RAM_NAME) != NULL;
	}
	if (f != NULL) {
		fclose(f);
	}
	return count;
}

static int
new_eventfd(void)
{
	return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/* The value an eventfd was signalled with since the last read (0 = not signalled). */
static uint64_t
take_eventfd(int fd)
{
	uint64_t value = 0;
	if (read(fd, &value, sizeof(value)) != sizeof(value)) {
		return 0;
	}
	return value;
}

static void
kick(int fd)
{
	uint64_t one = 1;
	CHECK(write(fd, &one, sizeof(one)) == sizeof(one));
	pump();
}

/* --- the guest driver -------------------------------------------------------------- */

static void put16(uint64_t gpa, uint16_t v) { memcpy(ram + gpa, &v, 2); }
static void put32(uint64_t gpa, uint32_t v) { memcpy(ram + gpa, &v, 4); }
static void put64(uint64_t gpa, uint64_t v) { memcpy(ram + gpa, &v, 8); }

static uint16_t
get16(uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, ram + gpa, 2);
	return v;
}

static uint32_t
get32(uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, ram + gpa, 4);
	return v;
}

struct ring {
	uint64_t desc, avail, used; // GPAs
	uint16_t size;
	uint16_t avail_idx;
};

/* Linux 6.1's layout (§8): desc, then avail, then used at the next 64-byte boundary. */
static struct ring
ring_at(uint64_t gpa, uint16_t size)
{
	struct ring r = {.desc = gpa, .avail = gpa + 16ull * size, .size = size};
	r.used = (r.avail + 6 + 2ull * size + 63) & ~63ull;
	memset(ram + gpa, 0, r.used + 6 + 8ull * size - gpa);
	return r;
}

static void
put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put64(table + 16ull * i, addr);
	put32(table + 16ull * i + 8, len);
	put16(table + 16ull * i + 12, flags);
	put16(table + 16ull * i + 14, next);
}

/* Queues "cmd<n>" with a 64-byte response buffer; asks for an interrupt on completion. */
static void
ring_add_request(struct ring *r, unsigned slot, unsigned n)
{
	unsigned head = (2 * slot) % r->size;
	uint64_t req = REQ_GPA + 0x100ull * slot, resp = RESP_GPA + 0x100ull * slot;
	int len = snprintf((char *)ram + req, 32, "cmd%u", n);
	memset(ram + resp, 0, 64);
	put_desc(r->desc, head, req, (uint32_t)len, 1, (uint16_t)(head + 1));
	put_desc(r->desc, head + 1, resp, 64, 2, 0);
	put16(r->avail + 4 + 2ull * (r->avail_idx % r->size), (uint16_t)head);
	r->avail_idx++;
	put16(r->avail + 2, r->avail_idx);
	put16(r->avail + 4 + 2ull * r->size, get16(r->used + 2)); // used_event
}

static uint16_t ring_used_idx(const struct ring *r) { return get16(r->used + 2); }

static void
send_ring_setup(int sock, uint32_t index, const struct ring *r, uint16_t base, int kick_fd)
{
	send_state(sock, SET_VRING_NUM, index, r->size);
	send_state(sock, SET_VRING_BASE, index, base);
	uint8_t addr[40] = {0};
	uint64_t desc = r->desc + UADDR_OF_GPA0, used = r->used + UADDR_OF_GPA0,
		avail = r->avail + UADDR_OF_GPA0;
	memcpy(addr, &index, 4);
	memcpy(addr + 8, &desc, 8); // the order on the wire is desc, used, avail
	memcpy(addr + 16, &used, 8);
	memcpy(addr + 24, &avail, 8);
	memcpy(addr + 32, &r->used, 8); // log_guest_addr: the GPA of used, as QEMU sends
	send_msg(sock, SET_VRING_ADDR, F_REQ, addr, sizeof(addr), NULL, 0);
	send_fd(sock, SET_VRING_KICK, index, kick_fd);
}

/* --- QEMU 7.2's sequences ---------------------------------------------------------- */

enum memory_mode {
	MEM_TABLE_ACKED, // REPLY_ACK: SET_MEM_TABLE with flags 0x9
	MEM_SLOTS,       // CONFIGURE_MEM_SLOTS: ADD_MEM_REG x2
	MEM_MINIMAL,     // protocol features {CONFIG} only: SET_MEM_TABLE with flags 0x1
};

struct session {
	int sock;
	enum memory_mode mode;
	uint64_t protocol;
	int calls[3][2]; // three generations of call fds: A, C.2, C.8
	int errs[2];
	int kicks[2];
	int gpu_peer;
	struct ring rings[2];
	unsigned requests;
};

static void
region_payload(uint8_t *p, uint64_t gpa, uint64_t size, uint64_t offset)
{
	uint64_t uaddr = gpa + UADDR_OF_GPA0;
	memcpy(p, &gpa, 8);
	memcpy(p + 8, &size, 8);
	memcpy(p + 16, &uaddr, 8);
	memcpy(p + 24, &offset, 8);
}

static void
send_mem_table(int sock, uint32_t flags)
{
	uint8_t table[72] = {2};
	region_payload(table + 8, 0, R0_SIZE, 0);
	region_payload(table + 40, R1_GPA, R1_SIZE, R1_GPA);
	int fds[2] = {ram_fd, ram_fd};
	send_msg(sock, SET_MEM_TABLE, flags, table, sizeof(table), fds, 2);
}

static void
send_mem_reg(int sock, uint32_t request, uint64_t gpa, uint64_t size, bool with_fd)
{
	uint8_t reg[40] = {0};
	region_payload(reg + 8, gpa, size, gpa);
	send_msg(sock, request, F_NEED_REPLY, reg, sizeof(reg), &ram_fd, with_fd ? 1 : 0);
	CHECK(recv_u64(sock, request) == 0);
}

static void
sequence_a(struct session *s)
{
	uint64_t expected_features = (1ull << 32) | (1ull << 28) | (1ull << 29) | (1ull << 30) |
		(1ull << 1);
	CHECK(query_u64(s->sock, GET_FEATURES) == expected_features);
	uint64_t offered = query_u64(s->sock, GET_PROTOCOL_FEATURES);
	CHECK(offered == (PROTO_MQ | PROTO_REPLY_ACK | PROTO_CONFIG | PROTO_MEM_SLOTS));
	send_u64(s->sock, SET_PROTOCOL_FEATURES, F_REQ, s->protocol, NULL, 0);
	if (s->protocol & PROTO_MQ) {
		CHECK(query_u64(s->sock, GET_QUEUE_NUM) == 2);
	}
	if (s->protocol & PROTO_MEM_SLOTS) {
		CHECK(query_u64(s->sock, GET_MAX_MEM_SLOTS) == 32);
	}
	send_msg(s->sock, SET_OWNER, F_REQ, NULL, 0, NULL, 0);
	CHECK(query_u64(s->sock, GET_FEATURES) == expected_features);
	for (uint32_t i = 0; i < 2; i++) {
		s->calls[0][i] = new_eventfd();
		s->errs[i] = new_eventfd();
		send_fd(s->sock, SET_VRING_CALL, i, s->calls[0][i]);
		send_fd(s->sock, SET_VRING_ERR, i, s->errs[i]);
	}
	pump();
	CHECK(rec.dev != NULL);
}

static void
sequence_b(struct session *s)
{
	for (int i = 0; i < 2; i++) {
		/* offset 0, size 16, flags 0, then 16 bytes for the answer: 28 in all. */
		uint32_t req[7] = {0, 16, 0};
		send_msg(s->sock, GET_CONFIG, F_REQ, req, sizeof(req), NULL, 0);
		uint8_t reply[64];
		CHECK(recv_reply(s->sock, GET_CONFIG, reply, sizeof(reply)) == 28);
		CHECK(memcmp(reply, req, 12) == 0);
		CHECK(memcmp(reply + 12, config_space, 16) == 0);
	}
}

static void
send_memory(struct session *s)
{
	switch (s->mode) {
	case MEM_TABLE_ACKED:
		send_mem_table(s->sock, F_NEED_REPLY);
		CHECK(recv_u64(s->sock, SET_MEM_TABLE) == 0);
		break;
	case MEM_SLOTS:
		send_mem_reg(s->sock, ADD_MEM_REG, 0, R0_SIZE, true);
		send_mem_reg(s->sock, ADD_MEM_REG, R1_GPA, R1_SIZE, true);
		break;
	case MEM_MINIMAL:
		send_mem_table(s->sock, F_REQ);
		break;
	}
}

/* DRIVER_OK: the GPU socket, features, memory, both rings, enable, final call fds. */
static void
sequence_c(struct session *s, uint64_t ring_gpa)
{
	int pair[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
	int sockets_before = rec.gpu_sockets;
	send_msg(s->sock, GPU_SET_SOCKET, F_REQ, NULL, 0, &pair[1], 1);
	close(pair[1]);
	s->gpu_peer = pair[0];
	for (uint32_t i = 0; i < 2; i++) {
		s->calls[1][i] = new_eventfd();
		send_fd(s->sock, SET_VRING_CALL, i, s->calls[1][i]);
	}
	send_u64(s->sock, SET_FEATURES, F_REQ, 0x10170000000ull, NULL, 0);
	send_memory(s);
	pump();
	/* GPU_SET_SOCKET has no reply: the ack above is for the memory, in order. */
	CHECK(rec.gpu_sockets == sockets_before + 1);
	CHECK(rec.gpu_fd >= 0 && write(s->gpu_peer, "x", 1) == 1);
	char c = 0;
	CHECK(rec.gpu_fd >= 0 && read(rec.gpu_fd, &c, 1) == 1 && c == 'x');
	CHECK(rec.dev != NULL);
	if (rec.dev == NULL) {
		return;
	}
	CHECK(rec.features == 0x10170000000ull && vu_dev_features(rec.dev) == 0x10170000000ull);
	CHECK(vu_dev_memory(rec.dev)->count == 2);

	s->rings[0] = ring_at(ring_gpa, 64);
	s->rings[1] = ring_at(ring_gpa + 0x1000, 16);
	int kicked[2] = {rec.kicked[0], rec.kicked[1]};
	for (uint32_t i = 0; i < 2; i++) {
		s->kicks[i] = new_eventfd();
		send_ring_setup(s->sock, i, &s->rings[i], 0, s->kicks[i]);
	}
	pump();
	/* With PROTOCOL_FEATURES the rings start disabled: no kick may reach the device. */
	ring_add_request(&s->rings[0], 0, s->requests);
	kick(s->kicks[0]);
	CHECK(rec.kicked[0] == kicked[0] && ring_used_idx(&s->rings[0]) == 0);
	send_state(s->sock, SET_VRING_ENABLE, 0, 1);
	send_state(s->sock, SET_VRING_ENABLE, 1, 1);
	pump();
	/* Enabling runs each queue once: the request queued before is served. */
	CHECK(rec.kicked[0] == kicked[0] + 1 && rec.kicked[1] == kicked[1] + 1);
	CHECK(ring_used_idx(&s->rings[0]) == 1);
	s->requests++;
	for (uint32_t i = 0; i < 2; i++) {
		s->calls[2][i] = new_eventfd();
		send_fd(s->sock, SET_VRING_CALL, i, s->calls[2][i]);
	}
	pump();
	for (uint32_t i = 0; i < 2; i++) {
		take_eventfd(s->calls[1][i]); // the interrupt for the request above went here
	}
}

/* The guest submits `count` requests in batches of 4 and waits for each batch. */
static void
run_requests(struct session *s, unsigned count)
{
	struct ring *r = &s->rings[0];
	while (count > 0) {
		unsigned batch = count < 4 ? count : 4;
		uint16_t used_before = ring_used_idx(r);
		for (unsigned i = 0; i < batch; i++) {
			ring_add_request(r, i, s->requests + i);
		}
		int kicked = rec.kicked[0];
		kick(s->kicks[0]);
		CHECK(rec.kicked[0] == kicked + 1);
		CHECK(ring_used_idx(r) == (uint16_t)(used_before + batch));
		/* The last used element: its head and the response length. */
		uint16_t last = (uint16_t)(used_before + batch - 1) % r->size;
		char want[32];
		snprintf(want, sizeof(want), "ok cmd%u", s->requests + batch - 1);
		CHECK(get32(r->used + 4 + 8ull * last) == 2 * (batch - 1));
		CHECK(get32(r->used + 8 + 8ull * last) == strlen(want));
		CHECK_STR((char *)ram + RESP_GPA + 0x100ull * (batch - 1), want);
		/* Only the newest call fd is signalled; the replaced ones never are. */
		CHECK(take_eventfd(s->calls[2][0]) >= 1);
		CHECK(take_eventfd(s->calls[0][0]) == 0 && take_eventfd(s->calls[1][0]) == 0);
		s->requests += batch;
		count -= batch;
	}
}

/* One indirect request: the table holds a readable and a writable descriptor. */
static void
run_indirect_request(struct session *s)
{
	struct ring *r = &s->rings[0];
	int len = snprintf((char *)ram + REQ_GPA, 32, "indirect");
	put_desc(TABLE_GPA, 0, REQ_GPA, (uint32_t)len, 1, 1);
	put_desc(TABLE_GPA, 1, RESP_GPA, 64, 2, 0);
	put_desc(r->desc, 10, TABLE_GPA, 32, 4, 0);
	put16(r->avail + 4 + 2ull * (r->avail_idx % r->size), 10);
	r->avail_idx++;
	put16(r->avail + 2, r->avail_idx);
	/* used_event still says "after the last batch": no interrupt is wanted yet... */
	kick(s->kicks[0]);
	CHECK_STR((char *)ram + RESP_GPA, "ok indirect");
	CHECK(take_eventfd(s->calls[2][0]) == 0);
	/* ...until the guest asks for one at the current used index (EVENT_IDX). */
	memset(ram + RESP_GPA, 0, 64);
	put16(r->avail + 4 + 2ull * (r->avail_idx % r->size), 10);
	r->avail_idx++;
	put16(r->avail + 2, r->avail_idx);
	put16(r->avail + 4 + 2ull * r->size, ring_used_idx(r));
	kick(s->kicks[0]);
	s->requests++;
	CHECK_STR((char *)ram + RESP_GPA, "ok indirect");
	CHECK(take_eventfd(s->calls[2][0]) >= 1);
	s->requests++;
}

/* Device reset: GPU socket closed first, rings disabled, then stopped. */
static void
sequence_d(struct session *s)
{
	close(s->gpu_peer);
	s->gpu_peer = -1;
	send_state(s->sock, SET_VRING_ENABLE, 0, 0);
	send_state(s->sock, SET_VRING_ENABLE, 1, 0);
	pump();
	/* A disabled ring is not processed. */
	ring_add_request(&s->rings[0], 0, 999);
	int kicked = rec.kicked[0];
	kick(s->kicks[0]);
	CHECK(rec.kicked[0] == kicked);
	s->rings[0].avail_idx--; // the guest is resetting; that request never counted
	put16(s->rings[0].avail + 2, s->rings[0].avail_idx);

	int stopped[2] = {rec.stopped[0], rec.stopped[1]};
	uint32_t state[2];
	int fds = count_fds();
	send_state(s->sock, GET_VRING_BASE, 0, 0);
	CHECK(recv_reply(s->sock, GET_VRING_BASE, state, sizeof(state)) == 8);
	CHECK(state[0] == 0 && state[1] == s->requests);
	send_state(s->sock, GET_VRING_BASE, 1, 0);
	CHECK(recv_reply(s->sock, GET_VRING_BASE, state, sizeof(state)) == 8);
	CHECK(state[0] == 1 && state[1] == 0);
	/*
	 * Stopping a ring lets go of its kick fd (the front end sends a new one):
	 * at least one fd per ring (libwayland's event source holds a dup too).
	 */
	CHECK(count_fds() <= fds - 2);
	CHECK(rec.stopped[0] == stopped[0] + 1 && rec.stopped[1] == stopped[1] + 1);
	for (uint32_t i = 0; i < 2; i++) {
		int call = new_eventfd();
		send_fd(s->sock, SET_VRING_CALL, i, call);
		close(call);
	}
	pump();
	/* A stopped ring has dropped its kick fd: kicks go nowhere. */
	kicked = rec.kicked[0];
	kick(s->kicks[0]);
	CHECK(rec.kicked[0] == kicked);
	/* Block C creates all of these anew. */
	for (uint32_t i = 0; i < 2; i++) {
		close(s->kicks[i]);
		close(s->calls[1][i]);
		close(s->calls[2][i]);
		s->kicks[i] = s->calls[1][i] = s->calls[2][i] = -1;
	}
}

/* Rebind (§10.1 E): config reads, then block C again with new ring addresses. */
static void
sequence_e(struct session *s)
{
	sequence_b(s);
	int stopped[2] = {rec.stopped[0], rec.stopped[1]};
	if (s->mode == MEM_SLOTS) {
		/* Swap the regions out and in again (REM_MEM_REG may carry an fd: closed). */
		send_mem_reg(s->sock, REM_MEM_REG, 0, R0_SIZE, true);
		send_mem_reg(s->sock, REM_MEM_REG, R1_GPA, R1_SIZE, false);
		CHECK(rec.dev != NULL && vu_dev_memory(rec.dev)->count == 0);
	}
	s->requests = 0;
	sequence_c(s, 0x191e8000);
	/* Memory went away and came back: every queue was told to drop its chains first. */
	CHECK(rec.stopped[0] > stopped[0] && rec.stopped[1] > stopped[1]);
	CHECK(rec.gpu_sockets >= 2 && rec.dev != NULL);
}

static void
close_session_fds(struct session *s)
{
	for (int g = 0; g < 3; g++) {
		for (int i = 0; i < 2; i++) {
			if (s->calls[g][i] >= 0) {
				close(s->calls[g][i]);
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		close(s->errs[i]);
		if (s->kicks[i] >= 0) {
			close(s->kicks[i]);
		}
	}
	if (s->gpu_peer >= 0) {
		close(s->gpu_peer);
	}
}

static void
test_qemu_session(enum memory_mode mode, uint64_t protocol)
{
	int fds_before = count_fds();
	int maps_before = count_ram_mappings();
	int disconnected = rec.disconnected;
	struct session s = {.mode = mode, .protocol = protocol, .gpu_peer = -1,
		.kicks = {-1, -1}};
	memset(s.calls, -1, sizeof(s.calls));
	s.sock = connect_front_end();
	CHECK(rec.connected > 0 && rec.dev != NULL);

	sequence_a(&s);
	sequence_b(&s);
	sequence_c(&s, 0x191dc000); // the ctrl ring's used ring lands at GPA 0x191dc4c0 (§6)
	CHECK(s.rings[0].used == 0x191dc4c0);
	CHECK(count_ram_mappings() == maps_before + 2);
	run_requests(&s, 71);
	run_indirect_request(&s);
	run_requests(&s, 76 - s.requests);
	CHECK(s.requests == 76);
	sequence_d(&s);
	sequence_e(&s);
	run_requests(&s, 9);
	sequence_d(&s);

	/* Poweroff: the connection closes and everything the back end held goes with it. */
	close(s.sock);
	pump();
	CHECK(rec.disconnected == disconnected + 1 && rec.dev == NULL);
	close_session_fds(&s);
	CHECK(count_fds() == fds_before);
	CHECK(count_ram_mappings() == maps_before);
}

/* --- misbehaviour ------------------------------------------------------------------ */

/* Connects, lets `send` misbehave, and expects a clean disconnect. */
static void
expect_disconnect(const char *what, void (*send)(int sock))
{
	int fds_before = count_fds();
	int maps_before = count_ram_mappings();
	int disconnected = rec.disconnected;
	int sock = connect_front_end();
	send(sock);
	if (!wait_eof(sock)) {
		fprintf(stderr, "%s: the back end did not disconnect\n", what);
		cw_check_failures++;
	}
	close(sock);
	pump();
	if (rec.disconnected != disconnected + 1 || rec.dev != NULL || count_fds() != fds_before ||
			count_ram_mappings() != maps_before) {
		fprintf(stderr, "%s: disconnected %d, fds %d -> %d, mappings %d -> %d\n", what,
			rec.disconnected - disconnected, fds_before, count_fds(), maps_before,
			count_ram_mappings());
		cw_check_failures++;
	}
}

static void
bad_size(int sock)
{
	uint32_t half = 1;
	send_msg(sock, SET_FEATURES, F_REQ, &half, 4, NULL, 0);
}

static void
bad_unknown_request(int sock)
{
	send_msg(sock, 99, F_NEED_REPLY, NULL, 0, NULL, 0);
}

static void
bad_unoffered_request(int sock)
{
	int fd = new_eventfd();
	send_msg(sock, SET_SLAVE_REQ_FD, F_NEED_REPLY, NULL, 0, &fd, 1);
	close(fd);
}

static void
bad_too_many_fds(int sock)
{
	int fds[9];
	for (int i = 0; i < 9; i++) {
		fds[i] = new_eventfd();
	}
	send_u64(sock, SET_VRING_CALL, F_REQ, 0, fds, 9);
	for (int i = 0; i < 9; i++) {
		close(fds[i]);
	}
}

static void
bad_truncated_header(int sock)
{
	uint32_t hdr[3] = {GET_FEATURES, F_REQ, 0};
	send_raw(sock, hdr, 6, NULL, 0);
	pump();
	CHECK(rec.dev != NULL); // half a header is not an error yet
	shutdown(sock, SHUT_WR);
}

static void
bad_truncated_payload_with_fds(int sock)
{
	/* Mapped memory and fds received with the unfinished message must all go. */
	send_mem_table(sock, F_NEED_REPLY);
	CHECK(recv_u64(sock, SET_MEM_TABLE) == 0);
	uint8_t msg[12 + 40] = {0};
	uint32_t hdr[3] = {ADD_MEM_REG, F_NEED_REPLY, 40};
	memcpy(msg, hdr, 12);
	send_raw(sock, msg, 20, &ram_fd, 1);
	pump();
	shutdown(sock, SHUT_WR);
}

static void
bad_version(int sock)
{
	send_msg(sock, GET_FEATURES, 0x2, NULL, 0, NULL, 0);
}

static void
bad_huge_payload(int sock)
{
	/* Only the header: the size alone must be refused, without waiting for the payload. */
	uint32_t hdr[3] = {GET_CONFIG, F_REQ, 0x100000};
	send_raw(sock, hdr, sizeof(hdr), NULL, 0);
}

static void
bad_config_size(int sock)
{
	uint32_t req[3] = {0, 20, 0}; // says 20 config bytes, carries none
	send_msg(sock, GET_CONFIG, F_REQ, req, sizeof(req), NULL, 0);
}

static void
bad_gpu_socket_without_fd(int sock)
{
	send_msg(sock, GPU_SET_SOCKET, F_REQ, NULL, 0, NULL, 0);
}

static void
bad_mem_table_fds(int sock)
{
	uint8_t table[72] = {2};
	region_payload(table + 8, 0, R0_SIZE, 0);
	region_payload(table + 40, R1_GPA, R1_SIZE, R1_GPA);
	send_msg(sock, SET_MEM_TABLE, F_NEED_REPLY, table, sizeof(table), &ram_fd, 1);
}

static void
bad_queue_index(int sock)
{
	send_state(sock, SET_VRING_NUM, 2, 64);
}

static void
bad_queue_size(int sock)
{
	send_state(sock, SET_VRING_NUM, 0, 48);
}

static void
bad_kick_without_fd(int sock)
{
	send_u64(sock, SET_VRING_KICK, F_REQ, 0, NULL, 0);
}

static void
bad_ring_outside_memory(int sock)
{
	send_mem_table(sock, F_NEED_REPLY);
	CHECK(recv_u64(sock, SET_MEM_TABLE) == 0);
	struct ring r = {.desc = R0_SIZE, .avail = R0_SIZE + 0x400, .used = R0_SIZE + 0x4c0,
		.size = 64}; // in the hole between the regions
	int kick_fd = new_eventfd();
	send_ring_setup(sock, 0, &r, 0, kick_fd);
	close(kick_fd);
}

/* The guest corrupts its ring: the device reports it and drops the front end. */
static void
bad_broken_ring(int sock)
{
	send_u64(sock, SET_PROTOCOL_FEATURES, F_REQ, PROTO_CONFIG | PROTO_REPLY_ACK, NULL, 0);
	send_u64(sock, SET_FEATURES, F_REQ, 0x10170000000ull, NULL, 0);
	send_mem_table(sock, F_NEED_REPLY);
	CHECK(recv_u64(sock, SET_MEM_TABLE) == 0);
	int err_fd = new_eventfd(), kick_fd = new_eventfd();
	send_fd(sock, SET_VRING_ERR, 0, err_fd);
	struct ring r = ring_at(0x02000000, 64);
	send_ring_setup(sock, 0, &r, 0, kick_fd);
	send_state(sock, SET_VRING_ENABLE, 0, 1);
	pump();
	CHECK(rec.dev != NULL);
	rec.disconnect_on_error = true;
	put16(r.avail + 2, 65); // more entries than the ring holds
	kick(kick_fd);
	rec.disconnect_on_error = false;
	CHECK(rec.pop_errors > 0);
	CHECK(take_eventfd(err_fd) == 1);
	close(err_fd);
	close(kick_fd);
}

static void
test_misbehaviour(void)
{
	expect_disconnect("wrong payload size", bad_size);
	expect_disconnect("unknown request with NEED_REPLY", bad_unknown_request);
	expect_disconnect("request for a feature never offered", bad_unoffered_request);
	expect_disconnect("9 fds", bad_too_many_fds);
	expect_disconnect("truncated header, then EOF", bad_truncated_header);
	expect_disconnect("truncated payload with an fd", bad_truncated_payload_with_fds);
	expect_disconnect("bad version bits", bad_version);
	expect_disconnect("payload size above the cap", bad_huge_payload);
	expect_disconnect("GET_CONFIG size mismatch", bad_config_size);
	expect_disconnect("GPU_SET_SOCKET without an fd", bad_gpu_socket_without_fd);
	expect_disconnect("SET_MEM_TABLE with too few fds", bad_mem_table_fds);
	expect_disconnect("queue index out of range", bad_queue_index);
	expect_disconnect("queue size not a power of two", bad_queue_size);
	expect_disconnect("SET_VRING_KICK without fd or NOFD", bad_kick_without_fd);
	expect_disconnect("ring outside guest memory", bad_ring_outside_memory);
	expect_disconnect("guest broke a ring", bad_broken_ring);
}

/* --- tolerated oddities -------------------------------------------------------------- */

static void
test_tolerated(void)
{
	int fds_before = count_fds();
	int sock = connect_front_end();
	CHECK(rec.dev != NULL);

	/* A message may arrive in pieces: the reply comes once it is whole. */
	uint32_t hdr[3] = {GET_QUEUE_NUM, F_REQ, 0};
	send_raw(sock, hdr, 5, NULL, 0);
	pump();
	send_raw(sock, (uint8_t *)hdr + 5, 4, NULL, 0);
	pump();
	char c;
	CHECK(recv(sock, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
	send_raw(sock, (uint8_t *)hdr + 9, 3, NULL, 0);
	CHECK(recv_u64(sock, GET_QUEUE_NUM) == 2);

	/* A split SET_MEM_TABLE whose fds come with the first piece. */
	uint8_t msg[12 + 72] = {0};
	uint32_t mhdr[3] = {SET_MEM_TABLE, F_NEED_REPLY, 72};
	memcpy(msg, mhdr, 12);
	msg[12] = 2;
	region_payload(msg + 20, 0, R0_SIZE, 0);
	region_payload(msg + 52, R1_GPA, R1_SIZE, R1_GPA);
	int fds[2] = {ram_fd, ram_fd};
	send_raw(sock, msg, 30, fds, 2);
	pump();
	send_raw(sock, msg + 30, sizeof(msg) - 30, NULL, 0);
	CHECK(recv_u64(sock, SET_MEM_TABLE) == 0);
	CHECK(rec.dev != NULL && vu_dev_memory(rec.dev)->count == 2);
	/* Replacing the table: queues are told to drop their chains first. */
	int stopped = rec.stopped[0];
	send_mem_table(sock, F_NEED_REPLY);
	CHECK(recv_u64(sock, SET_MEM_TABLE) == 0);
	CHECK(rec.stopped[0] == stopped + 1 && rec.dev != NULL && vu_dev_memory(rec.dev)->count == 2);

	/* Fds on a request that takes none are closed, the request still served. */
	int extra[2] = {new_eventfd(), new_eventfd()};
	send_msg(sock, GET_FEATURES, F_REQ, NULL, 0, extra, 2);
	CHECK(recv_u64(sock, GET_FEATURES) != UINT64_MAX);
	close(extra[0]);
	close(extra[1]);

	/* NEED_REPLY on a request with a reply of its own: just that reply, no extra ack. */
	send_msg(sock, GET_FEATURES, F_NEED_REPLY, NULL, 0, NULL, 0);
	CHECK(recv_u64(sock, GET_FEATURES) != 0);
	/* GPU_SET_SOCKET never replies, NEED_REPLY or not. */
	int gpu[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gpu) == 0);
	send_msg(sock, GPU_SET_SOCKET, F_NEED_REPLY, NULL, 0, &gpu[1], 1);
	close(gpu[1]);
	CHECK(query_u64(sock, GET_QUEUE_NUM) == 2);
	close(gpu[0]);

	/* NOFD call: accepted, acked on request. */
	send_u64(sock, SET_VRING_CALL, F_NEED_REPLY, 1 | NOFD, NULL, 0);
	CHECK(recv_u64(sock, SET_VRING_CALL) == 0);

	/* Unknown feature bits are accepted (QEMU forces RING_RESET, bit 40). */
	send_u64(sock, SET_FEATURES, F_NEED_REPLY, (1ull << 40) | (1ull << 63), NULL, 0);
	CHECK(recv_u64(sock, SET_FEATURES) == 0);
	CHECK(rec.features == ((1ull << 40) | (1ull << 63)));

	/* Config writes reach the device; refused ones are nacked or answered empty. */
	uint8_t cfg[16] = {4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
	send_msg(sock, SET_CONFIG, F_NEED_REPLY, cfg, sizeof(cfg), NULL, 0);
	CHECK(recv_u64(sock, SET_CONFIG) == 0);
	CHECK(rec.set_config_calls == 1 && rec.set_config_value == 1);
	cfg[0] = 8;
	send_msg(sock, SET_CONFIG, F_NEED_REPLY, cfg, sizeof(cfg), NULL, 0);
	CHECK(recv_u64(sock, SET_CONFIG) != 0);
	uint32_t get[3] = {12, 8, 0};
	uint8_t pad[20] = {0};
	memcpy(pad, get, 12);
	send_msg(sock, GET_CONFIG, F_REQ, pad, 20, NULL, 0);
	uint8_t reply[32];
	CHECK(recv_reply(sock, GET_CONFIG, reply, sizeof(reply)) == 0);

	/* A failing ADD_MEM_REG (overlapping) is nacked, not fatal. */
	uint8_t reg[40] = {0};
	region_payload(reg + 8, 0, R0_SIZE, 0);
	send_msg(sock, ADD_MEM_REG, F_NEED_REPLY, reg, sizeof(reg), &ram_fd, 1);
	CHECK(recv_u64(sock, ADD_MEM_REG) != 0);
	send_msg(sock, REM_MEM_REG, F_NEED_REPLY, reg, sizeof(reg), NULL, 0);
	CHECK(recv_u64(sock, REM_MEM_REG) == 0);
	send_msg(sock, REM_MEM_REG, F_NEED_REPLY, reg, sizeof(reg), NULL, 0);
	CHECK(recv_u64(sock, REM_MEM_REG) != 0);
	CHECK(rec.dev != NULL && vu_dev_memory(rec.dev)->count == 1);

	/* GET_VRING_BASE of a ring that never started returns its base. */
	send_state(sock, SET_VRING_BASE, 1, 1234);
	uint32_t state[2];
	send_state(sock, GET_VRING_BASE, 1, 0);
	CHECK(recv_reply(sock, GET_VRING_BASE, state, sizeof(state)) == 8);
	CHECK(state[0] == 1 && state[1] == 1234);

	/* A second front end while this one is active is turned away. */
	int second = connect_front_end();
	CHECK(wait_eof(second));
	close(second);
	CHECK(rec.connected > 0 && rec.dev != NULL);
	CHECK(query_u64(sock, GET_QUEUE_NUM) == 2);

	close(sock);
	pump();
	CHECK(rec.dev == NULL);
	CHECK(count_fds() == fds_before);
}

static void
test_socket_file(void)
{
	/* A live listener's path is not taken over. */
	CHECK(vu_server_create(loop, socket_path, "other-vm", &ops, NULL) == NULL);
	pump(); // the liveness probe looked like a front end to the live server; let it go
	CHECK(rec.dev == NULL);
	/* A stale socket file (nobody listening) is replaced. */
	char stale[64];
	snprintf(stale, sizeof(stale), "%s/stale.sock", socket_dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, stale);
	CHECK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	close(fd);
	struct vu_server *server = vu_server_create(loop, stale, "stale-vm", &ops, NULL);
	CHECK(server != NULL);
	CHECK(server != NULL && strcmp(vu_server_name(server), "stale-vm") == 0);
	vu_server_destroy(server);
	CHECK(access(stale, F_OK) != 0);
	vu_server_destroy(NULL);
}

int
main(void)
{
	wlr_log_init(WLR_DEBUG, NULL);
	rec.gpu_fd = -1;
	strcpy(socket_dir, "/tmp/cw-vhost-user-XXXXXX");
	if (mkdtemp(socket_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(socket_path, sizeof(socket_path), "%s/gpu.sock", socket_dir);
	ram_fd = memfd_create(RAM_NAME, MFD_CLOEXEC);
	if (ram_fd < 0 || ftruncate(ram_fd, RAM_SIZE) != 0) {
		perror("memfd");
		return 1;
	}
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	loop = wl_event_loop_create();
	struct vu_server *server = vu_server_create(loop, socket_path, "test-vm", &ops, NULL);
	CHECK(ram != MAP_FAILED && loop != NULL && server != NULL);
	if (server == NULL || ram == MAP_FAILED) {
		CHECK_DONE();
	}

	test_qemu_session(MEM_TABLE_ACKED, PROTO_MQ | PROTO_REPLY_ACK | PROTO_CONFIG);
	test_qemu_session(MEM_SLOTS, PROTO_MQ | PROTO_REPLY_ACK | PROTO_CONFIG | PROTO_MEM_SLOTS);
	test_qemu_session(MEM_MINIMAL, PROTO_CONFIG);
	test_misbehaviour();
	test_tolerated();
	/* After all that, a new front end is served normally. */
	test_qemu_session(MEM_TABLE_ACKED, PROTO_MQ | PROTO_REPLY_ACK | PROTO_CONFIG);
	test_socket_file();

	/* Destroying the server drops a connected front end too. */
	int sock = connect_front_end();
	CHECK(rec.dev != NULL);
	int disconnected = rec.disconnected;
	vu_server_destroy(server);
	CHECK(rec.disconnected == disconnected + 1 && rec.dev == NULL);
	CHECK(access(socket_path, F_OK) != 0);
	close(sock);
	wl_event_loop_destroy(loop);
	munmap(ram, RAM_SIZE);
	close(ram_fd);
	rmdir(socket_dir);
	CHECK_DONE();
}
