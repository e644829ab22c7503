#ifndef CWG_WIRE_H
#define CWG_WIRE_H

/*
 * The Wayland wire format, as far as the proxy needs it: framing of whole
 * messages (object id u32, then size << 16 | opcode), argument readers,
 * the table of the few objects it tracks, and a scanner of the host's byte
 * stream (wl_display.delete_id; message boundaries).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CWG_WL_DISPLAY_ID 1u
#define CWG_WL_SERVER_ID_START 0xff000000u

/* 1 and *size when buf starts with a whole message, 0 when more bytes are
 * needed, -EPROTO for an impossible header. */
int cwg_wire_frame(const uint8_t *buf, size_t len, uint32_t *size);

/* A message being read argument by argument. */
struct cwg_msg {
	uint32_t object, opcode, size;
	const uint8_t *data; // whole message, header included
	size_t pos;          // next argument
	bool bad;            // an argument ran past the end
};
void cwg_msg_init(struct cwg_msg *msg, const uint8_t *data, uint32_t size);
uint32_t cwg_msg_u32(struct cwg_msg *msg);
int32_t cwg_msg_i32(struct cwg_msg *msg);
/* A string argument: NUL-terminated inside its length, or NULL (bad set
 * unless it is the null string). */
const char *cwg_msg_string(struct cwg_msg *msg);

/* Message builders (little-endian host assumed, as the wire is native). */
size_t cwg_wire_display_error(uint8_t *out, size_t cap, uint32_t object,
	uint32_t code, const char *message);

enum cwg_object_type {
	CWG_OBJ_NONE = 0,
	CWG_OBJ_REGISTRY,
	CWG_OBJ_COMPOSITOR,
	CWG_OBJ_SHM,
	CWG_OBJ_POOL,
	CWG_OBJ_BUFFER,
	CWG_OBJ_SURFACE,
	CWG_OBJ_VIEWPORTER,
	CWG_OBJ_VIEWPORT,
	CWG_OBJ_ZOMBIE, // destroyed by the client, id not yet deleted by the host
};

struct cwg_object {
	uint32_t id; // 0: empty slot
	uint16_t type;
	bool tomb;
	void *data;
};

struct cwg_objects {
	struct cwg_object *slots;
	uint32_t cap, count, used, max;
};

void cwg_objects_init(struct cwg_objects *objs, uint32_t max);
void cwg_objects_finish(struct cwg_objects *objs);
struct cwg_object *cwg_objects_get(struct cwg_objects *objs, uint32_t id);
/* Adds (or replaces the type of) id; NULL when the table is full. */
struct cwg_object *cwg_objects_put(struct cwg_objects *objs, uint32_t id,
	enum cwg_object_type type, void *data);
void cwg_objects_remove(struct cwg_objects *objs, uint32_t id);

/* Scanner of the host -> client stream. */
struct cwg_wire_scan {
	uint8_t head[12];
	uint32_t have;      // bytes of head collected for the current message
	uint32_t size;      // size of the current message (0: header not yet known)
	uint32_t remaining; // bytes of the current message still to come
};
/* Feeds bytes; calls on_delete for each wl_display.delete_id. -EPROTO on a
 * malformed header. */
int cwg_wire_scan_feed(struct cwg_wire_scan *scan, const uint8_t *data, size_t len,
	void (*on_delete)(void *user, uint32_t id), void *user);
/* True between messages. */
bool cwg_wire_scan_at_boundary(const struct cwg_wire_scan *scan);

#endif
