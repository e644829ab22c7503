/*
 * fds a guest can make crossway hold through cross-domain SENDs: the
 * engine (vm/cross_domain.c) wired as the device wires it, to the real
 * VM client registry (compositor/vm_client.c: cw_vm_client_connect and its
 * count of fds that dispatched requests took) and crossway's wl_shm for
 * VM clients, on one wl_display in this process. The guest's Wayland
 * bytes are written by hand, as a guest proxy would send them.
 *
 * Regression: a SEND of 28 blob placeholders with a request that takes no
 * fd (wl_display.sync) left them in libwayland's connection until the
 * client went (about 1000 per context, x 64 contexts per VM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wayland-server.h>
#include <wlr/util/log.h>

#include "check.h"
#include "cross_domain.h"
#include "cross_domain_protocol.h"
#include "guest_memory.h"
#include "vgpu_resource.h"
#include "vm.h"
#include "vm_client.h"
#include "vm_shm.h"
#include "vm_fixture.h"
#include "vm_fixture_vm.h"

#define MIB (1024 * 1024)
#define QUERY 1
#define CHANNEL 2
#define BLOB_A 10
#define MAX_CTX 24

static struct wl_display *display;

/* A context as the device keeps it: its VM and its engine. */
struct test_ctx {
	struct cw_vm *vm;
	uint32_t id;
	struct xdom_context *xdom;
};
static struct test_ctx ctxs[MAX_CTX];

static void
t_poll_done(void *data)
{
	(void)data;
}

static int
t_connect(void *data)
{
	struct test_ctx *ctx = data;
	return cw_vm_client_connect(ctx->vm, display, ctx->id);
}

static uint64_t
t_fds_taken(void *data)
{
	struct test_ctx *ctx = data;
	return cw_vm_client_fds_taken(ctx->vm, ctx->id);
}

/* As virtio_gpu.c: the sum over the VM's contexts. */
static unsigned
t_vm_fds_held(void *data)
{
	struct test_ctx *ctx = data;
	unsigned held = 0;
	for (int i = 0; i < MAX_CTX; i++) {
		if (ctxs[i].xdom != NULL && ctxs[i].vm == ctx->vm) {
			held += xdom_context_fds_held(ctxs[i].xdom);
		}
	}
	return held;
}

static const struct xdom_ops ops = {
	.resource = vm_fixture_resource,
	.memory = vm_fixture_memory,
	.poll_done = t_poll_done,
	.connect_wayland = t_connect,
	.fds_taken = t_fds_taken,
	.vm_fds_held = t_vm_fds_held,
};

static void
spin(void)
{
	for (int i = 0; i < 8; i++) {
		wl_event_loop_dispatch(wl_display_get_event_loop(display), 0);
		wl_display_flush_clients(display);
	}
}

static void
make_blob(uint32_t id, unsigned page, unsigned pages)
{
	CHECK(vm_fixture_add_blob(id, page, pages, pages * 4096ull) == 0);
}

static struct xdom_context *
open_ctx(int slot, struct cw_vm *vm, struct xdom_budget *budget)
{
	ctxs[slot] = (struct test_ctx){.vm = vm, .id = (uint32_t)slot + 1};
	struct xdom_context *x = xdom_context_create(wl_display_get_event_loop(display),
		vm->config.name, ctxs[slot].id, vm->device, &ops, &ctxs[slot]);
	CHECK(x != NULL);
	xdom_context_set_budget(x, budget);
	ctxs[slot].xdom = x;
	uint8_t b[24];
	cmd_header(b, XDOM_CMD_INIT, sizeof(b));
	put32(b + 8, QUERY);
	put32(b + 12, CHANNEL);
	put32(b + 16, XDOM_CHANNEL_WAYLAND);
	put32(b + 20, XDOM_CROSSWAY_VERSION);
	bool polled;
	CHECK(xdom_context_submit(x, b, sizeof(b), &polled) == 0);
	return x;
}

static void
close_ctx(int slot)
{
	xdom_context_destroy(ctxs[slot].xdom);
	ctxs[slot].xdom = NULL;
	spin();
}

/* A SEND of `data` with `nfds` placeholders of BLOB_A. */
static int
send_msg(struct xdom_context *x, const void *data, uint32_t len, uint32_t nfds)
{
	static uint8_t s[XDOM_RING_SIZE];
	size_t size = sizeof(struct xdom_send_receive) + len;
	memset(s, 0, sizeof(s));
	cmd_header(s, XDOM_CMD_SEND, size);
	put32(s + 8, nfds);
	put32(s + 12, len);
	for (uint32_t k = 0; k < nfds; k++) {
		put32(s + 16 + 4 * k, BLOB_A);
		put32(s + 128 + 4 * k, XDOM_ID_TYPE_VIRTGPU_BLOB);
	}
	memcpy(s + sizeof(struct xdom_send_receive), data, len);
	bool polled;
	return xdom_context_submit(x, s, size, &polled);
}

/* wl_display.sync: a request that takes no fd. */
static int
send_sync_with_fds(struct xdom_context *x, uint32_t callback_id, uint32_t nfds)
{
	uint32_t req[3] = {htole32(1), htole32((12u << 16) | 0), htole32(callback_id)};
	return send_msg(x, req, sizeof(req), nfds);
}

/* The review's attack: 36 SENDs of one wl_display.sync with 28 fds each, per context. */
static int
park_fds(struct xdom_context *x, uint32_t *next_id)
{
	int refused = 0;
	for (int i = 0; i < 36; i++) {
		if (send_sync_with_fds(x, (*next_id)++, XDOM_MAX_IDENTIFIERS) != 0) {
			refused++;
		}
		spin();
	}
	return refused;
}

static void
test_one_context(struct cw_vm *vm, struct xdom_budget *budget)
{
	int before = vm_fixture_open_fds();
	struct xdom_context *x = open_ctx(0, vm, budget);
	uint32_t next_id = 2;
	int refused = park_fds(x, &next_id);
	int grown = vm_fixture_open_fds() - before;
	fprintf(stderr, "one context: %d of 36 SENDs refused, crossway holds %d more fds\n",
		refused, grown);
	/* Before: +1012 (every placeholder stayed in libwayland's connection). */
	CHECK(refused > 0);
	CHECK(grown <= XDOM_MAX_HELD_FDS + 4); // + the socketpair and the client
	struct xdom_stats st;
	xdom_context_get_stats(x, &st);
	CHECK(st.fds_held <= XDOM_MAX_HELD_FDS);
	CHECK(st.wayland_open);
	close_ctx(0);
	CHECK(vm_fixture_open_fds() <= before + 1);
}

static void
test_many_contexts(struct cw_vm *vm, struct cw_vm *other, struct xdom_budget *budget,
	struct xdom_budget *other_budget)
{
	int before = vm_fixture_open_fds();
	int contexts = 16; // the device's default max_contexts
	for (int c = 0; c < contexts; c++) {
		uint32_t next_id = 2; // a new client's first id
		park_fds(open_ctx(c, vm, budget), &next_id);
		struct xdom_stats st;
		xdom_context_get_stats(ctxs[c].xdom, &st);
		CHECK(st.wayland_open);
	}
	int grown = vm_fixture_open_fds() - before;
	fprintf(stderr, "%d contexts: crossway holds %d more fds\n", contexts, grown);
	/* Before: +8089 with eight contexts. */
	CHECK(grown <= XDOM_MAX_VM_HELD_FDS + 4 * contexts);
	CHECK(t_vm_fds_held(&ctxs[0]) <= XDOM_MAX_VM_HELD_FDS);

	/* Another VM is not affected: its fds are its own budget. */
	struct xdom_context *x = open_ctx(MAX_CTX - 1, other, other_budget);
	CHECK(send_sync_with_fds(x, 2, XDOM_MAX_IDENTIFIERS) == 0);
	spin();
	close_ctx(MAX_CTX - 1);
	for (int c = 0; c < contexts; c++) {
		close_ctx(c);
	}
	CHECK(vm_fixture_open_fds() <= before + 1);
}

/*
 * A well-behaved guest: every fd it sends is taken by its request
 * (wl_shm.create_pool), so its credit comes back once the compositor
 * dispatched them, however many pools it makes.
 */
static void
test_fds_taken(struct cw_vm *vm, struct xdom_budget *budget)
{
	int before = vm_fixture_open_fds();
	struct xdom_context *x = open_ctx(0, vm, budget);
	/* wl_display.get_registry(2); wl_registry.bind(1, "wl_shm", 1, 3) */
	uint32_t setup[] = {
		htole32(1), htole32((12u << 16) | 1), htole32(2),
		htole32(2), htole32((32u << 16) | 0), htole32(1), htole32(7), 0, 0, htole32(1),
		htole32(3),
	};
	memcpy(&setup[7], "wl_shm\0", 8);
	CHECK(send_msg(x, setup, sizeof(setup), 0) == 0);
	spin();
	const uint32_t first = 4, pools = XDOM_MAX_IDENTIFIERS + 1;
	int refused = 0;
	for (int round = 0; round < 20; round++) {
		/* 28 wl_shm.create_pool(id, fd, 4096) in one SEND, then one more in another. */
		uint32_t reqs[(XDOM_MAX_IDENTIFIERS + 1) * 4];
		for (uint32_t k = 0; k < pools; k++) {
			reqs[4 * k] = htole32(3);
			reqs[4 * k + 1] = htole32((16u << 16) | 0);
			reqs[4 * k + 2] = htole32(first + k);
			reqs[4 * k + 3] = htole32(4096);
		}
		refused += send_msg(x, reqs, XDOM_MAX_IDENTIFIERS * 16, XDOM_MAX_IDENTIFIERS) != 0;
		refused += send_msg(x, &reqs[XDOM_MAX_IDENTIFIERS * 4], 16, 1) != 0;
		spin();
		struct xdom_stats st;
		xdom_context_get_stats(x, &st);
		if (!st.wayland_open) {
			break;
		}
		CHECK(st.fds_held == 0);
		/* Destroy them again (wl_shm_pool.destroy), so ids and the pool cap stay small. */
		uint32_t destroys[(XDOM_MAX_IDENTIFIERS + 1) * 2];
		for (uint32_t k = 0; k < pools; k++) {
			destroys[2 * k] = htole32(first + k);
			destroys[2 * k + 1] = htole32((8u << 16) | 1);
		}
		CHECK(send_msg(x, destroys, sizeof(destroys), 0) == 0);
		spin();
	}
	struct xdom_stats st;
	xdom_context_get_stats(x, &st);
	CHECK(refused == 0);
	CHECK(st.wayland_open);
	CHECK(st.fds_held == 0);
	close_ctx(0);
	CHECK(vm_fixture_open_fds() <= before + 1);
}

int
main(void)
{
	wlr_log_init(WLR_ERROR, NULL);
	display = wl_display_create();
	CHECK(cw_vm_shm_create(display, NULL) != NULL); // global name 1
	CHECK(vm_fixture_init(4 * MIB) == 0);
	make_blob(QUERY, 0, 1);
	make_blob(CHANNEL, 1, 1);
	make_blob(BLOB_A, 2, 1);

	struct cw_vm work, play;
	vm_fixture_fake_vm(&work, "work");
	vm_fixture_fake_vm(&play, "play");
	struct xdom_budget work_budget = {0}, play_budget = {0};

	test_one_context(&work, &work_budget);
	test_many_contexts(&work, &play, &work_budget, &play_budget);
	test_fds_taken(&work, &work_budget);
	CHECK(work_budget.memory == 0 && play_budget.memory == 0);

	wl_display_destroy_clients(display);
	vm_fixture_finish();
	wl_display_destroy(display);
	CHECK_DONE();
}
