#include "vm.h"

#include <drm_fourcc.h>
#include <stdlib.h>
#include <string.h>
#include <wlr/render/pixman.h>
#include <wlr/render/wlr_texture.h>
#include <wlr/types/wlr_output_damage.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/util/log.h>

#include "output.h"
#include "server.h"
#include "virtio_gpu.h"
#include "vm_client.h"
#include "vm_input.h"

static const struct cw_view_impl vm_view_impl;

bool
cw_view_is_vm(const struct cw_view *view)
{
	return view->impl == &vm_view_impl;
}

static struct cw_vm_view *
vm_view_from_view(struct cw_view *view)
{
	return wl_container_of(view, (struct cw_vm_view *)NULL, base);
}

struct cw_vm_view *
cw_vm_view_from_view(struct cw_view *view)
{
	return cw_view_is_vm(view) ? vm_view_from_view(view) : NULL;
}

/* --- frame colours ---------------------------------------------------------- */

static void
rgb_to_float(uint32_t rgb, float scale, float out[static 4])
{
	out[0] = (float)((rgb >> 16) & 0xff) / 255.0f * scale;
	out[1] = (float)((rgb >> 8) & 0xff) / 255.0f * scale;
	out[2] = (float)(rgb & 0xff) / 255.0f * scale;
	out[3] = 1.0f;
}

/* The VM's colour when focused, a darker shade when not; readable text on both. */
void
cw_vm_frame_colors(const struct cw_vm *vm, struct cw_frame_colors *colors)
{
	uint32_t color = vm->config.color;
	cw_frame_default_colors(colors);
	rgb_to_float(color, 1.0f, colors->active);
	rgb_to_float(color, CW_FRAME_VM_INACTIVE_SCALE, colors->inactive);
	float luma = 0.299f * colors->active[0] + 0.587f * colors->active[1] +
		0.114f * colors->active[2];
	rgb_to_float(luma > 0.6f ? 0x000000 : 0xffffff, 1.0f, colors->text);
}

/* --- the scanout window -------------------------------------------------- */

static void
vm_set_activated(struct cw_view *view, bool activated)
{
	/* Keys go to the guest while focused (vm_input.c); none may stay down after. */
	if (!activated) {
		cw_vm_input_focus_lost(view);
	}
}

static uint32_t
vm_request_size(struct cw_view *view, int width, int height)
{
	struct cw_vm_view *vview = vm_view_from_view(view);
	/* The guest's picture is scaled to the window; the guest is offered the size. */
	if (vview->buffer_node != NULL) {
		wlr_scene_buffer_set_dest_size(vview->buffer_node, width, height);
	}
	vgpu_device_set_display_size(vview->vm->device, vview->scanout, width, height);
	cw_view_content_resized(view, width, height);
	return 0;
}

static void
vm_set_state(struct cw_view *view, bool on)
{
	(void)view;
	(void)on;
}

static uint32_t
vm_committed_serial(struct cw_view *view)
{
	(void)view;
	return 0; // sizes apply at once
}

static void
vm_close(struct cw_view *view)
{
	struct cw_vm_view *vview = vm_view_from_view(view);
	wlr_log(WLR_INFO, "[vm %s] a VM display closes when the guest turns it off",
		vview->vm->config.name);
}

static const struct cw_view_impl vm_view_impl = {
	.kind = "vm-display",
	.set_activated = vm_set_activated,
	.request_size = vm_request_size,
	.set_maximized = vm_set_state,
	.set_fullscreen = vm_set_state,
	.set_resizing = vm_set_state,
	.committed_serial = vm_committed_serial,
	.close = vm_close,
};

static void
set_title(struct cw_vm_view *vview)
{
	char title[64];
	if (vview->vm->config.outputs > 1) {
		snprintf(title, sizeof(title), "%s: display %u", vview->vm->config.name, vview->scanout + 1);
	} else {
		snprintf(title, sizeof(title), "%s", vview->vm->config.name);
	}
	cw_view_set_title(&vview->base, title);
}

static struct cw_vm_view *
create_view(struct cw_vm *vm, unsigned scanout)
{
	struct cw_vm_view *vview = calloc(1, sizeof(*vview));
	if (vview == NULL) {
		return NULL;
	}
	struct cw_frame_colors colors;
	cw_vm_frame_colors(vm, &colors);
	cw_view_init(&vview->base, vm->server, &vm_view_impl, &colors);
	vview->vm = vm;
	vview->scanout = scanout;
	set_title(vview);
	return vview;
}

static void
destroy_view(struct cw_vm_view *vview)
{
	if (vview == NULL) {
		return;
	}
	vview->vm->views[vview->scanout] = NULL;
	cw_view_finish(&vview->base);
	wlr_buffer_unlock(vview->buffer);
	free(vview);
}

/* Shows `buffer` (src part of it) in the window, scaled to the window size. */
static void
show_buffer(struct cw_vm_view *vview, struct wlr_buffer *buffer, const struct wlr_box *src)
{
	/* wlroots 0.15 cannot swap a scene buffer's buffer: make a new node. */
	if (vview->buffer_node != NULL) {
		wlr_scene_node_destroy(&vview->buffer_node->node);
	}
	wlr_buffer_unlock(vview->buffer);
	vview->buffer = wlr_buffer_lock(buffer);
	vview->src = *src;
	vview->buffer_node = wlr_scene_buffer_create(&vview->base.content->node, buffer);
	if (vview->buffer_node == NULL) {
		return;
	}
	wlr_scene_buffer_set_source_box(vview->buffer_node, &(struct wlr_fbox){
		.x = src->x, .y = src->y, .width = src->width, .height = src->height});
}

/* The guest turned the display off: hide the window, keep its place. */
static void
hide_view(struct cw_vm_view *vview)
{
	if (vview == NULL) {
		return;
	}
	if (vview->base.mapped) {
		cw_view_unmap(&vview->base);
	}
	if (vview->buffer_node != NULL) {
		wlr_scene_node_destroy(&vview->buffer_node->node);
		vview->buffer_node = NULL;
	}
	wlr_buffer_unlock(vview->buffer);
	vview->buffer = NULL;
	vview->present_pending = false;
}

static void
handle_scanout_set(void *data, unsigned scanout, struct wlr_buffer *buffer,
	const struct wlr_box *src)
{
	struct cw_vm *vm = data;
	struct cw_vm_view *vview = vm->views[scanout];
	if (buffer == NULL) {
		hide_view(vview);
		return;
	}
	if (vview == NULL) {
		vview = create_view(vm, scanout);
		if (vview == NULL) {
			return;
		}
		vm->views[scanout] = vview;
	}
	show_buffer(vview, buffer, src);
	if (vview->buffer_node == NULL) {
		return;
	}
	if (!vview->base.mapped) {
		/*
		 * A display turned on is as large as the guest's mode; one turned
		 * back on (a mode set) comes back where it was.
		 */
		wlr_scene_buffer_set_dest_size(vview->buffer_node, src->width, src->height);
		vgpu_device_set_display_size(vm->device, scanout, src->width, src->height);
		cw_view_map(&vview->base, src->width, src->height);
		cw_seat_focus_view(&vm->server->seat, &vview->base);
	} else {
		wlr_scene_buffer_set_dest_size(vview->buffer_node, vview->base.width,
			vview->base.height);
	}
}

/* Damages the layout box on every output it touches, and nothing else. */
static void
damage_layout_box(struct cw_server *server, const struct wlr_box *box)
{
	struct cw_output *output;
	wl_list_for_each(output, &server->outputs, link) {
		struct wlr_box obox, hit;
		if (!cw_output_layout_box(server->output_layout, output->output, &obox) ||
				!wlr_box_intersection(&hit, box, &obox)) {
			continue;
		}
		float scale = output->output->scale;
		struct wlr_box local = {
			.x = (int)((hit.x - obox.x) * scale),
			.y = (int)((hit.y - obox.y) * scale),
			.width = (int)(hit.width * scale + 1),
			.height = (int)(hit.height * scale + 1),
		};
		wlr_output_damage_add_box(output->scene_output->damage, &local);
	}
}

/* GLES2 textures are uploads: refresh the changed part. pixman samples the memory. */
static void
update_texture(struct cw_vm_view *vview, const struct wlr_box *damage)
{
	struct wlr_texture *texture = vview->buffer_node->texture;
	struct wlr_dmabuf_attributes dmabuf;
	if (texture == NULL || wlr_texture_is_pixman(texture) ||
			wlr_buffer_get_dmabuf(vview->buffer, &dmabuf)) {
		return; // pixman and imported dmabufs sample the guest's memory itself
	}
	void *data;
	uint32_t format;
	size_t stride;
	if (!wlr_buffer_begin_data_ptr_access(vview->buffer, WLR_BUFFER_DATA_PTR_ACCESS_READ,
			&data, &format, &stride)) {
		return;
	}
	wlr_texture_write_pixels(texture, (uint32_t)stride, (uint32_t)damage->width,
		(uint32_t)damage->height, (uint32_t)damage->x, (uint32_t)damage->y,
		(uint32_t)damage->x, (uint32_t)damage->y, data);
	wlr_buffer_end_data_ptr_access(vview->buffer);
}

static void
handle_scanout_damage(void *data, unsigned scanout, const struct wlr_box *damage)
{
	struct cw_vm *vm = data;
	struct cw_vm_view *vview = vm->views[scanout];
	if (vview == NULL || vview->buffer_node == NULL || !vview->base.mapped) {
		return;
	}
	update_texture(vview, damage);
	/* From the guest's buffer to the (scaled) window in layout coordinates. */
	double sx = (double)vview->base.width / vview->src.width;
	double sy = (double)vview->base.height / vview->src.height;
	struct wlr_box box = {
		.x = vview->base.x + (int)((damage->x - vview->src.x) * sx),
		.y = vview->base.y + (int)((damage->y - vview->src.y) * sy),
		.width = (int)(damage->width * sx + 1),
		.height = (int)(damage->height * sy + 1),
	};
	damage_layout_box(vm->server, &box);
	vview->present_pending = true;
}

static void
handle_cursor_set(void *data, unsigned scanout, struct wlr_buffer *image, int hot_x, int hot_y)
{
	struct cw_vm *vm = data;
	struct cw_vm_cursor *cursor = &vm->cursors[scanout];
	wlr_buffer_unlock(cursor->image);
	cursor->image = image != NULL ? wlr_buffer_lock(image) : NULL;
	cursor->hot_x = hot_x;
	cursor->hot_y = hot_y;
	cw_seat_refresh_pointer(&vm->server->seat);
}

static void
drop_cursors(struct cw_vm *vm)
{
	for (unsigned i = 0; i < VGPU_MAX_SCANOUTS; i++) {
		wlr_buffer_unlock(vm->cursors[i].image);
		vm->cursors[i].image = NULL;
	}
}

static void
handle_cursor_move(void *data, unsigned scanout, int x, int y)
{
	/* The host pointer is the cursor; the guest's position follows it (input). */
	(void)data;
	(void)scanout;
	(void)x;
	(void)y;
}

static void
handle_connection_changed(void *data, bool connected)
{
	struct cw_vm *vm = data;
	if (connected) {
		return;
	}
	/* The device closes its ends of the guests' connections; ours go now too. */
	cw_vm_clients_destroy(vm);
	for (unsigned i = 0; i < VGPU_MAX_SCANOUTS; i++) {
		destroy_view(vm->views[i]);
	}
	drop_cursors(vm);
}

/* A guest application opened its Wayland connection (cross-domain context). */
static int
handle_connect_wayland(void *data, uint32_t ctx_id)
{
	struct cw_vm *vm = data;
	int fd = cw_vm_client_connect(vm, vm->server->display, ctx_id);
	if (fd < 0) {
		wlr_log(WLR_ERROR, "[vm %s] cannot connect a guest client (context %u): %s",
			vm->config.name, ctx_id, strerror(-fd));
	}
	return fd;
}

static uint64_t
handle_wayland_fds_taken(void *data, uint32_t ctx_id)
{
	return cw_vm_client_fds_taken(data, ctx_id);
}

static const struct vgpu_display_ops display_ops = {
	.scanout_set = handle_scanout_set,
	.scanout_damage = handle_scanout_damage,
	.cursor_set = handle_cursor_set,
	.cursor_move = handle_cursor_move,
	.connection_changed = handle_connection_changed,
	.connect_wayland = handle_connect_wayland,
	.wayland_fds_taken = handle_wayland_fds_taken,
};

bool
cw_vm_view_set_cursor(struct cw_view *view)
{
	if (!cw_view_is_vm(view)) {
		return false;
	}
	struct cw_vm_view *vview = vm_view_from_view(view);
	struct cw_vm_cursor *guest = &vview->vm->cursors[vview->scanout];
	struct cw_vm *vm = vview->vm;
	struct wlr_buffer *cursor = guest->image;
	void *data;
	uint32_t format;
	size_t stride;
	if (cursor == NULL || !wlr_buffer_begin_data_ptr_access(cursor,
			WLR_BUFFER_DATA_PTR_ACCESS_READ, &data, &format, &stride)) {
		return false;
	}
	bool ok = format == DRM_FORMAT_ARGB8888;
	if (ok) {
		/* wlr_cursor copies the pixels: the guest may change them at will. */
		wlr_cursor_set_image(vm->server->seat.cursor, data, (int32_t)stride,
			(uint32_t)cursor->width, (uint32_t)cursor->height, guest->hot_x,
			guest->hot_y, 1.0f);
	}
	wlr_buffer_end_data_ptr_access(cursor);
	return ok;
}

void
cw_vms_frame_presented(struct cw_server *server)
{
	struct cw_vm *vm;
	wl_list_for_each(vm, &server->vms, link) {
		for (unsigned i = 0; i < VGPU_MAX_SCANOUTS; i++) {
			struct cw_vm_view *vview = vm->views[i];
			if (vview != NULL && vview->present_pending) {
				vview->present_pending = false;
				vgpu_device_frame_presented(vm->device, i);
			}
		}
	}
}

static void
destroy_vm(struct cw_vm *vm)
{
	wl_list_remove(&vm->link);
	/* Guest applications' windows first: nothing may keep pointing at the VM. */
	cw_vm_clients_destroy(vm);
	/* Disconnects the VMM, which takes the windows (connection_changed). */
	vgpu_device_destroy(vm->device);
	vinput_device_destroy(vm->input);
	for (unsigned i = 0; i < VGPU_MAX_SCANOUTS; i++) {
		destroy_view(vm->views[i]);
	}
	drop_cursors(vm);
	free(vm->config.socket_path);
	free(vm->config.input_socket_path);
	free(vm);
}

static bool
create_input(struct cw_vm *vm)
{
	const char *path = vm->config.input_socket_path;
	vm->input = path == NULL ? NULL :
		vinput_device_create(vm->server->event_loop, path, vm->config.name);
	if (vm->input == NULL) {
		wlr_log(WLR_ERROR, "[vm %s] cannot serve its input device on %s", vm->config.name,
			path != NULL ? path : "(no memory)");
		return false;
	}
	wlr_log(WLR_INFO, "[vm %s] input device (vhost-user-input) on %s", vm->config.name, path);
	return true;
}

bool
cw_vms_init(struct cw_server *server, const struct cw_vm_config_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		struct cw_vm *vm = calloc(1, sizeof(*vm));
		if (vm == NULL) {
			return false;
		}
		vm->server = server;
		wl_list_init(&vm->clients);
		vm->config = list->vms[i];
		vm->config.socket_path = strdup(list->vms[i].socket_path);
		vm->config.input_socket_path = list->vms[i].input_socket_path == NULL ? NULL :
			strdup(list->vms[i].input_socket_path);
		wl_list_insert(server->vms.prev, &vm->link);
		struct vgpu_limits limits;
		vgpu_limits_default(&limits);
		limits.num_scanouts = vm->config.outputs;
		limits.config_events = vm->config.config_events;
		limits.contexts = !vm->config.no_contexts;
		if (vm->config.max_resources != 0) {
			limits.max_resources = vm->config.max_resources;
		}
		if (vm->config.max_memory_mib != 0) {
			limits.max_host_memory = vm->config.max_memory_mib << 20;
		}
		vm->device = vm->config.socket_path == NULL ? NULL :
			vgpu_device_create(server->event_loop, vm->config.name, vm->config.socket_path,
				&limits, &display_ops, vm);
		if (vm->device == NULL) {
			wlr_log(WLR_ERROR, "[vm %s] cannot serve %s", vm->config.name,
				vm->config.socket_path ? vm->config.socket_path : "(no memory)");
			return false;
		}
		wlr_log(WLR_INFO, "[vm %s] waiting for its VMM on %s", vm->config.name,
			vm->config.socket_path);
		if (list->vms[i].input_socket_path != NULL && !create_input(vm)) {
			return false;
		}
	}
	return true;
}

void
cw_vms_finish(struct cw_server *server)
{
	struct cw_vm *vm, *tmp;
	wl_list_for_each_safe(vm, tmp, &server->vms, link) {
		destroy_vm(vm);
	}
}
