#include "server.h"

#include <stdlib.h>
#include <wlr/backend/headless.h>
#include <wlr/backend/multi.h>
#include <wlr/types/wlr_compositor.h>
#include <wlr/types/wlr_data_control_v1.h>
#include <wlr/types/wlr_data_device.h>
#include <wlr/types/wlr_export_dmabuf_v1.h>
#include <wlr/types/wlr_idle.h>
#include <wlr/types/wlr_idle_inhibit_v1.h>
#include <wlr/types/wlr_presentation_time.h>
#include <wlr/types/wlr_primary_selection_v1.h>
#include <wlr/types/wlr_screencopy_v1.h>
#include <wlr/types/wlr_viewporter.h>
#include <wlr/types/wlr_xdg_activation_v1.h>
#include <wlr/types/wlr_xdg_output_v1.h>
#include <wlr/types/wlr_xdg_shell.h>
#include <wlr/util/log.h>

#include "decoration.h"
#include "output.h"
#include "view.h"
#include "vm.h"
#include "vm_client.h"
#include "vm_policy.h"
#include "vm_shm.h"
#include "xdg_view.h"

/* One client's idle inhibitor: it holds while its window can be seen. */
struct cw_idle_inhibitor {
	struct wl_list link; // cw_server.idle_inhibitors
	struct cw_server *server;
	struct wlr_idle_inhibitor_v1 *inhibitor;
	struct wl_listener destroy;
};

/* A window can be seen unless it is unmapped or another one is fullscreen. */
static bool
inhibitor_is_visible(struct cw_server *server, struct cw_idle_inhibitor *inhibitor)
{
	struct cw_view *view = cw_view_from_surface(server, inhibitor->inhibitor->surface);
	if (view == NULL || !view->mapped) {
		return false;
	}
	struct cw_view *other;
	wl_list_for_each(other, &server->views, link) {
		if (other != view && other->mapped && other->fullscreen) {
			return false;
		}
	}
	return true;
}

void
cw_server_update_idle(struct cw_server *server)
{
	bool inhibited = false;
	struct cw_idle_inhibitor *inhibitor;
	wl_list_for_each(inhibitor, &server->idle_inhibitors, link) {
		if (inhibitor_is_visible(server, inhibitor)) {
			inhibited = true;
			break;
		}
	}
	wlr_idle_set_enabled(server->idle, server->seat.seat, !inhibited);
}

static void
handle_idle_inhibitor_destroy(struct wl_listener *listener, void *data)
{
	struct cw_idle_inhibitor *inhibitor = wl_container_of(listener, inhibitor, destroy);
	struct cw_server *server = inhibitor->server;
	wl_list_remove(&inhibitor->link);
	wl_list_remove(&inhibitor->destroy.link);
	free(inhibitor);
	cw_server_update_idle(server);
}

static void
handle_new_idle_inhibitor(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, new_idle_inhibitor);
	struct wlr_idle_inhibitor_v1 *wlr_inhibitor = data;
	struct cw_idle_inhibitor *inhibitor = calloc(1, sizeof(*inhibitor));
	if (inhibitor == NULL) {
		return;
	}
	inhibitor->server = server;
	inhibitor->inhibitor = wlr_inhibitor;
	inhibitor->destroy.notify = handle_idle_inhibitor_destroy;
	wl_signal_add(&wlr_inhibitor->events.destroy, &inhibitor->destroy);
	wl_list_insert(&server->idle_inhibitors, &inhibitor->link);
	cw_server_update_idle(server);
}

/*
 * xdg-activation: only a token minted for an input event of this seat, by
 * a client that has the keyboard focus, may move the focus. A token made
 * without user interaction cannot steal it.
 */
static bool
token_is_trusted(struct cw_server *server, const struct wlr_xdg_activation_token_v1 *token)
{
	struct wlr_seat *seat = server->seat.seat;
	if (token->seat != seat || token->surface == NULL) {
		return false;
	}
	struct wl_client *client = wl_resource_get_client(token->surface->resource);
	struct wlr_seat_client *seat_client = wlr_seat_client_for_wl_client(seat, client);
	struct wlr_surface *focused = seat->keyboard_state.focused_surface;
	return seat_client != NULL && focused != NULL &&
		wl_resource_get_client(focused->resource) == client &&
		wlr_seat_client_validate_event_serial(seat_client, token->serial);
}

/*
 * A token minted by a VM client moves the focus only to a window of the
 * same VM: no VM focuses or raises the host's or another VM's windows
 * (peers-and-policy.md §2 rule 2). A host token may activate any window.
 */
static bool
token_may_activate(const struct wlr_xdg_activation_token_v1 *token, struct wlr_surface *surface)
{
	struct cw_vm *from = cw_vm_from_client(wl_resource_get_client(token->surface->resource));
	return from == NULL || from == cw_vm_from_client(wl_resource_get_client(surface->resource));
}

static void
handle_request_activate(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, request_activate);
	struct wlr_xdg_activation_v1_request_activate_event *event = data;
	if (!wlr_surface_is_xdg_surface(event->surface)) {
		return;
	}
	if (!token_is_trusted(server, event->token)) {
		wlr_log(WLR_DEBUG, "Ignoring an activation token not made from user input");
		return;
	}
	if (!token_may_activate(event->token, event->surface)) {
		wlr_log(WLR_INFO, "Ignoring a VM's activation token for a window outside that VM");
		return;
	}
	struct cw_view *view = cw_view_from_surface(server, event->surface);
	if (view != NULL && view->mapped) {
		cw_seat_focus_view(&server->seat, view);
	}
}

static bool
create_backend(struct cw_server *server)
{
	if (server->options->backend != CW_BACKEND_HEADLESS) {
		server->backend = wlr_backend_autocreate(server->display);
		return server->backend != NULL;
	}
	server->headless_backend = wlr_headless_backend_create(server->display);
	server->backend = wlr_multi_backend_create(server->display);
	if (server->headless_backend == NULL || server->backend == NULL) {
		return false;
	}
	wlr_multi_backend_add(server->backend, server->headless_backend);
	return true;
}

/* Globals that need no handling beyond their creation. */
static void
create_plain_globals(struct cw_server *server)
{
	struct wl_display *display = server->display;
	wlr_data_device_manager_create(display);
	wlr_primary_selection_v1_device_manager_create(display);
	wlr_data_control_manager_v1_create(display);
	wlr_xdg_output_manager_v1_create(display, server->output_layout);
	wlr_viewporter_create(display);
	wlr_screencopy_manager_v1_create(display);
	wlr_export_dmabuf_manager_v1_create(display);
	server->presentation = wlr_presentation_create(display, server->backend);
	wlr_scene_set_presentation(server->scene, server->presentation);
}

bool
cw_server_init(struct cw_server *server, const struct cw_options *options)
{
	*server = (struct cw_server){0};
	server->options = options;
	server->exit_code = -1;
	wl_list_init(&server->outputs);
	wl_list_init(&server->views);
	wl_list_init(&server->idle_inhibitors);
	wl_list_init(&server->vms);

	server->display = wl_display_create();
	if (server->display == NULL) {
		return false;
	}
	server->event_loop = wl_display_get_event_loop(server->display);
	if (!create_backend(server)) {
		wlr_log(WLR_ERROR, "Cannot create a backend (no display, no seat, no DRM device?)");
		return false;
	}
	server->session = wlr_backend_get_session(server->backend);
	server->renderer = wlr_renderer_autocreate(server->backend);
	if (server->renderer == NULL) {
		wlr_log(WLR_ERROR, "Cannot create a renderer");
		return false;
	}
	/* wl_shm, and linux-dmabuf where the renderer can import dmabufs. */
	wlr_renderer_init_wl_display(server->renderer, server->display);
	/* VM clients get their own wl_shm and fewer globals (vm_policy.c). */
	server->vm_shm = cw_vm_shm_create(server->display, server->renderer);
	if (server->vm_shm == NULL) {
		wlr_log(WLR_ERROR, "Cannot create the wl_shm of VM clients");
		return false;
	}
	cw_vm_policy_init(server->display, server->vm_shm);
	server->allocator = wlr_allocator_autocreate(server->backend, server->renderer);
	if (server->allocator == NULL) {
		wlr_log(WLR_ERROR, "Cannot create an allocator");
		return false;
	}
	wlr_compositor_create(server->display, server->renderer);

	server->output_layout = wlr_output_layout_create();
	server->scene = wlr_scene_create();
	for (int i = 0; i < CW_LAYER_COUNT; i++) {
		server->layers[i] = wlr_scene_tree_create(&server->scene->node);
	}
	wlr_scene_attach_output_layout(server->scene, server->output_layout);
	server->new_output.notify = cw_output_handle_new;
	wl_signal_add(&server->backend->events.new_output, &server->new_output);
	cw_output_manager_init(server);

	server->xdg_shell = wlr_xdg_shell_create(server->display);
	server->new_xdg_surface.notify = cw_xdg_view_handle_new_surface;
	wl_signal_add(&server->xdg_shell->events.new_surface, &server->new_xdg_surface);
	cw_decoration_init(server);

	create_plain_globals(server);
	server->idle = wlr_idle_create(server->display);
	server->idle_inhibit = wlr_idle_inhibit_v1_create(server->display);
	server->new_idle_inhibitor.notify = handle_new_idle_inhibitor;
	wl_signal_add(&server->idle_inhibit->events.new_inhibitor, &server->new_idle_inhibitor);
	server->xdg_activation = wlr_xdg_activation_v1_create(server->display);
	server->request_activate.notify = handle_request_activate;
	wl_signal_add(&server->xdg_activation->events.request_activate, &server->request_activate);

	if (!cw_seat_init(&server->seat, server)) {
		wlr_log(WLR_ERROR, "Cannot create the seat");
		return false;
	}
	server->globals_ready = true;
	return true;
}

const char *
cw_server_start(struct cw_server *server)
{
	const char *socket = NULL;
	if (server->options->socket_name != NULL) {
		if (wl_display_add_socket(server->display, server->options->socket_name) == 0) {
			socket = server->options->socket_name;
		}
	} else {
		socket = wl_display_add_socket_auto(server->display);
	}
	if (socket == NULL) {
		wlr_log(WLR_ERROR, "Cannot open a Wayland socket%s%s", server->options->socket_name ? " " : "",
			server->options->socket_name ? server->options->socket_name : "");
		return NULL;
	}
	if (!wlr_backend_start(server->backend)) {
		wlr_log(WLR_ERROR, "Cannot start the backend");
		return NULL;
	}
	/* Added after the start so they appear, and are laid out, in order. */
	const struct cw_options *options = server->options;
	if (options->backend == CW_BACKEND_HEADLESS) {
		for (size_t i = 0; i < options->size_count; i++) {
			wlr_headless_add_output(server->headless_backend,
				(unsigned)options->sizes[i].width, (unsigned)options->sizes[i].height);
		}
	}
	if (wl_list_empty(&server->outputs)) {
		wlr_log(WLR_INFO, "No output yet: waiting for one to appear");
	}
	/* Start the pointer in the middle of the first output. */
	struct wlr_box box;
	cw_output_layout_box(server->output_layout, NULL, &box);
	wlr_cursor_warp(server->seat.cursor, NULL, box.x + box.width / 2.0, box.y + box.height / 2.0);
	return socket;
}

void
cw_server_finish(struct cw_server *server)
{
	if (server->display == NULL) {
		return;
	}
	wl_display_destroy_clients(server->display);
	/* VM windows use the seat and outputs: they go before them. */
	cw_vms_finish(server);
	/* Backend devices go first: their destroy handlers still use the seat. */
	if (server->backend != NULL) {
		wlr_backend_destroy(server->backend);
		server->backend = NULL;
	}
	if (server->globals_ready) {
		wl_list_remove(&server->new_output.link);
		cw_seat_finish(&server->seat);
		cw_output_manager_finish(server);
		cw_decoration_finish(server);
		wl_list_remove(&server->new_xdg_surface.link);
		wl_list_remove(&server->new_idle_inhibitor.link);
		wl_list_remove(&server->request_activate.link);
	}
	/* The scene listens to the layout: the layout must go first. */
	wlr_output_layout_destroy(server->output_layout);
	if (server->scene != NULL) {
		wlr_scene_node_destroy(&server->scene->node);
	}
	wlr_allocator_destroy(server->allocator);
	wlr_renderer_destroy(server->renderer);
	wl_display_destroy(server->display);
	server->display = NULL;
}

void
cw_server_terminate(struct cw_server *server, int exit_code)
{
	if (server->exit_code < 0) {
		server->exit_code = exit_code;
	}
	wl_display_terminate(server->display);
}

void
cw_server_toplevel_mapped(struct cw_server *server)
{
	server->mapped_toplevels++;
	cw_server_update_idle(server);
	if (server->options->screenshot_path != NULL) {
		cw_output_schedule_frames(server);
	}
}

void
cw_server_toplevel_unmapped(struct cw_server *server)
{
	server->mapped_toplevels--;
	cw_server_update_idle(server);
}
