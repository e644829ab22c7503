/*
 * cw-input: scripted input for crossway's tests, through the virtual pointer
 * (wlr-virtual-pointer-unstable-v1) and virtual keyboard
 * (virtual-keyboard-unstable-v1) protocols.
 *
 * Every argument after the options is one command. Commands are all checked
 * before connecting, so a typo never leaves half a script executed, and each
 * one is followed by a roundtrip so the compositor has handled it before the
 * next one is sent.
 */
#define _GNU_SOURCE /* memfd_create */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>

#include "virtual-keyboard-unstable-v1-client-protocol.h"
#include "wlr-virtual-pointer-unstable-v1-client-protocol.h"

#define PROG "cw-input"

/* From linux/input-event-codes.h; spelled out to avoid a Linux-only header. */
#define BTN_LEFT 0x110
#define BTN_RIGHT 0x111
#define BTN_MIDDLE 0x112

/* XKB keycodes are evdev codes plus 8 (a historical X11 offset). */
#define EVDEV_OFFSET 8
/* Enough for every keycode an evdev-rules keymap can produce. */
#define MAX_EVDEV_KEY 256
#define MAX_EXTENT 65535u
#define MAX_SLEEP_MS 600000u

enum command_kind {
	CMD_MOVE,
	CMD_REL,
	CMD_DOWN,
	CMD_UP,
	CMD_CLICK,
	CMD_SCROLL,
	CMD_HSCROLL,
	CMD_KEYDOWN,
	CMD_KEYUP,
	CMD_KEY,
	CMD_TYPE,
	CMD_SLEEP,
};

struct command {
	enum command_kind kind;
	const char *source; /* the argument it came from, for messages */
	uint32_t x, y;
	double dx, dy;
	uint32_t button;
	uint32_t key; /* evdev keycode */
	const char *text;
	uint32_t ms;
};

struct keyboard_model {
	struct xkb_context *context;
	struct xkb_keymap *keymap;
	/* Tracks what we pressed so the modifiers request is right. */
	struct xkb_state *state;
	/* Scratch states used to find which key types a character. */
	struct xkb_state *plain;
	struct xkb_state *shifted;
	uint32_t shift_key;
	xkb_mod_mask_t shift_mask;
};

struct input {
	uint32_t extent_w, extent_h;
	struct command *commands;
	size_t command_count;
	bool need_pointer, need_keyboard;
	bool from_stdin; /* --stdin: commands arrive one per line, answered "ok" */

	struct keyboard_model kb;

	struct wl_display *display;
	struct wl_registry *registry;
	struct wl_seat *seat;
	uint32_t seat_version;
	struct zwlr_virtual_pointer_manager_v1 *pointer_manager;
	struct zwp_virtual_keyboard_manager_v1 *keyboard_manager;
	struct zwlr_virtual_pointer_v1 *pointer;
	struct zwp_virtual_keyboard_v1 *keyboard;

	bool key_down[MAX_EVDEV_KEY];
	bool button_down[3];
	xkb_mod_mask_t sent_depressed, sent_latched, sent_locked;
	xkb_layout_index_t sent_group;
};

static const struct {
	const char *name;
	uint32_t code;
} buttons[] = {
	{ "left", BTN_LEFT },
	{ "right", BTN_RIGHT },
	{ "middle", BTN_MIDDLE },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--extent WxH] COMMAND...\n"
		"       " PROG " [--extent WxH] --stdin\n"
		"Each COMMAND is one argument, for example: " PROG " 'move 10 20' 'click left'\n"
		"With --stdin the devices stay for the whole run: commands are read one per\n"
		"line, and \"ok\" is printed once the compositor has processed each one.\n"
		"  move X Y            absolute motion within the extent (default 1024x768)\n"
		"  rel DX DY           relative motion\n"
		"  down|up|click BTN   BTN is left, right or middle\n"
		"  scroll DY           vertical wheel scroll\n"
		"  hscroll DX          horizontal wheel scroll\n"
		"  keydown|keyup|key NAME\n"
		"                      NAME is an XKB keysym name on level 0 (a, Return, Super_L)\n"
		"  type TEXT           type ASCII text, using Shift_L where needed\n"
		"  sleep MS            wait (for debugging only)\n");
}

static void error_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint32_t now_ms(void)
{
	struct timespec ts;

	/* Cannot fail for CLOCK_MONOTONIC; zero is an acceptable fallback. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		return 0;
	}
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* ---- argument parsing --------------------------------------------------- */

static bool parse_uint(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t value = 0;

	if (*s == '\0') {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9') {
			return false;
		}
		value = value * 10 + (uint64_t)(*s - '0');
		if (value > max) {
			return false;
		}
	}
	*out = (uint32_t)value;
	return true;
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	double value;

	errno = 0;
	value = strtod(s, &end);
	/* wl_fixed_t holds 24 integer bits; stay well inside that. */
	if (end == s || *end != '\0' || errno != 0 || !isfinite(value) ||
			fabs(value) > 1000000.0) {
		return false;
	}
	*out = value;
	return true;
}

static bool parse_extent(const char *s, uint32_t *w, uint32_t *h)
{
	char buf[32];
	char *x;

	if (strlen(s) >= sizeof(buf)) {
		return false;
	}
	memcpy(buf, s, strlen(s) + 1);
	x = strchr(buf, 'x');
	if (x == NULL) {
		return false;
	}
	*x = '\0';
	return parse_uint(buf, MAX_EXTENT, w) && parse_uint(x + 1, MAX_EXTENT, h) &&
		*w > 0 && *h > 0;
}

/*
 * Splits "verb a b" into the verb and at most max_args words after it.
 * Returns the number of words, or max_args + 1 if there are more. Words
 * point into buf; *verb is NULL for a blank command.
 */
static int split_words(char *buf, char **verb, char **args, int max_args)
{
	int count = 0;
	char *save = NULL;
	char *word;

	*verb = strtok_r(buf, " \t", &save);
	if (*verb == NULL) {
		return 0;
	}
	while ((word = strtok_r(NULL, " \t", &save)) != NULL) {
		if (count == max_args) {
			return max_args + 1;
		}
		args[count++] = word;
	}
	return count;
}

static bool parse_button(const char *name, uint32_t *code)
{
	for (size_t i = 0; i < sizeof(buttons) / sizeof(buttons[0]); i++) {
		if (strcmp(name, buttons[i].name) == 0) {
			*code = buttons[i].code;
			return true;
		}
	}
	return false;
}

static size_t button_index(uint32_t code)
{
	return code - BTN_LEFT;
}

/* ---- keymap ------------------------------------------------------------- */

/* The lowest key whose level 0 (first layout) carries sym. */
static bool key_for_sym_level0(struct keyboard_model *kb, xkb_keysym_t sym, uint32_t *key)
{
	xkb_keycode_t min = xkb_keymap_min_keycode(kb->keymap);
	xkb_keycode_t max = xkb_keymap_max_keycode(kb->keymap);

	for (xkb_keycode_t kc = min; kc <= max && kc < MAX_EVDEV_KEY + EVDEV_OFFSET; kc++) {
		const xkb_keysym_t *syms;
		int n;

		if (kc < EVDEV_OFFSET) {
			continue;
		}
		n = xkb_keymap_key_get_syms_by_level(kb->keymap, kc, 0, 0, &syms);
		for (int i = 0; i < n; i++) {
			if (syms[i] == sym) {
				*key = kc - EVDEV_OFFSET;
				return true;
			}
		}
	}
	return false;
}

/* The lowest key producing sym in the given (scratch) modifier state. */
static bool key_for_sym_in_state(struct keyboard_model *kb, struct xkb_state *state,
	xkb_keysym_t sym, uint32_t *key)
{
	xkb_keycode_t min = xkb_keymap_min_keycode(kb->keymap);
	xkb_keycode_t max = xkb_keymap_max_keycode(kb->keymap);

	for (xkb_keycode_t kc = min; kc <= max && kc < MAX_EVDEV_KEY + EVDEV_OFFSET; kc++) {
		if (kc >= EVDEV_OFFSET && xkb_state_key_get_one_sym(state, kc) == sym) {
			*key = kc - EVDEV_OFFSET;
			return true;
		}
	}
	return false;
}

static xkb_keysym_t char_to_keysym(char c)
{
	if (c == '\n') {
		return XKB_KEY_Return;
	}
	if (c == '\t') {
		return XKB_KEY_Tab;
	}
	if (c < 0x20 || c > 0x7e) {
		return XKB_KEY_NoSymbol;
	}
	return xkb_utf32_to_keysym((uint32_t)c);
}

/* Finds how to type c: a key, and whether Shift must be held for it. */
static bool resolve_char(struct keyboard_model *kb, char c, uint32_t *key, bool *shift)
{
	xkb_keysym_t sym = char_to_keysym(c);

	if (sym == XKB_KEY_NoSymbol) {
		return false;
	}
	/* Prefer an unshifted key anywhere over a shifted one. */
	if (key_for_sym_in_state(kb, kb->plain, sym, key)) {
		*shift = false;
		return true;
	}
	if (key_for_sym_in_state(kb, kb->shifted, sym, key)) {
		*shift = true;
		return true;
	}
	return false;
}

static bool keyboard_model_init(struct keyboard_model *kb)
{
	/* Fixed names, never XKB_DEFAULT_* from the environment: tests must be
	 * reproducible on any machine. */
	const struct xkb_rule_names names = {
		.rules = "evdev",
		.model = "pc105",
		.layout = "us",
		.variant = "",
		.options = "",
	};
	xkb_mod_index_t shift;

	kb->context = xkb_context_new(XKB_CONTEXT_NO_ENVIRONMENT_NAMES);
	if (kb->context == NULL) {
		error_msg("cannot create an xkb context");
		return false;
	}
	kb->keymap = xkb_keymap_new_from_names(kb->context, &names,
		XKB_KEYMAP_COMPILE_NO_FLAGS);
	if (kb->keymap == NULL) {
		error_msg("cannot compile the evdev/pc105/us keymap (is xkeyboard-config installed?)");
		return false;
	}
	kb->state = xkb_state_new(kb->keymap);
	kb->plain = xkb_state_new(kb->keymap);
	kb->shifted = xkb_state_new(kb->keymap);
	if (kb->state == NULL || kb->plain == NULL || kb->shifted == NULL) {
		error_msg("cannot create xkb states");
		return false;
	}
	shift = xkb_keymap_mod_get_index(kb->keymap, XKB_MOD_NAME_SHIFT);
	if (shift == XKB_MOD_INVALID ||
			!key_for_sym_level0(kb, XKB_KEY_Shift_L, &kb->shift_key)) {
		error_msg("the keymap has no Shift_L key");
		return false;
	}
	kb->shift_mask = (xkb_mod_mask_t)1 << shift;
	xkb_state_update_mask(kb->shifted, kb->shift_mask, 0, 0, 0, 0, 0);
	return true;
}

static void keyboard_model_finish(struct keyboard_model *kb)
{
	xkb_state_unref(kb->shifted);
	xkb_state_unref(kb->plain);
	xkb_state_unref(kb->state);
	xkb_keymap_unref(kb->keymap);
	xkb_context_unref(kb->context);
}

static bool parse_key_name(struct keyboard_model *kb, const char *name, uint32_t *key)
{
	xkb_keysym_t sym = xkb_keysym_from_name(name, XKB_KEYSYM_NO_FLAGS);

	if (sym == XKB_KEY_NoSymbol) {
		error_msg("'%s' is not an XKB keysym name (examples: a, Return, Shift_L)", name);
		return false;
	}
	if (!key_for_sym_level0(kb, sym, key)) {
		error_msg("no key produces '%s' on level 0 of the us keymap "
			"(for shifted symbols press Shift_L and the base key, or use type)", name);
		return false;
	}
	return true;
}

/* ---- command parsing ---------------------------------------------------- */

static bool parse_type_command(struct input *input, const char *arg, struct command *cmd)
{
	/* Everything after "type " is the text, inner spaces included. */
	const char *text = arg + strlen("type");

	if (*text != ' ' || text[1] == '\0') {
		error_msg("'%s': type needs some text", arg);
		return false;
	}
	text++;
	for (const char *c = text; *c != '\0'; c++) {
		uint32_t key;
		bool shift;
		if (!resolve_char(&input->kb, *c, &key, &shift)) {
			error_msg("'%s': cannot type character 0x%02x (only printable ASCII, "
				"tab and newline)", arg, (unsigned char)*c);
			return false;
		}
	}
	cmd->kind = CMD_TYPE;
	cmd->text = text;
	input->need_keyboard = true;
	return true;
}

static const struct {
	const char *verb;
	enum command_kind kind;
	int arity;
} verbs[] = {
	{ "move", CMD_MOVE, 2 },
	{ "rel", CMD_REL, 2 },
	{ "down", CMD_DOWN, 1 },
	{ "up", CMD_UP, 1 },
	{ "click", CMD_CLICK, 1 },
	{ "scroll", CMD_SCROLL, 1 },
	{ "hscroll", CMD_HSCROLL, 1 },
	{ "keydown", CMD_KEYDOWN, 1 },
	{ "keyup", CMD_KEYUP, 1 },
	{ "key", CMD_KEY, 1 },
	{ "sleep", CMD_SLEEP, 1 },
};

/* Fills in the arguments of an already identified command. */
static bool parse_command_args(struct input *input, char **args, struct command *cmd)
{
	switch (cmd->kind) {
	case CMD_MOVE:
		input->need_pointer = true;
		if (parse_uint(args[0], input->extent_w, &cmd->x) &&
				parse_uint(args[1], input->extent_h, &cmd->y)) {
			return true;
		}
		error_msg("'%s': X and Y must be integers within the extent %ux%u",
			cmd->source, input->extent_w, input->extent_h);
		return false;
	case CMD_REL:
		input->need_pointer = true;
		if (parse_double(args[0], &cmd->dx) && parse_double(args[1], &cmd->dy)) {
			return true;
		}
		error_msg("'%s': DX and DY must be numbers", cmd->source);
		return false;
	case CMD_DOWN:
	case CMD_UP:
	case CMD_CLICK:
		input->need_pointer = true;
		if (parse_button(args[0], &cmd->button)) {
			return true;
		}
		error_msg("'%s': the button must be left, right or middle", cmd->source);
		return false;
	case CMD_SCROLL:
	case CMD_HSCROLL:
		input->need_pointer = true;
		if (parse_double(args[0], &cmd->dy)) {
			return true;
		}
		error_msg("'%s': DY must be a number", cmd->source);
		return false;
	case CMD_KEYDOWN:
	case CMD_KEYUP:
	case CMD_KEY:
		input->need_keyboard = true;
		if (parse_key_name(&input->kb, args[0], &cmd->key)) {
			return true;
		}
		error_msg("in command '%s'", cmd->source);
		return false;
	case CMD_SLEEP:
		if (parse_uint(args[0], MAX_SLEEP_MS, &cmd->ms)) {
			return true;
		}
		error_msg("'%s': MS must be an integer up to %u", cmd->source, MAX_SLEEP_MS);
		return false;
	case CMD_TYPE:
		break;
	}
	return false;
}

static bool parse_command(struct input *input, const char *arg, struct command *cmd)
{
	char buf[256];
	char *verb;
	char *args[2];
	int n;

	*cmd = (struct command){ .source = arg };
	if (strncmp(arg, "type", 4) == 0 && (arg[4] == ' ' || arg[4] == '\0')) {
		return parse_type_command(input, arg, cmd);
	}
	if (strlen(arg) >= sizeof(buf)) {
		error_msg("command too long: '%.40s...'", arg);
		return false;
	}
	memcpy(buf, arg, strlen(arg) + 1);
	n = split_words(buf, &verb, args, 2);
	if (verb == NULL) {
		error_msg("empty command (see --help)");
		return false;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verb, verbs[i].verb) != 0) {
			continue;
		}
		if (n != verbs[i].arity) {
			error_msg("'%s': %s takes %d argument%s", arg, verb, verbs[i].arity,
				verbs[i].arity == 1 ? "" : "s");
			return false;
		}
		cmd->kind = verbs[i].kind;
		return parse_command_args(input, args, cmd);
	}
	error_msg("unknown command '%s' (see --help)", verb);
	return false;
}

/* Returns 0 to run, 1 after --help, 2 on a usage error. */
static int parse_arguments(struct input *input, int argc, char **argv)
{
	int i = 1;

	input->extent_w = 1024;
	input->extent_h = 768;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(argv[i], "--stdin") == 0) {
			input->from_stdin = true;
		} else if (strcmp(argv[i], "--extent") == 0 && i + 1 < argc) {
			if (!parse_extent(argv[++i], &input->extent_w, &input->extent_h)) {
				error_msg("--extent expects WxH with 1 <= W,H <= %u, got '%s'",
					MAX_EXTENT, argv[i]);
				return 2;
			}
		} else {
			error_msg("unknown option or missing value: '%s'", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (input->from_stdin) {
		if (i != argc) {
			error_msg("--stdin takes no command arguments");
			return 2;
		}
		/* Both devices exist from the start, as real ones would. */
		input->need_pointer = true;
		input->need_keyboard = true;
		return 0;
	}
	if (i == argc) {
		error_msg("no commands given");
		usage(stderr);
		return 2;
	}

	input->command_count = (size_t)(argc - i);
	input->commands = calloc(input->command_count, sizeof(*input->commands));
	if (input->commands == NULL) {
		error_msg("out of memory");
		return 2;
	}
	for (size_t c = 0; c < input->command_count; c++) {
		if (!parse_command(input, argv[i + (int)c], &input->commands[c])) {
			return 2;
		}
	}
	return 0;
}

/* ---- Wayland ------------------------------------------------------------ */

static void registry_global(void *data, struct wl_registry *registry, uint32_t name,
	const char *interface, uint32_t version)
{
	struct input *input = data;

	if (strcmp(interface, wl_seat_interface.name) == 0 && input->seat == NULL) {
		/* No events are needed from the seat; just a handle to pass on. */
		input->seat_version = version < 5 ? version : 5;
		input->seat = wl_registry_bind(registry, name, &wl_seat_interface,
			input->seat_version);
	} else if (strcmp(interface, zwlr_virtual_pointer_manager_v1_interface.name) == 0 &&
			input->pointer_manager == NULL) {
		input->pointer_manager = wl_registry_bind(registry, name,
			&zwlr_virtual_pointer_manager_v1_interface, 1);
	} else if (strcmp(interface, zwp_virtual_keyboard_manager_v1_interface.name) == 0 &&
			input->keyboard_manager == NULL) {
		input->keyboard_manager = wl_registry_bind(registry, name,
			&zwp_virtual_keyboard_manager_v1_interface, 1);
	}
}

static void registry_global_remove(void *data, struct wl_registry *registry, uint32_t name)
{
}

static const struct wl_registry_listener registry_listener = {
	.global = registry_global,
	.global_remove = registry_global_remove,
};

static bool report_display_error(struct input *input)
{
	int err = wl_display_get_error(input->display);
	const struct wl_interface *interface = NULL;
	uint32_t id = 0;

	if (err == EPROTO) {
		uint32_t code = wl_display_get_protocol_error(input->display, &interface, &id);
		error_msg("protocol error %u on %s@%u", code,
			interface != NULL ? interface->name : "unknown", id);
	} else {
		error_msg("Wayland connection failed: %s", strerror(err));
	}
	return false;
}

static bool roundtrip(struct input *input)
{
	if (wl_display_roundtrip(input->display) == -1) {
		return report_display_error(input);
	}
	return true;
}

static bool write_all(int fd, const char *data, size_t size)
{
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return false;
		}
		data += n;
		size -= (size_t)n;
	}
	return true;
}

static bool send_keymap(struct input *input)
{
	char *text = xkb_keymap_get_as_string(input->kb.keymap, XKB_KEYMAP_FORMAT_TEXT_V1);
	size_t size;
	int fd;
	bool ok;

	if (text == NULL) {
		error_msg("cannot serialize the keymap");
		return false;
	}
	/* The receiver expects the terminating NUL to be part of the size. */
	size = strlen(text) + 1;
	fd = memfd_create(PROG "-keymap", MFD_CLOEXEC);
	if (fd < 0) {
		error_msg("memfd_create: %s", strerror(errno));
		free(text);
		return false;
	}
	ok = write_all(fd, text, size);
	free(text);
	if (!ok) {
		error_msg("cannot write the keymap: %s", strerror(errno));
		close(fd);
		return false;
	}
	zwp_virtual_keyboard_v1_keymap(input->keyboard, WL_KEYBOARD_KEYMAP_FORMAT_XKB_V1, fd,
		(uint32_t)size);
	/* libwayland duplicated the fd while queueing the request. */
	close(fd);
	return true;
}

static bool missing_global(const char *name, const char *why)
{
	error_msg("the compositor does not advertise %s (needed for %s)", name, why);
	return false;
}

static bool create_devices(struct input *input)
{
	/* Name the missing protocol first: a seatless compositor without it
	 * would otherwise get the less useful complaint. */
	if (input->need_pointer && input->pointer_manager == NULL) {
		return missing_global("zwlr_virtual_pointer_manager_v1", "pointer commands");
	}
	if (input->need_keyboard && input->keyboard_manager == NULL) {
		return missing_global("zwp_virtual_keyboard_manager_v1", "keyboard commands");
	}
	if (input->seat == NULL && (input->need_pointer || input->need_keyboard)) {
		return missing_global("wl_seat", "virtual input devices");
	}
	if (input->need_pointer) {
		input->pointer = zwlr_virtual_pointer_manager_v1_create_virtual_pointer(
			input->pointer_manager, input->seat);
		if (input->pointer == NULL) {
			error_msg("cannot create a virtual pointer");
			return false;
		}
	}
	if (input->need_keyboard) {
		input->keyboard = zwp_virtual_keyboard_manager_v1_create_virtual_keyboard(
			input->keyboard_manager, input->seat);
		if (input->keyboard == NULL) {
			error_msg("cannot create a virtual keyboard");
			return false;
		}
		if (!send_keymap(input)) {
			return false;
		}
	}
	/* Let the compositor set the devices up before the first command. */
	return roundtrip(input);
}

static bool connect_display(struct input *input)
{
	input->display = wl_display_connect(NULL);
	if (input->display == NULL) {
		const char *name = getenv("WAYLAND_DISPLAY");
		error_msg("cannot connect to the Wayland display '%s': %s",
			name != NULL ? name : "wayland-0", strerror(errno));
		return false;
	}
	input->registry = wl_display_get_registry(input->display);
	if (input->registry == NULL) {
		error_msg("cannot get the registry");
		return false;
	}
	wl_registry_add_listener(input->registry, &registry_listener, input);
	return roundtrip(input) && create_devices(input);
}

/* ---- performing commands ------------------------------------------------ */

static void send_button(struct input *input, uint32_t button, bool pressed)
{
	zwlr_virtual_pointer_v1_button(input->pointer, now_ms(), button,
		pressed ? WL_POINTER_BUTTON_STATE_PRESSED : WL_POINTER_BUTTON_STATE_RELEASED);
	zwlr_virtual_pointer_v1_frame(input->pointer);
	input->button_down[button_index(button)] = pressed;
}

/* Sends the modifier state our xkb_state computed, if it changed. */
static void sync_modifiers(struct input *input)
{
	struct xkb_state *state = input->kb.state;
	xkb_mod_mask_t depressed = xkb_state_serialize_mods(state, XKB_STATE_MODS_DEPRESSED);
	xkb_mod_mask_t latched = xkb_state_serialize_mods(state, XKB_STATE_MODS_LATCHED);
	xkb_mod_mask_t locked = xkb_state_serialize_mods(state, XKB_STATE_MODS_LOCKED);
	xkb_layout_index_t group = xkb_state_serialize_layout(state, XKB_STATE_LAYOUT_EFFECTIVE);

	if (depressed == input->sent_depressed && latched == input->sent_latched &&
			locked == input->sent_locked && group == input->sent_group) {
		return;
	}
	zwp_virtual_keyboard_v1_modifiers(input->keyboard, depressed, latched, locked, group);
	input->sent_depressed = depressed;
	input->sent_latched = latched;
	input->sent_locked = locked;
	input->sent_group = group;
}

static void send_key(struct input *input, uint32_t key, bool pressed)
{
	zwp_virtual_keyboard_v1_key(input->keyboard, now_ms(), key,
		pressed ? WL_KEYBOARD_KEY_STATE_PRESSED : WL_KEYBOARD_KEY_STATE_RELEASED);
	xkb_state_update_key(input->kb.state, key + EVDEV_OFFSET,
		pressed ? XKB_KEY_DOWN : XKB_KEY_UP);
	sync_modifiers(input);
	input->key_down[key] = pressed;
}

static void type_text(struct input *input, const char *text)
{
	for (const char *c = text; *c != '\0'; c++) {
		uint32_t key;
		bool shift;
		bool add_shift;

		/* Validated while parsing, so this cannot fail. */
		if (!resolve_char(&input->kb, *c, &key, &shift)) {
			continue;
		}
		add_shift = shift && !(xkb_state_serialize_mods(input->kb.state,
			XKB_STATE_MODS_EFFECTIVE) & input->kb.shift_mask);
		if (add_shift) {
			send_key(input, input->kb.shift_key, true);
		}
		send_key(input, key, true);
		send_key(input, key, false);
		if (add_shift) {
			send_key(input, input->kb.shift_key, false);
		}
	}
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void perform(struct input *input, const struct command *cmd)
{
	switch (cmd->kind) {
	case CMD_MOVE:
		zwlr_virtual_pointer_v1_motion_absolute(input->pointer, now_ms(), cmd->x, cmd->y,
			input->extent_w, input->extent_h);
		zwlr_virtual_pointer_v1_frame(input->pointer);
		break;
	case CMD_REL:
		zwlr_virtual_pointer_v1_motion(input->pointer, now_ms(),
			wl_fixed_from_double(cmd->dx), wl_fixed_from_double(cmd->dy));
		zwlr_virtual_pointer_v1_frame(input->pointer);
		break;
	case CMD_DOWN:
		send_button(input, cmd->button, true);
		break;
	case CMD_UP:
		send_button(input, cmd->button, false);
		break;
	case CMD_CLICK:
		send_button(input, cmd->button, true);
		send_button(input, cmd->button, false);
		break;
	case CMD_SCROLL:
		zwlr_virtual_pointer_v1_axis_source(input->pointer, WL_POINTER_AXIS_SOURCE_WHEEL);
		zwlr_virtual_pointer_v1_axis(input->pointer, now_ms(),
			WL_POINTER_AXIS_VERTICAL_SCROLL, wl_fixed_from_double(cmd->dy));
		zwlr_virtual_pointer_v1_frame(input->pointer);
		break;
	case CMD_HSCROLL:
		zwlr_virtual_pointer_v1_axis_source(input->pointer, WL_POINTER_AXIS_SOURCE_WHEEL);
		zwlr_virtual_pointer_v1_axis(input->pointer, now_ms(),
			WL_POINTER_AXIS_HORIZONTAL_SCROLL, wl_fixed_from_double(cmd->dy));
		zwlr_virtual_pointer_v1_frame(input->pointer);
		break;
	case CMD_KEYDOWN:
		send_key(input, cmd->key, true);
		break;
	case CMD_KEYUP:
		send_key(input, cmd->key, false);
		break;
	case CMD_KEY:
		send_key(input, cmd->key, true);
		send_key(input, cmd->key, false);
		break;
	case CMD_TYPE:
		type_text(input, cmd->text);
		break;
	case CMD_SLEEP:
		sleep_ms(cmd->ms);
		break;
	}
}

static bool run_commands(struct input *input)
{
	for (size_t i = 0; i < input->command_count; i++) {
		perform(input, &input->commands[i]);
		if (!roundtrip(input)) {
			error_msg("while running '%s'", input->commands[i].source);
			return false;
		}
	}
	return true;
}

/* --stdin: one command per line until end of input. */
static bool run_stdin_commands(struct input *input)
{
	char line[256];

	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
		} else if (!feof(stdin)) {
			error_msg("command line too long");
			return false;
		}
		if (len == 0) {
			continue;
		}
		struct command cmd;
		if (!parse_command(input, line, &cmd)) {
			return false;
		}
		perform(input, &cmd);
		if (!roundtrip(input)) {
			error_msg("while running '%s'", line);
			return false;
		}
		printf("ok\n");
		fflush(stdout);
	}
	return true;
}

/* Nothing may stay pressed once we go: the seat would keep it forever. */
static bool release_everything(struct input *input)
{
	bool sent = false;

	if (input->pointer != NULL) {
		for (size_t i = 0; i < sizeof(buttons) / sizeof(buttons[0]); i++) {
			if (input->button_down[button_index(buttons[i].code)]) {
				send_button(input, buttons[i].code, false);
				sent = true;
			}
		}
	}
	if (input->keyboard != NULL) {
		for (uint32_t key = 0; key < MAX_EVDEV_KEY; key++) {
			if (input->key_down[key]) {
				send_key(input, key, false);
				sent = true;
			}
		}
	}
	return !sent || roundtrip(input);
}

static void input_destroy(struct input *input)
{
	if (input->pointer != NULL) {
		zwlr_virtual_pointer_v1_destroy(input->pointer);
	}
	if (input->keyboard != NULL) {
		zwp_virtual_keyboard_v1_destroy(input->keyboard);
	}
	if (input->pointer_manager != NULL) {
		zwlr_virtual_pointer_manager_v1_destroy(input->pointer_manager);
	}
	if (input->keyboard_manager != NULL) {
		/* The interface has no destructor request; this only frees the proxy. */
		zwp_virtual_keyboard_manager_v1_destroy(input->keyboard_manager);
	}
	if (input->seat != NULL) {
		if (input->seat_version >= WL_SEAT_RELEASE_SINCE_VERSION) {
			wl_seat_release(input->seat);
		} else {
			wl_seat_destroy(input->seat);
		}
	}
	if (input->registry != NULL) {
		wl_registry_destroy(input->registry);
	}
	if (input->display != NULL) {
		/* Make sure the destroy requests leave before the socket closes. */
		if (wl_display_flush(input->display) == -1 && errno != EPIPE) {
			error_msg("cannot flush the final requests: %s", strerror(errno));
		}
		wl_display_disconnect(input->display);
	}
	keyboard_model_finish(&input->kb);
	free(input->commands);
}

int main(int argc, char **argv)
{
	struct input input = { 0 };
	bool ok = false;
	int status;

	if (!keyboard_model_init(&input.kb)) {
		keyboard_model_finish(&input.kb);
		return 1;
	}
	status = parse_arguments(&input, argc, argv);
	if (status == 0 && connect_display(&input)) {
		ok = input.from_stdin ? run_stdin_commands(&input) : run_commands(&input);
		/* Release even after a failed command, if the link still works. */
		if (wl_display_get_error(input.display) == 0 && !release_everything(&input)) {
			ok = false;
		}
	}
	input_destroy(&input);
	if (status == 1) {
		return 0;
	}
	return ok ? 0 : 1;
}
