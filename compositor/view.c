#include "view.h"

#include <stdlib.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/util/edges.h>
#include <wlr/util/log.h>

#include "output.h"
#include "server.h"

#define CW_CASCADE_STEP 32
#define CW_CASCADE_COUNT 8
/* Keep at least this much of a title bar on screen so a window stays grabbable. */
#define CW_MIN_VISIBLE 48

static int
title_bar_height(void)
{
	return CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER;
}

void
cw_view_init(struct cw_view *view, struct cw_server *server,
	const struct cw_view_impl *impl, const struct cw_frame_colors *colors)
{
	view->server = server;
	view->impl = impl;
	view->decorated = true; // server-side unless the client negotiates otherwise
	wl_list_init(&view->link);
	view->tree = wlr_scene_tree_create(&server->layers[CW_LAYER_NORMAL]->node);
	view->tree->node.data = view;
	wlr_scene_node_set_enabled(&view->tree->node, false);
	/*
	 * Bottom to top: content, frame, overlay. Content may draw outside its
	 * geometry (shadows); the frame is drawn over that, so a window can never
	 * paint over its own frame.
	 */
	view->content = wlr_scene_tree_create(&view->tree->node);
	cw_frame_init(&view->frame, &view->tree->node, colors);
	view->overlay = wlr_scene_tree_create(&view->tree->node);
}

void
cw_view_finish(struct cw_view *view)
{
	if (view->mapped) {
		cw_view_unmap(view);
	}
	cw_seat_view_gone(&view->server->seat, view);
	wl_list_remove(&view->link);
	cw_frame_finish(&view->frame);
	wlr_scene_node_destroy(&view->tree->node);
}

struct cw_view *
cw_view_from_surface(struct cw_server *server, struct wlr_surface *surface)
{
	if (surface == NULL) {
		return NULL;
	}
	struct cw_view *view;
	wl_list_for_each(view, &server->views, link) {
		if (view->surface == surface) {
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
	if (!view->decorated || view->fullscreen) {
		return (struct wlr_box){view->x, view->y, view->width, view->height};
	}
	return (struct wlr_box){
		.x = view->x - CW_FRAME_BORDER,
		.y = view->y - title_bar_height(),
		.width = view->width + 2 * CW_FRAME_BORDER,
		.height = view->height + title_bar_height() + CW_FRAME_BORDER,
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

bool
cw_view_output_box(const struct cw_view *view, struct wlr_box *box)
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
	view->impl->set_activated(view, activated);
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
cw_view_stack_below(struct cw_view *view, struct cw_view *above)
{
	if (above == NULL || above == view || !view->mapped || !above->mapped) {
		return;
	}
	/*
	 * Scene siblings only: a fullscreen window is in a layer of its own,
	 * above every normal window already.
	 */
	if (view->tree->node.parent == above->tree->node.parent) {
		wlr_scene_node_place_below(&view->tree->node, &above->tree->node);
	}
	wl_list_remove(&view->link);
	wl_list_insert(&above->link, &view->link); // the list is top first
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
	/* Never ask for less than a pixel, nor more than any output could take. */
	const int max = 16384;
	width = width < 1 ? 1 : width > max ? max : width;
	height = height < 1 ? 1 : height > max ? max : height;
	return view->impl->request_size(view, width, height);
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
	if (view->maximized || view->fullscreen || view->has_saved) {
		return;
	}
	view->saved = (struct wlr_box){view->x, view->y, view->width, view->height};
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
	if (maximized && cw_view_output_box(view, &output_box)) {
		save_geometry(view);
		int top = view->decorated ? title_bar_height() : 0;
		int side = view->decorated ? CW_FRAME_BORDER : 0;
		view->maximized = true;
		cw_view_move_to(view, output_box.x + side, output_box.y + top);
		view->impl->set_maximized(view, true);
		cw_view_request_size(view, output_box.width - 2 * side, output_box.height - top - side);
		return;
	}
	view->maximized = false;
	view->impl->set_maximized(view, false);
	if (!view->fullscreen) {
		restore_geometry(view);
	}
}

void
cw_view_set_fullscreen(struct cw_view *view, bool fullscreen)
{
	struct cw_server *server = view->server;
	struct wlr_box output_box;
	if (fullscreen && cw_view_output_box(view, &output_box)) {
		save_geometry(view);
		view->fullscreen = true;
		wlr_scene_node_reparent(&view->tree->node, &server->layers[CW_LAYER_FULLSCREEN]->node);
		cw_frame_set_visible(&view->frame, false);
		cw_view_move_to(view, output_box.x, output_box.y);
		view->impl->set_fullscreen(view, true);
		cw_view_request_size(view, output_box.width, output_box.height);
		cw_server_update_idle(server);
		return;
	}
	view->fullscreen = false;
	wlr_scene_node_reparent(&view->tree->node, &server->layers[CW_LAYER_NORMAL]->node);
	cw_frame_set_visible(&view->frame, view->decorated);
	view->impl->set_fullscreen(view, false);
	cw_server_update_idle(server);
	if (view->maximized) {
		cw_view_set_maximized(view, true);
	} else {
		restore_geometry(view);
	}
}

void
cw_view_set_resizing(struct cw_view *view, bool resizing)
{
	view->impl->set_resizing(view, resizing);
}

void
cw_view_close(struct cw_view *view)
{
	view->impl->close(view);
}

void
cw_view_set_decorated(struct cw_view *view, bool decorated)
{
	view->decorated = decorated;
	cw_frame_set_visible(&view->frame, decorated && !view->fullscreen);
}

void
cw_view_set_title(struct cw_view *view, const char *title)
{
	cw_frame_set_title(&view->frame, title);
}

void
cw_view_fit_to_layout(struct cw_view *view)
{
	struct wlr_box output_box;
	if (!cw_view_output_box(view, &output_box)) {
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
	struct wlr_box box;
	if (output == NULL || !cw_output_layout_box(server->output_layout, output, &box)) {
		cw_view_move_to(view, CW_FRAME_BORDER, title_bar_height());
		return;
	}
	int step = CW_CASCADE_STEP * (server->mapped_toplevels % CW_CASCADE_COUNT);
	int x = box.x + (box.width - view->width) / 2 + step;
	int y = box.y + (box.height - view->height) / 2 + step;
	/* Large windows start at the top-left corner, frame included. */
	if (x < box.x + CW_FRAME_BORDER) {
		x = box.x + CW_FRAME_BORDER;
	}
	if (y < box.y + title_bar_height()) {
		y = box.y + title_bar_height();
	}
	cw_view_move_to(view, x, y);
}

void
cw_view_map(struct cw_view *view, int width, int height)
{
	view->width = width;
	view->height = height;
	cw_frame_set_size(&view->frame, width, height);
	if (!view->placed) {
		place_new_view(view);
		view->placed = true;
	}
	view->mapped = true;
	wl_list_insert(&view->server->views, &view->link);
	wlr_scene_node_set_enabled(&view->tree->node, true);
	/* Tests and users read this line to know a window is on screen. */
	wlr_log(WLR_INFO, "Mapped %s '%s' %dx%d at %d,%d", view->impl->kind,
		view->frame.title ? view->frame.title : "", width, height, view->x, view->y);
	cw_server_toplevel_mapped(view->server);
}

void
cw_view_unmap(struct cw_view *view)
{
	wlr_log(WLR_INFO, "Unmapped %s '%s'", view->impl->kind,
		view->frame.title ? view->frame.title : "");
	view->mapped = false;
	wlr_scene_node_set_enabled(&view->tree->node, false);
	wl_list_remove(&view->link);
	wl_list_init(&view->link);
	cw_seat_view_gone(&view->server->seat, view);
	cw_server_toplevel_unmapped(view->server);
	cw_seat_refresh_pointer(&view->server->seat);
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
		x = view->anchor_box.x + view->anchor_box.width - view->width;
	}
	if (view->anchor_edges & WLR_EDGE_TOP) {
		y = view->anchor_box.y + view->anchor_box.height - view->height;
	}
	cw_view_move_to(view, x, y);
	/* Done once the grab is over and the last size asked for has arrived. */
	struct cw_seat *seat = &view->server->seat;
	bool grabbing = seat->grabbed_view == view && seat->cursor_mode == CW_CURSOR_RESIZE;
	int32_t behind = (int32_t)(view->anchor_serial - view->impl->committed_serial(view));
	if (!grabbing && behind <= 0) {
		view->anchor_edges = 0;
	}
}

void
cw_view_content_resized(struct cw_view *view, int width, int height)
{
	if (width != view->width || height != view->height) {
		view->width = width;
		view->height = height;
		cw_frame_set_size(&view->frame, width, height);
	}
	apply_resize_anchor(view);
}
