#ifndef XDOM_CROSS_DOMAIN_PROTOCOL_H
#define XDOM_CROSS_DOMAIN_PROTOCOL_H

/*
 * The cross-domain wire protocol (virtio-gpu context type, capset 5), shared
 * by crossway's device (vm/cross_domain.c, the host) and its guest proxy
 * (vm/guest/, the guest). Facts: ../shared/reference/cross-domain.md.
 * Little-endian, packed, every command starts with xdom_header and its
 * cmd_size covers the header and the data.
 *
 * Compatible with crosvm/rutabaga's commands 1-7 (28 identifiers), so
 * existing guest proxies work as far as guest memory allows. crossway adds,
 * only for contexts that announce it (a 24-byte INIT whose version field is
 * XDOM_CROSSWAY_VERSION):
 *  - XDOM_ID_TYPE_STREAMED_MEMORY in RECEIVE: a host memory fd (keymap,
 *    format table) whose bytes follow as CMD_READ chunks on the channel
 *    ring with that identifier, the last one with hang_up = 1 (an empty fd
 *    gets one empty READ with hang_up). identifier_sizes[] gives the total
 *    size. The guest makes a memfd of it and hands that to its client only
 *    when every streamed item of the message is complete. No host-visible
 *    memory is needed.
 *  - XDOM_CMD_BLOB_REPLACE: the guest replaced the blob behind a wl_shm pool
 *    by a larger one (wl_shm_pool.resize); the host's pool, which holds the
 *    old blob's placeholder, follows when the resize request arrives.
 */

#include <stdint.h>

#define XDOM_CAPSET_ID 5
#define XDOM_CAPSET_VERSION 1       // commands 1-7
#define XDOM_CAPSET_SIZE 16
#define XDOM_CHANNEL_WAYLAND 1

#define XDOM_MAX_IDENTIFIERS 28
#define XDOM_RING_SIZE 4096
#define XDOM_QUERY_RING 0
#define XDOM_CHANNEL_RING 1
#define XDOM_RING_NONE 0xffffffffu
#define XDOM_PIPE_READ_START 0x80000000u
/* Host-assigned ids of streamed memory items (crossway only). */
#define XDOM_STREAM_START 0xc0000000u

/* Pipes per context and direction (read, write) the host accepts. */
#define XDOM_MAX_PIPES 8

/* Magic in the 24-byte INIT's version field: the guest is crossway-guest. */
#define XDOM_CROSSWAY_VERSION 0x43570001u

enum xdom_cmd {
	XDOM_CMD_INIT = 1,
	XDOM_CMD_GET_IMAGE_REQUIREMENTS = 2,
	XDOM_CMD_POLL = 3,
	XDOM_CMD_SEND = 4,
	XDOM_CMD_RECEIVE = 5,
	XDOM_CMD_READ = 6,
	XDOM_CMD_WRITE = 7,
	/* crossway extension: far from the forks' 8-13. */
	XDOM_CMD_BLOB_REPLACE = 64,
};

enum xdom_id_type {
	XDOM_ID_TYPE_VIRTGPU_BLOB = 1,
	XDOM_ID_TYPE_VIRTGPU_SYNC = 2,
	XDOM_ID_TYPE_READ_PIPE = 3,
	XDOM_ID_TYPE_WRITE_PIPE = 4,
	/* crossway extension: far from the forks' 5-7. */
	XDOM_ID_TYPE_STREAMED_MEMORY = 0x100,
};

struct xdom_header {
	uint8_t cmd;
	uint8_t ring_idx;  // ignored by the host
	uint16_t cmd_size; // header included
	uint32_t pad;
} __attribute__((packed));

/* INIT: 16 bytes (legacy: one ring), 20, 24 (version), 36 (magma uuid). */
struct xdom_init {
	struct xdom_header hdr;
	uint32_t query_ring_id;
	uint32_t channel_ring_id; // absent in the 16-byte form, which has channel_type here
	uint32_t channel_type;
	uint32_t version;         // 24-byte form only
} __attribute__((packed));

struct xdom_get_image_requirements {
	struct xdom_header hdr;
	uint32_t width;
	uint32_t height;
	uint32_t drm_format;
	uint32_t flags;
} __attribute__((packed));

/* Written at offset 0 of the query ring. */
struct xdom_image_requirements {
	uint32_t strides[4];
	uint32_t offsets[4];
	uint64_t modifier;
	uint64_t size;
	uint32_t blob_id;
	uint32_t map_info;
	int32_t memory_idx;
	int32_t physical_device_idx;
} __attribute__((packed));

struct xdom_poll {
	struct xdom_header hdr;
	uint64_t pad;
} __attribute__((packed));

/* SEND (guest to host) and RECEIVE (host to guest, channel ring). */
struct xdom_send_receive {
	struct xdom_header hdr;
	uint32_t num_identifiers;
	uint32_t opaque_data_size;
	uint32_t identifiers[XDOM_MAX_IDENTIFIERS];
	uint32_t identifier_types[XDOM_MAX_IDENTIFIERS];
	uint32_t identifier_sizes[XDOM_MAX_IDENTIFIERS];
	/* opaque data follows */
} __attribute__((packed));

/* READ (host to guest, channel ring) and WRITE (guest to host). */
struct xdom_read_write {
	struct xdom_header hdr;
	uint32_t identifier;
	uint32_t hang_up;
	uint32_t opaque_data_size;
	uint32_t pad;
	/* opaque data follows */
} __attribute__((packed));

struct xdom_blob_replace {
	struct xdom_header hdr;
	uint32_t old_resource_id;
	uint32_t new_resource_id;
} __attribute__((packed));

_Static_assert(sizeof(struct xdom_header) == 8, "cross-domain header");
_Static_assert(sizeof(struct xdom_send_receive) == 352, "28 identifiers");
_Static_assert(sizeof(struct xdom_read_write) == 24, "read/write header");
_Static_assert(sizeof(struct xdom_image_requirements) == 64, "image requirements");

/* Data that fits one message next to its header in a 4 KiB ring. */
#define XDOM_MAX_SEND_DATA (XDOM_RING_SIZE - sizeof(struct xdom_send_receive))
#define XDOM_MAX_READ_DATA (XDOM_RING_SIZE - sizeof(struct xdom_read_write))

#endif
