#include "decoration.h"

#include <stdlib.h>
#include <wlr/types/wlr_server_decoration.h>
#include <wlr/types/wlr_xdg_decoration_v1.h>
#include <wlr/util/log.h>

#include "server.h"
#include "view.h"
#include "vm_client.h"
#include "xdg_view.h"

/* One xdg-decoration object; it lives as long as the client keeps it. */
struct cw_xdg_decoration {
	struct wlr_xdg_toplevel_decoration_v1 *decoration;
	struct wl_listener request_mode;
	struct wl_listener destroy;
};

static void
apply_mode(struct cw_server *server, struct wlr_xdg_toplevel_decoration_v1 *decoration)
{
	enum wlr_xdg_toplevel_decoration_v1_mode mode = decoration->requested_mode;
	/*
	 * A guest application never draws its own frame: crossway's, in its
	 * VM's colour, is what tells the user whose window it is.
	 */
	struct wl_client *client = wl_resource_get_client(decoration->resource);
	if (mode == WLR_XDG_TOPLEVEL_DECORATION_V1_MODE_NONE || cw_vm_from_client(client) != NULL) {
		mode = WLR_XDG_TOPLEVEL_DECORATION_V1_MODE_SERVER_SIDE;
	}
	/* Before the first commit, set_mode would be a protocol error in wlroots 0.15. */
	if (!decoration->surface->added) {
		return;
	}
	wlr_xdg_toplevel_decoration_v1_set_mode(decoration, mode);
	struct cw_view *view = cw_xdg_view_from_xdg_surface(decoration->surface);
	if (view != NULL) {
		cw_view_set_decorated(view, mode == WLR_XDG_TOPLEVEL_DECORATION_V1_MODE_SERVER_SIDE);
	}
}

static void
handle_request_mode(struct wl_listener *listener, void *data)
{
	struct cw_xdg_decoration *deco = wl_container_of(listener, deco, request_mode);
	struct wlr_xdg_decoration_manager_v1 *manager = deco->decoration->manager;
	struct cw_server *server = manager->data;
	apply_mode(server, deco->decoration);
}

static void
handle_destroy(struct wl_listener *listener, void *data)
{
	struct cw_xdg_decoration *deco = wl_container_of(listener, deco, destroy);
	wl_list_remove(&deco->request_mode.link);
	wl_list_remove(&deco->destroy.link);
	free(deco);
}

static void
handle_new_xdg_decoration(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, new_xdg_decoration);
	struct wlr_xdg_toplevel_decoration_v1 *decoration = data;
	struct cw_xdg_decoration *deco = calloc(1, sizeof(*deco));
	if (deco == NULL) {
		wl_resource_post_no_memory(decoration->resource);
		return;
	}
	deco->decoration = decoration;
	deco->request_mode.notify = handle_request_mode;
	wl_signal_add(&decoration->events.request_mode, &deco->request_mode);
	deco->destroy.notify = handle_destroy;
	wl_signal_add(&decoration->events.destroy, &deco->destroy);
	apply_mode(server, decoration);
}

void
cw_decoration_init(struct cw_server *server)
{
	server->xdg_decoration_manager = wlr_xdg_decoration_manager_v1_create(server->display);
	server->xdg_decoration_manager->data = server;
	server->new_xdg_decoration.notify = handle_new_xdg_decoration;
	wl_signal_add(&server->xdg_decoration_manager->events.new_toplevel_decoration,
		&server->new_xdg_decoration);
	/*
	 * GTK asks this older protocol; "server" tells it not to draw its own.
	 * crossway never acts on a client's mode request here, so it cannot take
	 * the frame off a VM's window either.
	 */
	server->kde_decoration_manager = wlr_server_decoration_manager_create(server->display);
	wlr_server_decoration_manager_set_default_mode(server->kde_decoration_manager,
		WLR_SERVER_DECORATION_MANAGER_MODE_SERVER);
}

void
cw_decoration_finish(struct cw_server *server)
{
	wl_list_remove(&server->new_xdg_decoration.link);
}
