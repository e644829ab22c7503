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
	/*
	 * How many fds the compositor's client of that connection has taken so
	 * far: fds that Wayland requests it dispatched carried (libwayland keeps
	 * every other received fd in its connection until the client goes).
	 * UINT64_MAX once the client is gone. May be NULL: every fd then counts
	 * as taken once written to the socket (a peer that reads them itself).
	 */
	uint64_t (*fds_taken)(void *data);
	/*
	 * fds the VM's contexts together hold in the compositor now (the sum of
	 * xdom_context_fds_held over them). May be NULL: this context's only.
	 */
	unsigned (*vm_fds_held)(void *data);
};

/*
 * Memory all cross-domain contexts of one VM buffer together (guest data
 * waiting for the compositor or for a pipe reader). The device owns it and
 * hands it to each context (xdom_context_set_budget).
 */
struct xdom_budget {
	size_t memory;
};

/*
 * Bounds per context.
 *
 * Worst case per context: write pipes XDOM_MAX_PIPES x XDOM_MAX_PIPE_BUFFER
 * (2 MiB) + XDOM_MAX_OUT_BUFFER (1 MiB, message overhead included) of
 * guest data, one queued message per read pipe and one RECEIVE (4 KiB
 * each, 36 KiB), streams read from their fds on demand (no buffer), the
 * image cache (about 4 KiB). Per VM the buffered guest data of all
 * contexts is also bounded by XDOM_MAX_VM_MEMORY: at most 16 MiB plus
 * 16 x 40 KiB with the device's 16 contexts, rather than 16 x 3 MiB.
 *
 * fds per context: the Wayland socket, XDOM_MAX_PIPES read and write pipe
 * ends, the streamed fds of one RECEIVE (XDOM_MAX_IDENTIFIERS), and fds
 * sent to the compositor that no request has taken yet (SEND of blob
 * placeholders and pipes: libwayland keeps those in its connection until
 * a request takes them or the client goes): XDOM_MAX_HELD_FDS, and
 * XDOM_MAX_VM_HELD_FDS for all contexts of a VM together.
 */
#define XDOM_MAX_SUBMIT_SIZE (64u << 10)     // command bytes per SUBMIT_3D
#define XDOM_MAX_STREAMED_SIZE (16u << 20)   // one streamed memory fd
#define XDOM_MAX_PIPE_BUFFER (256u << 10)    // guest data waiting for a slow pipe reader
#define XDOM_MAX_OUT_BUFFER (1u << 20)       // guest data (+ overhead) waiting for the compositor
#define XDOM_MAX_IMAGE_CACHE 64              // cached GET_IMAGE_REQUIREMENTS answers
#define XDOM_MAX_HELD_FDS 128                // sent fds no request has taken yet
#define XDOM_MAX_VM_HELD_FDS 256             // the same, all contexts of a VM
#define XDOM_MAX_VM_MEMORY (16u << 20)       // buffered guest data, all contexts of a VM

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
 * Shares the VM's memory budget (NULL: none; the per-context bounds still
 * apply). Set before the first command; `budget` outlives the context.
 */
void xdom_context_set_budget(struct xdom_context *ctx, struct xdom_budget *budget);
/*
 * fds this context sent (or queued) to the compositor that no request has
 * taken yet (calls ops->fds_taken).
 */
unsigned xdom_context_fds_held(const struct xdom_context *ctx);

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
	size_t out_bytes;        // guest data not yet taken by the compositor, with overhead
	unsigned fds_held;       // xdom_context_fds_held
	uint32_t messages;       // messages written into the channel ring so far
};
void xdom_context_get_stats(const struct xdom_context *ctx, struct xdom_stats *stats);

#endif
