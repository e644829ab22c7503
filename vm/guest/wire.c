#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cwg.h"

int cwg_wire_frame(const uint8_t *buf, size_t len, uint32_t *size)
{
	if (len < 8)
		return 0;
	uint32_t sz = cwg_get_u32(buf + 4) >> 16;
	if (sz < 8 || (sz & 3))
		return -EPROTO;
	if (len < sz)
		return 0;
	*size = sz;
	return 1;
}

void cwg_msg_init(struct cwg_msg *msg, const uint8_t *data, uint32_t size)
{
	msg->data = data;
	msg->size = size;
	msg->object = cwg_get_u32(data);
	msg->opcode = cwg_get_u32(data + 4) & 0xffff;
	msg->pos = 8;
	msg->bad = false;
}

uint32_t cwg_msg_u32(struct cwg_msg *msg)
{
	if (msg->pos + 4 > msg->size) {
		msg->bad = true;
		return 0;
	}
	uint32_t v = cwg_get_u32(msg->data + msg->pos);
	msg->pos += 4;
	return v;
}

int32_t cwg_msg_i32(struct cwg_msg *msg)
{
	return (int32_t)cwg_msg_u32(msg);
}

const char *cwg_msg_string(struct cwg_msg *msg)
{
	uint32_t len = cwg_msg_u32(msg);
	if (msg->bad || len == 0)
		return NULL;
	size_t padded = ((size_t)len + 3) & ~(size_t)3;
	if (padded > msg->size - msg->pos) {
		msg->bad = true;
		return NULL;
	}
	const char *s = (const char *)msg->data + msg->pos;
	if (s[len - 1] != '\0') {
		msg->bad = true;
		return NULL;
	}
	msg->pos += padded;
	return s;
}

size_t cwg_wire_display_error(uint8_t *out, size_t cap, uint32_t object,
	uint32_t code, const char *message)
{
	size_t slen = strlen(message) + 1;
	if (slen > 512)
		slen = 512;
	size_t padded = (slen + 3) & ~(size_t)3;
	size_t size = 8 + 4 + 4 + 4 + padded;
	if (size > cap)
		return 0;
	memset(out, 0, size);
	cwg_put_u32(out, CWG_WL_DISPLAY_ID);
	cwg_put_u32(out + 4, (uint32_t)size << 16 | 0); // wl_display.error
	cwg_put_u32(out + 8, object);
	cwg_put_u32(out + 12, code);
	cwg_put_u32(out + 16, (uint32_t)slen);
	memcpy(out + 20, message, slen - 1);
	return size;
}

/* Objects: open addressing, linear probing, tombstones. */

void cwg_objects_init(struct cwg_objects *objs, uint32_t max)
{
	memset(objs, 0, sizeof(*objs));
	objs->max = max;
}

void cwg_objects_finish(struct cwg_objects *objs)
{
	free(objs->slots);
	memset(objs, 0, sizeof(*objs));
}

static uint32_t hash_id(uint32_t id)
{
	return id * 2654435761u;
}

struct cwg_object *cwg_objects_get(struct cwg_objects *objs, uint32_t id)
{
	if (!objs->cap || id == 0)
		return NULL;
	uint32_t mask = objs->cap - 1;
	for (uint32_t i = hash_id(id) & mask, n = 0; n < objs->cap; i = (i + 1) & mask, n++) {
		struct cwg_object *o = &objs->slots[i];
		if (o->id == 0 && !o->tomb)
			return NULL;
		if (o->id == id && !o->tomb)
			return o;
	}
	return NULL;
}

static int objects_grow(struct cwg_objects *objs)
{
	uint32_t cap = objs->cap ? objs->cap : 64;
	while (objs->count + 1 > cap / 2)
		cap *= 2;
	struct cwg_object *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < objs->cap; i++) {
		struct cwg_object *o = &objs->slots[i];
		if (o->id == 0 || o->tomb)
			continue;
		uint32_t j = hash_id(o->id) & (cap - 1);
		while (slots[j].id)
			j = (j + 1) & (cap - 1);
		slots[j] = *o;
	}
	free(objs->slots);
	objs->slots = slots;
	objs->cap = cap;
	objs->used = objs->count;
	return 0;
}

struct cwg_object *cwg_objects_put(struct cwg_objects *objs, uint32_t id,
	enum cwg_object_type type, void *data)
{
	if (id == 0)
		return NULL;
	struct cwg_object *o = cwg_objects_get(objs, id);
	if (o) {
		o->type = (uint16_t)type;
		o->data = data;
		return o;
	}
	if (objs->count >= objs->max)
		return NULL;
	if ((objs->used + 1) * 4 > objs->cap * 3 && objects_grow(objs) < 0)
		return NULL;
	uint32_t mask = objs->cap - 1;
	uint32_t i = hash_id(id) & mask;
	while (objs->slots[i].id != 0 && !objs->slots[i].tomb)
		i = (i + 1) & mask;
	o = &objs->slots[i];
	if (!o->tomb)
		objs->used++;
	o->id = id;
	o->tomb = false;
	o->type = (uint16_t)type;
	o->data = data;
	objs->count++;
	return o;
}

void cwg_objects_remove(struct cwg_objects *objs, uint32_t id)
{
	struct cwg_object *o = cwg_objects_get(objs, id);
	if (!o)
		return;
	o->tomb = true;
	o->type = CWG_OBJ_NONE;
	o->data = NULL;
	objs->count--;
}

int cwg_wire_scan_feed(struct cwg_wire_scan *scan, const uint8_t *data, size_t len,
	void (*on_delete)(void *user, uint32_t id), void *user)
{
	while (len > 0) {
		if (scan->size == 0) {
			size_t take = 8 - scan->have;
			if (take > len)
				take = len;
			memcpy(scan->head + scan->have, data, take);
			scan->have += (uint32_t)take;
			data += take;
			len -= take;
			if (scan->have < 8)
				return 0;
			uint32_t size = cwg_get_u32(scan->head + 4) >> 16;
			if (size < 8 || (size & 3))
				return -EPROTO;
			scan->size = size;
			scan->remaining = size - 8;
		}
		/* Collect the first argument of wl_display.delete_id. */
		uint32_t object = cwg_get_u32(scan->head);
		uint32_t opcode = cwg_get_u32(scan->head + 4) & 0xffff;
		bool want = object == CWG_WL_DISPLAY_ID && opcode == 1 && scan->size >= 12;
		if (want && scan->have < 12) {
			size_t take = 12 - scan->have;
			if (take > len)
				take = len;
			memcpy(scan->head + scan->have, data, take);
			scan->have += (uint32_t)take;
			scan->remaining -= (uint32_t)take;
			data += take;
			len -= take;
			if (scan->have == 12 && on_delete)
				on_delete(user, cwg_get_u32(scan->head + 8));
		}
		size_t skip = scan->remaining;
		if (skip > len)
			skip = len;
		scan->remaining -= (uint32_t)skip;
		data += skip;
		len -= skip;
		if (scan->remaining == 0 && (!want || scan->have == 12)) {
			scan->size = 0;
			scan->have = 0;
		}
	}
	return 0;
}

bool cwg_wire_scan_at_boundary(const struct cwg_wire_scan *scan)
{
	return scan->size == 0 && scan->have == 0;
}
