#ifndef CWG_H
#define CWG_H

/*
 * crossway-guest: common definitions (logging, limits, growable buffers).
 * libc and Linux uapi headers only; single-threaded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cross_domain_protocol.h"

/* Per-client bounds. */
#define CWG_MAX_CLIENTS 64
#define CWG_MAX_OBJECTS 65536          // tracked Wayland objects per client
#define CWG_MAX_POOLS 256              // live wl_shm pools per client
#define CWG_MAX_BLOB_BYTES (1ull << 30) // guest blob memory per client
#define CWG_MAX_POOL_SIZE (1ull << 30)
#define CWG_MAX_MESSAGE 65532          // Wayland: 16-bit size, 4-aligned
#define CWG_MAX_PENDING_FDS 56         // fds received and not yet sent
#define CWG_MAX_CLIENT_FDS 28          // fds per SEND / per delivery
#define CWG_MAX_PIPES XDOM_MAX_PIPES    // read + write pipes per client: within the host's limit per direction
#define CWG_PIPE_BUFFER (64u * 1024)   // bytes held for a slow read pipe
#define CWG_OUTQ_SOFT (256u * 1024)    // stop polling the host above this
#define CWG_OUTQ_HARD (4u * 1024 * 1024)
#define CWG_MAX_STREAM_SIZE (16u * 1024 * 1024) // one streamed memory item
#define CWG_MAX_STREAM_BYTES (64u * 1024 * 1024) // all pending, per client
#define CWG_IN_BUFFER (CWG_MAX_MESSAGE + 8192)

enum cwg_log_level { CWG_ERROR, CWG_INFO, CWG_DEBUG };
extern int cwg_verbosity; // messages up to this level are printed
void cwg_log(enum cwg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A byte buffer with a hard capacity. */
struct cwg_buf {
	uint8_t *data;
	size_t len, cap, max;
};
void cwg_buf_init(struct cwg_buf *b, size_t max);
void cwg_buf_free(struct cwg_buf *b);
/* 0, or -ENOBUFS beyond max / -ENOMEM. */
int cwg_buf_append(struct cwg_buf *b, const void *data, size_t len);
void cwg_buf_consume(struct cwg_buf *b, size_t len);

static inline uint32_t cwg_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void cwg_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline size_t cwg_page_round(size_t size)
{
	return (size + 4095) & ~(size_t)4095;
}

#endif
