/*
 * crossway's wl_shm for VM clients (compositor/vm_shm.c), the registry of
 * VM clients (vm_client.c) and the global filter (vm_policy.c), in one
 * process: a wl_display, guest blobs in a memfd "guest RAM" as the device
 * makes them, their placeholders (vgpu_blob_export_fd), and real
 * libwayland clients on connections made by cw_vm_client_connect, driven
 * step by step from this thread.
 */
#define _GNU_SOURCE
#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/virtio_gpu.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>
#include <wayland-client.h>
#include <wayland-server.h>
#include <wlr/types/wlr_buffer.h>
#include <wlr/util/log.h>

#include "check.h"
#include "guest_memory.h"
#include "vgpu_resource.h"
#include "vm.h"
#include "vm_client.h"
#include "vm_policy.h"
#include "vm_shm.h"
#include "vm_fixture.h"
#include "vm_fixture_vm.h"

#define MIB (1024 * 1024)
#define PAGE 4096

/* Stands for a host-only global: only its name matters to the filter. */
static const struct wl_interface fake_screencopy_interface = {
	"zwlr_screencopy_manager_v1", 1, 0, NULL, 0, NULL,
};

struct harness {
	struct wl_display *display;
	struct wl_event_loop *loop;
	struct cw_vm_shm *vm_shm;
	uint32_t next_page; // guest pages handed out so far
};

/* One client connection, as the client sees it. */
struct conn {
	struct wl_display *display;
	struct wl_registry *registry;
	struct wl_shm *shm;
	struct wl_client *server_client;
	int shm_globals;
	uint32_t screencopy_name; // 0: not seen
	bool formats[8];          // ARGB, XRGB, ABGR, XBGR, others
	int other_formats;
};

/* --- the two sides in one thread ------------------------------------------------ */

static void
pump(struct harness *h, struct conn *c)
{
	for (int i = 0; i < 4; i++) {
		wl_display_flush(c->display);
		wl_event_loop_dispatch(h->loop, 0);
		wl_display_flush_clients(h->display);
		if (wl_display_get_error(c->display) != 0) {
			return;
		}
		while (wl_display_prepare_read(c->display) != 0) {
			if (wl_display_dispatch_pending(c->display) < 0) {
				return;
			}
		}
		struct pollfd pfd = {.fd = wl_display_get_fd(c->display), .events = POLLIN};
		if (poll(&pfd, 1, 0) > 0) {
			wl_display_read_events(c->display);
		} else {
			wl_display_cancel_read(c->display);
		}
		wl_display_dispatch_pending(c->display);
	}
}

static void
handle_sync_done(void *data, struct wl_callback *callback, uint32_t serial)
{
	*(bool *)data = true;
	wl_callback_destroy(callback);
}

static const struct wl_callback_listener sync_listener = {.done = handle_sync_done};

/* True when every request so far was handled without an error. */
static bool
roundtrip(struct harness *h, struct conn *c)
{
	bool done = false;
	struct wl_callback *callback = wl_display_sync(c->display);
	wl_callback_add_listener(callback, &sync_listener, &done);
	for (int i = 0; i < 50 && !done && wl_display_get_error(c->display) == 0; i++) {
		pump(h, c);
	}
	if (!done) {
		wl_callback_destroy(callback); // never answered: the connection broke
	}
	return done && wl_display_get_error(c->display) == 0;
}

/* The protocol error the client got: interface name and code. */
static bool
got_error(struct harness *h, struct conn *c, const char *interface, uint32_t code)
{
	roundtrip(h, c);
	const struct wl_interface *iface = NULL;
	uint32_t id;
	if (wl_display_get_error(c->display) != EPROTO) {
		fprintf(stderr, "no protocol error (error %d)\n", wl_display_get_error(c->display));
		return false;
	}
	uint32_t got = wl_display_get_protocol_error(c->display, &iface, &id);
	if (iface == NULL || strcmp(iface->name, interface) != 0 || got != code) {
		fprintf(stderr, "got error %u on %s, want %u on %s\n", got,
			iface != NULL ? iface->name : "(null)", code, interface);
		return false;
	}
	return true;
}

/* --- registry -------------------------------------------------------------------- */

static void
handle_shm_format(void *data, struct wl_shm *shm, uint32_t format)
{
	struct conn *c = data;
	switch (format) {
	case WL_SHM_FORMAT_ARGB8888: c->formats[0] = true; break;
	case WL_SHM_FORMAT_XRGB8888: c->formats[1] = true; break;
	default: c->other_formats++; break;
	}
}

static const struct wl_shm_listener shm_listener = {.format = handle_shm_format};

static void
handle_global(void *data, struct wl_registry *registry, uint32_t name, const char *interface,
	uint32_t version)
{
	struct conn *c = data;
	if (strcmp(interface, "wl_shm") == 0) {
		c->shm_globals++;
		c->shm = wl_registry_bind(registry, name, &wl_shm_interface, 1);
		wl_shm_add_listener(c->shm, &shm_listener, c);
	} else if (strcmp(interface, fake_screencopy_interface.name) == 0) {
		c->screencopy_name = name;
	}
}

static void
handle_global_remove(void *data, struct wl_registry *registry, uint32_t name)
{
}

static const struct wl_registry_listener registry_listener = {
	.global = handle_global,
	.global_remove = handle_global_remove,
};

static struct wl_client *
newest_client(struct wl_display *display)
{
	struct wl_list *list = wl_display_get_client_list(display);
	return wl_list_empty(list) ? NULL : wl_client_from_link(list->prev);
}

static void
conn_open(struct harness *h, struct conn *c, int fd)
{
	*c = (struct conn){0};
	c->display = wl_display_connect_to_fd(fd);
	CHECK(c->display != NULL);
	c->server_client = newest_client(h->display);
	c->registry = wl_display_get_registry(c->display);
	wl_registry_add_listener(c->registry, &registry_listener, c);
	CHECK(roundtrip(h, c));
	CHECK(roundtrip(h, c)); // the formats
}

/* A guest application of `vm` (as the device connects one). */
static void
conn_open_vm(struct harness *h, struct conn *c, struct cw_vm *vm)
{
	int fd = cw_vm_client_connect(vm, h->display, 7);
	CHECK(fd >= 0);
	CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	conn_open(h, c, fd);
}

/* A host application: a plain client of the display. */
static void
conn_open_host(struct harness *h, struct conn *c)
{
	int fds[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
	CHECK(wl_client_create(h->display, fds[0]) != NULL);
	conn_open(h, c, fds[1]);
}

static void
conn_close(struct harness *h, struct conn *c)
{
	if (c->display == NULL) {
		return;
	}
	/* Proxies are freed even after an error (no request is sent then). */
	if (c->shm != NULL) {
		wl_shm_destroy(c->shm);
	}
	wl_registry_destroy(c->registry);
	wl_display_disconnect(c->display);
	c->display = NULL;
	/* The server notices the hang-up. */
	for (int i = 0; i < 4; i++) {
		wl_event_loop_dispatch(h->loop, 0);
	}
}

/* --- guest memory ---------------------------------------------------------------- */

/* A guest blob of `pages` fresh pages, filled with `fill`. */
static struct vgpu_resource *
make_blob(struct harness *h, uint32_t pages, uint8_t fill)
{
	memset(vm_fixture.ram + (size_t)h->next_page * PAGE, fill, (size_t)pages * PAGE);
	struct vgpu_resource *blob = vm_fixture_new_blob(100 + h->next_page, h->next_page, pages,
		(uint64_t)pages * PAGE);
	CHECK(blob != NULL);
	h->next_page += pages;
	return blob;
}

/* --- server-side view of a client's wl_buffer -------------------------------------- */

static struct wlr_buffer *
server_buffer(struct conn *c, struct wl_buffer *buffer)
{
	struct wl_resource *resource = wl_client_get_object(c->server_client,
		wl_proxy_get_id((struct wl_proxy *)buffer));
	return resource != NULL ? wlr_buffer_from_resource(resource) : NULL;
}

static const uint8_t *
begin_read(struct wlr_buffer *buffer, uint32_t *format, size_t *stride)
{
	void *data = NULL;
	if (!wlr_buffer_begin_data_ptr_access(buffer, WLR_BUFFER_DATA_PTR_ACCESS_READ, &data,
			format, stride)) {
		return NULL;
	}
	return data;
}

static void
handle_release(void *data, struct wl_buffer *buffer)
{
	(*(int *)data)++;
}

static const struct wl_buffer_listener buffer_listener = {.release = handle_release};

/* --- the tests ------------------------------------------------------------------- */

static int
count_clients(struct wl_display *display, struct cw_vm *vm)
{
	int n = 0;
	struct wl_client *client;
	wl_client_for_each(client, wl_display_get_client_list(display)) {
		if (cw_vm_from_client(client) == vm) {
			n++;
		}
	}
	return n;
}

/* Host and VM clients each see one wl_shm; VM clients no host-only global. */
static void
test_visibility(struct harness *h, struct cw_vm *vm)
{
	struct conn host, guest;
	conn_open_host(h, &host);
	conn_open_vm(h, &guest, vm);
	CHECK(count_clients(h->display, vm) == 1);
	CHECK(count_clients(h->display, NULL) == 1);
	CHECK(host.shm_globals == 1 && guest.shm_globals == 1);
	CHECK(host.screencopy_name != 0 && guest.screencopy_name == 0);
	CHECK(guest.formats[0] && guest.formats[1] && guest.other_formats == 0); // no renderer
	CHECK(cw_vm_policy_interface_allowed("xdg_wm_base"));
	CHECK(!cw_vm_policy_interface_allowed("zwp_virtual_keyboard_manager_v1"));

	/* The host's wl_shm is libwayland's: a plain memfd is a pool there. */
	int memfd = memfd_create("host-pool", MFD_CLOEXEC);
	CHECK(memfd >= 0 && ftruncate(memfd, PAGE) == 0);
	struct wl_shm_pool *pool = wl_shm_create_pool(host.shm, memfd, PAGE);
	close(memfd);
	CHECK(roundtrip(h, &host));
	wl_shm_pool_destroy(pool);

	/* A hidden global cannot be bound by name either (libwayland: "invalid global"). */
	void *hidden = wl_registry_bind(guest.registry, host.screencopy_name,
		&fake_screencopy_interface, 1);
	CHECK(got_error(h, &guest, "wl_registry", WL_DISPLAY_ERROR_INVALID_OBJECT));
	wl_proxy_destroy(hidden);
	conn_close(h, &guest);
	CHECK(count_clients(h->display, vm) == 0);
	conn_close(h, &host);
}

/* Buffers in a guest blob: the guest's bytes, read in place, released. */
static void
test_buffers(struct harness *h, struct cw_vm *vm)
{
	struct vgpu_resource *blob = make_blob(h, 4, 0x11);
	int fd = vgpu_blob_export_fd(blob, vm->device);
	CHECK(fd >= 0);
	struct conn c;
	conn_open_vm(h, &c, vm);
	struct wl_shm_pool *pool = wl_shm_create_pool(c.shm, fd, 4 * PAGE);
	close(fd);
	/* 32x48 XRGB at offset 4096, stride 256: ends exactly at the pool's end. */
	struct wl_buffer *buffer = wl_shm_pool_create_buffer(pool, PAGE, 32, 48, 256,
		WL_SHM_FORMAT_XRGB8888);
	int released = 0;
	wl_buffer_add_listener(buffer, &buffer_listener, &released);
	CHECK(roundtrip(h, &c));

	struct wlr_buffer *image = server_buffer(&c, buffer);
	CHECK(image != NULL && image->width == 32 && image->height == 48);
	if (image == NULL) {
		return;
	}
	uint32_t format = 0;
	size_t stride = 0;
	const uint8_t *pixels = begin_read(image, &format, &stride);
	CHECK(pixels != NULL && format == DRM_FORMAT_XRGB8888 && stride == 256);
	if (pixels != NULL) {
		/* No copy: the pointer is the blob's view of the guest pages. */
		CHECK(pixels == blob->blob_map + PAGE);
		CHECK(pixels[0] == 0x11);
		*vm_fixture_bytes(blob, PAGE + 5) = 0x77;
		CHECK(pixels[5] == 0x77);
		wlr_buffer_end_data_ptr_access(image);
	}
	/* The host never writes into guest memory. */
	void *data;
	CHECK(!wlr_buffer_begin_data_ptr_access(image, WLR_BUFFER_DATA_PTR_ACCESS_WRITE, &data,
		&format, &stride));
	wlr_buffer_unlock(image); // what wlroots does when the surface lets go
	CHECK(roundtrip(h, &c));
	CHECK(released == 1);

	/* A buffer the client destroys while the compositor still shows it. */
	image = server_buffer(&c, buffer);
	wl_buffer_destroy(buffer);
	CHECK(roundtrip(h, &c));
	pixels = image != NULL ? begin_read(image, &format, &stride) : NULL;
	CHECK(pixels != NULL && pixels[5] == 0x77);
	if (pixels != NULL) {
		wlr_buffer_end_data_ptr_access(image);
	}
	wlr_buffer_unlock(image);

	/* Every format offered works; the whole pool as one ARGB image. */
	buffer = wl_shm_pool_create_buffer(pool, 0, 64, 64, 256, WL_SHM_FORMAT_ARGB8888);
	CHECK(roundtrip(h, &c));
	image = server_buffer(&c, buffer);
	CHECK(image != NULL && begin_read(image, &format, &stride) != NULL &&
		format == DRM_FORMAT_ARGB8888);
	if (image != NULL) {
		wlr_buffer_end_data_ptr_access(image);
		wlr_buffer_unlock(image);
	}
	wl_buffer_destroy(buffer);
	wl_shm_pool_destroy(pool);
	CHECK(roundtrip(h, &c));
	conn_close(h, &c);
	vgpu_resource_unref(blob);
}

/* wl_shm_pool.resize: the device's successor blob, never a shrink. */
static void
test_resize(struct harness *h, struct cw_vm *vm)
{
	struct vgpu_resource *small = make_blob(h, 2, 0x21);
	struct vgpu_resource *large = make_blob(h, 8, 0x42);
	int fd = vgpu_blob_export_fd(small, vm->device);
	struct conn c;
	conn_open_vm(h, &c, vm);
	struct wl_shm_pool *pool = wl_shm_create_pool(c.shm, fd, PAGE);
	close(fd);
	struct wl_buffer *before = wl_shm_pool_create_buffer(pool, 0, 16, 16, 64,
		WL_SHM_FORMAT_XRGB8888);
	wl_shm_pool_resize(pool, 2 * PAGE); // still inside the first blob
	CHECK(roundtrip(h, &c));

	/* The guest grew the pool into `large` (XDOM_CMD_BLOB_REPLACE), then resized. */
	CHECK(vgpu_blob_replace(small, large, vm->device) == 1);
	wl_shm_pool_resize(pool, 8 * PAGE);
	struct wl_buffer *after = wl_shm_pool_create_buffer(pool, 4 * PAGE, 64, 64, 256,
		WL_SHM_FORMAT_XRGB8888);
	CHECK(roundtrip(h, &c));
	struct wlr_buffer *old_image = server_buffer(&c, before);
	struct wlr_buffer *new_image = server_buffer(&c, after);
	uint32_t format;
	size_t stride;
	const uint8_t *pixels = old_image != NULL ? begin_read(old_image, &format, &stride) : NULL;
	CHECK(pixels != NULL && pixels[0] == 0x21); // made before: the old blob
	if (pixels != NULL) {
		wlr_buffer_end_data_ptr_access(old_image);
	}
	pixels = new_image != NULL ? begin_read(new_image, &format, &stride) : NULL;
	CHECK(pixels != NULL && pixels[0] == 0x42 && pixels == large->blob_map + 4 * PAGE);
	if (pixels != NULL) {
		wlr_buffer_end_data_ptr_access(new_image);
	}
	wlr_buffer_unlock(old_image);
	wlr_buffer_unlock(new_image);
	/* The guest drops the old blob: buffers made in it still read it. */
	vgpu_resource_unref(small);
	CHECK(roundtrip(h, &c));

	/* Shrinking is an error, as in libwayland. */
	wl_shm_pool_resize(pool, PAGE);
	CHECK(got_error(h, &c, "wl_shm_pool", WL_SHM_ERROR_INVALID_FD));
	wl_buffer_destroy(before);
	wl_buffer_destroy(after);
	wl_shm_pool_destroy(pool);
	conn_close(h, &c);

	/* Growing past the blob with no successor is an error. */
	struct vgpu_resource *lone = make_blob(h, 1, 0);
	fd = vgpu_blob_export_fd(lone, vm->device);
	conn_open_vm(h, &c, vm);
	pool = wl_shm_create_pool(c.shm, fd, PAGE);
	close(fd);
	wl_shm_pool_resize(pool, 2 * PAGE);
	CHECK(got_error(h, &c, "wl_shm_pool", WL_SHM_ERROR_INVALID_FD));
	wl_shm_pool_destroy(pool);
	conn_close(h, &c);
	vgpu_resource_unref(lone);
	vgpu_resource_unref(large);
}

/* create_pool with an fd that is not this VM's live blob. */
static void
expect_pool_error(struct harness *h, struct cw_vm *vm, int fd, int32_t size, uint32_t code)
{
	struct conn c;
	conn_open_vm(h, &c, vm);
	struct wl_shm_pool *pool = wl_shm_create_pool(c.shm, fd, size);
	close(fd);
	CHECK(got_error(h, &c, "wl_shm", code));
	wl_shm_pool_destroy(pool);
	conn_close(h, &c);
	CHECK(count_clients(h->display, vm) == 0); // the client is gone, and its entry
}

static void
test_bad_pools(struct harness *h, struct cw_vm *vm, struct cw_vm *other)
{
	/* A host file is not guest memory. */
	int memfd = memfd_create("not-a-blob", MFD_CLOEXEC);
	CHECK(memfd >= 0 && ftruncate(memfd, PAGE) == 0);
	expect_pool_error(h, vm, memfd, PAGE, WL_SHM_ERROR_INVALID_FD);

	/* Another VM's placeholder is refused; in its own VM it is a pool. */
	struct vgpu_resource *theirs = make_blob(h, 1, 0x99);
	expect_pool_error(h, vm, vgpu_blob_export_fd(theirs, other->device), PAGE,
		WL_SHM_ERROR_INVALID_FD);
	struct conn c;
	conn_open_vm(h, &c, other);
	int fd = vgpu_blob_export_fd(theirs, other->device);
	wl_shm_pool_destroy(wl_shm_create_pool(c.shm, fd, PAGE));
	close(fd);
	CHECK(roundtrip(h, &c));
	conn_close(h, &c);

	/* Larger than the blob, empty or negative sizes. */
	struct vgpu_resource *blob = make_blob(h, 1, 0);
	expect_pool_error(h, vm, vgpu_blob_export_fd(blob, vm->device), PAGE + 1,
		WL_SHM_ERROR_INVALID_FD);
	expect_pool_error(h, vm, vgpu_blob_export_fd(blob, vm->device), 0,
		WL_SHM_ERROR_INVALID_STRIDE);
	expect_pool_error(h, vm, vgpu_blob_export_fd(blob, vm->device), -PAGE,
		WL_SHM_ERROR_INVALID_STRIDE);

	/* A placeholder whose blob the guest dropped is stale. */
	fd = vgpu_blob_export_fd(theirs, other->device);
	vgpu_resource_unref(theirs);
	expect_pool_error(h, other, fd, PAGE, WL_SHM_ERROR_INVALID_FD);
	vgpu_resource_unref(blob);
}

struct layout {
	int32_t offset, width, height, stride;
	uint32_t format;
	uint32_t error; // UINT32_MAX: valid
};

static void
test_layouts(struct harness *h, struct cw_vm *vm)
{
	const uint32_t valid = UINT32_MAX;
	const struct layout layouts[] = {
		{0, 32, 32, 128, WL_SHM_FORMAT_XRGB8888, valid},
		{PAGE * 3, 32, 32, 128, WL_SHM_FORMAT_ARGB8888, valid},       // ends at the end
		{PAGE * 3 + 4, 32, 32, 128, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{-4, 1, 1, 4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, 33, 1, 128, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE}, // stride < w*4
		{0, 1, 1, 6, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},    // unaligned
		{0, 0, 1, 4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, 1, 0, 4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, 1, INT32_MAX, 4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, 1, 2, INT32_MAX - 3, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{INT32_MAX, 1, 1, 4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, -1, 1, 4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, 1, 1, -4, WL_SHM_FORMAT_XRGB8888, WL_SHM_ERROR_INVALID_STRIDE},
		{0, 32, 32, 128, WL_SHM_FORMAT_RGB565, WL_SHM_ERROR_INVALID_FORMAT},
		{0, 32, 32, 128, WL_SHM_FORMAT_ABGR8888, WL_SHM_ERROR_INVALID_FORMAT}, // not offered
		{0, 32, 32, 128, 0xdeadbeef, WL_SHM_ERROR_INVALID_FORMAT},
	};
	struct vgpu_resource *blob = make_blob(h, 4, 0x5a);
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const struct layout *l = &layouts[i];
		struct conn c;
		conn_open_vm(h, &c, vm);
		int fd = vgpu_blob_export_fd(blob, vm->device);
		struct wl_shm_pool *pool = wl_shm_create_pool(c.shm, fd, 4 * PAGE);
		close(fd);
		struct wl_buffer *buffer = wl_shm_pool_create_buffer(pool, l->offset, l->width,
			l->height, l->stride, l->format);
		if (l->error == valid) {
			CHECK(roundtrip(h, &c));
		} else if (!got_error(h, &c, "wl_shm_pool", l->error)) {
			fprintf(stderr, "layout %zu was not refused as it should\n", i);
			cw_check_failures++;
		}
		wl_buffer_destroy(buffer);
		wl_shm_pool_destroy(pool);
		CHECK(l->error != valid || roundtrip(h, &c));
		conn_close(h, &c);
	}
	CHECK(count_clients(h->display, vm) == 0);
	vgpu_resource_unref(blob);
}

static int
count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, ch;
	while (f != NULL && (ch = fgetc(f)) != EOF) {
		n += ch == '\n';
	}
	if (f != NULL) {
		fclose(f);
	}
	return n;
}

/*
 * A pool keeps no fd (it kept the placeholder: 3000 create_pool were 3000
 * fds in crossway, kept after the guest freed the blob), and a client has
 * at most CW_VM_SHM_MAX_POOLS of them.
 */
static void
test_pool_fds(struct harness *h, struct cw_vm *vm)
{
	struct vgpu_resource *blob = make_blob(h, 1, 0x11);
	int placeholder = vgpu_blob_export_fd(blob, vm->device);
	CHECK(placeholder >= 0);
	struct conn c;
	conn_open_vm(h, &c, vm);
	int before = vm_fixture_open_fds();
	static struct wl_shm_pool *pools[CW_VM_SHM_MAX_POOLS + 1];
	for (int i = 0; i < CW_VM_SHM_MAX_POOLS; i++) {
		pools[i] = wl_shm_create_pool(c.shm, placeholder, PAGE);
		if (i % 100 == 0) {
			pump(h, &c);
		}
	}
	CHECK(roundtrip(h, &c));
	int grown = vm_fixture_open_fds() - before;
	fprintf(stderr, "%d pools: crossway holds %d more fds\n", CW_VM_SHM_MAX_POOLS, grown);
	CHECK(grown <= 1);
	/* The guest frees the blob: the pools stay, no fd with them. */
	vgpu_resource_unref(blob);
	CHECK(roundtrip(h, &c));
	CHECK(vm_fixture_open_fds() - before <= 1);
	/* One more is a protocol error. */
	pools[CW_VM_SHM_MAX_POOLS] = wl_shm_create_pool(c.shm, placeholder, PAGE);
	close(placeholder);
	CHECK(got_error(h, &c, "wl_shm", WL_SHM_ERROR_INVALID_FD));
	for (int i = 0; i <= CW_VM_SHM_MAX_POOLS; i++) {
		wl_proxy_destroy((struct wl_proxy *)pools[i]);
	}
	conn_close(h, &c);
	CHECK(count_clients(h->display, vm) == 0);
	CHECK(vm_fixture_open_fds() - before <= 0);
}

/* A blob of `pieces` non-adjacent pages: one kernel mapping each. */
static struct vgpu_resource *
make_scattered_blob(struct harness *h, uint32_t id, unsigned pieces)
{
	struct vgpu_backing_entry *e = calloc(pieces, sizeof(*e));
	for (unsigned i = 0; i < pieces; i++) {
		e[i].gpa = VM_FIXTURE_GPA + (uint64_t)(2 * i) * PAGE;
		e[i].length = PAGE;
	}
	uint32_t error = 0;
	struct vgpu_resource *blob = vgpu_resource_create_blob(id, &vm_fixture.mem, e, pieces,
		(uint64_t)pieces * PAGE, &error);
	free(e);
	CHECK(blob != NULL);
	return blob;
}

/*
 * A blob's charge (memory, mappings, count) stays until its last lock: a
 * pool keeps the view mapped after the guest's RESOURCE_UNREF, and no new
 * buffer is made on memory the guest freed. Repeating create blob ->
 * create_pool -> UNREF grew crossway's mappings to vm.max_map_count while
 * the device thought them returned.
 */
static void
test_freed_blob_budget(struct harness *h, struct cw_vm *vm)
{
	struct vgpu_blob_budget *budget = vgpu_blob_budget_create();
	struct conn c;
	conn_open_vm(h, &c, vm);
	struct vgpu_resource *blob = make_blob(h, 2, 0x33);
	vgpu_blob_charge(blob, budget);
	CHECK(budget->blobs == 1 && budget->memory == 2 * PAGE && budget->maps == 1);
	int fd = vgpu_blob_export_fd(blob, vm->device);
	struct wl_shm_pool *pool = wl_shm_create_pool(c.shm, fd, 2 * PAGE);
	close(fd);
	struct wl_buffer *buffer = wl_shm_pool_create_buffer(pool, 0, 16, 16, 64,
		WL_SHM_FORMAT_XRGB8888);
	CHECK(roundtrip(h, &c));
	vgpu_resource_unref(blob); // the device's RESOURCE_UNREF
	CHECK(budget->blobs == 1 && budget->memory == 2 * PAGE && budget->maps == 1);
	/* The buffer made before still reads the pages; no new one. */
	struct wlr_buffer *image = server_buffer(&c, buffer);
	uint32_t format;
	size_t stride;
	const uint8_t *pixels = image != NULL ? begin_read(image, &format, &stride) : NULL;
	CHECK(pixels != NULL && pixels[0] == 0x33);
	if (pixels != NULL) {
		wlr_buffer_end_data_ptr_access(image);
	}
	wlr_buffer_unlock(image);
	struct wl_buffer *refused = wl_shm_pool_create_buffer(pool, PAGE, 16, 16, 64,
		WL_SHM_FORMAT_XRGB8888);
	CHECK(got_error(h, &c, "wl_shm_pool", WL_SHM_ERROR_INVALID_FD));
	wl_proxy_destroy((struct wl_proxy *)refused);
	wl_proxy_destroy((struct wl_proxy *)buffer);
	wl_proxy_destroy((struct wl_proxy *)pool);
	conn_close(h, &c); // the pool and the buffer went with the client: so did the charge
	CHECK(budget->blobs == 0 && budget->memory == 0 && budget->maps == 0);

	/* The review's loop, with the device's check (VGPU_MAX_BLOB_MAPS: 8192). */
	const uint32_t max_maps = 8192;
	conn_open_vm(h, &c, vm);
	int maps_before = count_maps(), made = 0;
	for (int i = 0; i < 200; i++) {
		if (budget->maps + 512 > max_maps) {
			continue; // the device answers OUT_OF_MEMORY
		}
		struct vgpu_resource *scattered = make_scattered_blob(h, 1000 + (uint32_t)i, 512);
		vgpu_blob_charge(scattered, budget);
		made++;
		fd = vgpu_blob_export_fd(scattered, vm->device);
		pool = wl_shm_create_pool(c.shm, fd, PAGE);
		close(fd);
		CHECK(roundtrip(h, &c));
		vgpu_resource_unref(scattered);
		wl_proxy_destroy((struct wl_proxy *)pool); // the server's pool stays (no request)
	}
	int grown = count_maps() - maps_before;
	fprintf(stderr, "create blob -> create_pool -> UNREF x 200: %d blobs made, %d more "
		"mappings\n", made, grown);
	CHECK(made == 16 && grown <= (int)max_maps + 64);
	conn_close(h, &c);
	CHECK(budget->maps == 0 && count_maps() - maps_before <= 64);
	vgpu_blob_budget_unref(budget);
}

/* A VM that goes away takes its clients: no entry, no connection left. */
static void
test_vm_gone(struct harness *h, struct cw_vm *vm, struct cw_vm *other)
{
	struct conn a, b, host, keep;
	conn_open_vm(h, &a, vm);
	conn_open_vm(h, &b, vm);
	conn_open_vm(h, &keep, other);
	conn_open_host(h, &host);
	CHECK(count_clients(h->display, vm) == 2 && wl_list_length(&vm->clients) == 2);
	cw_vm_clients_destroy(vm);
	CHECK(count_clients(h->display, vm) == 0 && wl_list_empty(&vm->clients));
	CHECK(count_clients(h->display, other) == 1 && count_clients(h->display, NULL) == 1);
	/* The guests' connections are closed; the others still work. */
	CHECK(!roundtrip(h, &a) && !roundtrip(h, &b));
	CHECK(roundtrip(h, &keep) && roundtrip(h, &host));
	conn_close(h, &a);
	conn_close(h, &b);
	conn_close(h, &keep);
	conn_close(h, &host);
	CHECK(cw_vm_from_client(NULL) == NULL);
}

int
main(void)
{
	wlr_log_init(WLR_ERROR, NULL);
	struct harness h = {0};
	h.display = wl_display_create();
	h.loop = wl_display_get_event_loop(h.display);
	CHECK(wl_display_init_shm(h.display) == 0); // libwayland's, as wlroots makes it
	h.vm_shm = cw_vm_shm_create(h.display, NULL);
	CHECK(h.vm_shm != NULL);
	cw_vm_policy_init(h.display, h.vm_shm);
	CHECK(wl_global_create(h.display, &fake_screencopy_interface, 1, NULL, NULL) != NULL);
	CHECK(vm_fixture_init(4 * MIB) == 0);

	struct cw_vm work, play;
	vm_fixture_fake_vm(&work, "work");
	vm_fixture_fake_vm(&play, "play");

	test_visibility(&h, &work);
	test_buffers(&h, &work);
	test_resize(&h, &work);
	test_bad_pools(&h, &work, &play);
	test_layouts(&h, &work);
	test_vm_gone(&h, &work, &play);
	test_pool_fds(&h, &work);
	test_freed_blob_budget(&h, &work);

	CHECK(vgpu_blob_placeholder_count() == 0);
	wl_display_destroy_clients(h.display);
	wl_display_destroy(h.display);
	vm_fixture_finish();
	CHECK_DONE();
}
