/*
 * cw-test-client: a deterministic xdg-shell client for crossway's tests.
 *
 * It shows a solid-colour window, optionally with a subsurface, a popup and
 * an xdg-decoration request, and reports what the compositor tells it (configure
 * events, input) as one line per event on stdout so that test scripts can
 * wait for and match those lines.
 *
 * Options also make it exercise the protocols a compositor mediates for
 * clients: interactive move and resize, pointer locks and confinement,
 * relative motion, xdg-activation tokens and idle inhibition.
 *
 * Others make it draw where a window should not (what a hostile guest
 * would do): a subsurface anywhere (--subsurface-at), a buffer larger than
 * the window geometry (--buffer-margin), a popup placed anywhere without
 * constraint adjustments (--popup-at) that may ignore the size it is
 * configured with (--popup-ignore-configure).
 *
 * For benchmarks, --animate redraws the window continuously (paced by frame
 * callbacks, or as fast as buffers come back) and --animate-for reports
 * commits, presented frames and the client's own CPU time over a window.
 */
#define _GNU_SOURCE /* memfd_create */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/input-event-codes.h>
#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>

#include "idle-inhibit-unstable-v1-client-protocol.h"
#include "pointer-constraints-unstable-v1-client-protocol.h"
#include "presentation-time-client-protocol.h"
#include "relative-pointer-unstable-v1-client-protocol.h"
#include "xdg-activation-v1-client-protocol.h"
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
#define CURSOR_COLOR 0x00ffffu

enum decoration_request {
	DECORATION_NONE,
	DECORATION_SERVER,
	DECORATION_CLIENT,
};

/* A surface can have only one pointer constraint per seat. */
enum pointer_constraint_request {
	CONSTRAINT_NONE,
	CONSTRAINT_LOCK,
	CONSTRAINT_CONFINE,
};

/* --animate: how redraws are paced. */
enum animate_mode {
	ANIMATE_NONE,
	ANIMATE_FRAME, /* one redraw per frame callback */
	ANIMATE_SPIN,  /* a redraw whenever a buffer is free; no frame callbacks */
};

struct rect {
	int x, y, width, height;
};

struct options {
	uint32_t color;
	int width, height;
	const char *title;
	const char *app_id;
	enum decoration_request decoration;
	bool subsurface;
	uint32_t subsurface_color;
	bool subsurface_rect_set; /* --subsurface-at */
	struct rect subsurface_rect;
	bool popup;
	bool popup_rect_set; /* --popup-at */
	struct rect popup_rect;
	bool popup_ignore_configure;
	int buffer_margin; /* pixels of buffer beyond the window geometry, each side */
	int cursor_width, cursor_height; /* --cursor; 0: the compositor's cursor */
	bool maximize;
	bool fullscreen;

	/* What a left press on the main surface asks for, if anything. */
	bool move_on_press;
	uint32_t resize_edge; /* an xdg_toplevel.resize_edge, 0 for none */
	const char *resize_edge_name;

	enum pointer_constraint_request constraint;
	bool confine_region_set;
	struct rect confine_region;
	bool print_motion;
	bool relative_pointer;

	const char *activate_token; /* NULL: do not activate */
	bool request_token;
	bool idle_inhibit;

	xkb_keysym_t exit_keysym; /* XKB_KEY_NoSymbol: no exit key */

	enum animate_mode animate;
	int damage_width, damage_height; /* 0: the whole window */
	double animate_for;             /* seconds; 0: until killed */
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
	/* Run after printing; NULL for none. */
	void (*then)(struct client *client);
	struct deferred_line *next;
};

/*
 * --animate: a few buffers mapped for good, redrawn in place. One is
 * reused once the compositor released it.
 */
#define ANIM_BUFFERS 3

struct anim_buffer {
	struct client *client;
	struct wl_buffer *wl_buffer; /* NULL: free slot */
	uint32_t *pixels;
	size_t size;
	int width, height;
	bool busy;
};

struct anim_feedback {
	struct client *client;
	struct wp_presentation_feedback *feedback;
	struct anim_feedback *next;
};

struct anim {
	bool running;   /* started and not stopped */
	bool want_draw; /* frame mode: a frame callback came (or the start) */
	struct anim_buffer buffers[ANIM_BUFFERS];
	struct wl_callback *frame;
	struct wl_callback *report; /* the sync after the end */
	struct anim_feedback *feedbacks;
	uint32_t tick;
	struct timespec start, end; /* end: only with --animate-for */
	struct rusage usage;        /* at the start */
	double seconds, cpu_ms;     /* at the end */
	uint64_t commits, frame_callbacks, presented, discarded;
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
	/* Bound only when an option needs them (see registry_global). */
	struct zwp_pointer_constraints_v1 *pointer_constraints;
	struct zwp_relative_pointer_manager_v1 *relative_pointer_manager;
	struct xdg_activation_v1 *activation;
	struct zwp_idle_inhibit_manager_v1 *idle_inhibit_manager;
	struct wp_presentation *presentation; /* --animate, when offered */

	/* Tied to the current wl_pointer: made and dropped along with it. */
	struct zwp_locked_pointer_v1 *locked_pointer;
	struct zwp_confined_pointer_v1 *confined_pointer;
	struct zwp_relative_pointer_v1 *relative_pointer;

	/* The surface the pointer is over, to tell main-surface presses apart. */
	struct wl_surface *pointer_focus;
	/* Proof of user interaction for xdg-activation tokens. */
	uint32_t last_input_serial;
	bool has_input_serial;

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
	struct wl_surface *cursor_surface; /* --cursor */
	struct buffer *cursor_buffer;

	struct wl_surface *popup_surface;
	struct xdg_surface *popup_xdg_surface;
	struct xdg_popup *popup;
	struct buffer *popup_buffer;
	int popup_buffer_w, popup_buffer_h;
	int popup_x, popup_y, popup_w, popup_h;

	struct xdg_activation_token_v1 *activation_token;
	struct zwp_idle_inhibitor_v1 *idle_inhibitor;

	struct buffer *buffers;
	struct deferred_line *deferred;
	struct anim anim;

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
		"  --subsurface-at X,Y,W,H with --subsurface: put it at X,Y (may be negative,\n"
		"                          outside the window) with size WxH instead\n"
		"  --buffer-margin N       draw a buffer N pixels larger than the window\n"
		"                          geometry on every side (in --color; 0..4096)\n"
		"  --cursor WxH            on pointer enter, set a WxH cursor in 00ffff\n"
		"                          (hotspot 0,0) and print 'cursor-set W H'\n"
		"  --popup                 open a 60x40 popup after the first configure\n"
		"  --popup-at X,Y,W,H      with --popup: ask for a WxH popup at X,Y of the\n"
		"                          window geometry, with no constraint adjustment;\n"
		"                          it draws the size it is configured with\n"
		"  --popup-ignore-configure\n"
		"                          with --popup: draw the size asked for, whatever\n"
		"                          the compositor configured\n"
		"  --maximize              request maximized before mapping\n"
		"  --fullscreen            request fullscreen before mapping\n"
		"  --move-on-press         on a left press on the window, ask to be moved\n"
		"  --resize-on-press EDGE  on a left press on the window, ask to be resized\n"
		"                          from EDGE: top, bottom, left, right, top_left,\n"
		"                          top_right, bottom_left or bottom_right\n"
		"  --lock-pointer          lock the pointer on the window (persistent)\n"
		"  --confine-pointer       confine the pointer to the window (persistent)\n"
		"  --confine-region X,Y,W,H\n"
		"                          confine to this surface-local rectangle instead\n"
		"  --print-motion          print 'motion X Y' on every pointer motion\n"
		"  --relative-pointer      print 'relative DX DY' on every relative motion\n"
		"  --activate-token TOKEN  once mapped, ask for activation with TOKEN\n"
		"  --request-token         once mapped, get an activation token and print it\n"
		"  --idle-inhibit          once mapped, inhibit idling while visible\n"
		"  --exit-on-key NAME      exit 0 when the key with keysym NAME is pressed\n"
		"  --animate frame|spin    once mapped, redraw continuously (benchmarks):\n"
		"                          'frame' redraws on each frame callback, 'spin'\n"
		"                          whenever one of its 3 buffers is released (no\n"
		"                          frame callbacks); prints 'animate-start'\n"
		"  --damage full|WxH       what each redraw repaints and damages: the whole\n"
		"                          window (default) or a WxH rectangle at its centre\n"
		"  --animate-for SECONDS   stop redrawing after SECONDS and print 'animate:'\n"
		"                          with commits, frame callbacks, wp_presentation\n"
		"                          presented/discarded counts, shown (commits not\n"
		"                          discarded) and the client's CPU ms over that\n"
		"                          time; the window stays until killed\n"
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

/* Parses an integer in [-MAX_DIMENSION, MAX_DIMENSION], advancing *s. */
static bool parse_coordinate(const char **s, int *out)
{
	bool negative = **s == '-';
	const char *p = *s + (negative ? 1 : 0);
	long value = 0;

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
	*out = (int)(negative ? -value : value);
	*s = p;
	return true;
}

/* "X,Y,W,H": a position that may be negative and a non-empty size. */
static bool parse_rect(const char *s, struct rect *out)
{
	return parse_coordinate(&s, &out->x) && *s++ == ',' &&
		parse_coordinate(&s, &out->y) && *s++ == ',' &&
		parse_dimension(&s, &out->width) && *s++ == ',' &&
		parse_dimension(&s, &out->height) && *s == '\0';
}

/* Maps an edge name to xdg_toplevel.resize_edge; 0 if unknown. */
static uint32_t parse_resize_edge(const char *name)
{
	static const struct {
		const char *name;
		uint32_t edge;
	} edges[] = {
		{ "top", XDG_TOPLEVEL_RESIZE_EDGE_TOP },
		{ "bottom", XDG_TOPLEVEL_RESIZE_EDGE_BOTTOM },
		{ "left", XDG_TOPLEVEL_RESIZE_EDGE_LEFT },
		{ "right", XDG_TOPLEVEL_RESIZE_EDGE_RIGHT },
		{ "top_left", XDG_TOPLEVEL_RESIZE_EDGE_TOP_LEFT },
		{ "top_right", XDG_TOPLEVEL_RESIZE_EDGE_TOP_RIGHT },
		{ "bottom_left", XDG_TOPLEVEL_RESIZE_EDGE_BOTTOM_LEFT },
		{ "bottom_right", XDG_TOPLEVEL_RESIZE_EDGE_BOTTOM_RIGHT },
	};

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		if (strcmp(name, edges[i].name) == 0) {
			return edges[i].edge;
		}
	}
	return XDG_TOPLEVEL_RESIZE_EDGE_NONE;
}

static bool takes_value(const char *option)
{
	static const char *const with_value[] = {
		"--color", "--size", "--title", "--app-id", "--decoration", "--subsurface",
		"--resize-on-press", "--confine-region", "--activate-token", "--exit-on-key",
		"--animate", "--damage", "--animate-for", "--subsurface-at", "--popup-at",
		"--buffer-margin", "--cursor",
	};

	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++) {
		if (strcmp(option, with_value[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* Options that only make sense together, or not at all together. */
static bool check_option_combinations(const struct options *opt)
{
	if (opt->move_on_press && opt->resize_edge != XDG_TOPLEVEL_RESIZE_EDGE_NONE) {
		/* A press can start only one interactive operation. */
		fprintf(stderr, PROG ": --move-on-press and --resize-on-press exclude each other\n");
		return false;
	}
	if (opt->confine_region_set && opt->constraint != CONSTRAINT_CONFINE) {
		fprintf(stderr, PROG ": --confine-region needs --confine-pointer\n");
		return false;
	}
	if ((opt->damage_width > 0 || opt->animate_for > 0) && opt->animate == ANIMATE_NONE) {
		fprintf(stderr, PROG ": --damage and --animate-for need --animate\n");
		return false;
	}
	if (opt->subsurface_rect_set && !opt->subsurface) {
		fprintf(stderr, PROG ": --subsurface-at needs --subsurface\n");
		return false;
	}
	if ((opt->popup_rect_set || opt->popup_ignore_configure) && !opt->popup) {
		fprintf(stderr, PROG ": --popup-at and --popup-ignore-configure need --popup\n");
		return false;
	}
	if (opt->buffer_margin > 0 && opt->animate != ANIMATE_NONE) {
		fprintf(stderr, PROG ": --buffer-margin and --animate exclude each other\n");
		return false;
	}
	return true;
}

/* Sets the pointer constraint once: the protocol allows one per surface. */
static bool set_constraint(struct options *opt, enum pointer_constraint_request constraint)
{
	if (opt->constraint != CONSTRAINT_NONE && opt->constraint != constraint) {
		fprintf(stderr, PROG ": --lock-pointer and --confine-pointer exclude each other\n");
		return false;
	}
	opt->constraint = constraint;
	return true;
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
		.constraint = CONSTRAINT_NONE,
		.exit_keysym = XKB_KEY_NoSymbol,
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
		} else if (strcmp(arg, "--subsurface-at") == 0) {
			if (!parse_rect(value, &opt->subsurface_rect)) {
				fprintf(stderr, PROG ": --subsurface-at expects X,Y,W,H with W,H >= 1, "
					"got '%s'\n", value);
				return 2;
			}
			opt->subsurface_rect_set = true;
		} else if (strcmp(arg, "--buffer-margin") == 0) {
			const char *p = value;
			if (!parse_coordinate(&p, &opt->buffer_margin) || *p != '\0' ||
					opt->buffer_margin < 0 || opt->buffer_margin > 4096) {
				fprintf(stderr, PROG ": --buffer-margin expects 0..4096, got '%s'\n", value);
				return 2;
			}
		} else if (strcmp(arg, "--cursor") == 0) {
			if (!parse_size(value, &opt->cursor_width, &opt->cursor_height)) {
				fprintf(stderr, PROG ": --cursor expects WxH with 1 <= W,H <= %d, got '%s'\n",
					MAX_DIMENSION, value);
				return 2;
			}
		} else if (strcmp(arg, "--popup") == 0) {
			opt->popup = true;
		} else if (strcmp(arg, "--popup-at") == 0) {
			if (!parse_rect(value, &opt->popup_rect)) {
				fprintf(stderr, PROG ": --popup-at expects X,Y,W,H with W,H >= 1, got '%s'\n",
					value);
				return 2;
			}
			opt->popup_rect_set = true;
		} else if (strcmp(arg, "--popup-ignore-configure") == 0) {
			opt->popup_ignore_configure = true;
		} else if (strcmp(arg, "--maximize") == 0) {
			opt->maximize = true;
		} else if (strcmp(arg, "--fullscreen") == 0) {
			opt->fullscreen = true;
		} else if (strcmp(arg, "--move-on-press") == 0) {
			opt->move_on_press = true;
		} else if (strcmp(arg, "--resize-on-press") == 0) {
			opt->resize_edge = parse_resize_edge(value);
			if (opt->resize_edge == XDG_TOPLEVEL_RESIZE_EDGE_NONE) {
				fprintf(stderr, PROG ": --resize-on-press expects top, bottom, left, right, "
					"top_left, top_right, bottom_left or bottom_right, got '%s'\n", value);
				return 2;
			}
			opt->resize_edge_name = value;
		} else if (strcmp(arg, "--lock-pointer") == 0) {
			if (!set_constraint(opt, CONSTRAINT_LOCK)) {
				return 2;
			}
		} else if (strcmp(arg, "--confine-pointer") == 0) {
			if (!set_constraint(opt, CONSTRAINT_CONFINE)) {
				return 2;
			}
		} else if (strcmp(arg, "--confine-region") == 0) {
			if (!parse_rect(value, &opt->confine_region)) {
				fprintf(stderr, PROG ": --confine-region expects X,Y,W,H with W,H >= 1, "
					"got '%s'\n", value);
				return 2;
			}
			opt->confine_region_set = true;
		} else if (strcmp(arg, "--print-motion") == 0) {
			opt->print_motion = true;
		} else if (strcmp(arg, "--relative-pointer") == 0) {
			opt->relative_pointer = true;
		} else if (strcmp(arg, "--activate-token") == 0) {
			if (value[0] == '\0') {
				fprintf(stderr, PROG ": --activate-token needs a non-empty token\n");
				return 2;
			}
			opt->activate_token = value;
		} else if (strcmp(arg, "--request-token") == 0) {
			opt->request_token = true;
		} else if (strcmp(arg, "--idle-inhibit") == 0) {
			opt->idle_inhibit = true;
		} else if (strcmp(arg, "--exit-on-key") == 0) {
			/* Checked now so that a typo fails at once, not at the timeout. */
			opt->exit_keysym = xkb_keysym_from_name(value, XKB_KEYSYM_NO_FLAGS);
			if (opt->exit_keysym == XKB_KEY_NoSymbol) {
				fprintf(stderr, PROG ": --exit-on-key expects an XKB keysym name "
					"(Escape, q, Return), got '%s'\n", value);
				return 2;
			}
		} else if (strcmp(arg, "--animate") == 0) {
			if (strcmp(value, "frame") == 0) {
				opt->animate = ANIMATE_FRAME;
			} else if (strcmp(value, "spin") == 0) {
				opt->animate = ANIMATE_SPIN;
			} else {
				fprintf(stderr, PROG ": --animate expects frame or spin, got '%s'\n", value);
				return 2;
			}
		} else if (strcmp(arg, "--damage") == 0) {
			if (strcmp(value, "full") == 0) {
				opt->damage_width = opt->damage_height = 0;
			} else if (!parse_size(value, &opt->damage_width, &opt->damage_height)) {
				fprintf(stderr, PROG ": --damage expects full or WxH, got '%s'\n", value);
				return 2;
			}
		} else if (strcmp(arg, "--animate-for") == 0) {
			char *end;
			errno = 0;
			opt->animate_for = strtod(value, &end);
			if (errno != 0 || end == value || *end != '\0' || !(opt->animate_for > 0) ||
					opt->animate_for > 86400) {
				fprintf(stderr, PROG ": --animate-for expects seconds (0 < s <= 86400), "
					"got '%s'\n", value);
				return 2;
			}
		} else {
			fprintf(stderr, PROG ": unknown argument '%s'\n", arg);
			usage(stderr);
			return 2;
		}
	}
	return check_option_combinations(opt) ? 0 : 2;
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
	struct client *client = line->client;
	void (*then)(struct client *client) = line->then;

	printf("%s\n", line->text);
	deferred_unlink(line);
	wl_callback_destroy(callback);
	free(line);
	if (then != NULL) {
		then(client);
	}
}

static const struct wl_callback_listener deferred_listener = {
	.done = deferred_done,
};

/*
 * Print text (may contain newlines) once the compositor caught up, then
 * call then (if not NULL): by that time the compositor has also sent every
 * event that the earlier requests caused.
 */
static void print_after_sync_then(struct client *client, const char *text,
	void (*then)(struct client *client))
{
	struct deferred_line *line = calloc(1, sizeof(*line));

	if (line == NULL) {
		fail(client, "out of memory");
		return;
	}
	snprintf(line->text, sizeof(line->text), "%s", text);
	line->client = client;
	line->then = then;
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

static void print_after_sync(struct client *client, const char *text)
{
	print_after_sync_then(client, text, NULL);
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

/* The size a popup draws: asked for, or (--popup-at) as configured. */
static void popup_draw_size(struct client *client, int *width, int *height)
{
	const struct options *opt = &client->opt;

	*width = opt->popup_rect_set ? opt->popup_rect.width : POPUP_WIDTH;
	*height = opt->popup_rect_set ? opt->popup_rect.height : POPUP_HEIGHT;
	if (opt->popup_rect_set && !opt->popup_ignore_configure && client->popup_w > 0 &&
			client->popup_h > 0 && client->popup_w <= MAX_DIMENSION &&
			client->popup_h <= MAX_DIMENSION) {
		*width = client->popup_w;
		*height = client->popup_h;
	}
}

static void popup_surface_configure(void *data, struct xdg_surface *xdg_surface,
	uint32_t serial)
{
	struct client *client = data;
	char text[64];

	xdg_surface_ack_configure(xdg_surface, serial);
	int width, height;
	popup_draw_size(client, &width, &height);
	/* A new buffer only when the size changes (the default popup never does). */
	if (client->popup_buffer == NULL || width != client->popup_buffer_w ||
			height != client->popup_buffer_h) {
		if (!surface_show_color(client, client->popup_surface, &client->popup_buffer,
				width, height, POPUP_COLOR)) {
			return;
		}
		client->popup_buffer_w = width;
		client->popup_buffer_h = height;
		xdg_surface_set_window_geometry(xdg_surface, 0, 0, width, height);
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
	if (client->opt.popup_rect_set) {
		/* Exactly where asked: offset from a 1x1 anchor at the geometry's origin. */
		const struct rect *r = &client->opt.popup_rect;
		xdg_positioner_set_size(positioner, r->width, r->height);
		xdg_positioner_set_anchor_rect(positioner, 0, 0, 1, 1);
		xdg_positioner_set_anchor(positioner, XDG_POSITIONER_ANCHOR_TOP_LEFT);
		xdg_positioner_set_gravity(positioner, XDG_POSITIONER_GRAVITY_BOTTOM_RIGHT);
		xdg_positioner_set_offset(positioner, r->x, r->y);
		xdg_positioner_set_constraint_adjustment(positioner,
			XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_NONE);
	} else {
		xdg_positioner_set_size(positioner, POPUP_WIDTH, POPUP_HEIGHT);
		/* A 1x1 anchor rect in the bottom-right corner of the window geometry. */
		xdg_positioner_set_anchor_rect(positioner, client->width - 1, client->height - 1,
			1, 1);
		xdg_positioner_set_anchor(positioner, XDG_POSITIONER_ANCHOR_BOTTOM_RIGHT);
		xdg_positioner_set_gravity(positioner, XDG_POSITIONER_GRAVITY_BOTTOM_RIGHT);
		xdg_positioner_set_constraint_adjustment(positioner,
			XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_SLIDE_X |
			XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_SLIDE_Y |
			XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_FLIP_X |
			XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_FLIP_Y);
	}

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

/* ---- pointer constraints and relative motion ---------------------------- */

static void locked_pointer_locked(void *data, struct zwp_locked_pointer_v1 *locked_pointer)
{
	printf("pointer-locked\n");
}

static void locked_pointer_unlocked(void *data,
	struct zwp_locked_pointer_v1 *locked_pointer)
{
	/* Persistent lifetime: the lock may come back, so the object stays. */
	printf("pointer-unlocked\n");
}

static const struct zwp_locked_pointer_v1_listener locked_pointer_listener = {
	.locked = locked_pointer_locked,
	.unlocked = locked_pointer_unlocked,
};

static void confined_pointer_confined(void *data,
	struct zwp_confined_pointer_v1 *confined_pointer)
{
	printf("pointer-confined\n");
}

static void confined_pointer_unconfined(void *data,
	struct zwp_confined_pointer_v1 *confined_pointer)
{
	printf("pointer-unconfined\n");
}

static const struct zwp_confined_pointer_v1_listener confined_pointer_listener = {
	.confined = confined_pointer_confined,
	.unconfined = confined_pointer_unconfined,
};

/* The --confine-region rectangle as a wl_region, or NULL for the whole surface. */
static struct wl_region *confine_region_create(struct client *client)
{
	const struct rect *r = &client->opt.confine_region;
	struct wl_region *region;

	if (!client->opt.confine_region_set) {
		return NULL;
	}
	region = wl_compositor_create_region(client->compositor);
	if (region == NULL) {
		fail(client, "cannot create a wl_region");
		return NULL;
	}
	wl_region_add(region, r->x, r->y, r->width, r->height);
	return region;
}

/*
 * A constraint names a wl_pointer, so it can only exist while we have one
 * and a surface. Called whenever either appears; does nothing until both do.
 */
static void pointer_constraint_create(struct client *client)
{
	const uint32_t lifetime = ZWP_POINTER_CONSTRAINTS_V1_LIFETIME_PERSISTENT;
	struct wl_region *region;

	if (client->opt.constraint == CONSTRAINT_NONE || client->pointer_constraints == NULL ||
			client->pointer == NULL || client->surface == NULL ||
			client->locked_pointer != NULL || client->confined_pointer != NULL) {
		return;
	}
	if (client->opt.constraint == CONSTRAINT_LOCK) {
		client->locked_pointer = zwp_pointer_constraints_v1_lock_pointer(
			client->pointer_constraints, client->surface, client->pointer, NULL, lifetime);
		if (client->locked_pointer == NULL) {
			fail(client, "cannot create a zwp_locked_pointer_v1");
			return;
		}
		zwp_locked_pointer_v1_add_listener(client->locked_pointer, &locked_pointer_listener,
			client);
		return;
	}
	region = confine_region_create(client);
	if (client->opt.confine_region_set && region == NULL) {
		return; /* already reported */
	}
	client->confined_pointer = zwp_pointer_constraints_v1_confine_pointer(
		client->pointer_constraints, client->surface, client->pointer, region, lifetime);
	/* The compositor copied the region; ours is no longer needed. */
	if (region != NULL) {
		wl_region_destroy(region);
	}
	if (client->confined_pointer == NULL) {
		fail(client, "cannot create a zwp_confined_pointer_v1");
		return;
	}
	zwp_confined_pointer_v1_add_listener(client->confined_pointer,
		&confined_pointer_listener, client);
}

static void pointer_constraint_destroy(struct client *client)
{
	if (client->locked_pointer != NULL) {
		zwp_locked_pointer_v1_destroy(client->locked_pointer);
		client->locked_pointer = NULL;
	}
	if (client->confined_pointer != NULL) {
		zwp_confined_pointer_v1_destroy(client->confined_pointer);
		client->confined_pointer = NULL;
	}
}

static void relative_pointer_motion(void *data,
	struct zwp_relative_pointer_v1 *relative_pointer, uint32_t utime_hi, uint32_t utime_lo,
	wl_fixed_t dx, wl_fixed_t dy, wl_fixed_t dx_unaccel, wl_fixed_t dy_unaccel)
{
	/* The accelerated values: what a game or a locked-pointer client uses. */
	printf("relative %d %d\n", wl_fixed_to_int(dx), wl_fixed_to_int(dy));
}

static const struct zwp_relative_pointer_v1_listener relative_pointer_listener = {
	.relative_motion = relative_pointer_motion,
};

/* Like the constraint, a relative pointer lives as long as its wl_pointer. */
static void relative_pointer_create(struct client *client)
{
	if (!client->opt.relative_pointer || client->relative_pointer_manager == NULL ||
			client->pointer == NULL || client->relative_pointer != NULL) {
		return;
	}
	client->relative_pointer = zwp_relative_pointer_manager_v1_get_relative_pointer(
		client->relative_pointer_manager, client->pointer);
	if (client->relative_pointer == NULL) {
		fail(client, "cannot create a zwp_relative_pointer_v1");
		return;
	}
	zwp_relative_pointer_v1_add_listener(client->relative_pointer,
		&relative_pointer_listener, client);
}

static void relative_pointer_destroy(struct client *client)
{
	if (client->relative_pointer != NULL) {
		zwp_relative_pointer_v1_destroy(client->relative_pointer);
		client->relative_pointer = NULL;
	}
}

/* ---- animation (--animate) ---------------------------------------------- */

static void anim_buffer_free(struct anim_buffer *b)
{
	wl_buffer_destroy(b->wl_buffer);
	munmap(b->pixels, b->size);
	*b = (struct anim_buffer){ 0 };
}

static void anim_buffer_release(void *data, struct wl_buffer *wl_buffer)
{
	struct anim_buffer *b = data;

	b->busy = false;
	/* The window was resized since: this size is of no more use. */
	if (b->width != b->client->width || b->height != b->client->height) {
		anim_buffer_free(b);
	}
}

static const struct wl_buffer_listener anim_buffer_listener = {
	.release = anim_buffer_release,
};

static bool anim_buffer_init(struct client *client, struct anim_buffer *b)
{
	int width = client->width, height = client->height;
	int stride = width * 4;
	size_t size = (size_t)stride * (size_t)height;
	struct wl_shm_pool *pool;
	int fd = memfd_create(PROG "-anim", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		fail(client, "cannot make a %dx%d buffer: %s", width, height, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return false;
	}
	b->pixels = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b->pixels == MAP_FAILED) {
		fail(client, "cannot map a %dx%d buffer: %s", width, height, strerror(errno));
		close(fd);
		b->pixels = NULL;
		return false;
	}
	for (size_t i = 0; i < size / 4; i++) {
		b->pixels[i] = 0xff000000u | client->opt.color;
	}
	pool = wl_shm_create_pool(client->shm, fd, (int32_t)size);
	close(fd);
	b->wl_buffer = wl_shm_pool_create_buffer(pool, 0, width, height, stride,
		WL_SHM_FORMAT_ARGB8888);
	wl_shm_pool_destroy(pool);
	wl_buffer_add_listener(b->wl_buffer, &anim_buffer_listener, b);
	b->client = client;
	b->size = size;
	b->width = width;
	b->height = height;
	return true;
}

/* A released buffer of the window's size, or NULL when all are busy. */
static struct anim_buffer *anim_buffer_get(struct client *client)
{
	struct anim_buffer *slot = NULL;

	for (int i = 0; i < ANIM_BUFFERS; i++) {
		struct anim_buffer *b = &client->anim.buffers[i];
		if (b->wl_buffer != NULL && !b->busy &&
				(b->width != client->width || b->height != client->height)) {
			anim_buffer_free(b);
		}
		if (b->wl_buffer != NULL && !b->busy) {
			return b;
		}
		if (b->wl_buffer == NULL && slot == NULL) {
			slot = b;
		}
	}
	if (slot == NULL || !anim_buffer_init(client, slot)) {
		return NULL;
	}
	return slot;
}

static void anim_feedback_done(struct anim_feedback *f, bool presented)
{
	struct client *client = f->client;
	struct anim_feedback **link = &client->anim.feedbacks;

	/* Every feedback is of a commit made while animating. */
	if (presented) {
		client->anim.presented++;
	} else {
		client->anim.discarded++;
	}
	while (*link != f) {
		link = &(*link)->next;
	}
	*link = f->next;
	wp_presentation_feedback_destroy(f->feedback);
	free(f);
}

static void anim_feedback_sync_output(void *data,
	struct wp_presentation_feedback *feedback, struct wl_output *output)
{
}

static void anim_feedback_presented(void *data, struct wp_presentation_feedback *feedback,
	uint32_t tv_sec_hi, uint32_t tv_sec_lo, uint32_t tv_nsec, uint32_t refresh,
	uint32_t seq_hi, uint32_t seq_lo, uint32_t flags)
{
	anim_feedback_done(data, true);
}

static void anim_feedback_discarded(void *data, struct wp_presentation_feedback *feedback)
{
	anim_feedback_done(data, false);
}

static const struct wp_presentation_feedback_listener anim_feedback_listener = {
	.sync_output = anim_feedback_sync_output,
	.presented = anim_feedback_presented,
	.discarded = anim_feedback_discarded,
};

static void anim_frame_done(void *data, struct wl_callback *callback, uint32_t time)
{
	struct client *client = data;

	wl_callback_destroy(callback);
	client->anim.frame = NULL;
	if (client->anim.running) {
		client->anim.frame_callbacks++;
		client->anim.want_draw = true;
	}
}

static const struct wl_callback_listener anim_frame_listener = {
	.done = anim_frame_done,
};

/* Repaints the damage rectangle of a free buffer and commits it. */
static bool anim_draw(struct client *client)
{
	struct anim *anim = &client->anim;
	struct anim_buffer *b = anim_buffer_get(client);
	int w = client->opt.damage_width, h = client->opt.damage_height;
	uint32_t pixel;

	if (b == NULL) {
		return false;
	}
	if (w <= 0 || w > b->width) {
		w = b->width;
	}
	if (h <= 0 || h > b->height) {
		h = b->height;
	}
	int x = (b->width - w) / 2, y = (b->height - h) / 2;
	anim->tick++;
	pixel = 0xff000000u | ((client->opt.color + anim->tick * 0x030507u) & 0xffffffu);
	for (int row = y; row < y + h; row++) {
		uint32_t *p = b->pixels + (size_t)row * (size_t)b->width + (size_t)x;
		for (int col = 0; col < w; col++) {
			p[col] = pixel;
		}
	}
	wl_surface_attach(client->surface, b->wl_buffer, 0, 0);
	if (client->compositor_version >= WL_SURFACE_DAMAGE_BUFFER_SINCE_VERSION) {
		wl_surface_damage_buffer(client->surface, x, y, w, h);
	} else {
		wl_surface_damage(client->surface, x, y, w, h);
	}
	if (client->opt.animate == ANIMATE_FRAME) {
		anim->frame = wl_surface_frame(client->surface);
		wl_callback_add_listener(anim->frame, &anim_frame_listener, client);
	}
	if (client->presentation != NULL) {
		struct anim_feedback *f = calloc(1, sizeof(*f));
		if (f == NULL) {
			fail(client, "out of memory");
			return false;
		}
		f->client = client;
		f->feedback = wp_presentation_feedback(client->presentation, client->surface);
		wp_presentation_feedback_add_listener(f->feedback, &anim_feedback_listener, f);
		f->next = anim->feedbacks;
		anim->feedbacks = f;
	}
	wl_surface_commit(client->surface);
	b->busy = true;
	anim->want_draw = false;
	anim->commits++;
	return true;
}

static double timespec_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(a->tv_sec - b->tv_sec) + (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

static double rusage_ms(const struct rusage *r)
{
	return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e3 +
		(double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e3;
}

static void anim_start(struct client *client)
{
	struct anim *anim = &client->anim;

	clock_gettime(CLOCK_MONOTONIC, &anim->start);
	getrusage(RUSAGE_SELF, &anim->usage);
	if (client->opt.animate_for > 0) {
		double s = client->opt.animate_for;
		anim->end = anim->start;
		anim->end.tv_sec += (time_t)s;
		anim->end.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
		if (anim->end.tv_nsec >= 1000000000L) {
			anim->end.tv_sec++;
			anim->end.tv_nsec -= 1000000000L;
		}
	}
	anim->running = true;
	anim->want_draw = true;
	printf("animate-start\n");
}

static void anim_report(void *data, struct wl_callback *callback, uint32_t serial)
{
	struct client *client = data;
	struct anim *anim = &client->anim;

	wl_callback_destroy(callback);
	anim->report = NULL;
	printf("animate: mode=%s size=%dx%d damage=%dx%d seconds=%.3f commits=%llu "
		"frame_callbacks=%llu presented=%llu discarded=%llu shown=%llu cpu_ms=%.1f\n",
		client->opt.animate == ANIMATE_FRAME ? "frame" : "spin", client->width,
		client->height,
		client->opt.damage_width > 0 ? client->opt.damage_width : client->width,
		client->opt.damage_height > 0 ? client->opt.damage_height : client->height,
		anim->seconds, (unsigned long long)anim->commits,
		(unsigned long long)anim->frame_callbacks, (unsigned long long)anim->presented,
		(unsigned long long)anim->discarded,
		(unsigned long long)(anim->commits - anim->discarded), anim->cpu_ms);
}

static const struct wl_callback_listener anim_report_listener = {
	.done = anim_report,
};

/*
 * At the end of --animate-for: no more redraws. The counts are printed
 * after a roundtrip, once every commit made is either discarded or was
 * sampled for an output frame (shown = commits - discarded).
 */
static void anim_stop(struct client *client)
{
	struct anim *anim = &client->anim;
	struct timespec now;
	struct rusage usage;

	clock_gettime(CLOCK_MONOTONIC, &now);
	getrusage(RUSAGE_SELF, &usage);
	anim->running = false;
	anim->seconds = timespec_diff(&now, &anim->start);
	anim->cpu_ms = rusage_ms(&usage) - rusage_ms(&anim->usage);
	anim->report = wl_display_sync(client->display);
	wl_callback_add_listener(anim->report, &anim_report_listener, client);
}

/* Milliseconds poll may sleep: until the end of --animate-for, or -1. */
static int anim_timeout(struct client *client)
{
	struct timespec now;
	double left;

	if (!client->anim.running || client->opt.animate_for <= 0) {
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = timespec_diff(&client->anim.end, &now);
	if (left <= 0) {
		anim_stop(client);
		return -1;
	}
	return (int)(left * 1000) + 1;
}

static void anim_destroy(struct client *client)
{
	struct anim *anim = &client->anim;

	if (anim->frame != NULL) {
		wl_callback_destroy(anim->frame);
		anim->frame = NULL;
	}
	if (anim->report != NULL) {
		wl_callback_destroy(anim->report);
		anim->report = NULL;
	}
	while (anim->feedbacks != NULL) {
		struct anim_feedback *f = anim->feedbacks;
		anim->feedbacks = f->next;
		wp_presentation_feedback_destroy(f->feedback);
		free(f);
	}
	for (int i = 0; i < ANIM_BUFFERS; i++) {
		if (anim->buffers[i].wl_buffer != NULL) {
			anim_buffer_free(&anim->buffers[i]);
		}
	}
}

/* ---- after mapping: activation and idle inhibition ---------------------- */

static void activation_token_done(void *data, struct xdg_activation_token_v1 *token,
	const char *text)
{
	struct client *client = data;

	printf("token %s\n", text);
	/* The token string stays valid without the object that minted it. */
	xdg_activation_token_v1_destroy(token);
	client->activation_token = NULL;
}

static const struct xdg_activation_token_v1_listener activation_token_listener = {
	.done = activation_token_done,
};

/*
 * Mint a token another client can use to get activated. A compositor that
 * guards against focus stealing wants proof of recent user interaction with
 * us, hence the serial of our last keyboard enter or button event.
 */
static void activation_token_request(struct client *client)
{
	client->activation_token =
		xdg_activation_v1_get_activation_token(client->activation);
	if (client->activation_token == NULL) {
		fail(client, "cannot create an xdg_activation_token_v1");
		return;
	}
	xdg_activation_token_v1_add_listener(client->activation_token,
		&activation_token_listener, client);
	if (client->has_input_serial && client->seat != NULL) {
		xdg_activation_token_v1_set_serial(client->activation_token,
			client->last_input_serial, client->seat);
	}
	xdg_activation_token_v1_set_app_id(client->activation_token, PROG);
	xdg_activation_token_v1_set_surface(client->activation_token, client->surface);
	xdg_activation_token_v1_commit(client->activation_token);
}

/* The compositor answers nothing; the sync at least orders the line. */
static void activation_send(struct client *client)
{
	xdg_activation_v1_activate(client->activation, client->opt.activate_token,
		client->surface);
	print_after_sync(client, "activate-sent");
}

static void idle_inhibitor_create(struct client *client)
{
	client->idle_inhibitor = zwp_idle_inhibit_manager_v1_create_inhibitor(
		client->idle_inhibit_manager, client->surface);
	if (client->idle_inhibitor == NULL) {
		fail(client, "cannot create a zwp_idle_inhibitor_v1");
		return;
	}
	print_after_sync(client, "idle-inhibited");
}

/*
 * Runs once "mapped" is printed: the compositor has then processed the
 * first buffer and sent what mapping caused (such as the keyboard enter
 * whose serial a token needs).
 */
static void window_mapped(struct client *client)
{
	if (client->opt.animate != ANIMATE_NONE) {
		anim_start(client);
	}
	if (client->opt.idle_inhibit) {
		idle_inhibitor_create(client);
	}
	if (client->opt.request_token) {
		activation_token_request(client);
	}
	if (client->opt.activate_token != NULL) {
		activation_send(client);
	}
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
		/* --buffer-margin: the buffer is larger than the geometry on every side. */
		int margin = client->opt.buffer_margin;
		if (!surface_show_color(client, client->surface, &client->buffer,
				width + 2 * margin, height + 2 * margin, client->opt.color)) {
			return;
		}
		client->width = width;
		client->height = height;
		xdg_surface_set_window_geometry(xdg_surface, margin, margin, width, height);
	}
	/* Commit even without a new buffer so the ack takes effect. */
	wl_surface_commit(client->surface);
	client->mapped = true;

	format_configure(&client->pending, text, sizeof(text));
	if (first) {
		strncat(text, "\nmapped", sizeof(text) - strlen(text) - 1);
	}
	print_after_sync_then(client, text, first ? window_mapped : NULL);

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
	struct rect r = { SUBSURFACE_OFFSET, SUBSURFACE_OFFSET, SUBSURFACE_SIZE, SUBSURFACE_SIZE };
	if (client->opt.subsurface_rect_set) {
		r = client->opt.subsurface_rect;
	}
	wl_subsurface_set_position(client->subsurface, r.x, r.y);
	wl_subsurface_set_desync(client->subsurface);
	if (!surface_show_color(client, client->sub_surface, &client->sub_buffer,
			r.width, r.height, client->opt.subsurface_color)) {
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
	/* Takes effect with the first buffer, if the pointer is already there. */
	pointer_constraint_create(client);
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

/* Serials of input events prove user interaction (xdg-activation). */
static void remember_input_serial(struct client *client, uint32_t serial)
{
	client->last_input_serial = serial;
	client->has_input_serial = true;
}

static void keyboard_enter(void *data, struct wl_keyboard *keyboard, uint32_t serial,
	struct wl_surface *surface, struct wl_array *keys)
{
	struct client *client = data;

	remember_input_serial(client, serial);
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

	/*
	 * Keysyms rather than names are compared, so that aliases such as
	 * Page_Up for Prior match too. The main loop then tears everything down.
	 */
	if (state == WL_KEYBOARD_KEY_STATE_PRESSED && sym != XKB_KEY_NoSymbol &&
			sym == client->opt.exit_keysym) {
		printf("exit\n");
		client->running = false;
	}
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

/* --cursor: a solid cursor surface, made on the first enter. */
static void cursor_set(struct client *client, struct wl_pointer *pointer, uint32_t serial)
{
	int width = client->opt.cursor_width, height = client->opt.cursor_height;
	char text[64];

	if (client->cursor_surface == NULL) {
		client->cursor_surface = wl_compositor_create_surface(client->compositor);
		if (client->cursor_surface == NULL ||
				!surface_show_color(client, client->cursor_surface, &client->cursor_buffer,
					width, height, CURSOR_COLOR)) {
			fail(client, "cannot make the cursor surface");
			return;
		}
		wl_surface_commit(client->cursor_surface);
	}
	wl_pointer_set_cursor(pointer, serial, client->cursor_surface, 0, 0);
	snprintf(text, sizeof(text), "cursor-set %d %d", width, height);
	print_after_sync(client, text);
}

static void pointer_enter(void *data, struct wl_pointer *pointer, uint32_t serial,
	struct wl_surface *surface, wl_fixed_t x, wl_fixed_t y)
{
	struct client *client = data;

	client->pointer_focus = surface;
	printf("pointer-enter %d %d\n", wl_fixed_to_int(x), wl_fixed_to_int(y));
	if (client->opt.cursor_width > 0) {
		cursor_set(client, pointer, serial);
	}
}

static void pointer_leave(void *data, struct wl_pointer *pointer, uint32_t serial,
	struct wl_surface *surface)
{
	struct client *client = data;

	client->pointer_focus = NULL;
	printf("pointer-leave\n");
}

static void pointer_motion(void *data, struct wl_pointer *pointer, uint32_t time,
	wl_fixed_t x, wl_fixed_t y)
{
	struct client *client = data;

	/* Opt-in: most tests would otherwise depend on how many events came. */
	if (client->opt.print_motion) {
		printf("motion %d %d\n", wl_fixed_to_int(x), wl_fixed_to_int(y));
	}
}

/*
 * Start the interactive move or resize the options ask for. The serial is
 * the press's own: compositors only honour a request while that button is
 * held, the way a client-side title bar or border would ask. The line waits
 * for a sync so that a test moves the pointer only once the compositor has
 * the request; moving earlier races with it.
 */
static void start_interactive_operation(struct client *client, uint32_t serial)
{
	char text[64];

	if (client->toplevel == NULL || client->seat == NULL) {
		return;
	}
	if (client->opt.move_on_press) {
		xdg_toplevel_move(client->toplevel, client->seat, serial);
		print_after_sync(client, "move-requested");
	} else if (client->opt.resize_edge != XDG_TOPLEVEL_RESIZE_EDGE_NONE) {
		xdg_toplevel_resize(client->toplevel, client->seat, serial,
			client->opt.resize_edge);
		snprintf(text, sizeof(text), "resize-requested %s", client->opt.resize_edge_name);
		print_after_sync(client, text);
	}
}

static void pointer_button(void *data, struct wl_pointer *pointer, uint32_t serial,
	uint32_t time, uint32_t button, uint32_t state)
{
	struct client *client = data;
	bool pressed = state == WL_POINTER_BUTTON_STATE_PRESSED;

	remember_input_serial(client, serial);
	printf("button %u %s\n", button, pressed ? "pressed" : "released");
	/* The subsurface and the popup stand for content, not for a title bar. */
	if (pressed && button == BTN_LEFT && client->pointer_focus != NULL &&
			client->pointer_focus == client->surface) {
		start_interactive_operation(client, serial);
	}
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
	/* Objects made from the pointer go first, so none outlives it. */
	pointer_constraint_destroy(client);
	relative_pointer_destroy(client);
	client->pointer_focus = NULL;
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
		pointer_constraint_create(client);
		relative_pointer_create(client);
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
	} else if (strcmp(interface, zwp_pointer_constraints_v1_interface.name) == 0 &&
			client->pointer_constraints == NULL &&
			client->opt.constraint != CONSTRAINT_NONE) {
		client->pointer_constraints = wl_registry_bind(registry, name,
			&zwp_pointer_constraints_v1_interface, 1);
	} else if (strcmp(interface, zwp_relative_pointer_manager_v1_interface.name) == 0 &&
			client->relative_pointer_manager == NULL && client->opt.relative_pointer) {
		client->relative_pointer_manager = wl_registry_bind(registry, name,
			&zwp_relative_pointer_manager_v1_interface, 1);
	} else if (strcmp(interface, xdg_activation_v1_interface.name) == 0 &&
			client->activation == NULL &&
			(client->opt.activate_token != NULL || client->opt.request_token)) {
		client->activation = wl_registry_bind(registry, name, &xdg_activation_v1_interface, 1);
	} else if (strcmp(interface, zwp_idle_inhibit_manager_v1_interface.name) == 0 &&
			client->idle_inhibit_manager == NULL && client->opt.idle_inhibit) {
		client->idle_inhibit_manager = wl_registry_bind(registry, name,
			&zwp_idle_inhibit_manager_v1_interface, 1);
	} else if (strcmp(interface, wp_presentation_interface.name) == 0 &&
			client->presentation == NULL && client->opt.animate != ANIMATE_NONE) {
		client->presentation = wl_registry_bind(registry, name, &wp_presentation_interface, 1);
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

/*
 * Optional globals are bound only for the options that use them, and an
 * option whose global is missing is an error: a test that asked for it
 * would otherwise wait for a line that never comes.
 */
static bool check_option_globals(struct client *client)
{
	const struct options *opt = &client->opt;
	const char *option = NULL, *missing = NULL;

	if (opt->constraint != CONSTRAINT_NONE && client->pointer_constraints == NULL) {
		option = opt->constraint == CONSTRAINT_LOCK ? "--lock-pointer" : "--confine-pointer";
		missing = zwp_pointer_constraints_v1_interface.name;
	} else if (opt->relative_pointer && client->relative_pointer_manager == NULL) {
		option = "--relative-pointer";
		missing = zwp_relative_pointer_manager_v1_interface.name;
	} else if (opt->activate_token != NULL && client->activation == NULL) {
		option = "--activate-token";
		missing = xdg_activation_v1_interface.name;
	} else if (opt->request_token && client->activation == NULL) {
		option = "--request-token";
		missing = xdg_activation_v1_interface.name;
	} else if (opt->idle_inhibit && client->idle_inhibit_manager == NULL) {
		option = "--idle-inhibit";
		missing = zwp_idle_inhibit_manager_v1_interface.name;
	} else if ((opt->move_on_press || opt->resize_edge != XDG_TOPLEVEL_RESIZE_EDGE_NONE ||
			opt->constraint != CONSTRAINT_NONE || opt->relative_pointer) &&
			client->seat == NULL) {
		/* Without a seat there is no press serial and no wl_pointer. */
		option = opt->move_on_press ? "--move-on-press" :
			opt->resize_edge != XDG_TOPLEVEL_RESIZE_EDGE_NONE ? "--resize-on-press" :
			opt->constraint == CONSTRAINT_LOCK ? "--lock-pointer" :
			opt->constraint == CONSTRAINT_CONFINE ? "--confine-pointer" :
			"--relative-pointer";
		missing = wl_seat_interface.name;
	}
	if (missing != NULL) {
		fail(client, "%s needs %s, which the compositor lacks", option, missing);
		return false;
	}
	return true;
}

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
	return check_option_globals(client);
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

/*
 * wl_display_dispatch, plus redraws: in spin mode a free buffer is drawn
 * at once (poll does not sleep then), and poll wakes at the end of
 * --animate-for. Nothing more is queued while the socket is full.
 */
static void animate_loop(struct client *client)
{
	struct wl_display *display = client->display;
	bool blocked = false; /* the last flush left bytes queued */

	while (client->running) {
		bool drew = false;
		int timeout = anim_timeout(client);

		if (client->anim.running && !blocked &&
				(client->opt.animate == ANIMATE_SPIN || client->anim.want_draw)) {
			drew = anim_draw(client);
		}
		while (wl_display_prepare_read(display) != 0) {
			if (wl_display_dispatch_pending(display) == -1) {
				handle_display_error(client);
				return;
			}
		}
		short events = POLLIN;
		blocked = false;
		if (wl_display_flush(display) == -1) {
			if (errno != EAGAIN) {
				wl_display_cancel_read(display);
				handle_display_error(client);
				return;
			}
			blocked = true;
			events |= POLLOUT;
		}
		if (drew && !blocked && client->opt.animate == ANIMATE_SPIN) {
			timeout = 0;
		}
		struct pollfd pfd = { wl_display_get_fd(display), events, 0 };
		int r = poll(&pfd, 1, timeout);
		if (r < 0 && errno != EINTR) {
			wl_display_cancel_read(display);
			fail(client, "poll: %s", strerror(errno));
			return;
		}
		if (r > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
			if (wl_display_read_events(display) == -1) {
				handle_display_error(client);
				return;
			}
		} else {
			wl_display_cancel_read(display);
		}
		if (wl_display_dispatch_pending(display) == -1) {
			handle_display_error(client);
			return;
		}
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
	/* Everything that names the main surface goes before it. */
	if (client->activation_token != NULL) {
		xdg_activation_token_v1_destroy(client->activation_token);
		client->activation_token = NULL;
	}
	if (client->idle_inhibitor != NULL) {
		zwp_idle_inhibitor_v1_destroy(client->idle_inhibitor);
		client->idle_inhibitor = NULL;
	}
	pointer_constraint_destroy(client);
	popup_destroy(client);
	if (client->subsurface != NULL) {
		wl_subsurface_destroy(client->subsurface);
	}
	if (client->sub_surface != NULL) {
		wl_surface_destroy(client->sub_surface);
	}
	if (client->cursor_surface != NULL) {
		wl_surface_destroy(client->cursor_surface);
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
	anim_destroy(client);
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
	if (client->pointer_constraints != NULL) {
		zwp_pointer_constraints_v1_destroy(client->pointer_constraints);
	}
	if (client->relative_pointer_manager != NULL) {
		zwp_relative_pointer_manager_v1_destroy(client->relative_pointer_manager);
	}
	if (client->activation != NULL) {
		xdg_activation_v1_destroy(client->activation);
	}
	if (client->idle_inhibit_manager != NULL) {
		zwp_idle_inhibit_manager_v1_destroy(client->idle_inhibit_manager);
	}
	if (client->presentation != NULL) {
		wp_presentation_destroy(client->presentation);
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
		if (client.opt.animate != ANIMATE_NONE) {
			animate_loop(&client);
		}
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
