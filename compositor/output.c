#include "output.h"

#include <stdlib.h>
#include <time.h>
#include <wlr/backend/headless.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/types/wlr_output_management_v1.h>
#include <wlr/types/wlr_xcursor_manager.h>
#include <wlr/util/log.h>

#include "cairo_buffer.h"
#include "screenshot.h"
#include "server.h"
#include "view.h"
#include "vm.h"

static bool
screenshot_due(struct cw_server *server)
{
	return server->options->screenshot_path != NULL && server->exit_code < 0 &&
		server->mapped_toplevels >= server->options->screenshot_after;
}

static void
take_pending_screenshot(struct cw_output *output)
{
	struct cw_server *server = output->server;
	/* The first output is the one the screenshot shows. */
	struct cw_output *first = wl_container_of(server->outputs.prev, first, link);
	if (output != first) {
		return;
	}
	const char *path = server->options->screenshot_path;
	if (cw_screenshot_output(output, path)) {
		wlr_log(WLR_INFO, "Wrote screenshot %s", path);
		cw_server_terminate(server, 0);
	} else {
		wlr_log(WLR_ERROR, "Screenshot %s failed", path);
		cw_server_terminate(server, 1);
	}
}

static void
handle_frame(struct wl_listener *listener, void *data)
{
	struct cw_output *output = wl_container_of(listener, output, frame);
	wlr_scene_output_commit(output->scene_output);
	cw_vms_frame_presented(output->server);
	if (screenshot_due(output->server)) {
		take_pending_screenshot(output);
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	wlr_scene_output_send_frame_done(output->scene_output, &now);
}

static void
handle_destroy(struct wl_listener *listener, void *data)
{
	struct cw_output *output = wl_container_of(listener, output, destroy);
	struct cw_server *server = output->server;
	wl_list_remove(&output->frame.link);
	wl_list_remove(&output->destroy.link);
	wl_list_remove(&output->link);
	if (output->background != NULL) {
		wlr_scene_node_destroy(&output->background->node);
	}
	/* The layout and the scene drop the output by themselves. */
	free(output);
	struct cw_view *view;
	wl_list_for_each(view, &server->views, link) {
		cw_view_fit_to_layout(view);
	}
}

static bool
enable_preferred_mode(struct wlr_output *wlr_output)
{
	wlr_output_enable(wlr_output, true);
	struct wlr_output_mode *mode = wlr_output_preferred_mode(wlr_output);
	if (mode != NULL) {
		wlr_output_set_mode(wlr_output, mode);
	}
	if (wlr_output_commit(wlr_output)) {
		return true;
	}
	/* Some connectors reject the preferred mode; try the others. */
	wl_list_for_each(mode, &wlr_output->modes, link) {
		wlr_output_enable(wlr_output, true);
		wlr_output_set_mode(wlr_output, mode);
		if (wlr_output_commit(wlr_output)) {
			return true;
		}
	}
	return false;
}

void
cw_output_handle_new(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, new_output);
	struct wlr_output *wlr_output = data;
	if (!wlr_output_init_render(wlr_output, server->allocator, server->renderer)) {
		wlr_log(WLR_ERROR, "Cannot render on output %s", wlr_output->name);
		return;
	}
	if (!enable_preferred_mode(wlr_output)) {
		wlr_log(WLR_ERROR, "Cannot enable output %s", wlr_output->name);
		return;
	}
	struct cw_output *output = calloc(1, sizeof(*output));
	if (output == NULL) {
		return;
	}
	output->server = server;
	output->output = wlr_output;
	output->frame.notify = handle_frame;
	wl_signal_add(&wlr_output->events.frame, &output->frame);
	output->destroy.notify = handle_destroy;
	wl_signal_add(&wlr_output->events.destroy, &output->destroy);
	wl_list_insert(&server->outputs, &output->link);

	wlr_output_layout_add_auto(server->output_layout, wlr_output);
	output->scene_output = wlr_scene_get_scene_output(server->scene, wlr_output);
	wlr_xcursor_manager_load(server->seat.xcursor_manager, wlr_output->scale);
	wlr_log(WLR_INFO, "Output %s: %dx%d", wlr_output->name, wlr_output->width, wlr_output->height);
}

bool
cw_output_layout_box(struct wlr_output_layout *layout, struct wlr_output *output,
	struct wlr_box *box)
{
	struct wlr_box *found = wlr_output_layout_get_box(layout, output);
	if (found == NULL || wlr_box_empty(found)) {
		*box = (struct wlr_box){0};
		return false;
	}
	*box = *found;
	return true;
}

void
cw_output_schedule_frames(struct cw_server *server)
{
	struct cw_output *output;
	wl_list_for_each(output, &server->outputs, link) {
		wlr_output_schedule_frame(output->output);
	}
}

void
cw_output_manager_update(struct cw_server *server)
{
	struct wlr_output_configuration_v1 *config = wlr_output_configuration_v1_create();
	if (config == NULL) {
		return;
	}
	struct cw_output *output;
	wl_list_for_each(output, &server->outputs, link) {
		struct wlr_output_configuration_head_v1 *head =
			wlr_output_configuration_head_v1_create(config, output->output);
		if (head == NULL) {
			continue;
		}
		struct wlr_box box;
		cw_output_layout_box(server->output_layout, output->output, &box);
		head->state.enabled = output->output->enabled && !wlr_box_empty(&box);
		head->state.x = box.x;
		head->state.y = box.y;
	}
	wlr_output_manager_v1_set_configuration(server->output_manager, config);
}

#define CW_DESKTOP_COLOR 0xff1d2b36 // opaque ARGB

/*
 * The desktop colour under one output, as a buffer of the output's size.
 * A scene rect would be simpler, but wlroots 0.15's pixman renderer fills a
 * temporary image the size of the whole rect for every damaged rectangle
 * (~1 ms per frame at 1600x1000 even for an 8x16 damage); a buffer is only
 * composited where damaged. It costs one output-sized image per output.
 */
static void
update_background(struct cw_output *output)
{
	struct wlr_box box;
	if (!cw_output_layout_box(output->server->output_layout, output->output, &box)) {
		if (output->background != NULL) {
			wlr_scene_node_set_enabled(&output->background->node, false);
		}
		return;
	}
	struct wlr_buffer *old = output->background != NULL ? output->background->buffer : NULL;
	if (old == NULL || old->width != box.width || old->height != box.height) {
		if (output->background != NULL) {
			wlr_scene_node_destroy(&output->background->node);
			output->background = NULL;
		}
		struct cw_cairo_buffer *image = cw_cairo_buffer_create(box.width, box.height);
		if (image == NULL) {
			return; // the scene's black shows instead
		}
		cairo_t *cr = cairo_create(image->surface);
		cairo_set_source_rgb(cr, ((CW_DESKTOP_COLOR >> 16) & 0xff) / 255.0,
			((CW_DESKTOP_COLOR >> 8) & 0xff) / 255.0, (CW_DESKTOP_COLOR & 0xff) / 255.0);
		cairo_paint(cr);
		cairo_destroy(cr);
		cairo_surface_flush(image->surface);
		output->background = wlr_scene_buffer_create(
			&output->server->layers[CW_LAYER_BACKGROUND]->node, &image->base);
		wlr_buffer_drop(&image->base);
		if (output->background == NULL) {
			return;
		}
	}
	wlr_scene_node_set_enabled(&output->background->node, true);
	wlr_scene_node_set_position(&output->background->node, box.x, box.y);
}

static void
handle_layout_change(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, layout_change);
	struct cw_output *output;
	wl_list_for_each(output, &server->outputs, link) {
		update_background(output);
	}
	cw_output_manager_update(server);
}

/* Stages one head's requested state on its output. */
static void
stage_head(struct wlr_output_configuration_head_v1 *head)
{
	struct wlr_output *output = head->state.output;
	wlr_output_enable(output, head->state.enabled);
	if (!head->state.enabled) {
		return;
	}
	if (head->state.mode != NULL) {
		wlr_output_set_mode(output, head->state.mode);
	} else {
		wlr_output_set_custom_mode(output, head->state.custom_mode.width,
			head->state.custom_mode.height, head->state.custom_mode.refresh);
	}
	wlr_output_set_scale(output, head->state.scale);
	wlr_output_set_transform(output, head->state.transform);
}

static bool
apply_config(struct cw_server *server, struct wlr_output_configuration_v1 *config, bool test_only)
{
	bool ok = true;
	struct wlr_output_configuration_head_v1 *head;
	wl_list_for_each(head, &config->heads, link) {
		stage_head(head);
		ok = ok && (test_only ? wlr_output_test(head->state.output) :
			wlr_output_commit(head->state.output));
		/* A test must leave nothing behind; a failed apply must not half-apply later. */
		wlr_output_rollback(head->state.output);
	}
	if (test_only || !ok) {
		return ok;
	}
	wl_list_for_each(head, &config->heads, link) {
		if (head->state.enabled) {
			wlr_output_layout_add(server->output_layout, head->state.output,
				head->state.x, head->state.y);
		} else {
			wlr_output_layout_remove(server->output_layout, head->state.output);
		}
	}
	struct cw_view *view;
	wl_list_for_each(view, &server->views, link) {
		cw_view_fit_to_layout(view);
	}
	return true;
}

static void
handle_apply(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, output_manager_apply);
	struct wlr_output_configuration_v1 *config = data;
	if (apply_config(server, config, false)) {
		wlr_output_configuration_v1_send_succeeded(config);
	} else {
		wlr_output_configuration_v1_send_failed(config);
	}
	wlr_output_configuration_v1_destroy(config);
	cw_output_manager_update(server);
}

static void
handle_test(struct wl_listener *listener, void *data)
{
	struct cw_server *server = wl_container_of(listener, server, output_manager_test);
	struct wlr_output_configuration_v1 *config = data;
	if (apply_config(server, config, true)) {
		wlr_output_configuration_v1_send_succeeded(config);
	} else {
		wlr_output_configuration_v1_send_failed(config);
	}
	wlr_output_configuration_v1_destroy(config);
}

void
cw_output_manager_init(struct cw_server *server)
{
	server->output_manager = wlr_output_manager_v1_create(server->display);
	server->output_manager_apply.notify = handle_apply;
	wl_signal_add(&server->output_manager->events.apply, &server->output_manager_apply);
	server->output_manager_test.notify = handle_test;
	wl_signal_add(&server->output_manager->events.test, &server->output_manager_test);
	server->layout_change.notify = handle_layout_change;
	wl_signal_add(&server->output_layout->events.change, &server->layout_change);
}

void
cw_output_manager_finish(struct cw_server *server)
{
	wl_list_remove(&server->output_manager_apply.link);
	wl_list_remove(&server->output_manager_test.link);
	wl_list_remove(&server->layout_change.link);
}
