#ifndef XDOM_CROSS_DOMAIN_H
#define XDOM_CROSS_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wayland-server-core.h>

#include "guest_memory.h"
#include "vgpu_resource.h"

/*
 * The cross-domain engine of one guest context (virtio-gpu capset 5): it
 * runs the commands of the context's SUBMIT_3D buffers, keeps the context's
 * Wayland connection to the compositor, and writes host messages (RECEIVE,
 * READ) into the guest's channel ring, one per POLL fence the device hands
 * it. Wire format: cross_domain_protocol.h; facts:
 * ../shared/reference/cross-domain.md.
 *
 * Everything runs in crossway's wl_event_loop: every fd is non-blocking and
 * waited on as an event source. What waits for the guest is bounded: while
 * a message waits for a POLL, the Wayland socket (or the read pipe it came
 * from) is not read, which pushes back on the compositor.
 */
struct xdom_context;

/* What the engine needs from its device (virtio_gpu.c, or a unit test). */
struct xdom_ops {
	/* Resource `id` if it is attached to this context, else NULL. */
	struct vgpu_resource *(*resource)(void *data, uint32_t id);
	/* The VM's memory now (rings are written through it), or NULL. */
	const struct vu_guest_memory *(*memory)(void *data);
	/*
	 * One message was written at offset 0 of the channel ring: the oldest
	 * POLL fence given with xdom_context_add_poll may signal now. Called
	 * from inside xdom_context_add_poll too.
	 */
	void (*poll_done)(void *data);
	/*
	 * INIT of a Wayland channel: a connected SOCK_STREAM socket to the
	 * compositor (owned by the engine from then on), or a negative errno.
	 * May be NULL: Wayland channels then fail.
	 */
	int (*connect_wayland)(void *data);
};

/* Bounds per context. */
#define XDOM_MAX_SUBMIT_SIZE (64u << 10)     // command bytes per SUBMIT_3D
#define XDOM_MAX_STREAMED_SIZE (16u << 20)   // one streamed memory fd
#define XDOM_MAX_PIPES 64                    // read pipes, and write pipes
#define XDOM_MAX_PIPE_BUFFER (1u << 20)      // guest data waiting for a slow pipe reader
#define XDOM_MAX_OUT_BUFFER (1u << 20)       // guest data waiting for the compositor
#define XDOM_MAX_IMAGE_CACHE 64              // cached GET_IMAGE_REQUIREMENTS answers

/*
 * A context `ctx_id` of VM `vm_name` (for logs). `owner` is what the
 * placeholders of its blobs are exported for (the device). Returns NULL
 * when out of memory.
 */
struct xdom_context *xdom_context_create(struct wl_event_loop *loop, const char *vm_name,
	uint32_t ctx_id, const void *owner, const struct xdom_ops *ops, void *data);
/* Closes every fd and the Wayland connection; never calls ops. Accepts NULL. */
void xdom_context_destroy(struct xdom_context *ctx);

/*
 * Runs the commands of one SUBMIT_3D buffer (`size` bytes, concatenated
 * commands walked by cmd_size). *polled is set when it held a POLL. Returns
 * 0, or -EINVAL when a command is malformed or refused (logged, naming the
 * VM and the command; the commands before it took effect, as in crosvm).
 */
int xdom_context_submit(struct xdom_context *ctx, const void *cmds, size_t size, bool *polled);

/*
 * A fenced POLL on the channel ring now waits for one message: the engine
 * calls ops->poll_done once it wrote it (at once if one is waiting).
 */
void xdom_context_add_poll(struct xdom_context *ctx);
/*
 * The device signalled the waiting POLL fences early (queue stopped):
 * they no longer take messages, and the channel ring's header is cleared
 * so the guest does not take the last message again. Waiting messages
 * stay queued for the next POLL.
 */
void xdom_context_cancel_polls(struct xdom_context *ctx);

/* What the engine holds now: for tests. */
struct xdom_stats {
	unsigned polls;          // POLL fences waiting for a message
	unsigned queued;         // messages waiting for a POLL
	unsigned read_pipes, write_pipes, streams;
	bool initialized;
	bool wayland_open;
	bool wayland_reading;    // the Wayland socket is being read (no back-pressure)
	size_t out_bytes;        // guest data not yet taken by the compositor
	uint32_t messages;       // messages written into the channel ring so far
};
void xdom_context_get_stats(const struct xdom_context *ctx, struct xdom_stats *stats);

#endif
