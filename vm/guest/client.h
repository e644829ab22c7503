#ifndef CWG_CLIENT_H
#define CWG_CLIENT_H

/*
 * One proxied Wayland client: its cross-domain context, the client -> host
 * path (framing, object tracking, fd translation, SEND chunking) and the
 * host -> client path (channel ring messages, pipes, streamed memory, the
 * bounded queue of bytes and fds for the client). The socket I/O lives in
 * server.c; everything here can be driven by tests with a fake transport.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cross_domain_protocol.h"
#include "cwg.h"
#include "shm.h"
#include "transport.h"
#include "wire.h"

enum cwg_fd_kind {
	CWG_FD_SHM,       // memory for wl_shm.create_pool (resolved there)
	CWG_FD_READ_PIPE, // write end of a pipe: the host's data flows into it
	CWG_FD_DMABUF,    // a virtio-gpu resource of the guest's GPU driver
};

struct cwg_fdent {
	int fd;
	enum cwg_fd_kind kind;
	bool resolved;
	uint32_t id, type, size;
	struct cwg_blob blob; // what the SEND's bo list names
};

struct cwg_outq_entry {
	struct cwg_outq_entry *next;
	uint8_t *data;
	size_t len, off;
	int fds[XDOM_MAX_IDENTIFIERS];
	unsigned nfds;
	bool fds_sent;
	unsigned pending_streams; // streamed memory items not yet complete
};

enum cwg_pipe_kind {
	CWG_PIPE_READ,  // host -> guest (CMD_READ data written into fd)
	CWG_PIPE_WRITE, // guest -> host (fd's data sent as CMD_WRITE)
};

struct cwg_pipe {
	bool used;
	enum cwg_pipe_kind kind;
	uint32_t id;
	int fd;                // -1 once closed locally
	struct cwg_buf pending; // READ: bytes the fd did not take yet
	bool hung_up;          // READ: the host finished
};

#define CWG_MAX_STREAMS 32

struct cwg_stream {
	bool used;
	uint32_t id;
	int fd;
	uint32_t size, written;
	struct cwg_outq_entry *entry;
};

#define CWG_BATCH_MSGS (XDOM_MAX_SEND_DATA / 8 + 1)

struct cwg_client {
	struct cwg_transport *transport;
	struct cwg_context *ctx;
	int sock;
	struct cwg_blob rings[2];
	bool dead;

	/* client -> host */
	struct cwg_buf in;
	struct cwg_fdent fds[CWG_MAX_PENDING_FDS];
	unsigned nfds;
	uint8_t batch[XDOM_MAX_SEND_DATA];
	size_t batch_len;
	uint16_t batch_msg[CWG_BATCH_MSGS];
	unsigned batch_msgs;
	struct cwg_objects objects;
	struct cwg_shm shm;
	uint32_t read_pipes_sent; // READ_PIPE ids predicted so far

	/* host -> client */
	bool poll_outstanding;
	struct cwg_wire_scan scan;
	struct cwg_outq_entry *out_head, *out_tail;
	size_t out_bytes;
	struct cwg_pipe pipes[CWG_MAX_PIPES];
	struct cwg_stream streams[CWG_MAX_STREAMS];
	uint64_t stream_bytes;

	uint8_t cmd[XDOM_RING_SIZE]; // scratch for one command
	uint8_t ring_copy[XDOM_RING_SIZE];
};

/* Opens the context, its rings, sends INIT and the first POLL. NULL with
 * errno set. sock (owned) may be -1 in tests. */
struct cwg_client *cwg_client_new(struct cwg_transport *transport, int sock);
void cwg_client_destroy(struct cwg_client *c);

/* Ends the client: logs why and, at a message boundary, queues a
 * wl_display.error for it. Teardown is the caller's (server.c). */
void cwg_client_fail(struct cwg_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Bytes (and fds, owned from now on) from the client. 0 or -1 (dead). */
int cwg_client_input(struct cwg_client *c, const uint8_t *data, size_t len,
	const int *fds, unsigned nfds);
/* Sends the batched messages now (input does it at its end). */
int cwg_client_flush_batch(struct cwg_client *c);
/* One message written by the host at offset 0 of the channel ring. */
int cwg_client_host_message(struct cwg_client *c, const uint8_t *ring, size_t size);
/* Ring-1 fences signalled: reads the ring, then polls again. */
int cwg_client_events(struct cwg_client *c);
/* Submits the next POLL unless one is outstanding or the client is slow. */
void cwg_client_maybe_poll(struct cwg_client *c);

/* Socket side (server.c). */
int cwg_client_read_socket(struct cwg_client *c);
int cwg_client_write_socket(struct cwg_client *c);
bool cwg_client_wants_write(const struct cwg_client *c);
/* Pipe i is ready (revents from poll). */
void cwg_client_pipe_ready(struct cwg_client *c, unsigned i, short revents);
/* poll events wanted for pipe i (0: none). */
short cwg_client_pipe_events(const struct cwg_client *c, unsigned i);

#endif
