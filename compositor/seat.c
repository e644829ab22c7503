#include "seat.h"

#include <stdlib.h>
#include <wlr/backend/session.h>
#include <wlr/types/wlr_data_device.h>
#include <wlr/types/wlr_idle.h>
#include <wlr/types/wlr_input_device.h>
#include <wlr/types/wlr_keyboard.h>
#include <wlr/types/wlr_primary_selection.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/types/wlr_virtual_keyboard_v1.h>
#include <wlr/types/wlr_virtual_pointer_v1.h>
#include <wlr/util/log.h>
#include <xkbcommon/xkbcommon.h>

#include "cursor.h"
#include "server.h"
#include "view.h"
#include "vm_input.h"

#define CW_REPEAT_RATE 25
#define CW_REPEAT_DELAY 600

/* A drag-and-drop icon follows the pointer above every window. */
struct cw_drag_icon {
	struct wlr_scene_node *node;
	struct cw_seat *seat;
	struct wl_listener destroy;
	struct wl_listener motion; // cursor motion, to follow the pointer
};

static void
update_capabilities(struct cw_seat *seat)
{
	uint32_t caps = WL_SEAT_CAPABILITY_POINTER;
	if (!wl_list_empty(&seat->keyboards)) {
		caps |= WL_SEAT_CAPABILITY_KEYBOARD;
	}
	wlr_seat_set_capabilities(seat->seat, caps);
}

void
cw_seat_focus_view(struct cw_seat *seat, struct cw_view *view)
{
	if (view != NULL) {
		cw_view_raise(view);
	}
	if (view == seat->focused_view) {
		return;
	}
	if (seat->focused_view != NULL) {
		cw_view_set_activated(seat->focused_view, false);
	}
	seat->focused_view = view;
	if (view == NULL || view->surface == NULL) {
		/* No window, or one that is not a Wayland client (a VM's display). */
		wlr_seat_keyboard_notify_clear_focus(seat->seat);
	} else {
		struct wlr_keyboard *keyboard = wlr_seat_get_keyboard(seat->seat);
		if (keyboard != NULL) {
			wlr_seat_keyboard_notify_enter(seat->seat, view->surface, keyboard->keycodes,
				keyboard->num_keycodes, &keyboard->modifiers);
		} else {
			wlr_seat_keyboard_notify_enter(seat->seat, view->surface, NULL, 0, NULL);
		}
	}
	if (view != NULL) {
		cw_view_set_activated(view, true);
	}
	cw_cursor_update_constraint(seat);
}

/* Returns true if crossway consumed the key as one of its own bindings. */
static bool
handle_binding(struct cw_seat *seat, xkb_keysym_t sym, uint32_t modifiers)
{
	if (sym >= XKB_KEY_XF86Switch_VT_1 && sym <= XKB_KEY_XF86Switch_VT_12) {
		if (seat->server->session != NULL) {
			unsigned vt = sym - XKB_KEY_XF86Switch_VT_1 + 1;
			wlr_session_change_vt(seat->server->session, vt);
		}
		return true;
	}
	if ((modifiers & WLR_MODIFIER_LOGO) && sym == XKB_KEY_Escape) {
		cw_cursor_release_constraint(seat);
		return true;
	}
	const uint32_t exit_mods = WLR_MODIFIER_LOGO | WLR_MODIFIER_SHIFT;
	if ((modifiers & exit_mods) == exit_mods && (sym == XKB_KEY_E || sym == XKB_KEY_e)) {
		wlr_log(WLR_INFO, "Exit requested from the keyboard");
		cw_server_terminate(seat->server, 0);
		return true;
	}
	return false;
}

static void
handle_key(struct wl_listener *listener, void *data)
{
	struct cw_keyboard *keyboard = wl_container_of(listener, keyboard, key);
	struct cw_seat *seat = keyboard->seat;
	struct wlr_event_keyboard_key *event = data;
	struct wlr_keyboard *wlr_keyboard = keyboard->device->keyboard;
	wlr_idle_notify_activity(seat->server->idle, seat->seat);

	bool handled = false;
	if (event->state == WL_KEYBOARD_KEY_STATE_PRESSED) {
		/* libinput keycodes are evdev codes; xkb's are offset by 8. */
		const xkb_keysym_t *syms;
		int count = xkb_state_key_get_syms(wlr_keyboard->xkb_state, event->keycode + 8, &syms);
		uint32_t modifiers = wlr_keyboard_get_modifiers(wlr_keyboard);
		for (int i = 0; i < count && !handled; i++) {
			handled = handle_binding(seat, syms[i], modifiers);
		}
	}
	/* A VM's display window with the focus: the key is the guest's, not a client's. */
	if (!handled) {
		handled = cw_vm_input_key(seat->focused_view, event->keycode,
			event->state == WL_KEYBOARD_KEY_STATE_PRESSED);
	}
	if (!handled) {
		wlr_seat_set_keyboard(seat->seat, keyboard->device);
		wlr_seat_keyboard_notify_key(seat->seat, event->time_msec, event->keycode, event->state);
	}
}

static void
handle_modifiers(struct wl_listener *listener, void *data)
{
	struct cw_keyboard *keyboard = wl_container_of(listener, keyboard, modifiers);
	wlr_seat_set_keyboard(keyboard->seat->seat, keyboard->device);
	wlr_seat_keyboard_notify_modifiers(keyboard->seat->seat,
		&keyboard->device->keyboard->modifiers);
}

static void
handle_keyboard_destroy(struct wl_listener *listener, void *data)
{
	struct cw_keyboard *keyboard = wl_container_of(listener, keyboard, destroy);
	struct cw_seat *seat = keyboard->seat;
	wl_list_remove(&keyboard->modifiers.link);
	wl_list_remove(&keyboard->key.link);
	wl_list_remove(&keyboard->destroy.link);
	wl_list_remove(&keyboard->link);
	free(keyboard);
	if (wl_list_empty(&seat->keyboards)) {
		/* wlroots 0.15 would send a second leave while dropping the capability. */
		wlr_seat_keyboard_notify_clear_focus(seat->seat);
	}
	update_capabilities(seat);
}

/* Keymap from XKB_DEFAULT_RULES/MODEL/LAYOUT/VARIANT/OPTIONS, like other compositors. */
static bool
set_default_keymap(struct wlr_keyboard *keyboard)
{
	struct xkb_context *context = xkb_context_new(XKB_CONTEXT_NO_FLAGS);
	if (context == NULL) {
		return false;
	}
	struct xkb_keymap *keymap = xkb_keymap_new_from_names(context, NULL,
		XKB_KEYMAP_COMPILE_NO_FLAGS);
	bool ok = keymap != NULL && wlr_keyboard_set_keymap(keyboard, keymap);
	if (keymap == NULL) {
		wlr_log(WLR_ERROR, "Cannot compile the keymap from XKB_DEFAULT_* settings");
	}
	xkb_keymap_unref(keymap);
	xkb_context_unref(context);
	return ok;
}

static void
add_keyboard(struct cw_seat *seat, struct wlr_input_device *device, bool set_keymap)
{
	struct cw_keyboard *keyboard = calloc(1, sizeof(*keyboard));
	if (keyboard == NULL) {
		wlr_log(WLR_ERROR, "Out of memory for keyboard %s", device->name);
		return;
	}
	keyboard->seat = seat;
	keyboard->device = device;
	/* A virtual keyboard brings its own keymap. */
	if (set_keymap && !set_default_keymap(device->keyboard)) {
		free(keyboard);
		return;
	}
	wlr_keyboard_set_repeat_info(device->keyboard, CW_REPEAT_RATE, CW_REPEAT_DELAY);
	keyboard->modifiers.notify = handle_modifiers;
	wl_signal_add(&device->keyboard->events.modifiers, &keyboard->modifiers);
	keyboard->key.notify = handle_key;
	wl_signal_add(&device->keyboard->events.key, &keyboard->key);
	keyboard->destroy.notify = handle_keyboard_destroy;
	wl_signal_add(&device->events.destroy, &keyboard->destroy);
	bool first = wl_list_empty(&seat->keyboards);
	wl_list_insert(&seat->keyboards, &keyboard->link);
	wlr_seat_set_keyboard(seat->seat, device);
	update_capabilities(seat);
	struct cw_view *view = seat->focused_view;
	if (first && view != NULL && view->surface != NULL) {
		/* The focus was cleared with the last keyboard: give it back. */
		wlr_seat_keyboard_notify_enter(seat->seat, view->surface, device->keyboard->keycodes,
			device->keyboard->num_keycodes, &device->keyboard->modifiers);
	}
}

static void
handle_new_input(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, new_input);
	struct wlr_input_device *device = data;
	switch (device->type) {
	case WLR_INPUT_DEVICE_KEYBOARD:
		add_keyboard(seat, device, true);
		break;
	case WLR_INPUT_DEVICE_POINTER:
	case WLR_INPUT_DEVICE_TOUCH:
	case WLR_INPUT_DEVICE_TABLET_TOOL:
		wlr_cursor_attach_input_device(seat->cursor, device);
		break;
	default:
		wlr_log(WLR_DEBUG, "Ignoring input device %s", device->name);
		break;
	}
}

/*
 * wlroots 0.15.1 allocates a wlr_keyboard for every virtual keyboard and
 * never frees it: its keyboard destroy hook is empty. We free it ourselves,
 * once wlroots is done with it (from an idle callback, or at shutdown).
 */
struct cw_orphaned_keyboard {
	struct wl_list link; // cw_seat.orphaned_keyboards
	struct cw_seat *seat;
	struct wlr_keyboard *keyboard; // set once wlroots has dropped it
	struct wl_listener destroy; // the virtual keyboard's
};

static void
reap_orphaned_keyboards(void *data)
{
	struct cw_seat *seat = data;
	seat->orphan_reaper = NULL;
	struct cw_orphaned_keyboard *orphan, *tmp;
	wl_list_for_each_safe(orphan, tmp, &seat->orphaned_keyboards, link) {
		if (orphan->keyboard == NULL) {
			continue; // its virtual keyboard still exists
		}
		wl_list_remove(&orphan->link);
		free(orphan->keyboard);
		free(orphan);
	}
}

static void
handle_virtual_keyboard_destroy(struct wl_listener *listener, void *data)
{
	struct cw_orphaned_keyboard *orphan = wl_container_of(listener, orphan, destroy);
	struct wlr_virtual_keyboard_v1 *virtual_keyboard = data;
	struct cw_seat *seat = orphan->seat;
	wl_list_remove(&orphan->destroy.link);
	wl_list_init(&orphan->destroy.link);
	/* wlr_input_device_destroy still uses it right after this signal. */
	orphan->keyboard = virtual_keyboard->input_device.keyboard;
	if (seat->orphan_reaper == NULL) {
		seat->orphan_reaper = wl_event_loop_add_idle(seat->server->event_loop,
			reap_orphaned_keyboards, seat);
	}
}

static void
handle_new_virtual_keyboard(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, new_virtual_keyboard);
	struct wlr_virtual_keyboard_v1 *keyboard = data;
	struct cw_orphaned_keyboard *orphan = calloc(1, sizeof(*orphan));
	if (orphan != NULL) {
		orphan->seat = seat;
		orphan->destroy.notify = handle_virtual_keyboard_destroy;
		wl_signal_add(&keyboard->events.destroy, &orphan->destroy);
		wl_list_insert(&seat->orphaned_keyboards, &orphan->link);
	}
	add_keyboard(seat, &keyboard->input_device, false);
}

static void
handle_new_virtual_pointer(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, new_virtual_pointer);
	struct wlr_virtual_pointer_v1_new_pointer_event *event = data;
	struct wlr_input_device *device = &event->new_pointer->input_device;
	wlr_cursor_attach_input_device(seat->cursor, device);
	if (event->suggested_output != NULL) {
		wlr_cursor_map_input_to_output(seat->cursor, device, event->suggested_output);
	}
}

static void
handle_request_set_selection(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, request_set_selection);
	struct wlr_seat_request_set_selection_event *event = data;
	wlr_seat_set_selection(seat->seat, event->source, event->serial);
}

static void
handle_request_set_primary_selection(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, request_set_primary_selection);
	struct wlr_seat_request_set_primary_selection_event *event = data;
	wlr_seat_set_primary_selection(seat->seat, event->source, event->serial);
}

static void
handle_request_start_drag(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, request_start_drag);
	struct wlr_seat_request_start_drag_event *event = data;
	if (wlr_seat_validate_pointer_grab_serial(seat->seat, event->origin, event->serial)) {
		wlr_seat_start_pointer_drag(seat->seat, event->drag, event->serial);
		return;
	}
	wlr_log(WLR_DEBUG, "Refusing a drag without a matching button press");
	wlr_data_source_destroy(event->drag->source);
}

static void
drag_icon_follow(struct cw_drag_icon *icon)
{
	wlr_scene_node_set_position(icon->node, (int)icon->seat->cursor->x,
		(int)icon->seat->cursor->y);
}

static void
handle_drag_icon_motion(struct wl_listener *listener, void *data)
{
	struct cw_drag_icon *icon = wl_container_of(listener, icon, motion);
	drag_icon_follow(icon);
}

static void
handle_drag_icon_destroy(struct wl_listener *listener, void *data)
{
	struct cw_drag_icon *icon = wl_container_of(listener, icon, destroy);
	wl_list_remove(&icon->destroy.link);
	wl_list_remove(&icon->motion.link);
	wlr_scene_node_destroy(icon->node);
	free(icon);
}

static void
handle_start_drag(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, start_drag);
	struct wlr_drag *drag = data;
	if (drag->icon == NULL) {
		return;
	}
	struct cw_drag_icon *icon = calloc(1, sizeof(*icon));
	if (icon == NULL) {
		return;
	}
	icon->seat = seat;
	icon->node = wlr_scene_subsurface_tree_create(
		&seat->server->layers[CW_LAYER_FULLSCREEN]->node, drag->icon->surface);
	if (icon->node == NULL) {
		free(icon);
		return;
	}
	/* Above fullscreen windows too. */
	wlr_scene_node_raise_to_top(icon->node);
	drag_icon_follow(icon);
	icon->destroy.notify = handle_drag_icon_destroy;
	wl_signal_add(&drag->icon->events.destroy, &icon->destroy);
	icon->motion.notify = handle_drag_icon_motion;
	wl_signal_add(&seat->cursor->events.frame, &icon->motion);
}

bool
cw_seat_init(struct cw_seat *seat, struct cw_server *server)
{
	*seat = (struct cw_seat){0};
	seat->server = server;
	wl_list_init(&seat->keyboards);
	wl_list_init(&seat->orphaned_keyboards);
	seat->seat = wlr_seat_create(server->display, "seat0");
	if (seat->seat == NULL || !cw_cursor_init(seat)) {
		return false;
	}

	seat->new_input.notify = handle_new_input;
	wl_signal_add(&server->backend->events.new_input, &seat->new_input);

	seat->virtual_keyboard_manager = wlr_virtual_keyboard_manager_v1_create(server->display);
	seat->new_virtual_keyboard.notify = handle_new_virtual_keyboard;
	wl_signal_add(&seat->virtual_keyboard_manager->events.new_virtual_keyboard,
		&seat->new_virtual_keyboard);
	seat->virtual_pointer_manager = wlr_virtual_pointer_manager_v1_create(server->display);
	seat->new_virtual_pointer.notify = handle_new_virtual_pointer;
	wl_signal_add(&seat->virtual_pointer_manager->events.new_virtual_pointer,
		&seat->new_virtual_pointer);

	seat->request_set_selection.notify = handle_request_set_selection;
	wl_signal_add(&seat->seat->events.request_set_selection, &seat->request_set_selection);
	seat->request_set_primary_selection.notify = handle_request_set_primary_selection;
	wl_signal_add(&seat->seat->events.request_set_primary_selection,
		&seat->request_set_primary_selection);
	seat->request_start_drag.notify = handle_request_start_drag;
	wl_signal_add(&seat->seat->events.request_start_drag, &seat->request_start_drag);
	seat->start_drag.notify = handle_start_drag;
	wl_signal_add(&seat->seat->events.start_drag, &seat->start_drag);

	update_capabilities(seat);
	return true;
}

void
cw_seat_finish(struct cw_seat *seat)
{
	wl_list_remove(&seat->new_input.link);
	wl_list_remove(&seat->new_virtual_keyboard.link);
	wl_list_remove(&seat->new_virtual_pointer.link);
	wl_list_remove(&seat->request_set_selection.link);
	wl_list_remove(&seat->request_set_primary_selection.link);
	wl_list_remove(&seat->request_start_drag.link);
	wl_list_remove(&seat->start_drag.link);
	cw_cursor_finish(seat);
	/* Clients are gone by now, and with them every virtual keyboard. */
	if (seat->orphan_reaper != NULL) {
		wl_event_source_remove(seat->orphan_reaper);
	}
	reap_orphaned_keyboards(seat);
	struct cw_orphaned_keyboard *orphan, *tmp;
	wl_list_for_each_safe(orphan, tmp, &seat->orphaned_keyboards, link) {
		wl_list_remove(&orphan->destroy.link);
		wl_list_remove(&orphan->link);
		free(orphan);
	}
}
