#include "xdg_view.h"

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

/* --- cw_view_impl ---------------------------------------------------------- */

static void
xdg_set_activated(struct cw_view *view, bool activated)
{
	wlr_xdg_toplevel_set_activated(xdg_view_from_view(view)->xdg_surface, activated);
}

static uint32_t
xdg_request_size(struct cw_view *view, int width, int height)
{
	struct wlr_xdg_surface *xdg_surface = xdg_view_from_view(view)->xdg_surface;
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
		wlr_xdg_toplevel_set_size(xdg_surface, (uint32_t)view->width, (uint32_t)view->height);
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

static void
update_geometry(struct cw_xdg_view *xview)
{
	wlr_xdg_surface_get_geometry(xview->xdg_surface, &xview->geometry);
	/* The xdg scene node offsets the surface by the geometry itself. */
	xview->base.surface_dx = -xview->geometry.x;
	xview->base.surface_dy = -xview->geometry.y;
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
	update_geometry(xview);
	char *app_id = cw_xdg_view_app_id(xview);
	wlr_log(WLR_DEBUG, "Toplevel '%s' has app_id '%s'",
		view->frame.title ? view->frame.title : "", app_id ? app_id : "");
	free(app_id);
	cw_view_map(view, xview->geometry.width, xview->geometry.height);
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
	update_geometry(xview);
	cw_view_content_resized(&xview->base, xview->geometry.width, xview->geometry.height);
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
	/* The xdg scene node went with the surface; the rest is ours. */
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

/* Popups may not cover more than the output their toplevel is on. */
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
	struct wlr_scene_node *node = wlr_scene_xdg_surface_create(parent_node, xdg_surface);
	if (node == NULL) {
		wl_resource_post_no_memory(xdg_surface->resource);
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
	if (wlr_scene_xdg_surface_create(&xview->base.content->node, xdg_surface) == NULL) {
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
