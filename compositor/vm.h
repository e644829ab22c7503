#ifndef CW_VM_H
#define CW_VM_H

#include <stdbool.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_buffer.h>

#include "view.h"
#include "virtio_gpu.h"
#include "virtio_input.h"
#include "vm_config.h"

struct cw_server;

/*
 * A VM's scanout (monitor) shown as a window. Its content is the guest's
 * resource itself (a wlr_buffer the scene samples), scaled to the window.
 */
struct cw_vm_view {
	struct cw_view base;
	struct cw_vm *vm;
	unsigned scanout;
	struct wlr_scene_buffer *buffer_node; // NULL until the guest sets a scanout
	struct wlr_buffer *buffer;            // locked while shown
	struct wlr_box src;                   // the guest's SET_SCANOUT rect
	bool present_pending;                 // a flush waits for the next frame
};

/* A guest's cursor for one of its displays (64x64 ARGB). */
struct cw_vm_cursor {
	struct wlr_buffer *image; // locked; NULL: none
	int hot_x, hot_y;
};

/* One configured VM: its device, its windows. */
struct cw_vm {
	struct wl_list link; // cw_server.vms
	struct cw_server *server;
	struct cw_vm_config config;
	struct vgpu_device *device;
	struct vinput_device *input; // NULL: no input device configured
	struct cw_vm_view *views[VGPU_MAX_SCANOUTS]; // per scanout, NULL until first shown
	struct cw_vm_cursor cursors[VGPU_MAX_SCANOUTS]; // shown over that display's window
	/* Guest applications' Wayland connections (cross-domain contexts). */
	struct wl_list clients; // cw_vm_client.link (vm_client.c)
};

/* Creates every configured VM's device. False if a socket cannot be served. */
bool cw_vms_init(struct cw_server *server, const struct cw_vm_config_list *list);
void cw_vms_finish(struct cw_server *server);
/* An output presented a frame: complete fenced flushes waiting for it. */
void cw_vms_frame_presented(struct cw_server *server);
/* The pointer is over a VM window's content: show the guest's cursor. */
bool cw_vm_view_set_cursor(struct cw_view *view);
bool cw_view_is_vm(const struct cw_view *view);
/*
 * The frame colours of everything the VM shows: its display windows and its
 * guest applications' windows. Host windows keep cw_frame_default_colors.
 */
void cw_vm_frame_colors(const struct cw_vm *vm, struct cw_frame_colors *colors);
/* The VM display behind view, or NULL if view is another kind of window. */
struct cw_vm_view *cw_vm_view_from_view(struct cw_view *view);

#endif
