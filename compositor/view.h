#ifndef CW_VIEW_H
#define CW_VIEW_H

#include <stdbool.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_xdg_shell.h>
#include <wlr/util/box.h>

#include "frame.h"

struct cw_server;

/* One xdg toplevel window, with crossway's frame around it. */
struct cw_view {
	struct wl_list link; // cw_server.views
	struct cw_server *server;
	struct wlr_xdg_surface *xdg_surface;
	struct wlr_scene_tree *tree;         // frame + surfaces, at the content origin
	struct wlr_scene_node *surface_node; // xdg surface tree, offset by its geometry
	struct cw_frame frame;               // above the surfaces: shadows cannot cover it
	struct wlr_scene_tree *popups;       // above the frame, at the content origin

	/* Layout position of the window geometry's top-left corner. */
	int x, y;
	/* Window geometry last seen on commit (size drives the frame). */
	struct wlr_box geometry;
	bool mapped;
	bool decorated;      // crossway draws the frame
	bool placed;         // received an initial position
	/*
	 * An interactive resize from the left or top moves the window: the
	 * opposite edges of anchor_box stay put until the client has committed
	 * the size asked for with anchor_serial.
	 */
	uint32_t anchor_edges; // enum wlr_edges, 0 when not anchored
	struct wlr_box anchor_box;
	uint32_t anchor_serial;
	/* Geometry to return to after maximize/fullscreen. */
	struct wlr_box saved;
	bool has_saved;

	struct wl_listener map;
	struct wl_listener unmap;
	struct wl_listener destroy;
	struct wl_listener commit;
	struct wl_listener new_popup;
	struct wl_listener request_move;
	struct wl_listener request_resize;
	struct wl_listener request_maximize;
	struct wl_listener request_fullscreen;
	struct wl_listener set_title;
	struct wl_listener set_app_id;
};

/* Handles wlr_xdg_shell.events.new_surface. */
void cw_view_handle_new_xdg_surface(struct wl_listener *listener, void *data);

/* The view of an xdg toplevel's wl_surface, or NULL. */
struct cw_view *cw_view_from_surface(struct cw_server *server, struct wlr_surface *surface);

/* The view whose scene tree contains node, or NULL. */
struct cw_view *cw_view_from_node(struct wlr_scene_node *node);

void cw_view_set_activated(struct cw_view *view, bool activated);
void cw_view_raise(struct cw_view *view);
void cw_view_move_to(struct cw_view *view, int x, int y);
/* Asks the client for a new size of its window geometry; returns the serial. */
uint32_t cw_view_request_size(struct cw_view *view, int width, int height);
/* An interactive resize asked for a size: keep the edges opposite to `edges`. */
void cw_view_anchor_resize(struct cw_view *view, uint32_t edges, const struct wlr_box *start,
	uint32_t serial);
void cw_view_set_maximized(struct cw_view *view, bool maximized);
void cw_view_set_fullscreen(struct cw_view *view, bool fullscreen);
void cw_view_close(struct cw_view *view);
/* Sets whether crossway draws the frame (xdg-decoration negotiation). */
void cw_view_set_decorated(struct cw_view *view, bool decorated);
/* Frame + content box in layout coordinates. */
struct wlr_box cw_view_outer_box(const struct cw_view *view);
/* Keeps views reachable after an output went away or changed. */
void cw_view_fit_to_layout(struct cw_view *view);

#endif
