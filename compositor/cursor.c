#include "cursor.h"

#include <linux/input-event-codes.h>
#include <math.h>
#include <stdlib.h>
#include <wlr/types/wlr_cursor.h>
#include <wlr/types/wlr_idle.h>
#include <wlr/types/wlr_keyboard.h>
#include <wlr/types/wlr_pointer.h>
#include <wlr/types/wlr_pointer_constraints_v1.h>
#include <wlr/types/wlr_relative_pointer_v1.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/types/wlr_xcursor_manager.h>
#include <wlr/util/edges.h>
#include <wlr/util/log.h>

#include "seat.h"
#include "server.h"
#include "view.h"
#include "vm.h"
#include "vm_client.h"
#include "vm_input.h"

#define CW_DEFAULT_CURSOR "left_ptr"
/*
 * A guest's cursor image may be no larger than this, and its hotspot no
 * further in: cursors are drawn above everything, frames included, so a
 * larger one could cover the screen (peers-and-policy.md §2 rule 9).
 */
#define CW_GUEST_CURSOR_MAX 256

/*
 * The cursor surface a VM client set: wlr_cursor follows its commits, so a
 * guest could grow it after the check. crossway has one seat, so one.
 */
static struct {
	struct cw_seat *seat;
	struct wlr_surface *surface; // NULL: nothing watched
	int64_t hotspot_x, hotspot_y; // 64-bit: a guest's offsets add up
	struct wl_listener commit;
	struct wl_listener destroy;
} guest_cursor;

static void
guest_cursor_unwatch(void)
{
	if (guest_cursor.surface == NULL) {
		return;
	}
	wl_list_remove(&guest_cursor.commit.link);
	wl_list_remove(&guest_cursor.destroy.link);
	guest_cursor.surface = NULL;
}

/* What is under layout point (lx, ly): a surface, a frame part, or nothing. */
struct hit {
	struct cw_view *view;
	struct wlr_surface *surface;
	double sx, sy;
	enum cw_frame_part part;
};

static struct hit
hit_test(struct cw_seat *seat, double lx, double ly)
{
	struct hit hit = {0};
	double nx, ny;
	struct wlr_scene_node *node = wlr_scene_node_at(&seat->server->scene->node, lx, ly, &nx, &ny);
	if (node == NULL) {
		return hit;
	}
	hit.view = cw_view_from_node(node);
	if (node->type == WLR_SCENE_NODE_SURFACE) {
		hit.surface = wlr_scene_surface_from_node(node)->surface;
		hit.sx = nx;
		hit.sy = ny;
	} else if (hit.view != NULL) {
		hit.part = cw_frame_part_at(&hit.view->frame, lx - hit.view->x, ly - hit.view->y);
	}
	return hit;
}

static const char *
cursor_name_for_edges(uint32_t edges)
{
	switch (edges) {
	case WLR_EDGE_TOP: return "top_side";
	case WLR_EDGE_BOTTOM: return "bottom_side";
	case WLR_EDGE_LEFT: return "left_side";
	case WLR_EDGE_RIGHT: return "right_side";
	case WLR_EDGE_TOP | WLR_EDGE_LEFT: return "top_left_corner";
	case WLR_EDGE_TOP | WLR_EDGE_RIGHT: return "top_right_corner";
	case WLR_EDGE_BOTTOM | WLR_EDGE_LEFT: return "bottom_left_corner";
	case WLR_EDGE_BOTTOM | WLR_EDGE_RIGHT: return "bottom_right_corner";
	default: return CW_DEFAULT_CURSOR;
	}
}

static void
set_cursor_image(struct cw_seat *seat, const char *name)
{
	if (seat->cursor_shown) {
		guest_cursor_unwatch(); // no guest surface is the cursor any more
		wlr_xcursor_manager_set_cursor_image(seat->xcursor_manager, name, seat->cursor);
	}
}

static bool
guest_cursor_fits(struct wlr_surface *surface, int64_t hotspot_x, int64_t hotspot_y)
{
	const int max = CW_GUEST_CURSOR_MAX;
	return surface->current.width <= max && surface->current.height <= max &&
		hotspot_x >= 0 && hotspot_x <= max && hotspot_y >= 0 && hotspot_y <= max;
}

static void
guest_cursor_handle_commit(struct wl_listener *listener, void *data)
{
	struct wlr_surface *surface = guest_cursor.surface;
	/* As wlr_cursor does: attaching at (dx, dy) moves the hotspot. */
	guest_cursor.hotspot_x -= surface->current.dx;
	guest_cursor.hotspot_y -= surface->current.dy;
	if (!guest_cursor_fits(surface, guest_cursor.hotspot_x, guest_cursor.hotspot_y)) {
		wlr_log(WLR_DEBUG, "A guest's cursor grew to %dx%d: default cursor instead",
			surface->current.width, surface->current.height);
		set_cursor_image(guest_cursor.seat, CW_DEFAULT_CURSOR); // unwatches
	}
}

static void
guest_cursor_handle_destroy(struct wl_listener *listener, void *data)
{
	guest_cursor_unwatch();
}

/* A VM client's cursor surface: refused if too large now, watched for later. */
static bool
guest_cursor_accept(struct cw_seat *seat, struct wlr_surface *surface,
	int32_t hotspot_x, int32_t hotspot_y)
{
	if (surface == NULL) {
		return true; // hides the cursor over its own surface only
	}
	if (!guest_cursor_fits(surface, hotspot_x, hotspot_y)) {
		wlr_log(WLR_DEBUG, "Refusing a %dx%d guest cursor (hotspot %d,%d)",
			surface->current.width, surface->current.height, hotspot_x, hotspot_y);
		return false;
	}
	guest_cursor.seat = seat;
	guest_cursor.surface = surface;
	guest_cursor.hotspot_x = hotspot_x;
	guest_cursor.hotspot_y = hotspot_y;
	guest_cursor.commit.notify = guest_cursor_handle_commit;
	wl_signal_add(&surface->events.commit, &guest_cursor.commit);
	guest_cursor.destroy.notify = guest_cursor_handle_destroy;
	wl_signal_add(&surface->events.destroy, &guest_cursor.destroy);
	return true;
}

/* A pointer device was used: from now on the cursor is drawn. */
static void
note_pointer_activity(struct cw_seat *seat)
{
	wlr_idle_notify_activity(seat->server->idle, seat->seat);
	seat->cursor_shown = true;
}

static void
process_move(struct cw_seat *seat)
{
	struct cw_view *view = seat->grabbed_view;
	view->anchor_edges = 0;
	cw_view_move_to(view,
		seat->grab_geometry.x + (int)lround(seat->cursor->x - seat->grab_x),
		seat->grab_geometry.y + (int)lround(seat->cursor->y - seat->grab_y));
}

static void
process_resize(struct cw_seat *seat)
{
	struct wlr_box box = seat->grab_geometry;
	/* Rounded: absolute devices land on fractions of a pixel. */
	int dx = (int)lround(seat->cursor->x - seat->grab_x);
	int dy = (int)lround(seat->cursor->y - seat->grab_y);
	if (seat->resize_edges & WLR_EDGE_LEFT) {
		box.width -= dx;
	} else if (seat->resize_edges & WLR_EDGE_RIGHT) {
		box.width += dx;
	}
	if (seat->resize_edges & WLR_EDGE_TOP) {
		box.height -= dy;
	} else if (seat->resize_edges & WLR_EDGE_BOTTOM) {
		box.height += dy;
	}
	/* The position follows on commit, once the client has the new size. */
	uint32_t serial = cw_view_request_size(seat->grabbed_view, box.width, box.height);
	cw_view_anchor_resize(seat->grabbed_view, seat->resize_edges, &seat->grab_geometry, serial);
}

/* The VM display whose content (not frame) is under the pointer, or NULL. */
static struct cw_view *
vm_content_at(const struct hit *hit)
{
	bool content = hit->view != NULL && hit->surface == NULL && hit->part == CW_FRAME_NONE;
	return content && cw_view_is_vm(hit->view) ? hit->view : NULL;
}

static void
process_passthrough(struct cw_seat *seat, uint32_t time_msec)
{
	struct hit hit = hit_test(seat, seat->cursor->x, seat->cursor->y);
	if (cw_vm_input_motion(seat, vm_content_at(&hit), seat->cursor->x, seat->cursor->y)) {
		return; // a guest holds a button: it keeps the pointer until release
	}
	if (hit.surface == NULL) {
		const char *name = CW_DEFAULT_CURSOR;
		if (hit.view != NULL && hit.part == CW_FRAME_BORDER_EDGE) {
			name = cursor_name_for_edges(cw_frame_edges_at(&hit.view->frame,
				seat->cursor->x - hit.view->x, seat->cursor->y - hit.view->y));
		}
		/* Over a VM's display the guest's own cursor shows, if it has one. */
		bool guest_cursor = hit.view != NULL && hit.part == CW_FRAME_NONE &&
			seat->cursor_shown && cw_vm_view_set_cursor(hit.view);
		if (!guest_cursor) {
			set_cursor_image(seat, name);
		}
		wlr_seat_pointer_clear_focus(seat->seat);
		return;
	}
	/* A client that gets pointer focus sets its own cursor on enter. */
	if (seat->seat->pointer_state.focused_surface != hit.surface) {
		set_cursor_image(seat, CW_DEFAULT_CURSOR);
	}
	wlr_seat_pointer_notify_enter(seat->seat, hit.surface, hit.sx, hit.sy);
	wlr_seat_pointer_notify_motion(seat->seat, time_msec, hit.sx, hit.sy);
	if (seat->active_constraint == NULL) {
		cw_cursor_update_constraint(seat);
	}
}

static void
process_motion(struct cw_seat *seat, uint32_t time_msec)
{
	switch (seat->cursor_mode) {
	case CW_CURSOR_MOVE:
		process_move(seat);
		return;
	case CW_CURSOR_RESIZE:
		process_resize(seat);
		return;
	case CW_CURSOR_CLOSE_PRESS:
		return;
	case CW_CURSOR_PASSTHROUGH:
		process_passthrough(seat, time_msec);
		return;
	}
}

void
cw_seat_refresh_pointer(struct cw_seat *seat)
{
	if (seat->cursor_mode == CW_CURSOR_PASSTHROUGH) {
		process_passthrough(seat, 0);
	}
}

/* The constraint that applies now: the focused surface's, if under the pointer. */
static struct wlr_pointer_constraint_v1 *
effective_constraint(struct cw_seat *seat)
{
	struct wlr_pointer_constraint_v1 *constraint = seat->active_constraint;
	if (constraint == NULL || seat->cursor_mode != CW_CURSOR_PASSTHROUGH ||
			seat->seat->pointer_state.focused_surface != constraint->surface) {
		return NULL;
	}
	return constraint;
}

/*
 * Keeps a confined pointer inside its region: the motion stops at the
 * region's edge (searched along the motion) instead of being dropped.
 */
static void
confine_motion(struct cw_seat *seat, struct wlr_pointer_constraint_v1 *constraint,
	double *dx, double *dy)
{
	double sx = seat->seat->pointer_state.sx, sy = seat->seat->pointer_state.sy;
	pixman_region32_t *region = &constraint->region;
	if (pixman_region32_contains_point(region, (int)(sx + *dx), (int)(sy + *dy), NULL)) {
		return;
	}
	double inside = 0.0, outside = 1.0;
	for (int i = 0; i < 16; i++) {
		double t = (inside + outside) / 2;
		if (pixman_region32_contains_point(region, (int)(sx + *dx * t), (int)(sy + *dy * t), NULL)) {
			inside = t;
		} else {
			outside = t;
		}
	}
	*dx *= inside;
	*dy *= inside;
}

static void
handle_motion(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, cursor_motion);
	struct wlr_event_pointer_motion *event = data;
	note_pointer_activity(seat);
	wlr_relative_pointer_manager_v1_send_relative_motion(seat->relative_pointer_manager,
		seat->seat, (uint64_t)event->time_msec * 1000, event->delta_x, event->delta_y,
		event->unaccel_dx, event->unaccel_dy);

	double dx = event->delta_x, dy = event->delta_y;
	struct wlr_pointer_constraint_v1 *constraint = effective_constraint(seat);
	if (constraint != NULL) {
		if (constraint->type == WLR_POINTER_CONSTRAINT_V1_LOCKED) {
			return; // the client only wants relative motion
		}
		confine_motion(seat, constraint, &dx, &dy);
	}
	wlr_cursor_move(seat->cursor, event->device, dx, dy);
	process_motion(seat, event->time_msec);
}

static void
handle_motion_absolute(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, cursor_motion_absolute);
	struct wlr_event_pointer_motion_absolute *event = data;
	note_pointer_activity(seat);
	double lx, ly;
	wlr_cursor_absolute_to_layout_coords(seat->cursor, event->device, event->x, event->y, &lx, &ly);
	double dx = lx - seat->cursor->x, dy = ly - seat->cursor->y;
	wlr_relative_pointer_manager_v1_send_relative_motion(seat->relative_pointer_manager,
		seat->seat, (uint64_t)event->time_msec * 1000, dx, dy, dx, dy);
	struct wlr_pointer_constraint_v1 *constraint = effective_constraint(seat);
	if (constraint != NULL) {
		if (constraint->type == WLR_POINTER_CONSTRAINT_V1_LOCKED) {
			return;
		}
		confine_motion(seat, constraint, &dx, &dy);
	}
	wlr_cursor_move(seat->cursor, event->device, dx, dy);
	process_motion(seat, event->time_msec);
}

static bool
super_is_held(struct cw_seat *seat)
{
	struct wlr_keyboard *keyboard = wlr_seat_get_keyboard(seat->seat);
	return keyboard != NULL && (wlr_keyboard_get_modifiers(keyboard) & WLR_MODIFIER_LOGO);
}

/* Resize from the corner nearest the pointer, for Super+right-drag. */
static uint32_t
nearest_corner(struct cw_view *view, double lx, double ly)
{
	uint32_t edges = 0;
	edges |= lx < view->x + view->width / 2.0 ? WLR_EDGE_LEFT : WLR_EDGE_RIGHT;
	edges |= ly < view->y + view->height / 2.0 ? WLR_EDGE_TOP : WLR_EDGE_BOTTOM;
	return edges;
}

void
cw_seat_begin_grab(struct cw_seat *seat, struct cw_view *view,
	enum cw_cursor_mode mode, uint32_t edges)
{
	if (mode != CW_CURSOR_CLOSE_PRESS && (view->fullscreen || view->maximized)) {
		return; // a maximized or fullscreen window stays where it is
	}
	seat->cursor_mode = mode;
	seat->grabbed_view = view;
	seat->grab_x = seat->cursor->x;
	seat->grab_y = seat->cursor->y;
	seat->grab_geometry = (struct wlr_box){view->x, view->y, view->width, view->height};
	seat->resize_edges = edges;
	cw_vm_input_pointer_lost(seat);
	/* The client must not see motion while crossway owns the pointer. */
	wlr_seat_pointer_clear_focus(seat->seat);
	if (mode == CW_CURSOR_MOVE) {
		set_cursor_image(seat, "grabbing");
	} else if (mode == CW_CURSOR_RESIZE) {
		cw_view_set_resizing(view, true);
		set_cursor_image(seat, cursor_name_for_edges(edges));
	}
}

static void
end_grab(struct cw_seat *seat)
{
	struct cw_view *view = seat->grabbed_view;
	if (view != NULL && seat->cursor_mode == CW_CURSOR_RESIZE) {
		cw_view_set_resizing(view, false);
	}
	if (view != NULL && seat->cursor_mode == CW_CURSOR_CLOSE_PRESS) {
		struct hit hit = hit_test(seat, seat->cursor->x, seat->cursor->y);
		if (hit.view == view && hit.part == CW_FRAME_CLOSE) {
			cw_view_close(view);
		}
	}
	seat->cursor_mode = CW_CURSOR_PASSTHROUGH;
	seat->grabbed_view = NULL;
	process_passthrough(seat, 0);
}

void
cw_seat_view_gone(struct cw_seat *seat, struct cw_view *view)
{
	if (seat->grabbed_view == view) {
		seat->cursor_mode = CW_CURSOR_PASSTHROUGH;
		seat->grabbed_view = NULL;
	}
	cw_vm_input_view_gone(seat, view);
	if (seat->focused_view == view) {
		seat->focused_view = NULL; // not active any more: do not deactivate later
		/* Hand the focus to the next window on the stack. */
		struct cw_view *next = NULL, *candidate;
		wl_list_for_each(candidate, &seat->server->views, link) {
			if (candidate != view && candidate->mapped) {
				next = candidate;
				break;
			}
		}
		if (next != NULL) {
			cw_seat_focus_view(seat, next);
		} else {
			wlr_seat_keyboard_notify_clear_focus(seat->seat);
			cw_cursor_update_constraint(seat);
		}
	}
}

/* A press that crossway handles itself: returns true if it was consumed. */
static bool
handle_compositor_press(struct cw_seat *seat, uint32_t button)
{
	struct hit hit = hit_test(seat, seat->cursor->x, seat->cursor->y);
	if (vm_content_at(&hit) != seat->vm_pointer_view) {
		cw_vm_input_pointer_lost(seat); // a press elsewhere ends a guest's drag
	}
	if (hit.view == NULL) {
		return false;
	}
	cw_seat_focus_view(seat, hit.view);
	if (super_is_held(seat) && (button == BTN_LEFT || button == BTN_RIGHT)) {
		if (button == BTN_LEFT) {
			cw_seat_begin_grab(seat, hit.view, CW_CURSOR_MOVE, WLR_EDGE_NONE);
		} else {
			cw_seat_begin_grab(seat, hit.view, CW_CURSOR_RESIZE,
				nearest_corner(hit.view, seat->cursor->x, seat->cursor->y));
		}
		return true;
	}
	if (cw_vm_input_button(seat, vm_content_at(&hit), button, true)) {
		return true; // the guest's click
	}
	if (hit.surface != NULL || button != BTN_LEFT) {
		return hit.surface == NULL; // frame clicks with other buttons do nothing
	}
	double fx = seat->cursor->x - hit.view->x, fy = seat->cursor->y - hit.view->y;
	switch (hit.part) {
	case CW_FRAME_TITLE:
		cw_seat_begin_grab(seat, hit.view, CW_CURSOR_MOVE, WLR_EDGE_NONE);
		return true;
	case CW_FRAME_BORDER_EDGE:
		cw_seat_begin_grab(seat, hit.view, CW_CURSOR_RESIZE,
			cw_frame_edges_at(&hit.view->frame, fx, fy));
		return true;
	case CW_FRAME_CLOSE:
		cw_seat_begin_grab(seat, hit.view, CW_CURSOR_CLOSE_PRESS, WLR_EDGE_NONE);
		return true;
	case CW_FRAME_NONE:
		break;
	}
	return true;
}

static void
handle_button(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, cursor_button);
	struct wlr_event_pointer_button *event = data;
	note_pointer_activity(seat);
	if (event->state == WLR_BUTTON_RELEASED) {
		if (seat->cursor_mode != CW_CURSOR_PASSTHROUGH) {
			end_grab(seat);
			return;
		}
		if (cw_vm_input_button(seat, NULL, event->button, false)) {
			process_passthrough(seat, event->time_msec); // the guest may let go of the pointer
			return;
		}
		wlr_seat_pointer_notify_button(seat->seat, event->time_msec, event->button, event->state);
		return;
	}
	if (seat->cursor_mode != CW_CURSOR_PASSTHROUGH) {
		return; // a second button during a grab is ignored
	}
	if (handle_compositor_press(seat, event->button)) {
		return;
	}
	wlr_seat_pointer_notify_button(seat->seat, event->time_msec, event->button, event->state);
}

static void
handle_axis(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, cursor_axis);
	struct wlr_event_pointer_axis *event = data;
	wlr_idle_notify_activity(seat->server->idle, seat->seat);
	if (cw_vm_input_axis(seat, event)) {
		return;
	}
	wlr_seat_pointer_notify_axis(seat->seat, event->time_msec, event->orientation,
		event->delta, event->delta_discrete, event->source);
}

static void
handle_frame(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, cursor_frame);
	wlr_seat_pointer_notify_frame(seat->seat);
}

static void
handle_request_set_cursor(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, request_set_cursor);
	struct wlr_seat_pointer_request_set_cursor_event *event = data;
	/* Only the client under the pointer may change it, and not during a grab. */
	if (event->seat_client != seat->seat->pointer_state.focused_client ||
			seat->cursor_mode != CW_CURSOR_PASSTHROUGH || !seat->cursor_shown) {
		return;
	}
	guest_cursor_unwatch();
	struct wl_client *client = event->seat_client->client;
	if (cw_vm_from_client(client) != NULL &&
			!guest_cursor_accept(seat, event->surface, event->hotspot_x, event->hotspot_y)) {
		set_cursor_image(seat, CW_DEFAULT_CURSOR);
		return;
	}
	wlr_cursor_set_surface(seat->cursor, event->surface, event->hotspot_x, event->hotspot_y);
}

static void
deactivate_constraint(struct cw_seat *seat)
{
	struct wlr_pointer_constraint_v1 *constraint = seat->active_constraint;
	if (constraint == NULL) {
		return;
	}
	wl_list_remove(&seat->constraint_destroy.link);
	wl_list_init(&seat->constraint_destroy.link);
	seat->active_constraint = NULL;
	/* A lock may leave a hint where the client wants the pointer to be. */
	if (constraint->type == WLR_POINTER_CONSTRAINT_V1_LOCKED &&
			constraint->current.committed & WLR_POINTER_CONSTRAINT_V1_STATE_CURSOR_HINT) {
		struct cw_view *view = cw_view_from_surface(seat->server, constraint->surface);
		if (view != NULL) {
			wlr_cursor_warp(seat->cursor, NULL,
				view->x + view->surface_dx + constraint->current.cursor_hint.x,
				view->y + view->surface_dy + constraint->current.cursor_hint.y);
		}
	}
	wlr_pointer_constraint_v1_send_deactivated(constraint);
}

static void
handle_constraint_destroy(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, constraint_destroy);
	wl_list_remove(&seat->constraint_destroy.link);
	wl_list_init(&seat->constraint_destroy.link);
	if (seat->suppressed_constraint == seat->active_constraint) {
		seat->suppressed_constraint = NULL;
	}
	seat->active_constraint = NULL;
}

void
cw_cursor_update_constraint(struct cw_seat *seat)
{
	struct wlr_surface *focused = seat->seat->keyboard_state.focused_surface;
	struct wlr_pointer_constraint_v1 *constraint = NULL;
	if (focused != NULL) {
		constraint = wlr_pointer_constraints_v1_constraint_for_surface(
			seat->pointer_constraints, focused, seat->seat);
	}
	if (constraint != seat->suppressed_constraint) {
		seat->suppressed_constraint = NULL; // Super+Escape lasts until the focus moves
	}
	if (constraint == seat->active_constraint) {
		return;
	}
	deactivate_constraint(seat);
	if (constraint == NULL || constraint == seat->suppressed_constraint) {
		return;
	}
	/* It takes effect once the pointer is on the surface, inside the region. */
	struct wlr_seat_pointer_state *pointer = &seat->seat->pointer_state;
	if (pointer->focused_surface != constraint->surface ||
			!pixman_region32_contains_point(&constraint->region, (int)pointer->sx,
				(int)pointer->sy, NULL)) {
		return;
	}
	seat->active_constraint = constraint;
	wl_signal_add(&constraint->events.destroy, &seat->constraint_destroy);
	wlr_pointer_constraint_v1_send_activated(constraint);
}

void
cw_cursor_release_constraint(struct cw_seat *seat)
{
	if (seat->active_constraint != NULL) {
		seat->suppressed_constraint = seat->active_constraint;
		deactivate_constraint(seat);
	}
}

static void
handle_new_constraint(struct wl_listener *listener, void *data)
{
	struct cw_seat *seat = wl_container_of(listener, seat, new_constraint);
	(void)data;
	cw_cursor_update_constraint(seat);
}

bool
cw_cursor_init(struct cw_seat *seat)
{
	struct cw_server *server = seat->server;
	seat->cursor = wlr_cursor_create();
	if (seat->cursor == NULL) {
		return false;
	}
	wlr_cursor_attach_output_layout(seat->cursor, server->output_layout);
	/* XCURSOR_THEME/XCURSOR_SIZE follow the usual conventions. */
	const char *size_text = getenv("XCURSOR_SIZE");
	int size = size_text != NULL ? atoi(size_text) : 0;
	seat->xcursor_manager = wlr_xcursor_manager_create(getenv("XCURSOR_THEME"),
		size > 0 && size <= 256 ? (uint32_t)size : 24);
	if (seat->xcursor_manager == NULL || !wlr_xcursor_manager_load(seat->xcursor_manager, 1)) {
		wlr_log(WLR_ERROR, "Cannot load a cursor theme");
	}

	seat->relative_pointer_manager = wlr_relative_pointer_manager_v1_create(server->display);
	seat->pointer_constraints = wlr_pointer_constraints_v1_create(server->display);
	seat->new_constraint.notify = handle_new_constraint;
	wl_signal_add(&seat->pointer_constraints->events.new_constraint, &seat->new_constraint);
	seat->constraint_destroy.notify = handle_constraint_destroy;
	wl_list_init(&seat->constraint_destroy.link);

	seat->cursor_motion.notify = handle_motion;
	wl_signal_add(&seat->cursor->events.motion, &seat->cursor_motion);
	seat->cursor_motion_absolute.notify = handle_motion_absolute;
	wl_signal_add(&seat->cursor->events.motion_absolute, &seat->cursor_motion_absolute);
	seat->cursor_button.notify = handle_button;
	wl_signal_add(&seat->cursor->events.button, &seat->cursor_button);
	seat->cursor_axis.notify = handle_axis;
	wl_signal_add(&seat->cursor->events.axis, &seat->cursor_axis);
	seat->cursor_frame.notify = handle_frame;
	wl_signal_add(&seat->cursor->events.frame, &seat->cursor_frame);
	seat->request_set_cursor.notify = handle_request_set_cursor;
	wl_signal_add(&seat->seat->events.request_set_cursor, &seat->request_set_cursor);
	return true;
}

void
cw_cursor_finish(struct cw_seat *seat)
{
	wl_list_remove(&seat->cursor_motion.link);
	wl_list_remove(&seat->cursor_motion_absolute.link);
	wl_list_remove(&seat->cursor_button.link);
	wl_list_remove(&seat->cursor_axis.link);
	wl_list_remove(&seat->cursor_frame.link);
	wl_list_remove(&seat->request_set_cursor.link);
	wl_list_remove(&seat->new_constraint.link);
	wl_list_remove(&seat->constraint_destroy.link);
	wlr_xcursor_manager_destroy(seat->xcursor_manager);
	wlr_cursor_destroy(seat->cursor);
}
