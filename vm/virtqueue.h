#ifndef VU_VIRTQUEUE_H
#define VU_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "guest_memory.h"

/*
 * A split virtqueue (virtio 1.2 §2.7) living in guest memory, processed by
 * the device side. Descriptor chains, indirect tables and the rings are
 * guest-controlled: every index, length and address is checked, chain walks
 * are bounded, and a broken ring is reported instead of followed.
 */
#define VU_MAX_QUEUE_SIZE 32768
/* Longest chain a device accepts (QEMU's VIRTQUEUE_MAX_SIZE is 1024). */
#define VU_CHAIN_MAX_SEGMENTS 64

/* One popped request: what the driver gave us to read and to write. */
struct vu_chain {
	uint16_t head; // descriptor index returned in the used ring
	struct iovec out[VU_CHAIN_MAX_SEGMENTS]; // device-readable
	unsigned out_count;
	size_t out_len;
	struct iovec in[VU_CHAIN_MAX_SEGMENTS]; // device-writable
	unsigned in_count;
	size_t in_len;
};

struct vu_virtqueue {
	const struct vu_guest_memory *mem;
	uint16_t size; // N, a power of two; 0 = not configured
	struct vring_desc_le *desc;
	struct vring_avail_le *avail;
	struct vring_used_le *used;
	uint16_t last_avail_idx; // next avail entry to take
	uint16_t used_idx;       // our copy of used->idx
	uint16_t signalled_used; // used idx at the last interrupt (EVENT_IDX)
	bool signalled_used_valid;
	bool event_idx;          // VIRTIO_RING_F_EVENT_IDX negotiated
	bool indirect;           // VIRTIO_RING_F_INDIRECT_DESC negotiated
	bool broken;             // the driver violated the ring layout
};

/*
 * Configures the queue from front-end user addresses (SET_VRING_ADDR).
 * Returns 0, or -EINVAL (bad size/alignment) / -EFAULT (not in guest memory).
 */
int vu_virtq_setup(struct vu_virtqueue *vq, const struct vu_guest_memory *mem, uint16_t size,
	uint64_t desc_uaddr, uint64_t avail_uaddr, uint64_t used_uaddr, uint16_t next_avail,
	bool event_idx, bool indirect);
void vu_virtq_reset(struct vu_virtqueue *vq);

/*
 * Takes the next available chain. Returns 1 with *chain filled, 0 when the
 * ring is empty, or a negative errno when the chain or ring is malformed
 * (the queue is then marked broken and yields nothing more).
 */
int vu_virtq_pop(struct vu_virtqueue *vq, struct vu_chain *chain);
/* Returns a chain to the driver with `written` bytes written into `in`. */
void vu_virtq_push(struct vu_virtqueue *vq, const struct vu_chain *chain, uint32_t written);
/* Whether the driver wants an interrupt now (EVENT_IDX or NO_INTERRUPT rules). */
bool vu_virtq_should_notify(struct vu_virtqueue *vq);
/* After draining: re-arm kicks (avail_event / NO_NOTIFY) and say if more arrived. */
bool vu_virtq_enable_notification(struct vu_virtqueue *vq);

/* Scatter/gather helpers over a chain's iovecs; they return bytes copied. */
size_t vu_chain_read(const struct vu_chain *chain, size_t offset, void *dst, size_t len);
size_t vu_chain_write(const struct vu_chain *chain, size_t offset, const void *src, size_t len);

#endif
