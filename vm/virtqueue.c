#include "virtqueue.h"

#include <errno.h>
#include <string.h>

/*
 * The ring layout of virtio 1.2 §2.7, little-endian in guest memory. These
 * are never dereferenced as whole structs: descriptors are copied out with
 * memcpy (an indirect table may be unaligned) and ring fields are accessed
 * one at a time with atomic loads/stores, because the guest writes them
 * concurrently.
 */
struct vring_desc_le {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail_le {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; // [size], then used_event
};

struct vring_used_elem_le {
	uint32_t id;
	uint32_t len;
};

struct vring_used_le {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem_le ring[]; // [size], then avail_event (le16)
};

_Static_assert(sizeof(struct vring_desc_le) == 16, "descriptor layout");
_Static_assert(sizeof(struct vring_used_elem_le) == 8, "used element layout");

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
static uint16_t le16(uint16_t v) { return __builtin_bswap16(v); }
static uint32_t le32(uint32_t v) { return __builtin_bswap32(v); }
static uint64_t le64(uint64_t v) { return __builtin_bswap64(v); }
#else
static uint16_t le16(uint16_t v) { return v; }
static uint32_t le32(uint32_t v) { return v; }
static uint64_t le64(uint64_t v) { return v; }
#endif

/* Single guest-shared fields: atomic so the compiler neither tears nor re-reads them. */
static uint16_t
load16(const uint16_t *p)
{
	return le16(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void
store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, le16(v), __ATOMIC_RELAXED);
}

static void
store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, le32(v), __ATOMIC_RELAXED);
}

/* avail->ring[size]: the driver's "interrupt me once used idx passes this". */
static uint16_t *
used_event_field(const struct vu_virtqueue *vq)
{
	return &vq->avail->ring[vq->size];
}

/* used->ring[size]: our "kick me once avail idx passes this". */
static uint16_t *
avail_event_field(const struct vu_virtqueue *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

static void *
map_ring(const struct vu_guest_memory *mem, uint64_t uaddr, uint64_t len, uintptr_t align,
	int *err)
{
	/* virtio 1.2 §2.7: desc 16, avail 2, used 4. The host side must match for aligned access. */
	if (uaddr % align != 0) {
		*err = -EINVAL;
		return NULL;
	}
	void *p = vu_mem_uaddr_to_host(mem, uaddr, len);
	if (p == NULL) {
		*err = -EFAULT;
		return NULL;
	}
	if ((uintptr_t)p % align != 0) {
		*err = -EINVAL;
		return NULL;
	}
	return p;
}

int
vu_virtq_setup(struct vu_virtqueue *vq, const struct vu_guest_memory *mem, uint16_t size,
	uint64_t desc_uaddr, uint64_t avail_uaddr, uint64_t used_uaddr, uint16_t next_avail,
	bool event_idx, bool indirect)
{
	vu_virtq_reset(vq);
	if (size == 0 || (size & (size - 1)) != 0) {
		return -EINVAL;
	}
	/* The event fields exist only with EVENT_IDX; without it they need not be mapped. */
	uint64_t event = event_idx ? 2 : 0;
	uint64_t desc_len = 16ull * size;
	uint64_t avail_len = 4 + 2ull * size + event;
	uint64_t used_len = 4 + 8ull * size + event;
	int err = 0;
	void *desc = map_ring(mem, desc_uaddr, desc_len, 16, &err);
	void *avail = desc ? map_ring(mem, avail_uaddr, avail_len, 2, &err) : NULL;
	void *used = avail ? map_ring(mem, used_uaddr, used_len, 4, &err) : NULL;
	if (used == NULL) {
		return err;
	}
	vq->mem = mem;
	vq->size = size;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->last_avail_idx = next_avail;
	/* Resume from what the used ring says (0 on a fresh start), as libvhost-user does. */
	vq->used_idx = load16(&vq->used->idx);
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}

void
vu_virtq_reset(struct vu_virtqueue *vq)
{
	memset(vq, 0, sizeof(*vq));
}

static int
mark_broken(struct vu_virtqueue *vq, int err)
{
	vq->broken = true;
	return err;
}

static struct vring_desc_le
read_desc(const void *table, unsigned index)
{
	struct vring_desc_le d;
	memcpy(&d, (const uint8_t *)table + 16 * (size_t)index, sizeof(d));
	d.addr = le64(d.addr);
	d.len = le32(d.len);
	d.flags = le16(d.flags);
	d.next = le16(d.next);
	return d;
}

/* Maps one buffer descriptor onto the chain's readable or writable iovecs. */
static int
add_buffer(const struct vu_virtqueue *vq, struct vu_chain *chain, const struct vring_desc_le *d)
{
	/* QEMU and libvhost-user reject zero-sized buffers too. */
	if (d->len == 0) {
		return -EINVAL;
	}
	struct iovec *iov;
	unsigned *count;
	size_t *total;
	if (d->flags & VRING_DESC_F_WRITE) {
		iov = chain->in;
		count = &chain->in_count;
		total = &chain->in_len;
	} else {
		/* Readable descriptors must all come before the writable ones. */
		if (chain->in_count > 0) {
			return -EINVAL;
		}
		iov = chain->out;
		count = &chain->out_count;
		total = &chain->out_len;
	}
	int n = vu_mem_gpa_to_iovec(vq->mem, d->addr, d->len, iov + *count,
		VU_CHAIN_MAX_SEGMENTS - (int)*count);
	if (n < 0) {
		return n == -ENOBUFS ? -E2BIG : n;
	}
	*count += (unsigned)n;
	*total += d->len;
	return 0;
}

/*
 * Switches the walk from the descriptor table to the indirect table `d`
 * points to. Only the head may be indirect: the spec forbids NEXT with
 * INDIRECT and nesting, so an indirect descriptor is the whole chain.
 */
static int
enter_indirect(const struct vu_virtqueue *vq, const struct vring_desc_le *d, bool is_head,
	const void **table, unsigned *table_size)
{
	if (!vq->indirect || !is_head || (d->flags & VRING_DESC_F_NEXT)) {
		return -EINVAL;
	}
	if (d->len == 0 || d->len % 16 != 0) {
		return -EINVAL;
	}
	const void *t = vu_mem_gpa_to_host(vq->mem, d->addr, d->len);
	if (t == NULL) {
		return -EFAULT;
	}
	*table = t;
	*table_size = d->len / 16;
	return 0;
}

static int
walk_chain(const struct vu_virtqueue *vq, uint16_t head, struct vu_chain *chain)
{
	memset(chain, 0, sizeof(*chain));
	chain->head = head;
	const void *table = vq->desc;
	unsigned table_size = vq->size;
	bool in_indirect = false;
	unsigned index = head;
	unsigned steps = 0;    // descriptors visited in the current table
	unsigned segments = 0; // buffer descriptors in the chain
	for (;;) {
		if (index >= table_size) {
			return -EINVAL;
		}
		/* A chain can visit each descriptor once; more means a loop. */
		if (++steps > table_size) {
			return -ELOOP;
		}
		struct vring_desc_le d = read_desc(table, index);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (in_indirect) {
				return -EINVAL;
			}
			int ret = enter_indirect(vq, &d, steps == 1, &table, &table_size);
			if (ret < 0) {
				return ret;
			}
			in_indirect = true;
			index = 0;
			steps = 0;
			continue;
		}
		if (++segments > VU_CHAIN_MAX_SEGMENTS) {
			return -E2BIG;
		}
		int ret = add_buffer(vq, chain, &d);
		if (ret < 0) {
			return ret;
		}
		if (!(d.flags & VRING_DESC_F_NEXT)) {
			return 0;
		}
		index = d.next;
	}
}

/* Number of entries the driver has made available, or -1 if its idx is impossible. */
static int
avail_pending(const struct vu_virtqueue *vq)
{
	uint16_t pending = (uint16_t)(load16(&vq->avail->idx) - vq->last_avail_idx);
	return pending > vq->size ? -1 : pending;
}

/* Without EVENT_IDX, ask the driver not to kick while we drain the ring. */
static void
suppress_kicks(struct vu_virtqueue *vq)
{
	uint16_t flags = load16(&vq->used->flags);
	if (!(flags & VRING_USED_F_NO_NOTIFY)) {
		store16(&vq->used->flags, flags | VRING_USED_F_NO_NOTIFY);
	}
}

int
vu_virtq_pop(struct vu_virtqueue *vq, struct vu_chain *chain)
{
	if (vq->size == 0) {
		return -EINVAL;
	}
	if (vq->broken) {
		return -EIO;
	}
	int pending = avail_pending(vq);
	if (pending == 0) {
		/*
		 * Re-arm kicks before reporting "empty", so a device that simply
		 * pops until 0 never misses a request queued meanwhile.
		 */
		if (!vu_virtq_enable_notification(vq)) {
			return 0;
		}
		pending = avail_pending(vq);
	}
	if (pending < 0) {
		return mark_broken(vq, -EINVAL);
	}
	/* Read barrier: the ring entry and descriptors were written before avail->idx. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	uint16_t head = load16(&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)]);
	if (head >= vq->size) {
		return mark_broken(vq, -EINVAL);
	}
	int ret = walk_chain(vq, head, chain);
	if (ret < 0) {
		return mark_broken(vq, ret);
	}
	vq->last_avail_idx++;
	if (vq->event_idx) {
		/* Publish progress so the driver's next kick is for something new. */
		store16(avail_event_field(vq), vq->last_avail_idx);
	} else {
		suppress_kicks(vq);
	}
	return 1;
}

void
vu_virtq_push(struct vu_virtqueue *vq, const struct vu_chain *chain, uint32_t written)
{
	if (vq->size == 0 || vq->broken) {
		return;
	}
	/* Never claim more than the driver offered: it trusts this length. */
	if (written > chain->in_len) {
		written = (uint32_t)chain->in_len;
	}
	struct vring_used_elem_le *elem = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	store32(&elem->id, chain->head);
	store32(&elem->len, written);
	/* Write barrier: the element must be visible before the index that covers it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	uint16_t old = vq->used_idx;
	uint16_t new = (uint16_t)(old + 1);
	vq->used_idx = new;
	store16(&vq->used->idx, new);
	/*
	 * If used idx has run so far past the last interrupt that the distance
	 * no longer fits the 16-bit window, the EVENT_IDX comparison in
	 * should_notify would be meaningless: force the next one (as QEMU does).
	 */
	if ((int16_t)(new - vq->signalled_used) < (uint16_t)(new - old)) {
		vq->signalled_used_valid = false;
	}
}

/* virtio 1.2 §2.7.10: true iff event lies in [old, new). */
static bool
need_event(uint16_t event, uint16_t new, uint16_t old)
{
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool
vu_virtq_should_notify(struct vu_virtqueue *vq)
{
	if (vq->size == 0) {
		return false;
	}
	/* Full barrier: used->idx must be visible before we read the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx) {
		return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	}
	bool valid = vq->signalled_used_valid;
	uint16_t old = vq->signalled_used;
	uint16_t new = vq->used_idx;
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	return !valid || need_event(load16(used_event_field(vq)), new, old);
}

bool
vu_virtq_enable_notification(struct vu_virtqueue *vq)
{
	if (vq->size == 0 || vq->broken) {
		return false;
	}
	if (vq->event_idx) {
		store16(avail_event_field(vq), vq->last_avail_idx);
	} else {
		uint16_t flags = load16(&vq->used->flags);
		if (flags & VRING_USED_F_NO_NOTIFY) {
			store16(&vq->used->flags, flags & ~VRING_USED_F_NO_NOTIFY);
		}
	}
	/*
	 * Full barrier, then look again: a driver that added a request before
	 * seeing the re-armed state did not kick, so we must notice it here.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(&vq->avail->idx) != vq->last_avail_idx;
}

size_t
vu_chain_read(const struct vu_chain *chain, size_t offset, void *dst, size_t len)
{
	uint8_t *out = dst;
	size_t done = 0;
	for (unsigned i = 0; i < chain->out_count && done < len; i++) {
		const struct iovec *v = &chain->out[i];
		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		size_t n = v->iov_len - offset < len - done ? v->iov_len - offset : len - done;
		memcpy(out + done, (const uint8_t *)v->iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t
vu_chain_write(const struct vu_chain *chain, size_t offset, const void *src, size_t len)
{
	const uint8_t *in = src;
	size_t done = 0;
	for (unsigned i = 0; i < chain->in_count && done < len; i++) {
		const struct iovec *v = &chain->in[i];
		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		size_t n = v->iov_len - offset < len - done ? v->iov_len - offset : len - done;
		memcpy((uint8_t *)v->iov_base + offset, in + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
