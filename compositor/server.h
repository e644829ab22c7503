#ifndef CW_SERVER_H
#define CW_SERVER_H

#include <stdbool.h>
#include <wayland-server-core.h>
#include <wlr/backend.h>
#include <wlr/render/allocator.h>
#include <wlr/render/wlr_renderer.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/types/wlr_scene.h>

#include "options.h"
#include "seat.h"

struct cw_screenshot;
struct cw_vm_shm;

/*
 * Stacking layers of the scene, bottom to top. Views live in NORMAL;
 * a fullscreen view is moved to FULLSCREEN so nothing covers it.
 */
enum cw_layer {
	CW_LAYER_BACKGROUND,
	CW_LAYER_NORMAL,
	CW_LAYER_FULLSCREEN,
	CW_LAYER_COUNT,
};

struct cw_server {
	struct wl_display *display;
	struct wl_event_loop *event_loop;
	const struct cw_options *options;

	struct wlr_backend *backend;
	struct wlr_backend *headless_backend; // NULL unless --headless
	struct wlr_session *session;          // NULL unless a desktop session
	struct wlr_renderer *renderer;
	struct wlr_allocator *allocator;

	struct wlr_scene *scene;
	struct wlr_scene_tree *layers[CW_LAYER_COUNT];
	struct wlr_output_layout *output_layout;
	struct wl_list outputs; // cw_output.link
	struct wl_listener new_output;
	struct wl_listener layout_change;

	struct wlr_output_manager_v1 *output_manager;
	struct wl_listener output_manager_apply;
	struct wl_listener output_manager_test;

	struct wlr_xdg_shell *xdg_shell;
	struct wl_listener new_xdg_surface;
	struct wl_list views; // cw_view.link, top of the stack first

	struct wlr_xdg_decoration_manager_v1 *xdg_decoration_manager;
	struct wl_listener new_xdg_decoration;
	struct wlr_server_decoration_manager *kde_decoration_manager;

	struct wlr_xdg_activation_v1 *xdg_activation;
	struct wl_listener request_activate;

	struct wlr_idle *idle;
	struct wlr_idle_inhibit_manager_v1 *idle_inhibit;
	struct wl_listener new_idle_inhibitor;
	struct wl_list idle_inhibitors; // cw_idle_inhibitor.link

	struct wlr_presentation *presentation;

	struct cw_seat seat;
	struct wl_list vms; // cw_vm.link
	/* wl_shm of VM clients (guest memory); goes with the display. */
	struct cw_vm_shm *vm_shm;

	struct cw_screenshot *screenshot; // NULL unless --screenshot
	int mapped_toplevels;
	int exit_code;     // -1 while running
	bool globals_ready; // every listener above is connected
};

/* Creates the display, backend, renderer, scene and every global. */
bool cw_server_init(struct cw_server *server, const struct cw_options *options);
/* Opens the socket and starts the backend. Returns the socket name or NULL. */
const char *cw_server_start(struct cw_server *server);
void cw_server_finish(struct cw_server *server);
void cw_server_terminate(struct cw_server *server, int exit_code);

/* Re-evaluates idle inhibitors (windows mapped, unmapped, made fullscreen). */
void cw_server_update_idle(struct cw_server *server);

/* A toplevel became visible or went away: drives --screenshot-after. */
void cw_server_toplevel_mapped(struct cw_server *server);
void cw_server_toplevel_unmapped(struct cw_server *server);

#endif
