#ifndef CW_VIEW_H
#define CW_VIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_surface.h>
#include <wlr/util/box.h>

#include "frame.h"

struct cw_server;
struct cw_view;

/*
 * What differs between kinds of windows: an xdg toplevel of a Wayland
 * client (xdg_view.c) or, later, a VM's scanout. Stacking, focus, moving,
 * resizing, maximize and fullscreen are common and live in view.c.
 */
struct cw_view_impl {
	const char *kind; // for logs
	void (*set_activated)(struct cw_view *view, bool activated);
	/* Asks for a content size; returns a serial the commit will match (0: none). */
	uint32_t (*request_size)(struct cw_view *view, int width, int height);
	void (*set_maximized)(struct cw_view *view, bool maximized);
	void (*set_fullscreen)(struct cw_view *view, bool fullscreen);
	void (*set_resizing)(struct cw_view *view, bool resizing);
	/* The serial of the last size the content has caught up with. */
	uint32_t (*committed_serial)(struct cw_view *view);
	void (*close)(struct cw_view *view);
};

/* One window on screen, with crossway's frame around it. */
struct cw_view {
	struct wl_list link; // cw_server.views, top of the stack first
	struct cw_server *server;
	const struct cw_view_impl *impl;
	/* Receives keyboard focus; NULL for windows that are not Wayland surfaces. */
	struct wlr_surface *surface;
	int surface_dx, surface_dy; // surface origin relative to the content origin
	struct wlr_scene_tree *tree;   // everything, positioned at the content origin
	struct wlr_scene_tree *content; // the window's pixels (filled by the impl)
	struct cw_frame frame;          // above the content: shadows cannot cover it
	struct wlr_scene_tree *overlay; // above the frame (popups)

	/* Layout position of the content's top-left corner. */
	int x, y;
	int width, height; // content size, as last drawn
	bool mapped;
	bool decorated; // crossway draws the frame
	bool placed;    // received an initial position
	bool maximized, fullscreen;
	/* Geometry to return to after maximize/fullscreen. */
	struct wlr_box saved;
	bool has_saved;
	/*
	 * An interactive resize from the left or top moves the window: the
	 * opposite edges of anchor_box stay put until the content has caught up
	 * with the size asked for with anchor_serial.
	 */
	uint32_t anchor_edges; // enum wlr_edges, 0 when not anchored
	struct wlr_box anchor_box;
	uint32_t anchor_serial;
};

/* Creates the scene nodes; the view is not mapped or listed until cw_view_map. */
void cw_view_init(struct cw_view *view, struct cw_server *server,
	const struct cw_view_impl *impl, const struct cw_frame_colors *colors);
/* Removes the scene nodes and forgets the view everywhere. */
void cw_view_finish(struct cw_view *view);
/* The view became visible with content of width x height. */
void cw_view_map(struct cw_view *view, int width, int height);
void cw_view_unmap(struct cw_view *view);
/* The content now has this size (after a commit or a guest flush). */
void cw_view_content_resized(struct cw_view *view, int width, int height);

/* The view whose surface is this wl_surface, or NULL. */
struct cw_view *cw_view_from_surface(struct cw_server *server, struct wlr_surface *surface);
/* The view whose scene tree contains node, or NULL. */
struct cw_view *cw_view_from_node(struct wlr_scene_node *node);

void cw_view_set_activated(struct cw_view *view, bool activated);
void cw_view_raise(struct cw_view *view);
/* Stacks view directly below above (NULL: leaves it where it is). */
void cw_view_stack_below(struct cw_view *view, struct cw_view *above);
void cw_view_move_to(struct cw_view *view, int x, int y);
/* Asks for a new content size within the view's limits; returns the serial. */
uint32_t cw_view_request_size(struct cw_view *view, int width, int height);
/* An interactive resize asked for a size: keep the edges opposite to `edges`. */
void cw_view_anchor_resize(struct cw_view *view, uint32_t edges, const struct wlr_box *start,
	uint32_t serial);
void cw_view_set_maximized(struct cw_view *view, bool maximized);
void cw_view_set_fullscreen(struct cw_view *view, bool fullscreen);
void cw_view_set_resizing(struct cw_view *view, bool resizing);
void cw_view_close(struct cw_view *view);
/* Sets whether crossway draws the frame (xdg-decoration negotiation). */
void cw_view_set_decorated(struct cw_view *view, bool decorated);
void cw_view_set_title(struct cw_view *view, const char *title);
/* Frame + content box in layout coordinates. */
struct wlr_box cw_view_outer_box(const struct cw_view *view);
/* The layout box of the output the view is mostly on. */
bool cw_view_output_box(const struct cw_view *view, struct wlr_box *box);
/* Keeps views reachable after an output went away or changed. */
void cw_view_fit_to_layout(struct cw_view *view);

#endif
