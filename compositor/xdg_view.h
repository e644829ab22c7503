#ifndef CW_XDG_VIEW_H
#define CW_XDG_VIEW_H

#include <wayland-server-core.h>
#include <wlr/types/wlr_xdg_shell.h>

#include "view.h"

struct cw_vm;
struct cw_subsurface_watch;

/* A Wayland client's xdg toplevel as a crossway window. */
struct cw_xdg_view {
	struct cw_view base;
	struct wlr_xdg_surface *xdg_surface;
	struct wlr_box geometry; // window geometry last seen on commit
	/*
	 * The window's box in its surface's coordinates: what crossway frames.
	 * The geometry for a host window; for a VM's, the geometry and every
	 * pixel of its surface tree, so a guest never draws outside its frame.
	 */
	struct wlr_box box;
	/* A VM window whose surface tree is too large or deep: content hidden. */
	bool content_refused;
	/* A VM window: calls back on commits of its subsurfaces. NULL for a host window. */
	struct cw_subsurface_watch *subsurfaces;
	/* A VM window's popups (struct cw_xdg_popup), parents before children. */
	struct wl_list popups;
	/*
	 * The VM of a guest application's window, NULL for a host client. The
	 * VM outlives the window: its clients are destroyed before it is freed
	 * (cw_vm_clients_destroy).
	 */
	struct cw_vm *vm;
	/* A guest's fullscreen request was turned into maximize (see xdg_view.c). */
	bool fullscreen_as_maximized;

	struct wl_listener map;
	struct wl_listener unmap;
	struct wl_listener destroy;
	struct wl_listener commit;
	struct wl_listener request_move;
	struct wl_listener request_resize;
	struct wl_listener request_maximize;
	struct wl_listener request_fullscreen;
	struct wl_listener set_title;
	struct wl_listener set_app_id;
};

/* Handles wlr_xdg_shell.events.new_surface (toplevels and popups). */
void cw_xdg_view_handle_new_surface(struct wl_listener *listener, void *data);
/* The view of an xdg toplevel, mapped or not, or NULL. */
struct cw_view *cw_xdg_view_from_xdg_surface(struct wlr_xdg_surface *xdg_surface);
/*
 * The app_id as host-side consumers must see it (logs, and a future
 * foreign-toplevel list): sanitised, and "NAME:app_id" for a VM's window,
 * so no guest can pass for a host application. Newly allocated; NULL when
 * out of memory.
 */
char *cw_xdg_view_app_id(const struct cw_xdg_view *xview);
/* The title the frame shows: "NAME: title" for a VM's window (not sanitised yet). */
char *cw_xdg_view_title(const struct cw_xdg_view *xview);

#endif
