/*
 * Split virtqueue, driver side (virtio 1.2 §2.7), laid out and driven the
 * way Linux 6.1 does: one allocation holding desc, avail and used, a free
 * list kept in our own memory (never trusting what the device may have
 * written into the descriptor table), indirect tables for multi-buffer
 * chains, and EVENT_IDX interrupt/kick suppression.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "vmm.h"

/* Linux aligns the used ring to SMP_CACHE_BYTES for modern virtio-pci. */
#define USED_ALIGN 64u
#define DESC_SIZE 16u

struct head_state {
	void *token;
	bool busy;
	uint16_t ndesc;       /* ring descriptors in the chain */
	uint32_t writable;    /* bytes the device may write */
	uint64_t table_gpa;   /* indirect table, 0 if none */
	uint64_t table_size;
};

struct vmm_vring {
	struct vmm_mem *mem;
	unsigned index, num;
	uint64_t gpa, size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint8_t *desc, *avail, *used;
	bool indirect, event_idx;
	uint16_t avail_idx;   /* next avail index we publish */
	uint16_t num_added;   /* published since the last kick decision */
	uint16_t last_used;   /* next used index we consume */
	uint16_t free_head;
	unsigned num_free, in_flight;
	uint16_t *next;       /* our copy of the chain links */
	struct head_state *heads;
	bool broken;
	char err[256];
};

static void vr_fail(struct vmm_vring *vr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vr_fail(struct vmm_vring *vr, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(vr->err, sizeof(vr->err), "vq%u: ", vr->index);

	va_start(ap, fmt);
	vsnprintf(vr->err + n, sizeof(vr->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Ring fields are shared with another process: access them atomically so
 * the compiler neither tears nor caches them. */
static uint16_t ld16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED));
}

static void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

static uint32_t ld32(const uint8_t *p)
{
	return le32toh(__atomic_load_n((const uint32_t *)(const void *)p, __ATOMIC_RELAXED));
}

static void write_desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len,
		uint16_t flags, uint16_t next)
{
	uint8_t *d = table + (size_t)i * DESC_SIZE;
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &f, 2);
	memcpy(d + 14, &n, 2);
}

static uint64_t used_offset(unsigned num)
{
	/* flags, idx, ring[num], used_event */
	uint64_t end_of_avail = (uint64_t)DESC_SIZE * num + 2u * (3u + num);

	return (end_of_avail + USED_ALIGN - 1) & ~(uint64_t)(USED_ALIGN - 1);
}

static int map_ring(struct vmm_vring *vr)
{
	vr->desc_gpa = vr->gpa;
	vr->avail_gpa = vr->gpa + (uint64_t)DESC_SIZE * vr->num;
	vr->used_gpa = vr->gpa + used_offset(vr->num);
	vr->desc = vmm_mem_ptr(vr->mem, vr->desc_gpa, vr->size);
	if (!vr->desc)
		return -1;
	vr->avail = vr->desc + (vr->avail_gpa - vr->gpa);
	vr->used = vr->desc + (vr->used_gpa - vr->gpa);
	return 0;
}

struct vmm_vring *vmm_vring_new(struct vmm_mem *mem, unsigned index,
		unsigned num, int region_hint)
{
	struct vmm_vring *vr;

	if (num == 0 || num > 32768 || (num & (num - 1)))
		return NULL;
	vr = calloc(1, sizeof(*vr));
	if (!vr)
		return NULL;
	vr->mem = mem;
	vr->index = index;
	vr->num = num;
	vr->size = used_offset(num) + 6 + 8ull * num;
	vr->next = calloc(num, sizeof(*vr->next));
	vr->heads = calloc(num, sizeof(*vr->heads));
	if (!vr->next || !vr->heads)
		goto fail;
	/* Never straddling regions: the back end maps rings by user address. */
	if (vmm_mem_alloc(mem, vr->size, region_hint, 0, &vr->gpa) < 0)
		goto fail;
	if (map_ring(vr) < 0) {
		vmm_mem_release(mem, vr->gpa, vr->size);
		goto fail;
	}
	for (unsigned i = 0; i < num; i++)
		vr->next[i] = (uint16_t)(i + 1);
	vr->num_free = num;
	return vr;
fail:
	free(vr->next);
	free(vr->heads);
	free(vr);
	return NULL;
}

static void release_table(struct vmm_vring *vr, struct head_state *h)
{
	if (h->table_gpa) {
		vmm_mem_release(vr->mem, h->table_gpa, h->table_size);
		h->table_gpa = 0;
	}
}

void vmm_vring_free(struct vmm_vring *vr)
{
	if (!vr)
		return;
	for (unsigned i = 0; i < vr->num; i++)
		release_table(vr, &vr->heads[i]);
	vmm_mem_release(vr->mem, vr->gpa, vr->size);
	free(vr->next);
	free(vr->heads);
	free(vr);
}

void vmm_vring_set_features(struct vmm_vring *vr, bool indirect, bool event_idx)
{
	vr->indirect = indirect;
	vr->event_idx = event_idx;
}

const char *vmm_vring_error(const struct vmm_vring *vr)
{
	return vr->err;
}

unsigned vmm_vring_index(const struct vmm_vring *vr) { return vr->index; }
unsigned vmm_vring_num(const struct vmm_vring *vr) { return vr->num; }
unsigned vmm_vring_num_free(const struct vmm_vring *vr) { return vr->num_free; }
uint64_t vmm_vring_desc_gpa(const struct vmm_vring *vr) { return vr->desc_gpa; }
uint64_t vmm_vring_avail_gpa(const struct vmm_vring *vr) { return vr->avail_gpa; }
uint64_t vmm_vring_used_gpa(const struct vmm_vring *vr) { return vr->used_gpa; }
uint16_t vmm_vring_avail_idx(const struct vmm_vring *vr) { return vr->avail_idx; }
uint16_t vmm_vring_last_used(const struct vmm_vring *vr) { return vr->last_used; }
unsigned vmm_vring_in_flight(const struct vmm_vring *vr) { return vr->in_flight; }

uint16_t vmm_vring_used_idx(const struct vmm_vring *vr)
{
	return ld16(vr->used + 2);
}

/* Takes n descriptors off the free list; returns the head. The chain stays
 * linked in vr->next in allocation order. */
static uint16_t take_descs(struct vmm_vring *vr, unsigned n, uint16_t *ids)
{
	uint16_t head = vr->free_head, cur = head;

	for (unsigned i = 0; i < n; i++) {
		ids[i] = cur;
		if (i + 1 < n)
			cur = vr->next[cur];
	}
	vr->free_head = vr->next[cur];
	vr->num_free -= n;
	return head;
}

static void publish(struct vmm_vring *vr, uint16_t head, uint16_t ndesc,
		uint32_t writable, void *token)
{
	struct head_state *h = &vr->heads[head];

	h->token = token;
	h->busy = true;
	h->ndesc = ndesc;
	h->writable = writable;
	st16(vr->avail + 4 + 2u * (vr->avail_idx % vr->num), head);
	/* The entry (and the descriptors) before the index: wmb. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vr->avail_idx++;
	st16(vr->avail + 2, vr->avail_idx);
	vr->num_added++;
	vr->in_flight++;
}

static int check_room(struct vmm_vring *vr, unsigned need)
{
	if (vr->broken) {
		/* keep the first error message */
		return -1;
	}
	if (need == 0 || need > vr->num_free) {
		vr_fail(vr, "no room for %u descriptors (%u free)", need, vr->num_free);
		return -1;
	}
	return 0;
}

static int check_order(struct vmm_vring *vr, const struct vmm_vbuf *bufs,
		unsigned n, uint32_t *writable)
{
	bool seen_write = false;

	*writable = 0;
	for (unsigned i = 0; i < n; i++) {
		if (bufs[i].write) {
			seen_write = true;
			*writable += bufs[i].len;
		} else if (seen_write) {
			vr_fail(vr, "readable buffer after a writable one");
			return -1;
		}
	}
	return 0;
}

static int add_indirect(struct vmm_vring *vr, const struct vmm_vbuf *bufs,
		unsigned n, uint32_t writable, void *token)
{
	uint64_t table, size = (uint64_t)n * DESC_SIZE;
	uint8_t *t;
	uint16_t head;

	if (vmm_mem_alloc(vr->mem, size, VMM_REGION_ANY, 0, &table) < 0) {
		vr_fail(vr, "out of guest memory for an indirect table");
		return -1;
	}
	t = vmm_mem_ptr(vr->mem, table, size);
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
				(i + 1 < n ? VRING_DESC_F_NEXT : 0));

		write_desc(t, i, bufs[i].gpa, bufs[i].len, flags,
				(uint16_t)(i + 1 < n ? i + 1 : 0));
	}
	take_descs(vr, 1, &head);
	write_desc(vr->desc, head, table, (uint32_t)size, VRING_DESC_F_INDIRECT, 0);
	vr->heads[head].table_gpa = table;
	vr->heads[head].table_size = size;
	publish(vr, head, 1, writable, token);
	return head;
}

int vmm_vring_add(struct vmm_vring *vr, const struct vmm_vbuf *bufs,
		unsigned n, void *token)
{
	uint16_t ids[64];
	uint32_t writable;
	unsigned need;

	if (n == 0 || n > 64) {
		vr_fail(vr, "chain of %u buffers", n);
		return -1;
	}
	if (check_order(vr, bufs, n, &writable) < 0)
		return -1;
	/* Linux uses an indirect table for every multi-buffer chain. */
	need = vr->indirect && n > 1 ? 1 : n;
	if (check_room(vr, need) < 0)
		return -1;
	if (need == 1 && n > 1)
		return add_indirect(vr, bufs, n, writable, token);
	take_descs(vr, n, ids);
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
				(i + 1 < n ? VRING_DESC_F_NEXT : 0));

		write_desc(vr->desc, ids[i], bufs[i].gpa, bufs[i].len, flags,
				i + 1 < n ? ids[i + 1] : 0);
	}
	publish(vr, ids[0], (uint16_t)n, writable, token);
	return ids[0];
}

int vmm_vring_add_raw(struct vmm_vring *vr, const struct vmm_rawdesc *d,
		unsigned n, uint32_t writable, void *token)
{
	uint16_t ids[64];

	if (n == 0 || n > 64 || check_room(vr, n) < 0)
		return -1;
	take_descs(vr, n, ids);
	for (unsigned i = 0; i < n; i++) {
		/* In-range links are remapped; others are written as given so
		 * that out-of-range indices can be injected too. */
		uint16_t next = d[i].next < n ? ids[d[i].next] : d[i].next;

		write_desc(vr->desc, ids[i], d[i].addr, d[i].len, d[i].flags, next);
	}
	publish(vr, ids[0], (uint16_t)n, writable, token);
	return ids[0];
}

int vmm_vring_add_indirect_raw(struct vmm_vring *vr,
		const struct vmm_rawdesc *table, unsigned n, uint32_t table_len,
		uint32_t writable, void *token)
{
	uint64_t gpa, size = (uint64_t)n * DESC_SIZE;
	uint16_t head;
	uint8_t *t;

	if (size < table_len)
		size = table_len;
	if (size == 0)
		size = DESC_SIZE;
	if (check_room(vr, 1) < 0)
		return -1;
	if (vmm_mem_alloc(vr->mem, size, VMM_REGION_ANY, 0, &gpa) < 0) {
		vr_fail(vr, "out of guest memory for an indirect table");
		return -1;
	}
	t = vmm_mem_ptr(vr->mem, gpa, size);
	for (unsigned i = 0; i < n; i++)
		write_desc(t, i, table[i].addr, table[i].len, table[i].flags, table[i].next);
	take_descs(vr, 1, &head);
	write_desc(vr->desc, head, gpa, table_len, VRING_DESC_F_INDIRECT, 0);
	vr->heads[head].table_gpa = gpa;
	vr->heads[head].table_size = size;
	publish(vr, head, 1, writable, token);
	return head;
}

bool vmm_vring_kick_prepare(struct vmm_vring *vr)
{
	uint16_t new_idx = vr->avail_idx;
	uint16_t old_idx = (uint16_t)(new_idx - vr->num_added);

	vr->num_added = 0;
	/* The avail index must be visible before we read the device's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vr->event_idx) {
		uint16_t avail_event = ld16(vr->used + 4 + 8u * vr->num);

		return (uint16_t)(new_idx - avail_event - 1) < (uint16_t)(new_idx - old_idx);
	}
	return !(ld16(vr->used) & VRING_USED_F_NO_NOTIFY);
}

static void reclaim(struct vmm_vring *vr, uint16_t head)
{
	struct head_state *h = &vr->heads[head];
	uint16_t last = head;

	for (unsigned i = 1; i < h->ndesc; i++)
		last = vr->next[last];
	vr->next[last] = vr->free_head;
	vr->free_head = head;
	vr->num_free += h->ndesc;
	vr->in_flight--;
	release_table(vr, h);
	h->busy = false;
	h->token = NULL;
}

int vmm_vring_pop_used(struct vmm_vring *vr, void **token, uint32_t *len)
{
	uint16_t used_idx;
	const uint8_t *elem;
	uint32_t id;

	if (vr->broken)
		return -1;
	used_idx = ld16(vr->used + 2);
	if (used_idx == vr->last_used)
		return 0;
	if ((uint16_t)(used_idx - vr->last_used) > vr->in_flight) {
		vr_fail(vr, "used idx moved from %u to %u with %u in flight",
				vr->last_used, used_idx, vr->in_flight);
		vr->broken = true;
		return -1;
	}
	/* Read the element only after seeing the index: rmb. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	elem = vr->used + 4 + 8u * (vr->last_used % vr->num);
	id = ld32(elem);
	*len = ld32(elem + 4);
	if (id >= vr->num || !vr->heads[id].busy) {
		vr_fail(vr, "used ring entry %u has id %u, which is not in flight",
				vr->last_used, id);
		vr->broken = true;
		return -1;
	}
	if (*len > vr->heads[id].writable) {
		vr_fail(vr, "used len %u for id %u exceeds the %u writable bytes",
				*len, id, vr->heads[id].writable);
		vr->broken = true;
		return -1;
	}
	*token = vr->heads[id].token;
	reclaim(vr, (uint16_t)id);
	vr->last_used++;
	return 1;
}

bool vmm_vring_enable_cb(struct vmm_vring *vr)
{
	if (vr->event_idx)
		st16(vr->avail + 4 + 2u * vr->num, vr->last_used); /* used_event */
	else
		st16(vr->avail, 0);
	/* Publish before re-reading, or an entry added meanwhile gets neither
	 * an interrupt nor our attention. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return ld16(vr->used + 2) != vr->last_used;
}

void vmm_vring_disable_cb(struct vmm_vring *vr)
{
	if (vr->event_idx) {
		/* Just behind us: reached again only after 65535 entries. */
		st16(vr->avail + 4 + 2u * vr->num, (uint16_t)(vr->last_used - 1));
	} else {
		st16(vr->avail, VRING_AVAIL_F_NO_INTERRUPT);
	}
}
