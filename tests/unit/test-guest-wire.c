/*
 * crossway-guest's message translation (vm/guest), driven through a fake
 * transport that records every submitted command and gives out malloc'ed
 * "blobs". Every check compares exact bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "client.h"
#include "xdom.h"

/* ------------------------------------------------------------------ */
/* Fake transport                                                      */
/* ------------------------------------------------------------------ */

#define MAX_RECORDS 4096

struct record {
	uint8_t *cmd;
	size_t size;
	int ring;
	unsigned nblobs;
	uint32_t blob_ids[8];
	uint32_t watch_sum; // checksum of the watched memory at submission
};

static struct record records[MAX_RECORDS];
static unsigned nrecords;
static uint32_t next_res_id = 100;
static uint32_t destroyed[256];
static unsigned ndestroyed;
static int pending_events;
static const uint8_t *watch;
static size_t watch_len;

struct cwg_context {
	int dummy;
};

static uint32_t checksum(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static struct cwg_context *fake_context_create(struct cwg_transport *t)
{
	(void)t;
	return calloc(1, sizeof(struct cwg_context));
}

static void fake_context_destroy(struct cwg_context *ctx)
{
	free(ctx);
}

static int fake_blob_create(struct cwg_context *ctx, size_t size, struct cwg_blob *blob)
{
	(void)ctx;
	blob->map = calloc(1, size);
	if (!blob->map)
		return -ENOMEM;
	blob->size = size;
	blob->res_id = next_res_id++;
	blob->handle = blob->res_id + 1000;
	return 0;
}

static void fake_blob_destroy(struct cwg_context *ctx, struct cwg_blob *blob)
{
	(void)ctx;
	if (ndestroyed < 256)
		destroyed[ndestroyed++] = blob->res_id;
	free(blob->map);
	memset(blob, 0, sizeof(*blob));
}

static int fake_submit(struct cwg_context *ctx, const void *cmd, size_t size, int ring,
	const struct cwg_blob *const *blobs, unsigned n)
{
	(void)ctx;
	if (nrecords >= MAX_RECORDS)
		return -ENOSPC;
	struct record *r = &records[nrecords++];
	r->cmd = malloc(size);
	memcpy(r->cmd, cmd, size);
	r->size = size;
	r->ring = ring;
	r->nblobs = n;
	for (unsigned i = 0; i < n && i < 8; i++)
		r->blob_ids[i] = blobs[i]->res_id;
	r->watch_sum = watch ? checksum(watch, watch_len) : 0;
	return 0;
}

static int fake_wait_query(struct cwg_context *ctx)
{
	(void)ctx;
	return 0;
}

static int fake_event_fd(struct cwg_context *ctx)
{
	(void)ctx;
	return -1;
}

static int fake_take_events(struct cwg_context *ctx)
{
	(void)ctx;
	int n = pending_events;
	pending_events = 0;
	return n;
}

static int fake_poll_fd(struct cwg_transport *t)
{
	(void)t;
	return -1;
}

static int fake_dispatch(struct cwg_transport *t)
{
	(void)t;
	return 0;
}

static void fake_destroy(struct cwg_transport *t)
{
	(void)t;
}

static const struct cwg_transport_impl fake_impl = {
	.name = "fake",
	.context_create = fake_context_create,
	.context_destroy = fake_context_destroy,
	.blob_create = fake_blob_create,
	.blob_destroy = fake_blob_destroy,
	.submit = fake_submit,
	.wait_query = fake_wait_query,
	.event_fd = fake_event_fd,
	.take_events = fake_take_events,
	.poll_fd = fake_poll_fd,
	.dispatch = fake_dispatch,
	.destroy = fake_destroy,
};
static struct cwg_transport fake_transport = { &fake_impl };

static void reset_records(void)
{
	for (unsigned i = 0; i < nrecords; i++)
		free(records[i].cmd);
	nrecords = 0;
	ndestroyed = 0;
	watch = NULL;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A Wayland message of u32 arguments; returns its size. */
static size_t wl(uint8_t *out, uint32_t object, uint32_t opcode, unsigned nargs, ...)
{
	va_list ap;
	va_start(ap, nargs);
	uint32_t size = 8 + 4 * nargs;
	cwg_put_u32(out, object);
	cwg_put_u32(out + 4, size << 16 | opcode);
	for (unsigned i = 0; i < nargs; i++)
		cwg_put_u32(out + 8 + 4 * i, va_arg(ap, uint32_t));
	va_end(ap);
	return size;
}

static size_t wl_bind(uint8_t *out, uint32_t registry, uint32_t name, const char *iface,
	uint32_t version, uint32_t id)
{
	size_t slen = strlen(iface) + 1, padded = (slen + 3) & ~(size_t)3;
	uint32_t size = (uint32_t)(8 + 4 + 4 + padded + 4 + 4);
	memset(out, 0, size);
	cwg_put_u32(out, registry);
	cwg_put_u32(out + 4, size << 16 | 0);
	cwg_put_u32(out + 8, name);
	cwg_put_u32(out + 12, (uint32_t)slen);
	memcpy(out + 16, iface, slen);
	cwg_put_u32(out + 16 + padded, version);
	cwg_put_u32(out + 20 + padded, id);
	return size;
}

static const struct xdom_send_receive *send_hdr(const struct record *r)
{
	return (const struct xdom_send_receive *)r->cmd;
}

static bool is_send(const struct record *r)
{
	return r->size >= sizeof(struct xdom_send_receive) && r->cmd[0] == XDOM_CMD_SEND;
}

static const uint8_t *send_data(const struct record *r)
{
	return r->cmd + sizeof(struct xdom_send_receive);
}

static struct cwg_client *new_client(int sock)
{
	reset_records();
	next_res_id = 100;
	struct cwg_client *c = cwg_client_new(&fake_transport, sock);
	return c;
}

/* The host writes msg into the channel ring and signals the POLL fence. */
static void host_writes(struct cwg_client *c, const void *msg, size_t len)
{
	memset(c->rings[1].map, 0xee, XDOM_RING_SIZE);
	memcpy(c->rings[1].map, msg, len);
	pending_events = 1;
	cwg_client_events(c);
}

static size_t host_receive(uint8_t *out, const void *data, uint32_t len,
	unsigned n, const struct cwg_xdom_item *items)
{
	struct xdom_send_receive r;
	memset(&r, 0, sizeof(r));
	r.hdr.cmd = XDOM_CMD_RECEIVE;
	r.hdr.cmd_size = (uint16_t)(sizeof(r) + len);
	r.num_identifiers = n;
	r.opaque_data_size = len;
	for (unsigned i = 0; i < n; i++) {
		r.identifiers[i] = items[i].id;
		r.identifier_types[i] = items[i].type;
		r.identifier_sizes[i] = items[i].size;
	}
	memcpy(out, &r, sizeof(r));
	memcpy(out + sizeof(r), data, len);
	return sizeof(r) + len;
}

static size_t host_read(uint8_t *out, uint32_t id, const void *data, uint32_t len, int hang_up)
{
	struct xdom_read_write r;
	memset(&r, 0, sizeof(r));
	r.hdr.cmd = XDOM_CMD_READ;
	r.hdr.cmd_size = (uint16_t)(sizeof(r) + len);
	r.identifier = id;
	r.hang_up = (uint32_t)hang_up;
	r.opaque_data_size = len;
	memcpy(out, &r, sizeof(r));
	if (len)
		memcpy(out + sizeof(r), data, len);
	return sizeof(r) + len;
}

static unsigned count_polls(unsigned from)
{
	unsigned n = 0;
	for (unsigned i = from; i < nrecords; i++)
		if (records[i].cmd[0] == XDOM_CMD_POLL)
			n++;
	return n;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_init(void)
{
	struct cwg_client *c = new_client(-1);
	CHECK(c != NULL);
	CHECK(nrecords == 2);
	struct xdom_init init;
	CHECK(records[0].size == 24);
	memcpy(&init, records[0].cmd, sizeof(init));
	CHECK(init.hdr.cmd == XDOM_CMD_INIT && init.hdr.cmd_size == 24);
	CHECK(init.query_ring_id == 100 && init.channel_ring_id == 101);
	CHECK(init.channel_type == XDOM_CHANNEL_WAYLAND);
	CHECK(init.version == XDOM_CROSSWAY_VERSION);
	CHECK(records[0].ring < 0 && records[0].nblobs == 2);
	CHECK(records[0].blob_ids[0] == 100 && records[0].blob_ids[1] == 101);
	CHECK(records[1].size == 16 && records[1].cmd[0] == XDOM_CMD_POLL);
	CHECK(records[1].ring == XDOM_CHANNEL_RING);
	CHECK(records[1].nblobs == 1 && records[1].blob_ids[0] == 101);
	CHECK(c->poll_outstanding);
	cwg_client_destroy(c);
	/* Rings freed with the context. */
	CHECK(ndestroyed == 2);
}

static void test_framing(void)
{
	struct cwg_client *c = new_client(-1);
	uint8_t buf[64];
	size_t a = wl(buf, 1, 1, 1, 2u);  // wl_display.get_registry(2)
	size_t b = wl(buf + a, 1, 0, 1, 3u); // wl_display.sync(3)
	unsigned base = nrecords;
	CHECK(cwg_client_input(c, buf, 5, NULL, 0) == 0);
	CHECK(nrecords == base);
	CHECK(cwg_client_input(c, buf + 5, 10, NULL, 0) == 0); // first message + 3 bytes
	CHECK(nrecords == base + 1);
	CHECK(is_send(&records[base]) && send_hdr(&records[base])->opaque_data_size == 12);
	CHECK(memcmp(send_data(&records[base]), buf, 12) == 0);
	CHECK(records[base].size == 352 + 12 && send_hdr(&records[base])->hdr.cmd_size == 364);
	CHECK(cwg_client_input(c, buf + 15, a + b - 15, NULL, 0) == 0);
	CHECK(nrecords == base + 2);
	CHECK(send_hdr(&records[base + 1])->opaque_data_size == 12);
	CHECK(memcmp(send_data(&records[base + 1]), buf + 12, 12) == 0);
	CHECK(c->in.len == 0);

	/* Two whole messages in one read: one SEND. */
	base = nrecords;
	CHECK(cwg_client_input(c, buf, a + b, NULL, 0) == 0);
	CHECK(nrecords == base + 1);
	CHECK(send_hdr(&records[base])->opaque_data_size == 24);
	CHECK(memcmp(send_data(&records[base]), buf, 24) == 0);
	CHECK(send_hdr(&records[base])->num_identifiers == 0);

	/* A size smaller than the header ends the client. */
	uint8_t bad[8];
	cwg_put_u32(bad, 5);
	cwg_put_u32(bad + 4, 4u << 16);
	CHECK(cwg_client_input(c, bad, 8, NULL, 0) < 0);
	CHECK(c->dead);
	cwg_client_destroy(c);
}

static void test_objects(void)
{
	struct cwg_client *c = new_client(-1);
	uint8_t buf[256];
	size_t n = wl(buf, 1, 1, 1, 2u);
	n += wl_bind(buf + n, 2, 1, "wl_shm", 1, 3);
	n += wl_bind(buf + n, 2, 2, "wl_compositor", 4, 4);
	n += wl_bind(buf + n, 2, 3, "xdg_wm_base", 2, 8);
	n += wl(buf + n, 4, 0, 1, 5u); // create_surface(5)
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	struct cwg_object *o;
	CHECK((o = cwg_objects_get(&c->objects, 2)) && o->type == CWG_OBJ_REGISTRY);
	CHECK((o = cwg_objects_get(&c->objects, 3)) && o->type == CWG_OBJ_SHM);
	CHECK((o = cwg_objects_get(&c->objects, 4)) && o->type == CWG_OBJ_COMPOSITOR);
	CHECK(cwg_objects_get(&c->objects, 8) == NULL);
	CHECK((o = cwg_objects_get(&c->objects, 5)) && o->type == CWG_OBJ_SURFACE);
	/* The whole batch went out unchanged. */
	CHECK(is_send(&records[nrecords - 1]));
	CHECK(send_hdr(&records[nrecords - 1])->opaque_data_size == n);
	CHECK(memcmp(send_data(&records[nrecords - 1]), buf, n) == 0);

	/* wl_surface.destroy: a zombie until the host's delete_id. */
	n = wl(buf, 5, 0, 0);
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK((o = cwg_objects_get(&c->objects, 5)) && o->type == CWG_OBJ_ZOMBIE);
	/* delete_id(5) split across two RECEIVEs, behind another event. */
	uint8_t ev[32], ring[512];
	size_t e = wl(ev, 3, 0, 1, 0u); // wl_shm.format(0)
	e += wl(ev + e, 1, 1, 1, 5u);  // wl_display.delete_id(5)
	host_writes(c, ring, host_receive(ring, ev, 17, 0, NULL));
	CHECK(cwg_objects_get(&c->objects, 5) != NULL);
	host_writes(c, ring, host_receive(ring, ev + 17, (uint32_t)(e - 17), 0, NULL));
	CHECK(cwg_objects_get(&c->objects, 5) == NULL);
	CHECK(cwg_objects_get(&c->objects, 4) != NULL);
	CHECK(!c->dead);
	/* Both RECEIVEs are queued for the client, bytes intact. */
	CHECK(c->out_head && c->out_head->len == 17 && memcmp(c->out_head->data, ev, 17) == 0);
	CHECK(c->out_head->next && c->out_head->next->len == e - 17);
	/* A reused id after delete_id is tracked afresh. */
	n = wl(buf, 4, 0, 1, 5u);
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK((o = cwg_objects_get(&c->objects, 5)) && o->type == CWG_OBJ_SURFACE);
	cwg_client_destroy(c);

	/* The table itself: growth, removal, limit. */
	struct cwg_objects t;
	cwg_objects_init(&t, 1000);
	for (uint32_t i = 1; i <= 1000; i++)
		CHECK(cwg_objects_put(&t, i * 7, CWG_OBJ_BUFFER, NULL) != NULL);
	CHECK(cwg_objects_put(&t, 99999, CWG_OBJ_BUFFER, NULL) == NULL);
	for (uint32_t i = 1; i <= 1000; i += 2)
		cwg_objects_remove(&t, i * 7);
	CHECK(t.count == 500);
	CHECK(cwg_objects_get(&t, 7) == NULL && cwg_objects_get(&t, 14) != NULL);
	CHECK(cwg_objects_put(&t, 99999, CWG_OBJ_POOL, NULL) != NULL);
	CHECK(cwg_objects_get(&t, 99999)->type == CWG_OBJ_POOL);
	cwg_objects_finish(&t);
}

static int make_memfd(size_t size, uint8_t seed)
{
	int fd = memfd_create("test-pool", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (size_t i = 0; i < size; i++)
		p[i] = (uint8_t)(i * 31 + seed);
	munmap(p, size);
	return fd;
}

/* Registry, shm, compositor, surface 5, pool 6 over fd (size), buffer 7. */
static struct cwg_client *shm_client(int fd, uint32_t size, uint8_t **client_map)
{
	struct cwg_client *c = new_client(-1);
	uint8_t buf[256];
	size_t n = wl(buf, 1, 1, 1, 2u);
	n += wl_bind(buf + n, 2, 1, "wl_shm", 1, 3);
	n += wl_bind(buf + n, 2, 2, "wl_compositor", 4, 4);
	n += wl(buf + n, 4, 0, 1, 5u);
	cwg_client_input(c, buf, n, NULL, 0);
	*client_map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return c;
}

static void test_shm_pool_and_damage(void)
{
	const uint32_t W = 64, H = 64, S = W * 4, SIZE = S * H;
	int fd = make_memfd(SIZE, 1);
	uint8_t *cm;
	struct cwg_client *c = shm_client(fd, SIZE, &cm);
	uint8_t buf[256];
	unsigned base = nrecords;
	size_t n = wl(buf, 3, 0, 2, 6u, SIZE); // create_pool(6, fd, SIZE)
	CHECK(cwg_client_input(c, buf, n, &fd, 1) == 0);
	CHECK(nrecords == base + 1);
	const struct xdom_send_receive *s = send_hdr(&records[base]);
	CHECK(s->num_identifiers == 1);
	CHECK(s->identifiers[0] == 102 && s->identifier_types[0] == XDOM_ID_TYPE_VIRTGPU_BLOB);
	CHECK(s->identifier_sizes[0] == SIZE);
	CHECK(records[base].nblobs == 1 && records[base].blob_ids[0] == 102);
	CHECK(s->opaque_data_size == n && memcmp(send_data(&records[base]), buf, n) == 0);
	struct cwg_object *o = cwg_objects_get(&c->objects, 6);
	CHECK(o && o->type == CWG_OBJ_POOL);
	struct cwg_pool *pool = o->data;
	CHECK(pool->blob.size == SIZE && pool->blob.res_id == 102);
	uint8_t *blob = pool->blob.map;
	/* Nothing copied yet. */
	CHECK(blob[5] == 0);

	n = wl(buf, 6, 0, 6, 7u, 0u, W, H, S, 1u); // create_buffer(7, 0, 64, 64, 256, XRGB)
	n += wl(buf + n, 5, 1, 3, 7u, 0u, 0u);    // attach(7, 0, 0)
	n += wl(buf + n, 5, 2, 4, 0u, 0u, 1u, 1u); // damage 1x1: first commit copies all anyway
	size_t commit_at = n;
	n += wl(buf + n, 5, 6, 0);                  // commit
	watch = blob;
	watch_len = SIZE;
	uint32_t want_sum = checksum(cm, SIZE);
	base = nrecords;
	uint64_t before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(c->shm.bytes_copied - before == SIZE);
	CHECK(memcmp(blob, cm, SIZE) == 0);
	/* The SEND that carries the commit saw the pixels already there. */
	CHECK(nrecords == base + 1 && records[base].watch_sum == want_sum);
	CHECK(memcmp(send_data(&records[base]) + commit_at, buf + commit_at, 8) == 0);

	/* Change rows 10-11, columns 3-5, and row 40 (not damaged). */
	for (unsigned y = 10; y < 12; y++)
		memset(cm + y * S + 3 * 4, 0xab, 3 * 4);
	memset(cm + 40 * S, 0xcd, S);
	n = wl(buf, 5, 1, 3, 7u, 0u, 0u);
	n += wl(buf + n, 5, 9, 4, 3u, 10u, 3u, 2u); // damage_buffer(3, 10, 3, 2)
	n += wl(buf + n, 5, 6, 0);
	before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(c->shm.bytes_copied - before == 3 * 4 * 2);
	CHECK(memcmp(blob + 10 * S, cm + 10 * S, 2 * S) == 0);
	CHECK(blob[40 * S] != 0xcd && blob[40 * S] == (uint8_t)(40 * S * 31 + 1));

	/* Union of two damages: bounding box rows 0..21, columns 0..11. */
	n = wl(buf, 5, 1, 3, 7u, 0u, 0u);
	n += wl(buf + n, 5, 2, 4, 0u, 0u, 1u, 1u);
	n += wl(buf + n, 5, 9, 4, 10u, 20u, 2u, 2u);
	n += wl(buf + n, 5, 6, 0);
	before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(c->shm.bytes_copied - before == 22 * 12 * 4);
	CHECK(blob[40 * S] != 0xcd);

	/* Commit without attach: nothing copied. Scale 2: whole buffer. */
	n = wl(buf, 5, 2, 4, 0u, 0u, 5u, 5u);
	n += wl(buf + n, 5, 6, 0);
	before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(c->shm.bytes_copied == before);
	n = wl(buf, 5, 8, 1, 2u); // set_buffer_scale(2)
	n += wl(buf + n, 5, 1, 3, 7u, 0u, 0u);
	n += wl(buf + n, 5, 2, 4, 0u, 0u, 1u, 1u);
	n += wl(buf + n, 5, 6, 0);
	before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(c->shm.bytes_copied - before == SIZE);
	CHECK(memcmp(blob, cm, SIZE) == 0);
	CHECK(!c->dead);
	munmap(cm, SIZE);
	cwg_client_destroy(c);
}

static void test_double_buffer_history(void)
{
	/* Buffers A (7) and B (8) alternate; A's copy must include B's damage. */
	const uint32_t W = 32, H = 32, S = W * 4, SIZE = 2 * S * H;
	int fd = make_memfd(SIZE, 3);
	uint8_t *cm;
	struct cwg_client *c = shm_client(fd, SIZE, &cm);
	uint8_t buf[512];
	size_t n = wl(buf, 3, 0, 2, 6u, SIZE);
	n += wl(buf + n, 6, 0, 6, 7u, 0u, W, H, S, 0u);
	n += wl(buf + n, 6, 0, 6, 8u, S * H, W, H, S, 0u);
	n += wl(buf + n, 5, 1, 3, 7u, 0u, 0u);
	n += wl(buf + n, 5, 6, 0); // A: full
	n += wl(buf + n, 5, 1, 3, 8u, 0u, 0u);
	n += wl(buf + n, 5, 9, 4, 0u, 0u, 2u, 1u); // D2: row 0, columns 0-1
	n += wl(buf + n, 5, 6, 0); // B: full (first time)
	uint64_t before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, &fd, 1) == 0);
	CHECK(c->shm.bytes_copied - before == 2 * S * H);
	n = wl(buf, 5, 1, 3, 7u, 0u, 0u);
	n += wl(buf + n, 5, 9, 4, 5u, 4u, 1u, 1u); // D3: (5,4)
	n += wl(buf + n, 5, 6, 0);
	before = c->shm.bytes_copied;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	/* union(D2, D3) = rows 0..4, columns 0..5 */
	CHECK(c->shm.bytes_copied - before == 5 * 6 * 4);
	munmap(cm, SIZE);
	cwg_client_destroy(c);
}

static void test_pool_resize(void)
{
	const uint32_t SIZE = 8192, BIG = 3 * 8192;
	int fd = make_memfd(BIG, 7);
	uint8_t *cm;
	struct cwg_client *c = shm_client(fd, BIG, &cm);
	uint8_t buf[256];
	size_t n = wl(buf, 3, 0, 2, 6u, SIZE);
	n += wl(buf + n, 6, 0, 6, 7u, 0u, 16u, 16u, 64u, 0u);
	n += wl(buf + n, 5, 1, 3, 7u, 0u, 0u);
	n += wl(buf + n, 5, 6, 0);
	CHECK(cwg_client_input(c, buf, n, &fd, 1) == 0);
	struct cwg_pool *pool = cwg_objects_get(&c->objects, 6)->data;
	CHECK(pool->blob.res_id == 102);
	unsigned base = nrecords;
	size_t a = wl(buf, 1, 0, 1, 9u);       // sync(9): must go before the replace
	size_t b = wl(buf + a, 6, 2, 1, BIG); // resize(BIG)
	CHECK(cwg_client_input(c, buf, a + b, NULL, 0) == 0);
	CHECK(nrecords == base + 3);
	CHECK(is_send(&records[base]) && send_hdr(&records[base])->opaque_data_size == a);
	CHECK(memcmp(send_data(&records[base]), buf, a) == 0);
	struct xdom_blob_replace r;
	CHECK(records[base + 1].size == sizeof(r));
	memcpy(&r, records[base + 1].cmd, sizeof(r));
	CHECK(r.hdr.cmd == XDOM_CMD_BLOB_REPLACE && r.hdr.cmd_size == 16);
	CHECK(r.old_resource_id == 102 && r.new_resource_id == 103);
	CHECK(records[base + 1].ring < 0);
	CHECK(is_send(&records[base + 2]) && send_hdr(&records[base + 2])->opaque_data_size == b);
	CHECK(memcmp(send_data(&records[base + 2]), buf + a, b) == 0);
	CHECK(pool->blob.res_id == 103 && pool->blob.size == BIG && pool->nold == 1);
	/* The old blob's bytes moved over (the copied buffer's first rows). */
	CHECK(memcmp(pool->blob.map, cm, 16 * 64) == 0);
	/* A resize inside the blob's pages: no replacement. */
	base = nrecords;
	n = wl(buf, 6, 2, 1, BIG);
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(nrecords == base + 1 && is_send(&records[base]));

	/* Pool destroyed: blobs stay while buffer 7 lives. */
	ndestroyed = 0;
	n = wl(buf, 6, 1, 0);
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(ndestroyed == 0);
	n = wl(buf, 7, 0, 0);
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(ndestroyed == 2);
	CHECK((destroyed[0] == 103 && destroyed[1] == 102) || (destroyed[0] == 102 && destroyed[1] == 103));
	CHECK(c->shm.blob_bytes == 0 && c->shm.pools == 0);
	munmap(cm, BIG);
	cwg_client_destroy(c);
}

static void test_pipes_and_chunking(void)
{
	struct cwg_client *c = new_client(-1);
	int p1[2], p2[2];
	CHECK(pipe2(p1, O_CLOEXEC | O_NONBLOCK) == 0 && pipe2(p2, O_CLOEXEC | O_NONBLOCK) == 0);
	/* The client's ends are blocking, as a client makes them. */
	fcntl(p1[1], F_SETFL, 0);
	fcntl(p2[1], F_SETFL, 0);
	uint8_t buf[16384];
	/* Two receive-like requests on an unknown object, each with a pipe. */
	size_t a = wl(buf, 20, 1, 1, 0x11111111u);
	size_t b = wl(buf + a, 21, 1, 1, 0x22222222u);
	int fds[2] = { p1[1], p2[1] };
	unsigned base = nrecords;
	CHECK(cwg_client_input(c, buf, a + b, fds, 2) == 0);
	CHECK(nrecords == base + 2);
	const struct xdom_send_receive *s0 = send_hdr(&records[base]);
	const struct xdom_send_receive *s1 = send_hdr(&records[base + 1]);
	CHECK(s0->num_identifiers == 1 && s0->identifiers[0] == 0x80000001u);
	CHECK(s0->identifier_types[0] == XDOM_ID_TYPE_READ_PIPE);
	CHECK(s0->opaque_data_size == a && memcmp(send_data(&records[base]), buf, a) == 0);
	CHECK(s1->num_identifiers == 1 && s1->identifiers[0] == 0x80000002u);
	CHECK(s1->opaque_data_size == b && memcmp(send_data(&records[base + 1]), buf + a, b) == 0);

	/* The host streams into pipe 1; hang_up closes it. */
	uint8_t ring[XDOM_RING_SIZE];
	host_writes(c, ring, host_read(ring, 0x80000001u, "hello", 5, 0));
	host_writes(c, ring, host_read(ring, 0x80000001u, " world", 6, 1));
	char got[32] = { 0 };
	CHECK(read(p1[0], got, sizeof(got)) == 11 && memcmp(got, "hello world", 11) == 0);
	CHECK(read(p1[0], got, sizeof(got)) == 0); // EOF: our write end is closed
	CHECK(!c->dead);
	/* A READ for a finished pipe is a host error. */
	host_writes(c, ring, host_read(ring, 0x80000001u, "x", 1, 0));
	CHECK(c->dead);
	cwg_client_destroy(c);
	close(p1[0]);
	close(p2[0]);

	/* A message bigger than one SEND: chunks, fds on the first. */
	c = new_client(-1);
	int p3[2];
	CHECK(pipe2(p3, O_CLOEXEC) == 0);
	uint32_t big = 8000;
	cwg_put_u32(buf, 30);
	cwg_put_u32(buf + 4, big << 16 | 2);
	for (uint32_t i = 8; i < big; i++)
		buf[i] = (uint8_t)(i * 7);
	base = nrecords;
	CHECK(cwg_client_input(c, buf, big, &p3[1], 1) == 0);
	CHECK(nrecords == base + 3);
	CHECK(send_hdr(&records[base])->opaque_data_size == XDOM_MAX_SEND_DATA);
	CHECK(send_hdr(&records[base + 1])->opaque_data_size == XDOM_MAX_SEND_DATA);
	CHECK(send_hdr(&records[base + 2])->opaque_data_size == big - 2 * XDOM_MAX_SEND_DATA);
	CHECK(records[base].size == XDOM_RING_SIZE);
	CHECK(send_hdr(&records[base])->num_identifiers == 1);
	CHECK(send_hdr(&records[base + 1])->num_identifiers == 0);
	CHECK(send_hdr(&records[base + 2])->num_identifiers == 0);
	CHECK(memcmp(send_data(&records[base]), buf, XDOM_MAX_SEND_DATA) == 0);
	CHECK(memcmp(send_data(&records[base + 1]), buf + XDOM_MAX_SEND_DATA, XDOM_MAX_SEND_DATA) == 0);
	CHECK(memcmp(send_data(&records[base + 2]), buf + 2 * XDOM_MAX_SEND_DATA,
		big - 2 * XDOM_MAX_SEND_DATA) == 0);

	/* 400 small messages: split at message boundaries into 3744 + 1056. */
	size_t n = 0;
	for (uint32_t i = 0; i < 400; i++)
		n += wl(buf + n, 1, 0, 1, 100 + i);
	base = nrecords;
	CHECK(cwg_client_input(c, buf, n, NULL, 0) == 0);
	CHECK(nrecords == base + 2);
	CHECK(send_hdr(&records[base])->opaque_data_size == 3744);
	CHECK(send_hdr(&records[base + 1])->opaque_data_size == 1056);
	CHECK(memcmp(send_data(&records[base + 1]), buf + 3744, 1056) == 0);
	cwg_client_destroy(c);
	close(p3[0]);
}

static void test_bad_fd(void)
{
	/* A socket is neither memory, a pipe, nor a dma-buf: the client ends. */
	struct cwg_client *c = new_client(-1);
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	uint8_t buf[16];
	size_t n = wl(buf, 20, 1, 1, 1u);
	CHECK(cwg_client_input(c, buf, n, &sp[0], 1) < 0);
	CHECK(c->dead);
	cwg_client_destroy(c);
	close(sp[1]);
	/* create_pool without an fd. */
	c = new_client(-1);
	uint8_t b2[128];
	n = wl(b2, 1, 1, 1, 2u);
	n += wl_bind(b2 + n, 2, 1, "wl_shm", 1, 3);
	n += wl(b2 + n, 3, 0, 2, 6u, 4096u);
	CHECK(cwg_client_input(c, b2, n, NULL, 0) < 0);
	cwg_client_destroy(c);
}

static void test_parse_malformed(void)
{
	uint8_t ring[XDOM_RING_SIZE];
	struct cwg_xdom_host_msg m;
	const char *why;
	struct cwg_xdom_item it = { 5, XDOM_ID_TYPE_WRITE_PIPE, 0 };

	host_receive(ring, "abcd", 4, 1, &it);
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == 0);
	CHECK(m.cmd == XDOM_CMD_RECEIVE && m.len == 4 && m.num_items == 1 && m.items[0].id == 5);

	struct xdom_send_receive *r = (struct xdom_send_receive *)ring;
	host_receive(ring, "abcd", 4, 1, &it);
	r->hdr.cmd_size = 5000; // beyond the ring
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_receive(ring, "abcd", 4, 1, &it);
	r->hdr.cmd_size = 4;
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_receive(ring, "abcd", 4, 1, &it);
	r->hdr.cmd_size = 100; // shorter than the RECEIVE header
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_receive(ring, "abcd", 4, 1, &it);
	r->opaque_data_size = 5; // more data than the command holds
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_receive(ring, "abcd", 4, 1, &it);
	r->num_identifiers = 29;
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_receive(ring, "abcd", 4, 1, &it);
	r->identifier_types[0] = 7; // unknown type
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_receive(ring, "abcd", 4, 1, &it);
	r->hdr.cmd = 9; // unknown command
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_read(ring, 1, "xy", 2, 0);
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == 0 && m.len == 2 && m.id == 1);
	((struct xdom_read_write *)ring)->opaque_data_size = 3;
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);
	host_read(ring, 1, "xy", 2, 0);
	((struct xdom_read_write *)ring)->hdr.cmd_size = 20;
	CHECK(cwg_xdom_parse(ring, sizeof(ring), &m, &why) == -EPROTO);

	/* Through a client: a broken message ends that client only. */
	struct cwg_client *c = new_client(-1);
	host_receive(ring, "abcd", 4, 1, &it);
	r->num_identifiers = 100;
	unsigned base = nrecords;
	host_writes(c, ring, XDOM_RING_SIZE);
	CHECK(c->dead);
	CHECK(count_polls(base) == 0);
	cwg_client_destroy(c);

	/* A crosvm-style memory blob: needs host-visible memory. */
	c = new_client(-1);
	struct cwg_xdom_item blob = { 3, XDOM_ID_TYPE_VIRTGPU_BLOB, 4096 };
	host_writes(c, ring, host_receive(ring, "abcdabcd", 8, 1, &blob));
	CHECK(c->dead);
	cwg_client_destroy(c);

	/* A READ for an id nobody knows. */
	c = new_client(-1);
	host_writes(c, ring, host_read(ring, 0x80000009u, "z", 1, 0));
	CHECK(c->dead);
	cwg_client_destroy(c);
}

static void test_streamed_memory(void)
{
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	struct cwg_client *c = new_client(sp[0]);
	uint8_t ring[XDOM_RING_SIZE];
	const uint32_t SIZE = 10000, ID = XDOM_STREAM_START + 1;
	uint8_t content[10000];
	for (unsigned i = 0; i < SIZE; i++)
		content[i] = (uint8_t)(i ^ (i >> 8));
	uint8_t ev[16];
	size_t e = wl(ev, 9, 0, 2, 1u, SIZE); // e.g. wl_keyboard.keymap(format, fd, size)
	struct cwg_xdom_item it = { ID, XDOM_ID_TYPE_STREAMED_MEMORY, SIZE };
	unsigned base = nrecords;
	host_writes(c, ring, host_receive(ring, ev, (uint32_t)e, 1, &it));
	CHECK(count_polls(base) == 1); // polling continues for the chunks
	CHECK(c->out_head && c->out_head->pending_streams == 1);
	CHECK(!cwg_client_wants_write(c));
	/* A later RECEIVE waits behind it. */
	uint8_t ev2[12];
	size_t e2 = wl(ev2, 1, 1, 1, 77u);
	host_writes(c, ring, host_receive(ring, ev2, (uint32_t)e2, 0, NULL));
	CHECK(cwg_client_write_socket(c) == 0);
	uint8_t got[64];
	CHECK(recv(sp[1], got, sizeof(got), MSG_DONTWAIT) < 0 && errno == EAGAIN);
	host_writes(c, ring, host_read(ring, ID, content, XDOM_MAX_READ_DATA, 0));
	host_writes(c, ring, host_read(ring, ID, content + XDOM_MAX_READ_DATA, XDOM_MAX_READ_DATA, 0));
	CHECK(!cwg_client_wants_write(c));
	host_writes(c, ring, host_read(ring, ID, content + 2 * XDOM_MAX_READ_DATA,
		SIZE - 2 * XDOM_MAX_READ_DATA, 1));
	CHECK(!c->dead);
	CHECK(cwg_client_wants_write(c));
	CHECK(cwg_client_write_socket(c) == 0);
	/* The client gets the first message's bytes with the memfd... */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = { got, e };
	struct msghdr mh = { 0 };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	CHECK(recvmsg(sp[1], &mh, MSG_CMSG_CLOEXEC) == (ssize_t)e);
	CHECK(memcmp(got, ev, e) == 0);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fd = -1;
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)));
	if (cm)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	CHECK(fd >= 0);
	if (fd >= 0) {
		uint8_t back[10001];
		CHECK(pread(fd, back, sizeof(back), 0) == SIZE);
		CHECK(memcmp(back, content, SIZE) == 0);
		int seals = fcntl(fd, F_GET_SEALS);
		CHECK(seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) ==
			(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
		CHECK(pwrite(fd, "x", 1, 0) < 0);
		close(fd);
	}
	/* ...then the second message. */
	CHECK(recv(sp[1], got, sizeof(got), MSG_DONTWAIT) == (ssize_t)e2);
	CHECK(memcmp(got, ev2, e2) == 0);

	/* Overflowing the announced size ends the client. */
	struct cwg_xdom_item small = { ID + 1, XDOM_ID_TYPE_STREAMED_MEMORY, 4 };
	host_writes(c, ring, host_receive(ring, ev, (uint32_t)e, 1, &small));
	host_writes(c, ring, host_read(ring, ID + 1, "12345", 5, 1));
	CHECK(c->dead);
	cwg_client_destroy(c);
	close(sp[1]);

	/* An empty item: one empty READ with hang_up completes it. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	c = new_client(sp[0]);
	struct cwg_xdom_item empty = { ID, XDOM_ID_TYPE_STREAMED_MEMORY, 0 };
	host_writes(c, ring, host_receive(ring, ev, (uint32_t)e, 1, &empty));
	CHECK(!cwg_client_wants_write(c));
	host_writes(c, ring, host_read(ring, ID, NULL, 0, 1));
	CHECK(cwg_client_wants_write(c) && !c->dead);
	cwg_client_destroy(c);
	close(sp[1]);
}

static void test_write_pipe(void)
{
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	struct cwg_client *c = new_client(sp[0]);
	uint8_t ring[XDOM_RING_SIZE], ev[16];
	size_t e = wl(ev, 12, 1, 1, 0x41414141u); // e.g. wl_data_source.send(mime, fd)
	struct cwg_xdom_item it = { 6, XDOM_ID_TYPE_WRITE_PIPE, 0 };
	host_writes(c, ring, host_receive(ring, ev, (uint32_t)e, 1, &it));
	CHECK(cwg_client_write_socket(c) == 0);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	uint8_t got[64];
	struct iovec iov = { got, sizeof(got) };
	struct msghdr mh = { 0 };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	CHECK(recvmsg(sp[1], &mh, 0) == (ssize_t)e);
	int fd = -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	CHECK(fd >= 0);
	CHECK(write(fd, "clipboard", 9) == 9);
	close(fd);
	unsigned pi = CWG_MAX_PIPES;
	for (unsigned i = 0; i < CWG_MAX_PIPES; i++)
		if (c->pipes[i].used && c->pipes[i].kind == CWG_PIPE_WRITE)
			pi = i;
	CHECK(pi < CWG_MAX_PIPES);
	if (pi < CWG_MAX_PIPES) {
		unsigned base = nrecords;
		cwg_client_pipe_ready(c, pi, 0);
		cwg_client_pipe_ready(c, pi, 0);
		CHECK(nrecords == base + 2);
		struct xdom_read_write w;
		memcpy(&w, records[base].cmd, sizeof(w));
		CHECK(w.hdr.cmd == XDOM_CMD_WRITE && w.identifier == 6 && w.hang_up == 0);
		CHECK(w.opaque_data_size == 9 && w.hdr.cmd_size == 24 + 9);
		CHECK(memcmp(records[base].cmd + 24, "clipboard", 9) == 0);
		memcpy(&w, records[base + 1].cmd, sizeof(w));
		CHECK(w.identifier == 6 && w.hang_up == 1 && w.opaque_data_size == 0);
		CHECK(!c->pipes[pi].used);
	}
	cwg_client_destroy(c);
	close(sp[1]);
}

static void test_back_pressure(void)
{
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	struct cwg_client *c = new_client(sp[0]);
	uint8_t ring[XDOM_RING_SIZE];
	static uint8_t data[XDOM_MAX_SEND_DATA];
	for (size_t off = 0; off + 8 <= sizeof(data); off += 8)
		wl(data + off, 1, 0, 0); // stream of 8-byte events
	unsigned rounds = 0;
	while (c->poll_outstanding && rounds < 1000) {
		host_writes(c, ring, host_receive(ring, data, sizeof(data), 0, NULL));
		rounds++;
	}
	/* Polling stops with the first message beyond the soft limit. */
	CHECK(rounds == CWG_OUTQ_SOFT / sizeof(data) + 1);
	/* The client reads nothing: no POLL outstanding any more. */
	CHECK(!c->poll_outstanding && c->out_bytes > CWG_OUTQ_SOFT);
	unsigned base = nrecords;
	cwg_client_maybe_poll(c);
	CHECK(count_polls(base) == 0);
	/* Drain: writing to the client resumes polling. */
	for (int k = 0; k < 1000 && c->out_head; k++) {
		cwg_client_write_socket(c);
		char sink[65536];
		while (recv(sp[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	CHECK(c->out_bytes == 0);
	CHECK(c->poll_outstanding && count_polls(base) == 1);
	cwg_client_destroy(c);
	close(sp[1]);
}

static void test_protocol_error(void)
{
	/* At a message boundary the client is told why (wl_display.error). */
	int sp[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	struct cwg_client *c = new_client(sp[0]);
	cwg_client_fail(c, "test reason");
	CHECK(c->dead && cwg_client_wants_write(c));
	cwg_client_write_socket(c);
	uint8_t got[256];
	ssize_t n = recv(sp[1], got, sizeof(got), MSG_DONTWAIT);
	CHECK(n >= 20);
	if (n >= 20) {
		CHECK(cwg_get_u32(got) == 1 && (cwg_get_u32(got + 4) & 0xffff) == 0);
		CHECK((cwg_get_u32(got + 4) >> 16) == (uint32_t)n);
		CHECK(cwg_get_u32(got + 8) == 1 && cwg_get_u32(got + 12) == 3);
		CHECK(strcmp((char *)got + 20, "crossway-guest: test reason") == 0);
	}
	cwg_client_destroy(c);
	close(sp[1]);
}

int main(void)
{
	test_init();
	test_framing();
	test_objects();
	test_shm_pool_and_damage();
	test_double_buffer_history();
	test_pool_resize();
	test_pipes_and_chunking();
	test_bad_fd();
	test_parse_malformed();
	test_streamed_memory();
	test_write_pipe();
	test_back_pressure();
	test_protocol_error();
	reset_records();
	CHECK_DONE();
}
