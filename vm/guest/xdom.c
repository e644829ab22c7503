#include "xdom.h"

#include <errno.h>
#include <string.h>

static void header(struct xdom_header *h, uint8_t cmd, size_t size)
{
	h->cmd = cmd;
	h->ring_idx = 0;
	h->cmd_size = (uint16_t)size;
	h->pad = 0;
}

size_t cwg_xdom_init(uint8_t *out, uint32_t query_ring, uint32_t channel_ring)
{
	struct xdom_init init;
	memset(&init, 0, sizeof(init));
	header(&init.hdr, XDOM_CMD_INIT, sizeof(init));
	init.query_ring_id = query_ring;
	init.channel_ring_id = channel_ring;
	init.channel_type = XDOM_CHANNEL_WAYLAND;
	init.version = XDOM_CROSSWAY_VERSION;
	memcpy(out, &init, sizeof(init));
	return sizeof(init);
}

size_t cwg_xdom_poll(uint8_t *out)
{
	struct xdom_poll poll;
	memset(&poll, 0, sizeof(poll));
	header(&poll.hdr, XDOM_CMD_POLL, sizeof(poll));
	poll.hdr.ring_idx = XDOM_CHANNEL_RING;
	memcpy(out, &poll, sizeof(poll));
	return sizeof(poll);
}

size_t cwg_xdom_send(uint8_t *out, const void *data, size_t len,
	const struct cwg_xdom_item *items, unsigned n)
{
	struct xdom_send_receive s;
	memset(&s, 0, sizeof(s));
	if (len > XDOM_MAX_SEND_DATA || n > XDOM_MAX_IDENTIFIERS)
		return 0;
	header(&s.hdr, XDOM_CMD_SEND, sizeof(s) + len);
	s.num_identifiers = n;
	s.opaque_data_size = (uint32_t)len;
	for (unsigned i = 0; i < n; i++) {
		s.identifiers[i] = items[i].id;
		s.identifier_types[i] = items[i].type;
		s.identifier_sizes[i] = items[i].size;
	}
	memcpy(out, &s, sizeof(s));
	if (len)
		memcpy(out + sizeof(s), data, len);
	return sizeof(s) + len;
}

size_t cwg_xdom_write(uint8_t *out, uint32_t id, const void *data, size_t len,
	int hang_up)
{
	struct xdom_read_write w;
	memset(&w, 0, sizeof(w));
	if (len > XDOM_MAX_READ_DATA)
		return 0;
	header(&w.hdr, XDOM_CMD_WRITE, sizeof(w) + len);
	w.identifier = id;
	w.hang_up = hang_up ? 1 : 0;
	w.opaque_data_size = (uint32_t)len;
	memcpy(out, &w, sizeof(w));
	if (len)
		memcpy(out + sizeof(w), data, len);
	return sizeof(w) + len;
}

size_t cwg_xdom_blob_replace(uint8_t *out, uint32_t old_id, uint32_t new_id)
{
	struct xdom_blob_replace r;
	memset(&r, 0, sizeof(r));
	header(&r.hdr, XDOM_CMD_BLOB_REPLACE, sizeof(r));
	r.old_resource_id = old_id;
	r.new_resource_id = new_id;
	memcpy(out, &r, sizeof(r));
	return sizeof(r);
}

int cwg_xdom_parse(const uint8_t *ring, size_t ring_size,
	struct cwg_xdom_host_msg *msg, const char **why)
{
	struct xdom_header h;
	memset(msg, 0, sizeof(*msg));
	if (ring_size < sizeof(h)) {
		*why = "ring too small";
		return -EPROTO;
	}
	memcpy(&h, ring, sizeof(h));
	if (h.cmd_size < sizeof(h) || h.cmd_size > ring_size) {
		*why = "command size outside the ring";
		return -EPROTO;
	}
	msg->cmd = h.cmd;
	if (h.cmd == XDOM_CMD_RECEIVE) {
		struct xdom_send_receive r;
		if (h.cmd_size < sizeof(r)) {
			*why = "RECEIVE shorter than its header";
			return -EPROTO;
		}
		memcpy(&r, ring, sizeof(r));
		if (r.num_identifiers > XDOM_MAX_IDENTIFIERS) {
			*why = "RECEIVE with too many identifiers";
			return -EPROTO;
		}
		if (r.opaque_data_size > (size_t)h.cmd_size - sizeof(r)) {
			*why = "RECEIVE data larger than the command";
			return -EPROTO;
		}
		msg->num_items = r.num_identifiers;
		for (unsigned i = 0; i < r.num_identifiers; i++) {
			msg->items[i].id = r.identifiers[i];
			msg->items[i].type = r.identifier_types[i];
			msg->items[i].size = r.identifier_sizes[i];
			switch (r.identifier_types[i]) {
			case XDOM_ID_TYPE_WRITE_PIPE:
			case XDOM_ID_TYPE_STREAMED_MEMORY:
			case XDOM_ID_TYPE_VIRTGPU_BLOB:
				break;
			default:
				*why = "RECEIVE with an unknown identifier type";
				return -EPROTO;
			}
		}
		msg->data = ring + sizeof(r);
		msg->len = r.opaque_data_size;
		return 0;
	}
	if (h.cmd == XDOM_CMD_READ) {
		struct xdom_read_write r;
		if (h.cmd_size < sizeof(r)) {
			*why = "READ shorter than its header";
			return -EPROTO;
		}
		memcpy(&r, ring, sizeof(r));
		if (r.opaque_data_size > (size_t)h.cmd_size - sizeof(r)) {
			*why = "READ data larger than the command";
			return -EPROTO;
		}
		msg->id = r.identifier;
		msg->hang_up = r.hang_up != 0;
		msg->data = ring + sizeof(r);
		msg->len = r.opaque_data_size;
		return 0;
	}
	*why = "unknown command in the channel ring";
	return -EPROTO;
}
