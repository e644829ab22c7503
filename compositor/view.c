#include "view.h"

#include <stdlib.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/util/edges.h>
#include <wlr/util/log.h>

#include "output.h"
#include "server.h"
#include "text.h"

#define CW_CASCADE_STEP 32
#define CW_CASCADE_COUNT 8
/* Keep at least this much of a title bar on screen so a window stays grabbable. */
#define CW_MIN_VISIBLE 48

struct cw_view *
cw_view_from_surface(struct cw_server *server, struct wlr_surface *surface)
{
	if (surface == NULL) {
		return NULL;
	}
	struct cw_view *view;
	wl_list_for_each(view, &server->views, link) {
		if (view->xdg_surface->surface == surface) {
			return view;
		}
	}
	return NULL;
}

struct cw_view *
cw_view_from_node(struct wlr_scene_node *node)
{
	/* Only the view's own tree carries the view in node->data. */
	while (node != NULL && node->data == NULL) {
		node = node->parent;
	}
	return node != NULL ? node->data : NULL;
}

struct wlr_box
cw_view_outer_box(const struct cw_view *view)
{
	if (!view->decorated || view->xdg_surface->toplevel->current.fullscreen) {
		return (struct wlr_box){view->x, view->y, view->geometry.width, view->geometry.height};
	}
	int top = CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER;
	return (struct wlr_box){
		.x = view->x - CW_FRAME_BORDER,
		.y = view->y - top,
		.width = view->geometry.width + 2 * CW_FRAME_BORDER,
		.height = view->geometry.height + top + CW_FRAME_BORDER,
	};
}

/* The output a view mostly belongs to: under its centre, else any. */
static struct wlr_output *
view_output(const struct cw_view *view)
{
	struct wlr_output_layout *layout = view->server->output_layout;
	struct wlr_box box = cw_view_outer_box(view);
	struct wlr_output *output = wlr_output_layout_output_at(layout,
		box.x + box.width / 2.0, box.y + box.height / 2.0);
	if (output == NULL) {
		output = wlr_output_layout_output_at(layout,
			view->server->seat.cursor->x, view->server->seat.cursor->y);
	}
	if (output == NULL) {
		output = wlr_output_layout_get_center_output(layout);
	}
	return output;
}

static bool
view_output_box(const struct cw_view *view, struct wlr_box *box)
{
	struct wlr_output *output = view_output(view);
	if (output == NULL) {
		return false;
	}
	return cw_output_layout_box(view->server->output_layout, output, box);
}

void
cw_view_set_activated(struct cw_view *view, bool activated)
{
	wlr_xdg_toplevel_set_activated(view->xdg_surface, activated);
	cw_frame_set_active(&view->frame, activated);
}

void
cw_view_raise(struct cw_view *view)
{
	wlr_scene_node_raise_to_top(&view->tree->node);
	wl_list_remove(&view->link);
	wl_list_insert(&view->server->views, &view->link);
}

void
cw_view_move_to(struct cw_view *view, int x, int y)
{
	view->x = x;
	view->y = y;
	wlr_scene_node_set_position(&view->tree->node, x, y);
}

uint32_t
cw_view_request_size(struct cw_view *view, int width, int height)
{
	/* Clients set their own limits; never ask for less than 1 pixel. */
	struct wlr_xdg_toplevel_state *state = &view->xdg_surface->toplevel->current;
	if (state->min_width > 0 && width < (int)state->min_width) {
		width = (int)state->min_width;
	}
	if (state->min_height > 0 && height < (int)state->min_height) {
		height = (int)state->min_height;
	}
	if (state->max_width > 0 && width > (int)state->max_width) {
		width = (int)state->max_width;
	}
	if (state->max_height > 0 && height > (int)state->max_height) {
		height = (int)state->max_height;
	}
	return wlr_xdg_toplevel_set_size(view->xdg_surface, width < 1 ? 1 : (uint32_t)width,
		height < 1 ? 1 : (uint32_t)height);
}

void
cw_view_anchor_resize(struct cw_view *view, uint32_t edges, const struct wlr_box *start,
	uint32_t serial)
{
	view->anchor_edges = edges & (WLR_EDGE_LEFT | WLR_EDGE_TOP);
	view->anchor_box = *start;
	view->anchor_serial = serial;
}

static void
save_geometry(struct cw_view *view)
{
	view->anchor_edges = 0;
	struct wlr_xdg_toplevel *toplevel = view->xdg_surface->toplevel;
	if (toplevel->current.maximized || toplevel->current.fullscreen || view->has_saved) {
		return;
	}
	view->saved = (struct wlr_box){view->x, view->y, view->geometry.width, view->geometry.height};
	view->has_saved = true;
}

static void
restore_geometry(struct cw_view *view)
{
	if (!view->has_saved) {
		return;
	}
	view->has_saved = false;
	cw_view_move_to(view, view->saved.x, view->saved.y);
	cw_view_request_size(view, view->saved.width, view->saved.height);
}

void
cw_view_set_maximized(struct cw_view *view, bool maximized)
{
	struct wlr_box output_box;
	if (maximized && view_output_box(view, &output_box)) {
		save_geometry(view);
		int top = view->decorated ? CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER : 0;
		int side = view->decorated ? CW_FRAME_BORDER : 0;
		cw_view_move_to(view, output_box.x + side, output_box.y + top);
		wlr_xdg_toplevel_set_maximized(view->xdg_surface, true);
		cw_view_request_size(view, output_box.width - 2 * side,
			output_box.height - top - side);
		return;
	}
	wlr_xdg_toplevel_set_maximized(view->xdg_surface, false);
	if (!view->xdg_surface->toplevel->current.fullscreen) {
		restore_geometry(view);
	}
}

void
cw_view_set_fullscreen(struct cw_view *view, bool fullscreen)
{
	struct cw_server *server = view->server;
	struct wlr_box output_box;
	if (fullscreen && view_output_box(view, &output_box)) {
		save_geometry(view);
		wlr_scene_node_reparent(&view->tree->node, &server->layers[CW_LAYER_FULLSCREEN]->node);
		cw_frame_set_visible(&view->frame, false);
		cw_view_move_to(view, output_box.x, output_box.y);
		wlr_xdg_toplevel_set_fullscreen(view->xdg_surface, true);
		cw_view_request_size(view, output_box.width, output_box.height);
		return;
	}
	wlr_scene_node_reparent(&view->tree->node, &server->layers[CW_LAYER_NORMAL]->node);
	cw_frame_set_visible(&view->frame, view->decorated);
	wlr_xdg_toplevel_set_fullscreen(view->xdg_surface, false);
	if (view->xdg_surface->toplevel->current.maximized) {
		cw_view_set_maximized(view, true);
	} else {
		restore_geometry(view);
	}
}

void
cw_view_close(struct cw_view *view)
{
	wlr_xdg_toplevel_send_close(view->xdg_surface);
}

void
cw_view_set_decorated(struct cw_view *view, bool decorated)
{
	view->decorated = decorated;
	bool fullscreen = view->xdg_surface->toplevel != NULL &&
		view->xdg_surface->toplevel->current.fullscreen;
	cw_frame_set_visible(&view->frame, decorated && !fullscreen);
}

void
cw_view_fit_to_layout(struct cw_view *view)
{
	struct wlr_box output_box;
	if (!view_output_box(view, &output_box)) {
		return;
	}
	struct wlr_box outer = cw_view_outer_box(view);
	int dx = 0, dy = 0;
	/* The title bar's top-left must stay reachable on some output. */
	if (outer.x + outer.width < output_box.x + CW_MIN_VISIBLE) {
		dx = output_box.x + CW_MIN_VISIBLE - (outer.x + outer.width);
	} else if (outer.x > output_box.x + output_box.width - CW_MIN_VISIBLE) {
		dx = output_box.x + output_box.width - CW_MIN_VISIBLE - outer.x;
	}
	if (outer.y < output_box.y) {
		dy = output_box.y - outer.y;
	} else if (outer.y > output_box.y + output_box.height - CW_MIN_VISIBLE) {
		dy = output_box.y + output_box.height - CW_MIN_VISIBLE - outer.y;
	}
	if (dx != 0 || dy != 0) {
		cw_view_move_to(view, view->x + dx, view->y + dy);
	}
}

/* New windows cascade from the centre of the output under the pointer. */
static void
place_new_view(struct cw_view *view)
{
	struct cw_server *server = view->server;
	struct wlr_output *output = wlr_output_layout_output_at(server->output_layout,
		server->seat.cursor->x, server->seat.cursor->y);
	if (output == NULL) {
		output = wlr_output_layout_get_center_output(server->output_layout);
	}
	if (output == NULL) {
		cw_view_move_to(view, 0, CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER);
		return;
	}
	struct wlr_box box;
	cw_output_layout_box(server->output_layout, output, &box);
	int step = CW_CASCADE_STEP * (server->mapped_toplevels % CW_CASCADE_COUNT);
	int x = box.x + (box.width - view->geometry.width) / 2 + step;
	int y = box.y + (box.height - view->geometry.height) / 2 + step;
	int top = CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER;
	/* Large windows start at the top-left corner, frame included. */
	if (x < box.x + CW_FRAME_BORDER) {
		x = box.x + CW_FRAME_BORDER;
	}
	if (y < box.y + top) {
		y = box.y + top;
	}
	cw_view_move_to(view, x, y);
}

static void
handle_map(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, map);
	struct wlr_xdg_toplevel *toplevel = view->xdg_surface->toplevel;
	wlr_xdg_surface_get_geometry(view->xdg_surface, &view->geometry);
	cw_frame_set_size(&view->frame, view->geometry.width, view->geometry.height);
	if (!view->placed) {
		place_new_view(view);
		view->placed = true;
	}
	view->mapped = true;
	wlr_scene_node_set_enabled(&view->tree->node, true);
	char *app_id = cw_text_sanitize(toplevel->app_id, 64);
	/* Tests and users read this line to know a window is on screen. */
	wlr_log(WLR_INFO, "Mapped toplevel '%s' app_id '%s' %dx%d at %d,%d",
		view->frame.title ? view->frame.title : "", app_id ? app_id : "",
		view->geometry.width, view->geometry.height, view->x, view->y);
	free(app_id);
	cw_server_toplevel_mapped(view->server);

	if (toplevel->requested.fullscreen) {
		cw_view_set_fullscreen(view, true);
	} else if (toplevel->requested.maximized) {
		cw_view_set_maximized(view, true);
	}
	cw_seat_focus_view(&view->server->seat, view);
}

static void
handle_unmap(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, unmap);
	wlr_log(WLR_INFO, "Unmapped toplevel '%s'", view->frame.title ? view->frame.title : "");
	view->mapped = false;
	wlr_scene_node_set_enabled(&view->tree->node, false);
	cw_seat_view_gone(&view->server->seat, view);
	cw_server_toplevel_unmapped(view->server);
}

/* Left and top resizes move the window: the opposite edge stays. */
static void
apply_resize_anchor(struct cw_view *view)
{
	if (view->anchor_edges == 0) {
		return;
	}
	int x = view->x, y = view->y;
	if (view->anchor_edges & WLR_EDGE_LEFT) {
		x = view->anchor_box.x + view->anchor_box.width - view->geometry.width;
	}
	if (view->anchor_edges & WLR_EDGE_TOP) {
		y = view->anchor_box.y + view->anchor_box.height - view->geometry.height;
	}
	cw_view_move_to(view, x, y);
	/* Done once the grab is over and the last size asked for has arrived. */
	struct cw_seat *seat = &view->server->seat;
	bool grabbing = seat->grabbed_view == view && seat->cursor_mode == CW_CURSOR_RESIZE;
	int32_t behind = (int32_t)(view->anchor_serial - view->xdg_surface->current.configure_serial);
	if (!grabbing && behind <= 0) {
		view->anchor_edges = 0;
	}
}

static void
handle_commit(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, commit);
	if (!view->mapped) {
		return;
	}
	struct wlr_box old = view->geometry;
	wlr_xdg_surface_get_geometry(view->xdg_surface, &view->geometry);
	/* The xdg scene node offsets the surface by the geometry itself. */
	if (old.width != view->geometry.width || old.height != view->geometry.height) {
		cw_frame_set_size(&view->frame, view->geometry.width, view->geometry.height);
	}
	apply_resize_anchor(view);
}

static void
handle_destroy(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, destroy);
	cw_seat_view_gone(&view->server->seat, view);
	wl_list_remove(&view->link);
	wl_list_remove(&view->map.link);
	wl_list_remove(&view->unmap.link);
	wl_list_remove(&view->destroy.link);
	wl_list_remove(&view->commit.link);
	wl_list_remove(&view->request_move.link);
	wl_list_remove(&view->request_resize.link);
	wl_list_remove(&view->request_maximize.link);
	wl_list_remove(&view->request_fullscreen.link);
	wl_list_remove(&view->set_title.link);
	wl_list_remove(&view->set_app_id.link);
	cw_frame_finish(&view->frame);
	/* The xdg scene node removes itself with the surface; the rest is ours. */
	wlr_scene_node_destroy(&view->tree->node);
	free(view);
}

static void
handle_request_move(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, request_move);
	struct wlr_xdg_toplevel_move_event *event = data;
	struct wlr_seat *seat = view->server->seat.seat;
	/* Only while a button press on this window is still held. */
	if (!wlr_seat_validate_pointer_grab_serial(seat, view->xdg_surface->surface, event->serial)) {
		wlr_log(WLR_DEBUG, "Refusing a move request without a matching button press");
		return;
	}
	cw_seat_begin_grab(&view->server->seat, view, CW_CURSOR_MOVE, WLR_EDGE_NONE);
}

static void
handle_request_resize(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, request_resize);
	struct wlr_xdg_toplevel_resize_event *event = data;
	struct wlr_seat *seat = view->server->seat.seat;
	if (!wlr_seat_validate_pointer_grab_serial(seat, view->xdg_surface->surface, event->serial)) {
		wlr_log(WLR_DEBUG, "Refusing a resize request without a matching button press");
		return;
	}
	const uint32_t all = WLR_EDGE_TOP | WLR_EDGE_BOTTOM | WLR_EDGE_LEFT | WLR_EDGE_RIGHT;
	if ((event->edges & ~all) != 0 || event->edges == WLR_EDGE_NONE) {
		return;
	}
	cw_seat_begin_grab(&view->server->seat, view, CW_CURSOR_RESIZE, event->edges);
}

static void
handle_request_maximize(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, request_maximize);
	if (!view->mapped) {
		/* Handled at map time; xdg-shell still wants a configure now. */
		wlr_xdg_surface_schedule_configure(view->xdg_surface);
		return;
	}
	cw_view_set_maximized(view, view->xdg_surface->toplevel->requested.maximized);
}

static void
handle_request_fullscreen(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, request_fullscreen);
	struct wlr_xdg_toplevel_set_fullscreen_event *event = data;
	if (!view->mapped) {
		wlr_xdg_surface_schedule_configure(view->xdg_surface);
		return;
	}
	cw_view_set_fullscreen(view, event->fullscreen);
}

static void
handle_set_title(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, set_title);
	cw_frame_set_title(&view->frame, view->xdg_surface->toplevel->title);
}

static void
handle_set_app_id(struct wl_listener *listener, void *data)
{
	struct cw_view *view = wl_container_of(listener, view, set_app_id);
	wlr_log(WLR_DEBUG, "View %p app_id is now '%s'", (void *)view,
		view->xdg_surface->toplevel->app_id ? view->xdg_surface->toplevel->app_id : "");
}

/* Popups may not cover more than the output their toplevel is on. */
static void
unconstrain_popup(struct cw_view *view, struct wlr_xdg_popup *popup)
{
	struct wlr_box output_box;
	if (!view_output_box(view, &output_box)) {
		return;
	}
	/* The box is in the coordinates of the toplevel's surface. */
	int surface_x = view->x - view->geometry.x;
	int surface_y = view->y - view->geometry.y;
	struct wlr_box box = {
		.x = output_box.x - surface_x,
		.y = output_box.y - surface_y,
		.width = output_box.width,
		.height = output_box.height,
	};
	wlr_xdg_popup_unconstrain_from_box(popup, &box);
}

static void
create_popup(struct wlr_xdg_surface *xdg_surface)
{
	struct wlr_surface *parent_surface = xdg_surface->popup->parent;
	if (parent_surface == NULL || !wlr_surface_is_xdg_surface(parent_surface)) {
		return; // no other popup parents (layer shell) exist in crossway
	}
	struct wlr_xdg_surface *parent = wlr_xdg_surface_from_wlr_surface(parent_surface);
	struct wlr_scene_node *parent_node = parent != NULL ? parent->data : NULL;
	if (parent_node == NULL) {
		return;
	}
	struct wlr_scene_node *node = wlr_scene_xdg_surface_create(parent_node, xdg_surface);
	if (node == NULL) {
		return;
	}
	xdg_surface->data = node;
	struct cw_view *view = cw_view_from_node(node);
	if (view != NULL) {
		unconstrain_popup(view, xdg_surface->popup);
	}
}

static void
create_toplevel(struct cw_server *server, struct wlr_xdg_surface *xdg_surface)
{
	struct cw_view *view = calloc(1, sizeof(*view));
	if (view == NULL) {
		wlr_log(WLR_ERROR, "Out of memory for a new window");
		wl_resource_post_no_memory(xdg_surface->resource);
		return;
	}
	view->server = server;
	view->xdg_surface = xdg_surface;
	view->decorated = true; // server-side unless the client negotiates otherwise
	view->tree = wlr_scene_tree_create(&server->layers[CW_LAYER_NORMAL]->node);
	view->tree->node.data = view;
	wlr_scene_node_set_enabled(&view->tree->node, false);

	/*
	 * Bottom to top: the client's surfaces, the frame, then popups. A
	 * client may draw outside its window geometry (shadows); the frame is
	 * drawn over that, so a window can never paint over its own frame.
	 */
	view->surface_node = wlr_scene_xdg_surface_create(&view->tree->node, xdg_surface);
	struct cw_frame_colors colors;
	cw_frame_default_colors(&colors);
	cw_frame_init(&view->frame, &view->tree->node, &colors);
	view->popups = wlr_scene_tree_create(&view->tree->node);
	/* Popups of this toplevel attach to xdg_surface->data (see create_popup). */
	xdg_surface->data = &view->popups->node;
	cw_frame_set_title(&view->frame, xdg_surface->toplevel->title);

	struct wlr_xdg_toplevel *toplevel = xdg_surface->toplevel;
	view->map.notify = handle_map;
	wl_signal_add(&xdg_surface->events.map, &view->map);
	view->unmap.notify = handle_unmap;
	wl_signal_add(&xdg_surface->events.unmap, &view->unmap);
	view->destroy.notify = handle_destroy;
	wl_signal_add(&xdg_surface->events.destroy, &view->destroy);
	view->commit.notify = handle_commit;
	wl_signal_add(&xdg_surface->surface->events.commit, &view->commit);
	view->request_move.notify = handle_request_move;
	wl_signal_add(&toplevel->events.request_move, &view->request_move);
	view->request_resize.notify = handle_request_resize;
	wl_signal_add(&toplevel->events.request_resize, &view->request_resize);
	view->request_maximize.notify = handle_request_maximize;
	wl_signal_add(&toplevel->events.request_maximize, &view->request_maximize);
	view->request_fullscreen.notify = handle_request_fullscreen;
	wl_signal_add(&toplevel->events.request_fullscreen, &view->request_fullscreen);
	view->set_title.notify = handle_set_title;
	wl_signal_add(&toplevel->events.set_title, &view->set_title);
	view->set_app_id.notify = handle_set_app_id;
	wl_signal_add(&toplevel->events.set_app_id, &view->set_app_id);

	wl_list_insert(&server->views, &view->link);
}

void
cw_view_handle_new_xdg_surface(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, new_xdg_surface);
	struct wlr_xdg_surface *xdg_surface = data;
	switch (xdg_surface->role) {
	case WLR_XDG_SURFACE_ROLE_POPUP:
		create_popup(xdg_surface);
		break;
	case WLR_XDG_SURFACE_ROLE_TOPLEVEL:
		create_toplevel(server, xdg_surface);
		break;
	case WLR_XDG_SURFACE_ROLE_NONE:
		break;
	}
}
