#ifndef VGPU_VIRTIO_GPU_H
#define VGPU_VIRTIO_GPU_H

#include <stdbool.h>
#include <stdint.h>
#include <wayland-server-core.h>
#include <wlr/types/wlr_buffer.h>
#include <wlr/util/box.h>

/*
 * The virtio-gpu device of one VM (docs: ../shared/reference/virtio-gpu.md),
 * served over vhost-user. It owns the guest's resources and scanouts and
 * tells the compositor, through vgpu_display_ops, what each scanout shows.
 * Everything the guest sends is validated here; a bad command gets the
 * virtio-gpu error response and a log line naming the VM.
 */
#define VGPU_MAX_SCANOUTS 16

struct vgpu_device;

struct vgpu_limits {
	uint32_t max_resources;    // live resources per VM
	uint64_t max_host_memory;  // bytes of host copies (2D resources) per VM
	uint64_t max_blob_memory;  // bytes of guest pages mapped for blobs per VM
	uint32_t num_scanouts;     // 1..VGPU_MAX_SCANOUTS
	/*
	 * Tell the front end when the offered display size changes (vhost-user
	 * back-end channel, CONFIG_CHANGE_MSG). Off by default: QEMU 7.2's
	 * vhost-user-gpu-pci refuses such messages with an error.
	 */
	bool config_events;
	/*
	 * Offer context types (VIRGL + CONTEXT_INIT feature bits, capset 5:
	 * cross-domain Wayland). On by default; `contexts=off` hides them from
	 * guests whose user space would mistake VIRGL for 3D support.
	 */
	bool contexts;
	uint32_t max_contexts; // live cross-domain contexts per VM (default 16)
};

/* Implemented by the compositor. `scanout` < num_scanouts. */
struct vgpu_display_ops {
	/*
	 * The scanout now shows `buffer` (NULL: disabled), a guest resource the
	 * compositor may lock for as long as it shows it. `src` is the part of
	 * the buffer the guest selected (SET_SCANOUT's rect).
	 */
	void (*scanout_set)(void *data, unsigned scanout, struct wlr_buffer *buffer,
		const struct wlr_box *src);
	/*
	 * `damage` (buffer coordinates) of the scanout's buffer changed. The
	 * compositor calls vgpu_device_frame_presented once a frame showing it
	 * went out, which completes the guest's fenced flushes.
	 */
	void (*scanout_damage)(void *data, unsigned scanout, const struct wlr_box *damage);
	/* The guest cursor for this scanout (64x64 ARGB8888) or NULL to hide. */
	void (*cursor_set)(void *data, unsigned scanout, struct wlr_buffer *image,
		int hot_x, int hot_y);
	void (*cursor_move)(void *data, unsigned scanout, int x, int y);
	/* The VMM connected (true) or went away (false); every scanout is off then. */
	void (*connection_changed)(void *data, bool connected);
	/*
	 * A guest cross-domain context opened its Wayland channel (INIT with
	 * channel type 1): the compositor makes a new client of its own and
	 * returns the other end of its connection (a connected SOCK_STREAM unix
	 * socket, owned by the device from now on), or a negative errno. Closing
	 * that fd (context destroyed, VM gone) ends the client.
	 */
	int (*connect_wayland)(void *data, uint32_t ctx_id);
	/*
	 * How many fds the newest client connected for context `ctx_id` has
	 * taken from its connection so far (fds carried by the requests it
	 * dispatched), or UINT64_MAX if there is none. The device bounds the
	 * fds it sends that no request takes: libwayland keeps those until the
	 * client goes. May be NULL: sent fds then count as taken at once.
	 */
	uint64_t (*wayland_fds_taken)(void *data, uint32_t ctx_id);
};

void vgpu_limits_default(struct vgpu_limits *limits);

/*
 * Listens on socket_path for a VMM. `name` names the VM in logs. Returns
 * NULL on error (logged).
 */
struct vgpu_device *vgpu_device_create(struct wl_event_loop *loop, const char *name,
	const char *socket_path, const struct vgpu_limits *limits,
	const struct vgpu_display_ops *ops, void *data);
/* Disconnects the VMM, frees every resource. Accepts NULL. */
void vgpu_device_destroy(struct vgpu_device *device);

/* The host window for `scanout` has this content size: the guest is offered it. */
void vgpu_device_set_display_size(struct vgpu_device *device, unsigned scanout,
	int width, int height);
/* A frame showing the scanout's latest damage was presented. */
void vgpu_device_frame_presented(struct vgpu_device *device, unsigned scanout);

/* Counters for tests and benchmarks. */
struct vgpu_stats {
	uint64_t commands;
	uint64_t errors;
	uint64_t bytes_copied;   // host copies made by TRANSFER_TO_HOST_2D
	uint64_t flushes;
	uint32_t resources;
	uint64_t host_memory;
};
void vgpu_device_get_stats(const struct vgpu_device *device, struct vgpu_stats *stats);

#endif
