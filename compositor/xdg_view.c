#include "xdg_view.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/util/edges.h>
#include <wlr/util/log.h>

#include "server.h"
#include "text.h"
#include "vm.h"
#include "vm_client.h"

/* app_ids are identifiers: shorter than titles. */
#define CW_APP_ID_MAX 64

static struct cw_xdg_view *
xdg_view_from_view(struct cw_view *view)
{
	return wl_container_of(view, (struct cw_xdg_view *)NULL, base);
}

struct cw_view *
cw_xdg_view_from_xdg_surface(struct wlr_xdg_surface *xdg_surface)
{
	if (xdg_surface == NULL || xdg_surface->role != WLR_XDG_SURFACE_ROLE_TOPLEVEL) {
		return NULL;
	}
	/* A toplevel's data is its view's overlay node (where popups attach). */
	return xdg_surface->data != NULL ? cw_view_from_node(xdg_surface->data) : NULL;
}

/* --- VM identity ------------------------------------------------------------ */

/*
 * How a user tells a guest's window from a host window that imitates it (a
 * host client titled "work: x"): the frame. crossway draws it above the
 * client's surfaces; a VM's windows always have it (decoration.c forces
 * server-side decorations, a guest's fullscreen becomes maximize) and it
 * is always in the VM's colour, while host windows always have crossway's
 * default colours. The "NAME: " prefix comes first, so a guest can neither
 * remove it (long titles are cut at the end) nor move it (bidi overrides
 * are sanitised away); a guest titling itself "other: x" shows as
 * "work: other: x" in work's colour.
 */
static char *
join_prefix(const char *name, const char *separator, const char *text)
{
	size_t size = strlen(name) + strlen(separator) + strlen(text) + 1;
	char *joined = malloc(size);
	if (joined != NULL) {
		snprintf(joined, size, "%s%s%s", name, separator, text);
	}
	return joined;
}

char *
cw_xdg_view_title(const struct cw_xdg_view *xview)
{
	const char *title = xview->xdg_surface->toplevel->title;
	if (xview->vm == NULL) {
		return strdup(title != NULL ? title : "");
	}
	if (title == NULL || title[0] == '\0') {
		return strdup(xview->vm->config.name);
	}
	return join_prefix(xview->vm->config.name, ": ", title);
}

char *
cw_xdg_view_app_id(const struct cw_xdg_view *xview)
{
	char *app_id = cw_text_sanitize(xview->xdg_surface->toplevel->app_id, CW_APP_ID_MAX);
	if (xview->vm == NULL || app_id == NULL) {
		return app_id;
	}
	char *prefixed = join_prefix(xview->vm->config.name, ":", app_id);
	free(app_id);
	return prefixed;
}

static void
update_title(struct cw_xdg_view *xview)
{
	char *title = cw_xdg_view_title(xview);
	/* Out of memory: a VM's window still shows at least whose it is. */
	cw_view_set_title(&xview->base, title != NULL ? title :
		xview->vm != NULL ? xview->vm->config.name : NULL);
	free(title);
}

/* --- surface trees ----------------------------------------------------------- */

/*
 * What a VM window's surfaces may span and how deep and wide they may nest
 * for crossway to show them: as large as any window (cw_view_request_size).
 * Beyond that the content is hidden, the frame stays.
 */
#define CW_TREE_MAX_SIZE 16384
#define CW_TREE_MAX_DEPTH 32
#define CW_TREE_MAX_SURFACES 512

static int
clamp_size(int64_t size)
{
	return size < 1 ? 1 : size > CW_TREE_MAX_SIZE ? CW_TREE_MAX_SIZE : (int)size;
}

static int
to_int(int64_t value)
{
	return value < INT_MIN ? INT_MIN : value > INT_MAX ? INT_MAX : (int)value;
}

/* 64-bit: guest positions are any int32 and add up along the tree. */
struct tree_extent {
	int64_t x1, y1, x2, y2;
	int surfaces;
	bool refused; // too deep or too many surfaces
};

static void extent_add(struct tree_extent *extent, struct wlr_surface *surface,
	int64_t x, int64_t y, int depth);

static void
extent_add_list(struct tree_extent *extent, struct wl_list *subsurfaces,
	int64_t x, int64_t y, int depth)
{
	struct wlr_subsurface *sub;
	wl_list_for_each(sub, subsurfaces, current.link) {
		/* As the scene draws them: mapped ones only, at their current position. */
		if (sub->mapped && !extent->refused) {
			extent_add(extent, sub->surface, x + sub->current.x, y + sub->current.y, depth + 1);
		}
	}
}

static void
extent_add(struct tree_extent *extent, struct wlr_surface *surface, int64_t x, int64_t y,
	int depth)
{
	if (depth > CW_TREE_MAX_DEPTH || ++extent->surfaces > CW_TREE_MAX_SURFACES) {
		extent->refused = true;
		return;
	}
	extent->x1 = x < extent->x1 ? x : extent->x1;
	extent->y1 = y < extent->y1 ? y : extent->y1;
	int64_t x2 = x + surface->current.width, y2 = y + surface->current.height;
	extent->x2 = x2 > extent->x2 ? x2 : extent->x2;
	extent->y2 = y2 > extent->y2 ? y2 : extent->y2;
	extent_add_list(extent, &surface->current.subsurfaces_below, x, y, depth);
	extent_add_list(extent, &surface->current.subsurfaces_above, x, y, depth);
}

/*
 * Every pixel a surface and its subsurfaces draw, in the surface's
 * coordinates (wlr_surface_get_extends, without its int overflows). Always
 * contains the surface's origin. False when it is too large to be shown.
 */
static bool
surface_tree_extent(struct wlr_surface *surface, struct wlr_box *box)
{
	struct tree_extent extent = {0};
	extent_add(&extent, surface, 0, 0, 0);
	if (extent.refused || extent.x2 - extent.x1 > CW_TREE_MAX_SIZE ||
			extent.y2 - extent.y1 > CW_TREE_MAX_SIZE) {
		return false;
	}
	/* Within +-CW_TREE_MAX_SIZE of the origin: fits an int. */
	*box = (struct wlr_box){(int)extent.x1, (int)extent.y1,
		(int)(extent.x2 - extent.x1), (int)(extent.y2 - extent.y1)};
	return true;
}

/*
 * Commits anywhere below a surface: a desynchronised subsurface commits
 * alone, without its parent, and may grow or move what the tree draws.
 * Every subsurface (recursively) is watched; the root is the owner's own.
 */
struct cw_subsurface_watch {
	struct wl_list surfaces; // watched_surface.link
	struct wl_listener root_new_subsurface;
	void (*changed)(void *data);
	void *data;
};

struct watched_surface {
	struct cw_subsurface_watch *watch;
	struct wl_list link;
	struct wl_listener commit;
	struct wl_listener new_subsurface;
	struct wl_listener destroy;
};

static void watch_subsurface(struct cw_subsurface_watch *watch, struct wlr_subsurface *sub,
	int depth);

static void
watch_children(struct cw_subsurface_watch *watch, struct wlr_surface *surface, int depth)
{
	/* Deeper trees are refused anyway (extent_add): no unbounded recursion here. */
	if (depth > CW_TREE_MAX_DEPTH) {
		return;
	}
	/* The pending lists hold every subsurface, committed or not yet. */
	struct wlr_subsurface *sub;
	wl_list_for_each(sub, &surface->pending.subsurfaces_below, pending.link) {
		watch_subsurface(watch, sub, depth);
	}
	wl_list_for_each(sub, &surface->pending.subsurfaces_above, pending.link) {
		watch_subsurface(watch, sub, depth);
	}
}

static void
watched_handle_commit(struct wl_listener *listener, void *data)
{
	struct watched_surface *watched = wl_container_of(listener, watched, commit);
	watched->watch->changed(watched->watch->data);
}

static void
watched_handle_new_subsurface(struct wl_listener *listener, void *data)
{
	struct watched_surface *watched = wl_container_of(listener, watched, new_subsurface);
	watch_subsurface(watched->watch, data, 0); // a new subsurface has no children yet
}

static void
watched_free(struct watched_surface *watched)
{
	wl_list_remove(&watched->link);
	wl_list_remove(&watched->commit.link);
	wl_list_remove(&watched->new_subsurface.link);
	wl_list_remove(&watched->destroy.link);
	free(watched);
}

static void
watched_handle_destroy(struct wl_listener *listener, void *data)
{
	/* No call back: a tree only shrinks by this, and the next commit shows it. */
	struct watched_surface *watched = wl_container_of(listener, watched, destroy);
	watched_free(watched);
}

static void
watch_subsurface(struct cw_subsurface_watch *watch, struct wlr_subsurface *sub, int depth)
{
	struct watched_surface *watched = calloc(1, sizeof(*watched));
	if (watched == NULL) {
		wl_resource_post_no_memory(sub->resource);
		return;
	}
	watched->watch = watch;
	wl_list_insert(&watch->surfaces, &watched->link);
	watched->commit.notify = watched_handle_commit;
	wl_signal_add(&sub->surface->events.commit, &watched->commit);
	watched->new_subsurface.notify = watched_handle_new_subsurface;
	wl_signal_add(&sub->surface->events.new_subsurface, &watched->new_subsurface);
	watched->destroy.notify = watched_handle_destroy;
	wl_signal_add(&sub->surface->events.destroy, &watched->destroy);
	watch_children(watch, sub->surface, depth + 1);
}

static void
watch_handle_root_new_subsurface(struct wl_listener *listener, void *data)
{
	struct cw_subsurface_watch *watch = wl_container_of(listener, watch, root_new_subsurface);
	watch_subsurface(watch, data, 0);
}

/* Calls changed(data) on every commit of a subsurface below root; NULL when out of memory. */
static struct cw_subsurface_watch *
watch_create(struct wlr_surface *root, void (*changed)(void *data), void *data)
{
	struct cw_subsurface_watch *watch = calloc(1, sizeof(*watch));
	if (watch == NULL) {
		return NULL;
	}
	wl_list_init(&watch->surfaces);
	watch->changed = changed;
	watch->data = data;
	watch->root_new_subsurface.notify = watch_handle_root_new_subsurface;
	wl_signal_add(&root->events.new_subsurface, &watch->root_new_subsurface);
	watch_children(watch, root, 0);
	return watch;
}

static void
watch_destroy(struct cw_subsurface_watch *watch)
{
	if (watch == NULL) {
		return;
	}
	struct watched_surface *watched, *tmp;
	wl_list_for_each_safe(watched, tmp, &watch->surfaces, link) {
		watched_free(watched);
	}
	wl_list_remove(&watch->root_new_subsurface.link);
	free(watch);
}

/* --- cw_view_impl ---------------------------------------------------------- */

static void
xdg_set_activated(struct cw_view *view, bool activated)
{
	wlr_xdg_toplevel_set_activated(xdg_view_from_view(view)->xdg_surface, activated);
}

static uint32_t
xdg_request_size(struct cw_view *view, int width, int height)
{
	struct cw_xdg_view *xview = xdg_view_from_view(view);
	struct wlr_xdg_surface *xdg_surface = xview->xdg_surface;
	/*
	 * The size is for the window's box; a VM window's may be larger than
	 * its geometry (update_box): ask for the geometry that makes that box.
	 */
	width = clamp_size((int64_t)width - (xview->box.width - xview->geometry.width));
	height = clamp_size((int64_t)height - (xview->box.height - xview->geometry.height));
	/* Clients state their own limits; a size outside them would be ignored. */
	struct wlr_xdg_toplevel_state *state = &xdg_surface->toplevel->current;
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
	return wlr_xdg_toplevel_set_size(xdg_surface, (uint32_t)width, (uint32_t)height);
}

static void
xdg_set_maximized(struct cw_view *view, bool maximized)
{
	wlr_xdg_toplevel_set_maximized(xdg_view_from_view(view)->xdg_surface, maximized);
}

static void
xdg_set_fullscreen(struct cw_view *view, bool fullscreen)
{
	wlr_xdg_toplevel_set_fullscreen(xdg_view_from_view(view)->xdg_surface, fullscreen);
}

static void
xdg_set_resizing(struct cw_view *view, bool resizing)
{
	struct wlr_xdg_surface *xdg_surface = xdg_view_from_view(view)->xdg_surface;
	wlr_xdg_toplevel_set_resizing(xdg_surface, resizing);
	if (resizing) {
		/* Start from the current size rather than "client decides" (0x0). */
		struct wlr_box *geometry = &xdg_view_from_view(view)->geometry;
		wlr_xdg_toplevel_set_size(xdg_surface, (uint32_t)clamp_size(geometry->width),
			(uint32_t)clamp_size(geometry->height));
	}
}

static uint32_t
xdg_committed_serial(struct cw_view *view)
{
	return xdg_view_from_view(view)->xdg_surface->current.configure_serial;
}

static void
xdg_close(struct cw_view *view)
{
	wlr_xdg_toplevel_send_close(xdg_view_from_view(view)->xdg_surface);
}

static const struct cw_view_impl xdg_view_impl = {
	.kind = "toplevel",
	.set_activated = xdg_set_activated,
	.request_size = xdg_request_size,
	.set_maximized = xdg_set_maximized,
	.set_fullscreen = xdg_set_fullscreen,
	.set_resizing = xdg_set_resizing,
	.committed_serial = xdg_committed_serial,
	.close = xdg_close,
};

/* --- xdg-shell events ------------------------------------------------------- */

static void check_popups(struct cw_xdg_view *xview);

/*
 * A VM window that draws more than crossway will frame (surface_tree_extent
 * fails): its surfaces and popups are hidden, its frame stays, until a
 * commit brings it back within bounds.
 */
static void
set_content_refused(struct cw_xdg_view *xview, bool refused)
{
	if (refused == xview->content_refused) {
		return;
	}
	xview->content_refused = refused;
	wlr_scene_node_set_enabled(&xview->base.content->node, !refused);
	wlr_scene_node_set_enabled(&xview->base.overlay->node, !refused);
	/* Debug only: a guest could flip this on every commit to flood the log. */
	wlr_log(WLR_DEBUG, "%s the content of '%s': its surface tree is %s",
		refused ? "Hiding" : "Showing", xview->base.frame.title ? xview->base.frame.title : "",
		refused ? "too large or too deep" : "within bounds again");
}

/* The smallest box holding a and b, or false when that is too large to frame. */
static bool
box_union(const struct wlr_box *a, const struct wlr_box *b, struct wlr_box *out)
{
	int64_t x1 = a->x < b->x ? a->x : b->x;
	int64_t y1 = a->y < b->y ? a->y : b->y;
	int64_t x2 = (int64_t)a->x + a->width, y2 = (int64_t)a->y + a->height;
	int64_t bx2 = (int64_t)b->x + b->width, by2 = (int64_t)b->y + b->height;
	x2 = bx2 > x2 ? bx2 : x2;
	y2 = by2 > y2 ? by2 : y2;
	if (x2 - x1 > CW_TREE_MAX_SIZE || y2 - y1 > CW_TREE_MAX_SIZE) {
		return false;
	}
	*out = (struct wlr_box){(int)x1, (int)y1, (int)(x2 - x1), (int)(y2 - y1)};
	return true;
}

/*
 * The box crossway frames, in the surface's coordinates. wlroots 0.15's
 * scene has no clipping: whatever a surface tree draws outside the window
 * geometry (a larger buffer, subsurfaces anywhere) is drawn, over other
 * windows. A host client is trusted with that (shadows); a VM's window
 * gets a box holding every pixel of its tree, so its frame encloses all it
 * draws (peers-and-policy.md §2 rules 4 and 8).
 */
static struct wlr_box
window_box(struct cw_xdg_view *xview)
{
	if (xview->vm == NULL) {
		return xview->geometry;
	}
	struct wlr_box extent, box;
	bool shown = surface_tree_extent(xview->xdg_surface->surface, &extent) &&
		box_union(&xview->geometry, &extent, &box);
	set_content_refused(xview, !shown);
	if (shown) {
		return box;
	}
	/* Hidden: keep the frame where it was, or a sane one around the geometry. */
	if (!wlr_box_empty(&xview->box)) {
		return xview->box;
	}
	return (struct wlr_box){0, 0, clamp_size(xview->geometry.width),
		clamp_size(xview->geometry.height)};
}

static void
update_box(struct cw_xdg_view *xview)
{
	struct cw_view *view = &xview->base;
	wlr_xdg_surface_get_geometry(xview->xdg_surface, &xview->geometry);
	xview->box = window_box(xview);
	/*
	 * The xdg scene node puts the geometry's origin at its own origin (and
	 * popups relative to it); the box's origin goes at the content origin.
	 * 0 for a host window; 64-bit and clamped, as a hidden VM window's
	 * geometry may be anything.
	 */
	int64_t dx = (int64_t)xview->geometry.x - xview->box.x;
	int64_t dy = (int64_t)xview->geometry.y - xview->box.y;
	wlr_scene_node_set_position(&view->content->node, to_int(dx), to_int(dy));
	wlr_scene_node_set_position(&view->overlay->node, to_int(dx), to_int(dy));
	view->surface_dx = to_int(dx - xview->geometry.x);
	view->surface_dy = to_int(dy - xview->geometry.y);
}

/*
 * Fullscreen hides crossway's frame and covers everything: a guest could
 * then pass for the host or another VM (peers-and-policy.md §2 rule 3). A
 * VM's fullscreen request becomes maximize, framed in its colour; the
 * guest is told it is maximized.
 */
static void
set_fullscreen(struct cw_xdg_view *xview, bool fullscreen)
{
	if (xview->vm == NULL) {
		cw_view_set_fullscreen(&xview->base, fullscreen);
		return;
	}
	if (fullscreen) {
		xview->fullscreen_as_maximized = !xview->base.maximized;
		cw_view_set_maximized(&xview->base, true);
	} else if (xview->fullscreen_as_maximized) {
		xview->fullscreen_as_maximized = false;
		cw_view_set_maximized(&xview->base, false);
	} else {
		wlr_xdg_surface_schedule_configure(xview->xdg_surface); // xdg-shell wants one
	}
}

/*
 * A new window normally takes the keyboard focus. A VM's takes it only from
 * nothing or from its own VM (a guest window or display): a guest cannot
 * pull the keys the user is typing into the host or another VM towards
 * itself by opening a window (peers-and-policy.md §2 rule 2).
 */
static bool
may_take_focus_on_map(struct cw_xdg_view *xview)
{
	struct cw_view *focused = xview->base.server->seat.focused_view;
	if (xview->vm == NULL || focused == NULL) {
		return true;
	}
	struct cw_vm_view *display = cw_vm_view_from_view(focused);
	if (display != NULL) {
		return display->vm == xview->vm;
	}
	if (focused->impl != xview->base.impl) {
		return false;
	}
	return xdg_view_from_view(focused)->vm == xview->vm;
}

static void
handle_map(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, map);
	struct cw_view *view = &xview->base;
	struct wlr_xdg_toplevel *toplevel = xview->xdg_surface->toplevel;
	update_box(xview);
	char *app_id = cw_xdg_view_app_id(xview);
	wlr_log(WLR_DEBUG, "Toplevel '%s' has app_id '%s'",
		view->frame.title ? view->frame.title : "", app_id ? app_id : "");
	free(app_id);
	cw_view_map(view, xview->box.width, xview->box.height);
	if (toplevel->requested.fullscreen) {
		set_fullscreen(xview, true);
	} else if (toplevel->requested.maximized) {
		cw_view_set_maximized(view, true);
	}
	if (may_take_focus_on_map(xview)) {
		cw_seat_focus_view(&view->server->seat, view);
	} else {
		wlr_log(WLR_INFO, "Not focusing '%s': another domain has the keyboard",
			view->frame.title ? view->frame.title : "");
		/* Nor does it cover the window the user is working in (rule 2: no raise). */
		cw_view_stack_below(view, view->server->seat.focused_view);
	}
	cw_seat_refresh_pointer(&view->server->seat);
}

static void
handle_unmap(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, unmap);
	cw_view_unmap(&xview->base);
}

static void
handle_commit(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, commit);
	if (!xview->base.mapped) {
		return;
	}
	update_box(xview);
	cw_view_content_resized(&xview->base, xview->box.width, xview->box.height);
	check_popups(xview);
}

/* A subsurface of a VM window committed: its box may have changed. */
static void
handle_subsurfaces_changed(void *data)
{
	handle_commit(&((struct cw_xdg_view *)data)->commit, NULL);
}

static void
handle_destroy(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, destroy);
	wl_list_remove(&xview->map.link);
	wl_list_remove(&xview->unmap.link);
	wl_list_remove(&xview->destroy.link);
	wl_list_remove(&xview->commit.link);
	wl_list_remove(&xview->request_move.link);
	wl_list_remove(&xview->request_resize.link);
	wl_list_remove(&xview->request_maximize.link);
	wl_list_remove(&xview->request_fullscreen.link);
	wl_list_remove(&xview->set_title.link);
	wl_list_remove(&xview->set_app_id.link);
	xview->xdg_surface->data = NULL;
	watch_destroy(xview->subsurfaces);
	/* The xdg scene node went with the surface; the rest (popups' clips too) is ours. */
	cw_view_finish(&xview->base);
	free(xview);
}

static void
handle_request_move(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, request_move);
	struct wlr_xdg_toplevel_move_event *event = data;
	struct cw_seat *seat = &xview->base.server->seat;
	/* Only while a button press on this window is still held. */
	if (!xview->base.mapped ||
			!wlr_seat_validate_pointer_grab_serial(seat->seat, xview->xdg_surface->surface,
				event->serial)) {
		wlr_log(WLR_DEBUG, "Refusing a move request without a matching button press");
		return;
	}
	cw_seat_begin_grab(seat, &xview->base, CW_CURSOR_MOVE, WLR_EDGE_NONE);
}

static void
handle_request_resize(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, request_resize);
	struct wlr_xdg_toplevel_resize_event *event = data;
	struct cw_seat *seat = &xview->base.server->seat;
	if (!xview->base.mapped ||
			!wlr_seat_validate_pointer_grab_serial(seat->seat, xview->xdg_surface->surface,
				event->serial)) {
		wlr_log(WLR_DEBUG, "Refusing a resize request without a matching button press");
		return;
	}
	const uint32_t all = WLR_EDGE_TOP | WLR_EDGE_BOTTOM | WLR_EDGE_LEFT | WLR_EDGE_RIGHT;
	if ((event->edges & ~all) != 0 || event->edges == WLR_EDGE_NONE) {
		return;
	}
	cw_seat_begin_grab(seat, &xview->base, CW_CURSOR_RESIZE, event->edges);
}

static void
handle_request_maximize(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, request_maximize);
	if (!xview->base.mapped) {
		/* Handled at map time; xdg-shell still wants a configure now. */
		wlr_xdg_surface_schedule_configure(xview->xdg_surface);
		return;
	}
	cw_view_set_maximized(&xview->base, xview->xdg_surface->toplevel->requested.maximized);
}

static void
handle_request_fullscreen(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, request_fullscreen);
	struct wlr_xdg_toplevel_set_fullscreen_event *event = data;
	if (!xview->base.mapped) {
		wlr_xdg_surface_schedule_configure(xview->xdg_surface);
		return;
	}
	set_fullscreen(xview, event->fullscreen);
}

static void
handle_set_title(struct wl_listener *listener, void *data)
{
	struct cw_xdg_view *xview = wl_container_of(listener, xview, set_title);
	update_title(xview);
}

static void
handle_set_app_id(struct wl_listener *listener, void *data)
{
	/* Nothing uses the app_id yet; the map log shows it (cw_xdg_view_app_id). */
	(void)listener;
}

/* --- popups ------------------------------------------------------------------ */

/*
 * A VM window's popup. Popups are drawn in the window's overlay, which is
 * above the content; xdg-shell only makes the compositor apply the
 * adjustments the client asks for, so a guest could place a popup of any
 * size anywhere: over its own frame, other windows, the whole screen
 * (rules 3, 4 and 8). A VM's popup is placed inside its window's box
 * whatever the guest asked for, and hidden while what it draws leaves
 * that box. For a VM window the overlay is below the frame as well.
 */
struct cw_xdg_popup {
	struct wl_list link; // cw_xdg_view.popups
	struct cw_xdg_view *toplevel;
	struct wlr_xdg_popup *popup;
	struct wlr_scene_tree *clip; // holds the popup's scene node; disabled: hidden
	struct wlr_scene_node *node; // the popup's xdg scene node
	struct cw_subsurface_watch *subsurfaces;
	struct wl_listener commit;
	struct wl_listener destroy;      // the xdg surface's
	struct wl_listener clip_destroy; // the window or a parent popup went first
};

/*
 * Where the popup's geometry origin is drawn, in its window's surface
 * coordinates: the popup scene nodes sit at popup->geometry from their
 * parent's, the first at the window's geometry origin (update_box).
 */
static bool
popup_origin(const struct cw_xdg_popup *xpopup, int64_t *x, int64_t *y)
{
	struct wlr_xdg_popup *popup = xpopup->popup;
	int64_t px = 0, py = 0;
	for (;;) {
		px += popup->geometry.x;
		py += popup->geometry.y;
		struct wlr_surface *parent = popup->parent;
		if (parent == NULL || !wlr_surface_is_xdg_surface(parent)) {
			return false;
		}
		struct wlr_xdg_surface *xdg_parent = wlr_xdg_surface_from_wlr_surface(parent);
		if (xdg_parent == NULL) {
			return false;
		}
		if (xdg_parent->role != WLR_XDG_SURFACE_ROLE_POPUP) {
			if (xdg_parent != xpopup->toplevel->xdg_surface) {
				return false;
			}
			*x = px + xpopup->toplevel->geometry.x;
			*y = py + xpopup->toplevel->geometry.y;
			return true;
		}
		popup = xdg_parent->popup;
	}
}

/* How far to move [pos, pos + size) so it lies in [start, start + length). */
static int64_t
shift_into(int64_t pos, int64_t size, int64_t start, int64_t length)
{
	if (pos < start) {
		return start - pos;
	}
	if (pos + size > start + length) {
		return start + length - (pos + size);
	}
	return 0;
}

/* Places a new popup inside its window's box before its first configure. */
static void
place_popup(struct cw_xdg_popup *xpopup)
{
	struct wlr_xdg_popup *popup = xpopup->popup;
	struct wlr_box box = xpopup->toplevel->box; // the window surface's coordinates
	int64_t x, y;
	if (wlr_box_empty(&box)) {
		return; // the window is not mapped: hidden until it is (check_popup)
	}
	/* The guest's own adjustments first (flip, slide, resize)... */
	wlr_xdg_popup_unconstrain_from_box(popup, &box);
	/* ... then ours, whatever it allowed: no larger than the box, inside it. */
	struct wlr_box *geometry = &popup->geometry;
	geometry->width = geometry->width > box.width ? box.width : geometry->width;
	geometry->height = geometry->height > box.height ? box.height : geometry->height;
	if (popup_origin(xpopup, &x, &y)) {
		geometry->x = to_int(geometry->x + shift_into(x, geometry->width, box.x, box.width));
		geometry->y = to_int(geometry->y + shift_into(y, geometry->height, box.y, box.height));
	}
}

/*
 * Shows the popup only while all it draws (a buffer larger than its
 * geometry, subsurfaces) is inside the window's box; slides it back in when
 * it fits (a menu's shadow at the box's edge), else hides it.
 */
static void
check_popup(struct cw_xdg_popup *xpopup)
{
	struct cw_xdg_view *toplevel = xpopup->toplevel;
	struct wlr_xdg_surface *xdg_surface = xpopup->popup->base;
	struct wlr_box box = toplevel->box, extent, geometry;
	int64_t x, y;
	bool inside = toplevel->base.mapped && !wlr_box_empty(&box) &&
		popup_origin(xpopup, &x, &y) && surface_tree_extent(xdg_surface->surface, &extent) &&
		extent.width <= box.width && extent.height <= box.height;
	if (inside) {
		/* The scene draws the popup's surface at -geometry from its origin. */
		wlr_xdg_surface_get_geometry(xdg_surface, &geometry);
		int64_t ex = x - geometry.x + extent.x, ey = y - geometry.y + extent.y;
		int64_t dx = shift_into(ex, extent.width, box.x, box.width);
		int64_t dy = shift_into(ey, extent.height, box.y, box.height);
		if (dx != 0 || dy != 0) {
			struct wlr_xdg_popup *popup = xpopup->popup;
			popup->geometry.x = to_int(popup->geometry.x + dx);
			popup->geometry.y = to_int(popup->geometry.y + dy);
			wlr_scene_node_set_position(xpopup->node, popup->geometry.x, popup->geometry.y);
			wlr_xdg_surface_schedule_configure(xdg_surface); // tells it where it is
		}
	}
	if (inside != xpopup->clip->node.state.enabled) {
		wlr_log(WLR_DEBUG, "%s a popup of '%s'", inside ? "Showing" : "Hiding",
			toplevel->base.frame.title ? toplevel->base.frame.title : "");
	}
	wlr_scene_node_set_enabled(&xpopup->clip->node, inside);
}

/* Parents first: sliding a popup moves its children. */
static void
check_popups(struct cw_xdg_view *xview)
{
	struct cw_xdg_popup *xpopup;
	wl_list_for_each(xpopup, &xview->popups, link) {
		check_popup(xpopup);
	}
}

static void
popup_handle_commit(struct wl_listener *listener, void *data)
{
	struct cw_xdg_popup *xpopup = wl_container_of(listener, xpopup, commit);
	check_popups(xpopup->toplevel);
}

static void
popup_handle_subsurfaces_changed(void *data)
{
	struct cw_xdg_popup *xpopup = data;
	check_popups(xpopup->toplevel);
}

static void
popup_handle_destroy(struct wl_listener *listener, void *data)
{
	struct cw_xdg_popup *xpopup = wl_container_of(listener, xpopup, destroy);
	wlr_scene_node_destroy(&xpopup->clip->node); // frees xpopup (popup_handle_clip_destroy)
}

static void
popup_handle_clip_destroy(struct wl_listener *listener, void *data)
{
	struct cw_xdg_popup *xpopup = wl_container_of(listener, xpopup, clip_destroy);
	wl_list_remove(&xpopup->link);
	wl_list_remove(&xpopup->commit.link);
	wl_list_remove(&xpopup->destroy.link);
	wl_list_remove(&xpopup->clip_destroy.link);
	watch_destroy(xpopup->subsurfaces);
	/* Its scene node went with the clip: children popups must not attach to it. */
	xpopup->popup->base->data = NULL;
	free(xpopup);
}

static void
create_vm_popup(struct cw_xdg_view *toplevel, struct wlr_xdg_surface *xdg_surface,
	struct wlr_scene_node *parent_node)
{
	struct cw_xdg_popup *xpopup = calloc(1, sizeof(*xpopup));
	if (xpopup == NULL) {
		wl_resource_post_no_memory(xdg_surface->resource);
		return;
	}
	xpopup->toplevel = toplevel;
	xpopup->popup = xdg_surface->popup;
	xpopup->clip = wlr_scene_tree_create(parent_node);
	xpopup->node = xpopup->clip != NULL ?
		wlr_scene_xdg_surface_create(&xpopup->clip->node, xdg_surface) : NULL;
	xpopup->subsurfaces = watch_create(xdg_surface->surface,
		popup_handle_subsurfaces_changed, xpopup);
	if (xpopup->node == NULL || xpopup->subsurfaces == NULL) {
		if (xpopup->clip != NULL) {
			wlr_scene_node_destroy(&xpopup->clip->node);
		}
		watch_destroy(xpopup->subsurfaces);
		free(xpopup);
		wl_resource_post_no_memory(xdg_surface->resource);
		return;
	}
	xdg_surface->data = xpopup->node;
	wl_list_insert(toplevel->popups.prev, &xpopup->link);
	/* After the scene's own listener: the node has its position when we look. */
	xpopup->commit.notify = popup_handle_commit;
	wl_signal_add(&xdg_surface->surface->events.commit, &xpopup->commit);
	xpopup->destroy.notify = popup_handle_destroy;
	wl_signal_add(&xdg_surface->events.destroy, &xpopup->destroy);
	xpopup->clip_destroy.notify = popup_handle_clip_destroy;
	wl_signal_add(&xpopup->clip->node.events.destroy, &xpopup->clip_destroy);
	place_popup(xpopup);
	check_popup(xpopup);
}

/* A host's popups may not cover more than the output their toplevel is on. */
static void
unconstrain_popup(struct cw_view *view, struct wlr_xdg_popup *popup)
{
	struct wlr_box output_box;
	if (!cw_view_output_box(view, &output_box)) {
		return;
	}
	/* The box is in the coordinates of the toplevel's surface. */
	int surface_x = view->x + view->surface_dx;
	int surface_y = view->y + view->surface_dy;
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
	struct cw_view *view = cw_view_from_node(parent_node);
	if (view != NULL && view->impl == &xdg_view_impl &&
			cw_vm_from_client(wl_resource_get_client(xdg_surface->resource)) != NULL) {
		create_vm_popup(xdg_view_from_view(view), xdg_surface, parent_node);
		return;
	}
	struct wlr_scene_node *node = wlr_scene_xdg_surface_create(parent_node, xdg_surface);
	if (node == NULL) {
		wl_resource_post_no_memory(xdg_surface->resource);
		return;
	}
	xdg_surface->data = node;
	if (view != NULL) {
		unconstrain_popup(view, xdg_surface->popup);
	}
}

static void
create_toplevel(struct cw_server *server, struct wlr_xdg_surface *xdg_surface)
{
	struct cw_xdg_view *xview = calloc(1, sizeof(*xview));
	if (xview == NULL) {
		wlr_log(WLR_ERROR, "Out of memory for a new window");
		wl_resource_post_no_memory(xdg_surface->resource);
		return;
	}
	/* A guest application's window is framed in its VM's colour, host ones never. */
	xview->vm = cw_vm_from_client(wl_resource_get_client(xdg_surface->resource));
	struct cw_frame_colors colors;
	if (xview->vm != NULL) {
		cw_vm_frame_colors(xview->vm, &colors);
	} else {
		cw_frame_default_colors(&colors);
	}
	cw_view_init(&xview->base, server, &xdg_view_impl, &colors);
	xview->base.surface = xdg_surface->surface;
	xview->xdg_surface = xdg_surface;
	wl_list_init(&xview->popups);
	if (xview->vm != NULL) {
		/* Its popups stay inside its box (check_popup), and below its frame. */
		wlr_scene_node_place_below(&xview->base.overlay->node, &xview->base.frame.tree->node);
		xview->subsurfaces = watch_create(xdg_surface->surface, handle_subsurfaces_changed,
			xview);
	}
	if ((xview->vm != NULL && xview->subsurfaces == NULL) ||
			wlr_scene_xdg_surface_create(&xview->base.content->node, xdg_surface) == NULL) {
		watch_destroy(xview->subsurfaces);
		cw_view_finish(&xview->base);
		free(xview);
		wl_resource_post_no_memory(xdg_surface->resource);
		return;
	}
	/* Popups of this toplevel attach to xdg_surface->data (see create_popup). */
	xdg_surface->data = &xview->base.overlay->node;
	update_title(xview);

	struct wlr_xdg_toplevel *toplevel = xdg_surface->toplevel;
	xview->map.notify = handle_map;
	wl_signal_add(&xdg_surface->events.map, &xview->map);
	xview->unmap.notify = handle_unmap;
	wl_signal_add(&xdg_surface->events.unmap, &xview->unmap);
	xview->destroy.notify = handle_destroy;
	wl_signal_add(&xdg_surface->events.destroy, &xview->destroy);
	xview->commit.notify = handle_commit;
	wl_signal_add(&xdg_surface->surface->events.commit, &xview->commit);
	xview->request_move.notify = handle_request_move;
	wl_signal_add(&toplevel->events.request_move, &xview->request_move);
	xview->request_resize.notify = handle_request_resize;
	wl_signal_add(&toplevel->events.request_resize, &xview->request_resize);
	xview->request_maximize.notify = handle_request_maximize;
	wl_signal_add(&toplevel->events.request_maximize, &xview->request_maximize);
	xview->request_fullscreen.notify = handle_request_fullscreen;
	wl_signal_add(&toplevel->events.request_fullscreen, &xview->request_fullscreen);
	xview->set_title.notify = handle_set_title;
	wl_signal_add(&toplevel->events.set_title, &xview->set_title);
	xview->set_app_id.notify = handle_set_app_id;
	wl_signal_add(&toplevel->events.set_app_id, &xview->set_app_id);
}

void
cw_xdg_view_handle_new_surface(struct wl_listener *listener, void *data)
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
