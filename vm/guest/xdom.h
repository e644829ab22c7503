#ifndef CWG_XDOM_H
#define CWG_XDOM_H

/*
 * The cross-domain client protocol (guest side): building INIT, POLL,
 * SEND, WRITE and BLOB_REPLACE commands, and validating what the host
 * writes into the channel ring (RECEIVE, READ) against the 4 KiB ring.
 */

#include <stddef.h>
#include <stdint.h>

#include "../cross_domain_protocol.h"

struct cwg_xdom_item {
	uint32_t id, type, size;
};

size_t cwg_xdom_init(uint8_t *out, uint32_t query_ring, uint32_t channel_ring);
size_t cwg_xdom_poll(uint8_t *out);
/* out must hold XDOM_RING_SIZE bytes; len <= XDOM_MAX_SEND_DATA, n <= 28. */
size_t cwg_xdom_send(uint8_t *out, const void *data, size_t len,
	const struct cwg_xdom_item *items, unsigned n);
/* out must hold XDOM_RING_SIZE bytes; len <= XDOM_MAX_READ_DATA. */
size_t cwg_xdom_write(uint8_t *out, uint32_t id, const void *data, size_t len,
	int hang_up);
size_t cwg_xdom_blob_replace(uint8_t *out, uint32_t old_id, uint32_t new_id);

/* A validated host message; pointers point into the caller's ring copy. */
struct cwg_xdom_host_msg {
	uint8_t cmd; // XDOM_CMD_RECEIVE or XDOM_CMD_READ
	/* RECEIVE */
	unsigned num_items;
	struct cwg_xdom_item items[XDOM_MAX_IDENTIFIERS];
	/* READ */
	uint32_t id;
	int hang_up;
	/* both */
	const uint8_t *data;
	size_t len;
};

/*
 * Validates the message at offset 0 of a channel ring copy of ring_size
 * bytes. 0, or -EPROTO with *why naming the fault. Unknown identifier
 * types are refused here, except VIRTGPU_BLOB (reported to the caller,
 * which knows why it cannot take it).
 */
int cwg_xdom_parse(const uint8_t *ring, size_t ring_size,
	struct cwg_xdom_host_msg *msg, const char **why);

#endif
