#ifndef CW_OUTPUT_H
#define CW_OUTPUT_H

#include <stdbool.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/types/wlr_output.h>
#include <wlr/types/wlr_scene.h>

struct cw_server;

struct cw_output {
	struct wl_list link; // cw_server.outputs
	struct cw_server *server;
	struct wlr_output *output;
	struct wlr_scene_output *scene_output;
	struct wlr_scene_buffer *background; // the desktop colour under this output
	struct wl_listener frame;
	struct wl_listener destroy;
};

/* Handles wlr_backend.events.new_output. */
void cw_output_handle_new(struct wl_listener *listener, void *data);

/* Sets up output management (wlr-output-management) for the server. */
void cw_output_manager_init(struct cw_server *server);
void cw_output_manager_finish(struct cw_server *server);
/* The layout changed: publish the new state to output managers. */
void cw_output_manager_update(struct cw_server *server);

/*
 * The layout box of output (NULL: the whole layout). Returns false, with an
 * empty box, when the output is not in the layout.
 */
bool cw_output_layout_box(struct wlr_output_layout *layout, struct wlr_output *output,
	struct wlr_box *box);

/* Asks every output for a frame, e.g. when a screenshot is pending. */
void cw_output_schedule_frames(struct cw_server *server);

#endif
