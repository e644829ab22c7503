/*
 * cw-test-client: a deterministic xdg-shell client for crossway's tests.
 *
 * It shows a solid-colour window, optionally with a subsurface, a popup and
 * an xdg-decoration request, and reports what the compositor tells it (configure
 * events, input) as one line per event on stdout so that test scripts can
 * wait for and match those lines.
 */
#define _GNU_SOURCE /* memfd_create */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>

#include "xdg-decoration-unstable-v1-client-protocol.h"
#include "xdg-shell-client-protocol.h"

#define PROG "cw-test-client"

/* Sizes above this are refused: they would only come from a broken test. */
#define MAX_DIMENSION 16384
/* A real XKB keymap is well below this; anything larger is suspicious. */
#define MAX_KEYMAP_SIZE (16u * 1024u * 1024u)

#define SUBSURFACE_SIZE 40
#define SUBSURFACE_OFFSET 10
#define POPUP_WIDTH 60
#define POPUP_HEIGHT 40
#define POPUP_COLOR 0xff00ffu

enum decoration_request {
	DECORATION_NONE,
	DECORATION_SERVER,
	DECORATION_CLIENT,
};

struct options {
	uint32_t color;
	int width, height;
	const char *title;
	const char *app_id;
	enum decoration_request decoration;
	bool subsurface;
	uint32_t subsurface_color;
	bool popup;
	bool maximize;
	bool fullscreen;
};

/*
 * A wl_buffer may still be read by the compositor after we replaced it, so
 * it is only destroyed once it is both replaced (stale) and released.
 */
struct buffer {
	struct client *client;
	struct wl_buffer *wl_buffer;
	bool busy;
	bool stale;
	struct buffer *next;
};

/*
 * Text printed only once the compositor has processed every request sent
 * before it (wl_display.sync), so a test that sees "mapped" knows the commit
 * has really reached the compositor.
 */
struct deferred_line {
	struct client *client;
	struct wl_callback *callback;
	char text[160];
	struct deferred_line *next;
};

struct toplevel_pending {
	int width, height;
	bool maximized, fullscreen, activated, resizing;
};

struct client {
	struct options opt;

	struct wl_display *display;
	struct wl_registry *registry;
	struct wl_compositor *compositor;
	uint32_t compositor_version;
	struct wl_subcompositor *subcompositor;
	struct wl_shm *shm;
	struct xdg_wm_base *wm_base;
	struct zxdg_decoration_manager_v1 *decoration_manager;
	struct wl_seat *seat;
	uint32_t seat_name;
	uint32_t seat_version;
	struct wl_pointer *pointer;
	struct wl_keyboard *keyboard;

	struct xkb_context *xkb_context;
	struct xkb_keymap *keymap;
	struct xkb_state *xkb_state;

	struct wl_surface *surface;
	struct xdg_surface *xdg_surface;
	struct xdg_toplevel *toplevel;
	struct zxdg_toplevel_decoration_v1 *decoration;
	struct buffer *buffer;
	int width, height;
	struct toplevel_pending pending;
	bool mapped;

	struct wl_surface *sub_surface;
	struct wl_subsurface *subsurface;
	struct buffer *sub_buffer;

	struct wl_surface *popup_surface;
	struct xdg_surface *popup_xdg_surface;
	struct xdg_popup *popup;
	struct buffer *popup_buffer;
	int popup_x, popup_y, popup_w, popup_h;

	struct buffer *buffers;
	struct deferred_line *deferred;

	bool running;
	int exit_code;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [options]\n"
		"  --color RRGGBB          window colour (default 3366cc)\n"
		"  --size WxH              initial size (default 200x150)\n"
		"  --title T               toplevel title (default " PROG ")\n"
		"  --app-id A              toplevel app id (default " PROG ")\n"
		"  --decoration server|client|none\n"
		"                          request a decoration mode (default none)\n"
		"  --subsurface RRGGBB     add a 40x40 subsurface at 10,10\n"
		"  --popup                 open a 60x40 popup after the first configure\n"
		"  --maximize              request maximized before mapping\n"
		"  --fullscreen            request fullscreen before mapping\n"
		"  --help                  show this help\n");
}

/* Report a runtime error and make the main loop stop with status 1. */
static void fail(struct client *client, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	client->running = false;
	client->exit_code = 1;
}

static bool parse_color(const char *s, uint32_t *out)
{
	uint32_t value = 0;

	if (strlen(s) != 6) {
		return false;
	}
	for (int i = 0; i < 6; i++) {
		char c = s[i];
		uint32_t digit;
		if (c >= '0' && c <= '9') {
			digit = (uint32_t)(c - '0');
		} else if (c >= 'a' && c <= 'f') {
			digit = (uint32_t)(c - 'a' + 10);
		} else if (c >= 'A' && c <= 'F') {
			digit = (uint32_t)(c - 'A' + 10);
		} else {
			return false;
		}
		value = value << 4 | digit;
	}
	*out = value;
	return true;
}

/* Parses a decimal integer in [1, MAX_DIMENSION], advancing *s past it. */
static bool parse_dimension(const char **s, int *out)
{
	long value = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9') {
		return false;
	}
	while (*p >= '0' && *p <= '9') {
		value = value * 10 + (*p - '0');
		if (value > MAX_DIMENSION) {
			return false;
		}
		p++;
	}
	if (value < 1) {
		return false;
	}
	*out = (int)value;
	*s = p;
	return true;
}

static bool parse_size(const char *s, int *width, int *height)
{
	if (!parse_dimension(&s, width) || *s != 'x') {
		return false;
	}
	s++;
	return parse_dimension(&s, height) && *s == '\0';
}

static bool takes_value(const char *option)
{
	static const char *const with_value[] = {
		"--color", "--size", "--title", "--app-id", "--decoration", "--subsurface",
	};

	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++) {
		if (strcmp(option, with_value[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* Returns 0 to continue, 1 after --help, 2 on a usage error. */
static int parse_options(int argc, char **argv, struct options *opt)
{
	*opt = (struct options){
		.color = 0x3366cc,
		.width = 200,
		.height = 150,
		.title = PROG,
		.app_id = PROG,
		.decoration = DECORATION_NONE,
	};

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = "";

		if (takes_value(arg)) {
			if (i + 1 >= argc) {
				fprintf(stderr, PROG ": option %s needs a value\n", arg);
				return 2;
			}
			value = argv[++i];
		}

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(arg, "--color") == 0) {
			if (!parse_color(value, &opt->color)) {
				fprintf(stderr, PROG ": --color expects RRGGBB hex, got '%s'\n", value);
				return 2;
			}
		} else if (strcmp(arg, "--size") == 0) {
			if (!parse_size(value, &opt->width, &opt->height)) {
				fprintf(stderr, PROG ": --size expects WxH with 1 <= W,H <= %d, got '%s'\n",
					MAX_DIMENSION, value);
				return 2;
			}
		} else if (strcmp(arg, "--title") == 0) {
			opt->title = value;
		} else if (strcmp(arg, "--app-id") == 0) {
			opt->app_id = value;
		} else if (strcmp(arg, "--decoration") == 0) {
			if (strcmp(value, "server") == 0) {
				opt->decoration = DECORATION_SERVER;
			} else if (strcmp(value, "client") == 0) {
				opt->decoration = DECORATION_CLIENT;
			} else if (strcmp(value, "none") == 0) {
				opt->decoration = DECORATION_NONE;
			} else {
				fprintf(stderr, PROG ": --decoration expects server, client or none, got '%s'\n",
					value);
				return 2;
			}
		} else if (strcmp(arg, "--subsurface") == 0) {
			if (!parse_color(value, &opt->subsurface_color)) {
				fprintf(stderr, PROG ": --subsurface expects RRGGBB hex, got '%s'\n", value);
				return 2;
			}
			opt->subsurface = true;
		} else if (strcmp(arg, "--popup") == 0) {
			opt->popup = true;
		} else if (strcmp(arg, "--maximize") == 0) {
			opt->maximize = true;
		} else if (strcmp(arg, "--fullscreen") == 0) {
			opt->fullscreen = true;
		} else {
			fprintf(stderr, PROG ": unknown argument '%s'\n", arg);
			usage(stderr);
			return 2;
		}
	}
	return 0;
}

/* ---- deferred output ---------------------------------------------------- */

static void deferred_unlink(struct deferred_line *line)
{
	struct deferred_line **link = &line->client->deferred;

	while (*link != line) {
		link = &(*link)->next;
	}
	*link = line->next;
}

static void deferred_done(void *data, struct wl_callback *callback, uint32_t serial)
{
	struct deferred_line *line = data;

	printf("%s\n", line->text);
	deferred_unlink(line);
	wl_callback_destroy(callback);
	free(line);
}

static const struct wl_callback_listener deferred_listener = {
	.done = deferred_done,
};

/* Print text (may contain newlines) once the compositor caught up. */
static void print_after_sync(struct client *client, const char *text)
{
	struct deferred_line *line = calloc(1, sizeof(*line));

	if (line == NULL) {
		fail(client, "out of memory");
		return;
	}
	snprintf(line->text, sizeof(line->text), "%s", text);
	line->client = client;
	line->callback = wl_display_sync(client->display);
	if (line->callback == NULL) {
		free(line);
		fail(client, "wl_display_sync failed");
		return;
	}
	wl_callback_add_listener(line->callback, &deferred_listener, line);
	line->next = client->deferred;
	client->deferred = line;
}

/* ---- buffers ------------------------------------------------------------ */

static void buffer_free(struct buffer *buffer)
{
	struct buffer **link = &buffer->client->buffers;

	while (*link != buffer) {
		link = &(*link)->next;
	}
	*link = buffer->next;
	wl_buffer_destroy(buffer->wl_buffer);
	free(buffer);
}

static void buffer_release(void *data, struct wl_buffer *wl_buffer)
{
	struct buffer *buffer = data;

	buffer->busy = false;
	if (buffer->stale) {
		buffer_free(buffer);
	}
}

static const struct wl_buffer_listener buffer_listener = {
	.release = buffer_release,
};

/* Drop our reference to a buffer that is no longer going to be attached. */
static void buffer_retire(struct buffer *buffer)
{
	if (buffer == NULL) {
		return;
	}
	buffer->stale = true;
	if (!buffer->busy) {
		buffer_free(buffer);
	}
}

static bool fill_shm_file(int fd, size_t size, uint32_t pixel)
{
	uint32_t *pixels;

	if (ftruncate(fd, (off_t)size) != 0) {
		return false;
	}
	pixels = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (pixels == MAP_FAILED) {
		return false;
	}
	for (size_t i = 0; i < size / 4; i++) {
		pixels[i] = pixel;
	}
	return munmap(pixels, size) == 0;
}

static struct buffer *buffer_create(struct client *client, int width, int height,
	uint32_t rgb)
{
	int stride = width * 4;
	size_t size = (size_t)stride * (size_t)height;
	struct buffer *buffer;
	struct wl_shm_pool *pool;
	int fd;

	fd = memfd_create(PROG "-shm", MFD_CLOEXEC);
	if (fd < 0) {
		fail(client, "memfd_create: %s", strerror(errno));
		return NULL;
	}
	/* ARGB8888 with an opaque alpha so screenshots see the exact colour. */
	if (!fill_shm_file(fd, size, 0xff000000u | rgb)) {
		fail(client, "cannot prepare a %dx%d shm buffer: %s", width, height,
			strerror(errno));
		close(fd);
		return NULL;
	}
	buffer = calloc(1, sizeof(*buffer));
	if (buffer == NULL) {
		fail(client, "out of memory");
		close(fd);
		return NULL;
	}
	pool = wl_shm_create_pool(client->shm, fd, (int32_t)size);
	close(fd);
	if (pool == NULL) {
		free(buffer);
		fail(client, "wl_shm_create_pool failed");
		return NULL;
	}
	buffer->wl_buffer = wl_shm_pool_create_buffer(pool, 0, width, height, stride,
		WL_SHM_FORMAT_ARGB8888);
	wl_shm_pool_destroy(pool);
	if (buffer->wl_buffer == NULL) {
		free(buffer);
		fail(client, "wl_shm_pool_create_buffer failed");
		return NULL;
	}
	wl_buffer_add_listener(buffer->wl_buffer, &buffer_listener, buffer);
	buffer->client = client;
	buffer->next = client->buffers;
	client->buffers = buffer;
	return buffer;
}

/* Attach a fresh solid buffer to surface, replacing *slot. No commit. */
static bool surface_show_color(struct client *client, struct wl_surface *surface,
	struct buffer **slot, int width, int height, uint32_t rgb)
{
	struct buffer *buffer = buffer_create(client, width, height, rgb);

	if (buffer == NULL) {
		return false;
	}
	wl_surface_attach(surface, buffer->wl_buffer, 0, 0);
	if (client->compositor_version >= WL_SURFACE_DAMAGE_BUFFER_SINCE_VERSION) {
		wl_surface_damage_buffer(surface, 0, 0, width, height);
	} else {
		wl_surface_damage(surface, 0, 0, width, height);
	}
	buffer->busy = true;
	buffer_retire(*slot);
	*slot = buffer;
	return true;
}

/* ---- popup -------------------------------------------------------------- */

static void popup_destroy(struct client *client)
{
	if (client->popup != NULL) {
		xdg_popup_destroy(client->popup);
		client->popup = NULL;
	}
	if (client->popup_xdg_surface != NULL) {
		xdg_surface_destroy(client->popup_xdg_surface);
		client->popup_xdg_surface = NULL;
	}
	if (client->popup_surface != NULL) {
		wl_surface_destroy(client->popup_surface);
		client->popup_surface = NULL;
	}
	buffer_retire(client->popup_buffer);
	client->popup_buffer = NULL;
}

static void popup_surface_configure(void *data, struct xdg_surface *xdg_surface,
	uint32_t serial)
{
	struct client *client = data;
	char text[64];

	xdg_surface_ack_configure(xdg_surface, serial);
	/* The popup never changes size, so it only needs a buffer once. */
	if (client->popup_buffer == NULL) {
		if (!surface_show_color(client, client->popup_surface, &client->popup_buffer,
				POPUP_WIDTH, POPUP_HEIGHT, POPUP_COLOR)) {
			return;
		}
		xdg_surface_set_window_geometry(xdg_surface, 0, 0, POPUP_WIDTH, POPUP_HEIGHT);
	}
	wl_surface_commit(client->popup_surface);
	snprintf(text, sizeof(text), "popup-configure %d %d %d %d", client->popup_x,
		client->popup_y, client->popup_w, client->popup_h);
	print_after_sync(client, text);
}

static const struct xdg_surface_listener popup_surface_listener = {
	.configure = popup_surface_configure,
};

static void popup_configure(void *data, struct xdg_popup *popup, int32_t x, int32_t y,
	int32_t width, int32_t height)
{
	struct client *client = data;

	client->popup_x = x;
	client->popup_y = y;
	client->popup_w = width;
	client->popup_h = height;
}

static void popup_done(void *data, struct xdg_popup *popup)
{
	struct client *client = data;

	printf("popup-done\n");
	popup_destroy(client);
}

static void popup_repositioned(void *data, struct xdg_popup *popup, uint32_t token)
{
	/* We never call xdg_popup.reposition. */
}

static const struct xdg_popup_listener popup_listener = {
	.configure = popup_configure,
	.popup_done = popup_done,
	.repositioned = popup_repositioned,
};

static void popup_create(struct client *client)
{
	struct xdg_positioner *positioner = xdg_wm_base_create_positioner(client->wm_base);

	if (positioner == NULL) {
		fail(client, "cannot create xdg_positioner");
		return;
	}
	xdg_positioner_set_size(positioner, POPUP_WIDTH, POPUP_HEIGHT);
	/* A 1x1 anchor rect in the bottom-right corner of the window geometry. */
	xdg_positioner_set_anchor_rect(positioner, client->width - 1, client->height - 1, 1, 1);
	xdg_positioner_set_anchor(positioner, XDG_POSITIONER_ANCHOR_BOTTOM_RIGHT);
	xdg_positioner_set_gravity(positioner, XDG_POSITIONER_GRAVITY_BOTTOM_RIGHT);
	xdg_positioner_set_constraint_adjustment(positioner,
		XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_SLIDE_X |
		XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_SLIDE_Y |
		XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_FLIP_X |
		XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_FLIP_Y);

	client->popup_surface = wl_compositor_create_surface(client->compositor);
	if (client->popup_surface != NULL) {
		client->popup_xdg_surface = xdg_wm_base_get_xdg_surface(client->wm_base,
			client->popup_surface);
	}
	if (client->popup_xdg_surface != NULL) {
		client->popup = xdg_surface_get_popup(client->popup_xdg_surface,
			client->xdg_surface, positioner);
	}
	xdg_positioner_destroy(positioner);
	if (client->popup == NULL) {
		fail(client, "cannot create the popup");
		return;
	}
	xdg_surface_add_listener(client->popup_xdg_surface, &popup_surface_listener, client);
	xdg_popup_add_listener(client->popup, &popup_listener, client);
	/* No grab: the popup must not steal keyboard focus in input tests. */
	wl_surface_commit(client->popup_surface);
}

/* ---- toplevel ----------------------------------------------------------- */

static void format_configure(const struct toplevel_pending *pending, char *text,
	size_t size)
{
	int n = snprintf(text, size, "configure %d %d", pending->width, pending->height);
	const struct {
		bool set;
		const char *name;
	} states[] = {
		{ pending->maximized, "maximized" },
		{ pending->fullscreen, "fullscreen" },
		{ pending->activated, "activated" },
		{ pending->resizing, "resizing" },
	};

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (states[i].set && n >= 0 && (size_t)n < size) {
			n += snprintf(text + n, size - (size_t)n, " %s", states[i].name);
		}
	}
}

static void window_surface_configure(void *data, struct xdg_surface *xdg_surface,
	uint32_t serial)
{
	struct client *client = data;
	/* Zero means "client decides": keep our own size in that dimension. */
	int width = client->pending.width > 0 ? client->pending.width : client->width;
	int height = client->pending.height > 0 ? client->pending.height : client->height;
	bool first = !client->mapped;
	char text[160];

	if (width > MAX_DIMENSION || height > MAX_DIMENSION) {
		fail(client, "compositor asked for %dx%d, above the %d limit", width, height,
			MAX_DIMENSION);
		return;
	}
	xdg_surface_ack_configure(xdg_surface, serial);
	if (first || width != client->width || height != client->height) {
		if (!surface_show_color(client, client->surface, &client->buffer, width, height,
				client->opt.color)) {
			return;
		}
		client->width = width;
		client->height = height;
		xdg_surface_set_window_geometry(xdg_surface, 0, 0, width, height);
	}
	/* Commit even without a new buffer so the ack takes effect. */
	wl_surface_commit(client->surface);
	client->mapped = true;

	format_configure(&client->pending, text, sizeof(text));
	if (first) {
		strncat(text, "\nmapped", sizeof(text) - strlen(text) - 1);
	}
	print_after_sync(client, text);

	if (first && client->opt.popup) {
		popup_create(client);
	}
}

static const struct xdg_surface_listener window_surface_listener = {
	.configure = window_surface_configure,
};

static void toplevel_configure(void *data, struct xdg_toplevel *toplevel, int32_t width,
	int32_t height, struct wl_array *states)
{
	struct client *client = data;
	uint32_t *state;

	client->pending = (struct toplevel_pending){
		.width = width,
		.height = height,
	};
	wl_array_for_each(state, states) {
		switch (*state) {
		case XDG_TOPLEVEL_STATE_MAXIMIZED:
			client->pending.maximized = true;
			break;
		case XDG_TOPLEVEL_STATE_FULLSCREEN:
			client->pending.fullscreen = true;
			break;
		case XDG_TOPLEVEL_STATE_ACTIVATED:
			client->pending.activated = true;
			break;
		case XDG_TOPLEVEL_STATE_RESIZING:
			client->pending.resizing = true;
			break;
		default:
			/* Tiled states are not interesting to the tests. */
			break;
		}
	}
}

static void toplevel_close(void *data, struct xdg_toplevel *toplevel)
{
	struct client *client = data;

	printf("close\n");
	client->running = false;
}

static void toplevel_configure_bounds(void *data, struct xdg_toplevel *toplevel,
	int32_t width, int32_t height)
{
	/* Bounds are advisory; the test client keeps its requested size. */
}

static void toplevel_wm_capabilities(void *data, struct xdg_toplevel *toplevel,
	struct wl_array *capabilities)
{
	/* Not needed: the client has no window menu or buttons. */
}

static const struct xdg_toplevel_listener toplevel_listener = {
	.configure = toplevel_configure,
	.close = toplevel_close,
	.configure_bounds = toplevel_configure_bounds,
	.wm_capabilities = toplevel_wm_capabilities,
};

static void decoration_configure(void *data,
	struct zxdg_toplevel_decoration_v1 *decoration, uint32_t mode)
{
	switch (mode) {
	case ZXDG_TOPLEVEL_DECORATION_V1_MODE_SERVER_SIDE:
		printf("decoration-mode server\n");
		break;
	case ZXDG_TOPLEVEL_DECORATION_V1_MODE_CLIENT_SIDE:
		printf("decoration-mode client\n");
		break;
	default:
		printf("decoration-mode unknown-%u\n", mode);
		break;
	}
}

static const struct zxdg_toplevel_decoration_v1_listener decoration_listener = {
	.configure = decoration_configure,
};

static void decoration_create(struct client *client)
{
	uint32_t mode = client->opt.decoration == DECORATION_SERVER ?
		ZXDG_TOPLEVEL_DECORATION_V1_MODE_SERVER_SIDE :
		ZXDG_TOPLEVEL_DECORATION_V1_MODE_CLIENT_SIDE;

	if (client->decoration_manager == NULL) {
		/* Not fatal: lets the same test run on compositors without it. */
		fprintf(stderr, "decoration-unsupported\n");
		return;
	}
	client->decoration = zxdg_decoration_manager_v1_get_toplevel_decoration(
		client->decoration_manager, client->toplevel);
	if (client->decoration == NULL) {
		fail(client, "cannot create the toplevel decoration");
		return;
	}
	zxdg_toplevel_decoration_v1_add_listener(client->decoration, &decoration_listener,
		client);
	zxdg_toplevel_decoration_v1_set_mode(client->decoration, mode);
}

static bool subsurface_create(struct client *client)
{
	if (client->subcompositor == NULL) {
		fail(client, "--subsurface needs wl_subcompositor, which the compositor lacks");
		return false;
	}
	client->sub_surface = wl_compositor_create_surface(client->compositor);
	if (client->sub_surface == NULL) {
		fail(client, "cannot create the subsurface's wl_surface");
		return false;
	}
	client->subsurface = wl_subcompositor_get_subsurface(client->subcompositor,
		client->sub_surface, client->surface);
	if (client->subsurface == NULL) {
		fail(client, "cannot create the wl_subsurface");
		return false;
	}
	wl_subsurface_set_position(client->subsurface, SUBSURFACE_OFFSET, SUBSURFACE_OFFSET);
	wl_subsurface_set_desync(client->subsurface);
	if (!surface_show_color(client, client->sub_surface, &client->sub_buffer,
			SUBSURFACE_SIZE, SUBSURFACE_SIZE, client->opt.subsurface_color)) {
		return false;
	}
	/* Becomes visible together with the parent's first buffer. */
	wl_surface_commit(client->sub_surface);
	return true;
}

static bool window_create(struct client *client)
{
	client->width = client->opt.width;
	client->height = client->opt.height;

	client->surface = wl_compositor_create_surface(client->compositor);
	if (client->surface == NULL) {
		fail(client, "cannot create a wl_surface");
		return false;
	}
	client->xdg_surface = xdg_wm_base_get_xdg_surface(client->wm_base, client->surface);
	if (client->xdg_surface == NULL) {
		fail(client, "cannot create an xdg_surface");
		return false;
	}
	xdg_surface_add_listener(client->xdg_surface, &window_surface_listener, client);
	client->toplevel = xdg_surface_get_toplevel(client->xdg_surface);
	if (client->toplevel == NULL) {
		fail(client, "cannot create an xdg_toplevel");
		return false;
	}
	xdg_toplevel_add_listener(client->toplevel, &toplevel_listener, client);
	xdg_toplevel_set_title(client->toplevel, client->opt.title);
	xdg_toplevel_set_app_id(client->toplevel, client->opt.app_id);
	if (client->opt.maximize) {
		xdg_toplevel_set_maximized(client->toplevel);
	}
	if (client->opt.fullscreen) {
		xdg_toplevel_set_fullscreen(client->toplevel, NULL);
	}
	if (client->opt.decoration != DECORATION_NONE) {
		decoration_create(client);
	}
	if (client->opt.subsurface && !subsurface_create(client)) {
		return false;
	}
	/* The initial commit carries no buffer; drawing waits for configure. */
	wl_surface_commit(client->surface);
	return client->running;
}

/* ---- keyboard ----------------------------------------------------------- */

static void keymap_replace(struct client *client, struct xkb_keymap *keymap,
	struct xkb_state *state)
{
	xkb_state_unref(client->xkb_state);
	xkb_keymap_unref(client->keymap);
	client->keymap = keymap;
	client->xkb_state = state;
}

static void keyboard_keymap(void *data, struct wl_keyboard *keyboard, uint32_t format,
	int32_t fd, uint32_t size)
{
	struct client *client = data;
	struct xkb_keymap *keymap;
	struct xkb_state *state;
	struct stat st;
	char *map;

	if (format != WL_KEYBOARD_KEYMAP_FORMAT_XKB_V1) {
		/* "no_keymap": key names will be reported as NoSymbol. */
		close(fd);
		keymap_replace(client, NULL, NULL);
		return;
	}
	if (size == 0 || size > MAX_KEYMAP_SIZE) {
		close(fd);
		fail(client, "keymap size %u is out of range", size);
		return;
	}
	if (fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && st.st_size < (off_t)size)) {
		close(fd);
		fail(client, "keymap fd is smaller than the announced %u bytes", size);
		return;
	}
	/* MAP_PRIVATE: required since wl_seat v7, and we never write to it. */
	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		fail(client, "cannot mmap the keymap: %s", strerror(errno));
		return;
	}
	/* The size includes a terminating NUL; do not trust it to be there. */
	keymap = xkb_keymap_new_from_buffer(client->xkb_context, map, strnlen(map, size),
		XKB_KEYMAP_FORMAT_TEXT_V1, XKB_KEYMAP_COMPILE_NO_FLAGS);
	munmap(map, size);
	if (keymap == NULL) {
		fail(client, "cannot compile the compositor's keymap");
		return;
	}
	state = xkb_state_new(keymap);
	if (state == NULL) {
		xkb_keymap_unref(keymap);
		fail(client, "cannot create an xkb_state");
		return;
	}
	keymap_replace(client, keymap, state);
}

static void keyboard_enter(void *data, struct wl_keyboard *keyboard, uint32_t serial,
	struct wl_surface *surface, struct wl_array *keys)
{
	printf("keyboard-enter\n");
}

static void keyboard_leave(void *data, struct wl_keyboard *keyboard, uint32_t serial,
	struct wl_surface *surface)
{
	printf("keyboard-leave\n");
}

static void keyboard_key(void *data, struct wl_keyboard *keyboard, uint32_t serial,
	uint32_t time, uint32_t key, uint32_t state)
{
	struct client *client = data;
	xkb_keysym_t sym = XKB_KEY_NoSymbol;
	char name[64];

	if (client->xkb_state != NULL) {
		/* Wayland sends evdev codes; XKB keycodes are offset by 8. */
		sym = xkb_state_key_get_one_sym(client->xkb_state, key + 8);
	}
	if (xkb_keysym_get_name(sym, name, sizeof(name)) < 0) {
		snprintf(name, sizeof(name), "NoSymbol");
	}
	printf("key %u %s %s\n", key, name,
		state == WL_KEYBOARD_KEY_STATE_PRESSED ? "pressed" : "released");
}

static void keyboard_modifiers(void *data, struct wl_keyboard *keyboard, uint32_t serial,
	uint32_t depressed, uint32_t latched, uint32_t locked, uint32_t group)
{
	struct client *client = data;

	if (client->xkb_state != NULL) {
		xkb_state_update_mask(client->xkb_state, depressed, latched, locked, 0, 0, group);
	}
	printf("modifiers %u %u %u %u\n", depressed, latched, locked, group);
}

static void keyboard_repeat_info(void *data, struct wl_keyboard *keyboard, int32_t rate,
	int32_t delay)
{
	/* Repeats are the client's job and the tests do not want them. */
}

static const struct wl_keyboard_listener keyboard_listener = {
	.keymap = keyboard_keymap,
	.enter = keyboard_enter,
	.leave = keyboard_leave,
	.key = keyboard_key,
	.modifiers = keyboard_modifiers,
	.repeat_info = keyboard_repeat_info,
};

/* ---- pointer ------------------------------------------------------------ */

static void pointer_enter(void *data, struct wl_pointer *pointer, uint32_t serial,
	struct wl_surface *surface, wl_fixed_t x, wl_fixed_t y)
{
	printf("pointer-enter %d %d\n", wl_fixed_to_int(x), wl_fixed_to_int(y));
}

static void pointer_leave(void *data, struct wl_pointer *pointer, uint32_t serial,
	struct wl_surface *surface)
{
	printf("pointer-leave\n");
}

static void pointer_motion(void *data, struct wl_pointer *pointer, uint32_t time,
	wl_fixed_t x, wl_fixed_t y)
{
	/* Not reported: absolute moves would make the output depend on timing. */
}

static void pointer_button(void *data, struct wl_pointer *pointer, uint32_t serial,
	uint32_t time, uint32_t button, uint32_t state)
{
	printf("button %u %s\n", button,
		state == WL_POINTER_BUTTON_STATE_PRESSED ? "pressed" : "released");
}

static void pointer_axis(void *data, struct wl_pointer *pointer, uint32_t time,
	uint32_t axis, wl_fixed_t value)
{
	printf("axis %u %d\n", axis, wl_fixed_to_int(value));
}

static void pointer_frame(void *data, struct wl_pointer *pointer)
{
}

static void pointer_axis_source(void *data, struct wl_pointer *pointer, uint32_t source)
{
}

static void pointer_axis_stop(void *data, struct wl_pointer *pointer, uint32_t time,
	uint32_t axis)
{
}

static void pointer_axis_discrete(void *data, struct wl_pointer *pointer, uint32_t axis,
	int32_t discrete)
{
}

static void pointer_axis_value120(void *data, struct wl_pointer *pointer, uint32_t axis,
	int32_t value120)
{
	/* Only sent for wl_seat >= 8; we bind at most 5. */
}

static const struct wl_pointer_listener pointer_listener = {
	.enter = pointer_enter,
	.leave = pointer_leave,
	.motion = pointer_motion,
	.button = pointer_button,
	.axis = pointer_axis,
	.frame = pointer_frame,
	.axis_source = pointer_axis_source,
	.axis_stop = pointer_axis_stop,
	.axis_discrete = pointer_axis_discrete,
	.axis_value120 = pointer_axis_value120,
};

/* ---- seat --------------------------------------------------------------- */

static void pointer_drop(struct client *client)
{
	if (client->pointer == NULL) {
		return;
	}
	if (client->seat_version >= WL_POINTER_RELEASE_SINCE_VERSION) {
		wl_pointer_release(client->pointer);
	} else {
		wl_pointer_destroy(client->pointer);
	}
	client->pointer = NULL;
}

static void keyboard_drop(struct client *client)
{
	if (client->keyboard == NULL) {
		return;
	}
	if (client->seat_version >= WL_KEYBOARD_RELEASE_SINCE_VERSION) {
		wl_keyboard_release(client->keyboard);
	} else {
		wl_keyboard_destroy(client->keyboard);
	}
	client->keyboard = NULL;
}

static void seat_capabilities(void *data, struct wl_seat *seat, uint32_t caps)
{
	struct client *client = data;
	bool has_pointer = caps & WL_SEAT_CAPABILITY_POINTER;
	bool has_keyboard = caps & WL_SEAT_CAPABILITY_KEYBOARD;

	if (has_pointer && client->pointer == NULL) {
		client->pointer = wl_seat_get_pointer(seat);
		if (client->pointer == NULL) {
			fail(client, "wl_seat_get_pointer failed");
			return;
		}
		wl_pointer_add_listener(client->pointer, &pointer_listener, client);
	} else if (!has_pointer) {
		pointer_drop(client);
	}

	if (has_keyboard && client->keyboard == NULL) {
		client->keyboard = wl_seat_get_keyboard(seat);
		if (client->keyboard == NULL) {
			fail(client, "wl_seat_get_keyboard failed");
			return;
		}
		wl_keyboard_add_listener(client->keyboard, &keyboard_listener, client);
	} else if (!has_keyboard) {
		keyboard_drop(client);
	}
}

static void seat_name(void *data, struct wl_seat *seat, const char *name)
{
}

static const struct wl_seat_listener seat_listener = {
	.capabilities = seat_capabilities,
	.name = seat_name,
};

static void wm_base_ping(void *data, struct xdg_wm_base *wm_base, uint32_t serial)
{
	xdg_wm_base_pong(wm_base, serial);
}

static const struct xdg_wm_base_listener wm_base_listener = {
	.ping = wm_base_ping,
};

/* ---- registry ----------------------------------------------------------- */

static uint32_t min_version(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static void registry_global(void *data, struct wl_registry *registry, uint32_t name,
	const char *interface, uint32_t version)
{
	struct client *client = data;

	if (strcmp(interface, wl_compositor_interface.name) == 0 && client->compositor == NULL) {
		/* Version 4 brings wl_surface.damage_buffer. */
		client->compositor_version = min_version(version, 4);
		client->compositor = wl_registry_bind(registry, name, &wl_compositor_interface,
			client->compositor_version);
	} else if (strcmp(interface, wl_subcompositor_interface.name) == 0 &&
			client->subcompositor == NULL) {
		client->subcompositor = wl_registry_bind(registry, name,
			&wl_subcompositor_interface, 1);
	} else if (strcmp(interface, wl_shm_interface.name) == 0 && client->shm == NULL) {
		client->shm = wl_registry_bind(registry, name, &wl_shm_interface, 1);
	} else if (strcmp(interface, xdg_wm_base_interface.name) == 0 &&
			client->wm_base == NULL) {
		client->wm_base = wl_registry_bind(registry, name, &xdg_wm_base_interface,
			min_version(version, 5));
		if (client->wm_base != NULL) {
			xdg_wm_base_add_listener(client->wm_base, &wm_base_listener, client);
		}
	} else if (strcmp(interface, zxdg_decoration_manager_v1_interface.name) == 0 &&
			client->decoration_manager == NULL &&
			client->opt.decoration != DECORATION_NONE) {
		client->decoration_manager = wl_registry_bind(registry, name,
			&zxdg_decoration_manager_v1_interface, 1);
	} else if (strcmp(interface, wl_seat_interface.name) == 0 && client->seat == NULL) {
		/* Version 5 has pointer frames but not axis_value120. */
		client->seat_version = min_version(version, 5);
		client->seat_name = name;
		client->seat = wl_registry_bind(registry, name, &wl_seat_interface,
			client->seat_version);
		if (client->seat != NULL) {
			wl_seat_add_listener(client->seat, &seat_listener, client);
		}
	}
}

static void registry_global_remove(void *data, struct wl_registry *registry, uint32_t name)
{
	struct client *client = data;

	if (client->seat != NULL && name == client->seat_name) {
		pointer_drop(client);
		keyboard_drop(client);
		if (client->seat_version >= WL_SEAT_RELEASE_SINCE_VERSION) {
			wl_seat_release(client->seat);
		} else {
			wl_seat_destroy(client->seat);
		}
		client->seat = NULL;
	}
}

static const struct wl_registry_listener registry_listener = {
	.global = registry_global,
	.global_remove = registry_global_remove,
};

static bool check_globals(struct client *client)
{
	const char *missing = NULL;

	if (client->compositor == NULL) {
		missing = "wl_compositor";
	} else if (client->shm == NULL) {
		missing = "wl_shm";
	} else if (client->wm_base == NULL) {
		missing = "xdg_wm_base";
	}
	if (missing != NULL) {
		fail(client, "the compositor does not advertise %s", missing);
		return false;
	}
	return true;
}

/* ---- main loop and teardown --------------------------------------------- */

/* Decide the exit status once dispatching failed. */
static void handle_display_error(struct client *client)
{
	int err = wl_display_get_error(client->display);
	const struct wl_interface *interface = NULL;
	uint32_t id = 0;
	uint32_t code;

	client->running = false;
	if (err == EPROTO) {
		code = wl_display_get_protocol_error(client->display, &interface, &id);
		fail(client, "protocol error %u on %s@%u", code,
			interface != NULL ? interface->name : "unknown", id);
	} else if (err == EPIPE || err == ECONNRESET) {
		/* The compositor went away: a normal end for a test client. */
	} else {
		fail(client, "lost the Wayland connection: %s", strerror(err));
	}
}

static void deferred_destroy_all(struct client *client)
{
	while (client->deferred != NULL) {
		struct deferred_line *line = client->deferred;
		client->deferred = line->next;
		wl_callback_destroy(line->callback);
		free(line);
	}
}

static void window_destroy(struct client *client)
{
	popup_destroy(client);
	if (client->subsurface != NULL) {
		wl_subsurface_destroy(client->subsurface);
	}
	if (client->sub_surface != NULL) {
		wl_surface_destroy(client->sub_surface);
	}
	if (client->decoration != NULL) {
		zxdg_toplevel_decoration_v1_destroy(client->decoration);
	}
	if (client->toplevel != NULL) {
		xdg_toplevel_destroy(client->toplevel);
	}
	if (client->xdg_surface != NULL) {
		xdg_surface_destroy(client->xdg_surface);
	}
	if (client->surface != NULL) {
		wl_surface_destroy(client->surface);
	}
	/* Surfaces are gone, so every remaining buffer can go now. */
	while (client->buffers != NULL) {
		buffer_free(client->buffers);
	}
}

static void client_destroy(struct client *client)
{
	window_destroy(client);
	deferred_destroy_all(client);
	pointer_drop(client);
	keyboard_drop(client);
	if (client->seat != NULL) {
		if (client->seat_version >= WL_SEAT_RELEASE_SINCE_VERSION) {
			wl_seat_release(client->seat);
		} else {
			wl_seat_destroy(client->seat);
		}
	}
	if (client->decoration_manager != NULL) {
		zxdg_decoration_manager_v1_destroy(client->decoration_manager);
	}
	if (client->wm_base != NULL) {
		xdg_wm_base_destroy(client->wm_base);
	}
	if (client->subcompositor != NULL) {
		wl_subcompositor_destroy(client->subcompositor);
	}
	if (client->shm != NULL) {
		wl_shm_destroy(client->shm);
	}
	if (client->compositor != NULL) {
		wl_compositor_destroy(client->compositor);
	}
	if (client->registry != NULL) {
		wl_registry_destroy(client->registry);
	}
	keymap_replace(client, NULL, NULL);
	xkb_context_unref(client->xkb_context);
	if (client->display != NULL) {
		/* Best effort: lets the compositor see the destroys before EOF. */
		wl_display_flush(client->display);
		wl_display_disconnect(client->display);
	}
}

static bool client_connect(struct client *client)
{
	client->xkb_context = xkb_context_new(XKB_CONTEXT_NO_FLAGS);
	if (client->xkb_context == NULL) {
		fail(client, "cannot create an xkb context");
		return false;
	}
	client->display = wl_display_connect(NULL);
	if (client->display == NULL) {
		fail(client, "cannot connect to the Wayland display '%s': %s",
			getenv("WAYLAND_DISPLAY") != NULL ? getenv("WAYLAND_DISPLAY") : "wayland-0",
			strerror(errno));
		return false;
	}
	client->registry = wl_display_get_registry(client->display);
	if (client->registry == NULL) {
		fail(client, "cannot get the registry");
		return false;
	}
	wl_registry_add_listener(client->registry, &registry_listener, client);
	if (wl_display_roundtrip(client->display) == -1) {
		handle_display_error(client);
		return false;
	}
	return client->running && check_globals(client);
}

int main(int argc, char **argv)
{
	struct client client = { .running = true };
	int status;

	status = parse_options(argc, argv, &client.opt);
	if (status != 0) {
		/* --help succeeded; usage errors are errors like any other. */
		return status == 1 ? 0 : 1;
	}
	/* Tests read stdout through a pipe and must see each line at once. */
	if (setvbuf(stdout, NULL, _IOLBF, 0) != 0) {
		fprintf(stderr, PROG ": cannot make stdout line-buffered\n");
		return 1;
	}

	if (client_connect(&client) && window_create(&client)) {
		while (client.running) {
			if (wl_display_dispatch(client.display) == -1) {
				handle_display_error(&client);
			}
		}
	}
	client_destroy(&client);
	if (fflush(stdout) != 0) {
		return 1;
	}
	return client.exit_code;
}
