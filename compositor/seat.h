#ifndef CW_SEAT_H
#define CW_SEAT_H

#include <stdbool.h>
#include <stdint.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_cursor.h>
#include <wlr/types/wlr_seat.h>
#include <wlr/util/box.h>

struct cw_server;
struct cw_view;

/* What a pointer button press started. */
enum cw_cursor_mode {
	CW_CURSOR_PASSTHROUGH, // events go to the surface under the pointer
	CW_CURSOR_MOVE,        // dragging a view
	CW_CURSOR_RESIZE,      // dragging a view's edges
	CW_CURSOR_CLOSE_PRESS, // pressed on a close button, waiting for release
};

struct cw_seat {
	struct cw_server *server;
	struct wlr_seat *seat;
	struct wlr_cursor *cursor;
	struct wlr_xcursor_manager *xcursor_manager;
	struct wl_list keyboards; // cw_keyboard.link

	struct wlr_relative_pointer_manager_v1 *relative_pointer_manager;
	struct wlr_pointer_constraints_v1 *pointer_constraints;
	struct wlr_pointer_constraint_v1 *active_constraint;
	/* Released by the user (Super+Escape); never dereferenced, only compared. */
	struct wlr_pointer_constraint_v1 *suppressed_constraint;
	struct wl_listener new_constraint;
	struct wl_listener constraint_destroy; // on active_constraint

	struct wlr_virtual_keyboard_manager_v1 *virtual_keyboard_manager;
	struct wlr_virtual_pointer_manager_v1 *virtual_pointer_manager;
	struct wl_listener new_virtual_keyboard;
	struct wl_listener new_virtual_pointer;
	/* wlr_keyboards that wlroots 0.15 forgets to free (see seat.c). */
	struct wl_list orphaned_keyboards; // cw_orphaned_keyboard.link
	struct wl_event_source *orphan_reaper;

	struct cw_view *focused_view; // has the keyboard focus (NULL: none)
	/* The VM display whose guest gets the pointer (vm_input.c); NULL: none. */
	struct cw_view *vm_pointer_view;
	double vm_scroll[2]; // smooth scrolling not yet a wheel click (vertical, horizontal)

	/* No cursor is drawn until a pointer device has moved it (headless CI). */
	bool cursor_shown;

	/* Interactive move/resize state. */
	enum cw_cursor_mode cursor_mode;
	struct cw_view *grabbed_view;
	double grab_x, grab_y;      // cursor position at grab start
	struct wlr_box grab_geometry; // view geometry at grab start
	uint32_t resize_edges;      // enum wlr_edges

	struct wl_listener new_input;
	struct wl_listener cursor_motion;
	struct wl_listener cursor_motion_absolute;
	struct wl_listener cursor_button;
	struct wl_listener cursor_axis;
	struct wl_listener cursor_frame;
	struct wl_listener request_set_cursor;
	struct wl_listener request_set_selection;
	struct wl_listener request_set_primary_selection;
	struct wl_listener request_start_drag;
	struct wl_listener start_drag;
};

struct cw_keyboard {
	struct wl_list link; // cw_seat.keyboards
	struct cw_seat *seat;
	struct wlr_input_device *device;
	struct wl_listener modifiers;
	struct wl_listener key;
	struct wl_listener destroy;
};

bool cw_seat_init(struct cw_seat *seat, struct cw_server *server);
void cw_seat_finish(struct cw_seat *seat);

/* Gives keyboard focus to view (NULL clears it) and raises it. */
void cw_seat_focus_view(struct cw_seat *seat, struct cw_view *view);
/* Starts an interactive move or resize of view from the current pointer. */
void cw_seat_begin_grab(struct cw_seat *seat, struct cw_view *view,
	enum cw_cursor_mode mode, uint32_t edges);
/* Forgets view: called before a view is destroyed or unmapped. */
void cw_seat_view_gone(struct cw_seat *seat, struct cw_view *view);
/* Re-evaluates which surface is under the pointer (after the scene changed). */
void cw_seat_refresh_pointer(struct cw_seat *seat);

#endif
