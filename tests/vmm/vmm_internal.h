/*
 * Shared between the vmm_dev implementation files; not part of the API.
 */
#ifndef CW_VMM_INTERNAL_H
#define CW_VMM_INTERNAL_H

#include <time.h>

#include "vmm.h"

/* vhost-user header flags (vhost-user.md §2). */
#define VU_VERSION 0x1u
#define VU_REPLY 0x4u
#define VU_NEED_REPLY 0x8u
#define VU_HDR_SIZE 12u

/* Front-end request codes used here (vhost-user.md §4). */
enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_SET_MEM_TABLE = 5,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SET_SLAVE_REQ_FD = 21,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_GPU_SET_SOCKET = 33,
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37,
	VU_REM_MEM_REG = 38,
};

/* Virtio feature bits (vhost-user.md §5). */
#define VF_NOTIFY_ON_EMPTY 24
#define VF_LOG_ALL 26
#define VF_INDIRECT_DESC 28
#define VF_EVENT_IDX 29
#define VF_PROTOCOL_FEATURES 30
#define VF_VERSION_1 32
#define VF_RING_RESET 40

/* Protocol feature bits. */
#define PF_MQ 0
#define PF_REPLY_ACK 3
#define PF_SLAVE_REQ 5
#define PF_CONFIG 9
#define PF_CONFIGURE_MEM_SLOTS 15

#define BIT(n) (1ull << (n))

/* Size of virtio-gpu config space and of the GET_CONFIG payload. */
#define GPU_CONFIG_SIZE 16u
#define CONFIG_HDR_SIZE 12u
/* VHOST_USER_MAX_CONFIG_SIZE: QEMU never asks for more. */
#define VMM_CONFIG_MAX 256u

/* GPU socket: header, and the largest payload we accept (a 8192x8192
 * UPDATE is 256 MiB; nothing legitimate is bigger). */
#define GS_HDR_SIZE 12u
#define GS_MAX_PAYLOAD (256u * 1024 * 1024 + 20u)
#define GS_FLAG_REPLY 0x4u
#define GS_PROTOCOL_F_EDID 0
#define GS_PROTOCOL_F_DMABUF2 1

#define VMM_STALE_CALLS 3

struct vmm_queue {
	struct vmm_vring *vr;      /* the running ring */
	struct vmm_vring *retired; /* stopped by GET_VRING_BASE, freed later */
	uint16_t retired_used;     /* its used idx when it was stopped */
	bool retired_stopped;      /* by GET_VRING_BASE, not by a hang-up */
	int kick_fd, call_fd, err_fd;
	bool call_pending;         /* a replaced call fd had been signalled */
	/* Replaced call fds, kept open only to notice a back end that still
	 * signals them: QEMU would lose those interrupts. */
	int stale_call[VMM_STALE_CALLS];
};

struct vmm_gpusock {
	int fd;
	bool deferred;             /* QEMU reads it only after DRIVER_OK */
	uint8_t hdr[GS_HDR_SIZE];
	size_t hdr_got;
	uint32_t request, flags, size;
	uint8_t *payload;
	size_t cap, got;
	bool in_payload;
	bool scanout_seen[16];
	uint64_t protocol;         /* set by the back end's SET_PROTOCOL_FEATURES */
	struct vmm_gpu_socket_stats stats;
};

struct vmm_dev {
	struct vmm_config cfg;
	struct vmm_mem *mem;
	bool owns_mem;             /* false: shared with another device */
	char *path;
	int sock;
	int slave_fd;
	struct vmm_queue q[2];
	struct vmm_gpusock gs;
	uint64_t backend_features, features;
	uint64_t backend_protocol, protocol;
	uint64_t max_queues, max_mem_slots;
	bool realized, probed, running;
	bool region_added[VMM_MAX_REGIONS]; /* QEMU's shadow table (ADD_MEM_REG) */
	struct vmm_gpu_config config, backend_config;
	struct vmm_dev_stats stats;
	struct vmm_dev_listener listener;
	struct vmm_msg rx;
	char err[512];
};

void vmm_dev_fail(struct vmm_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vmm_dev_note(struct vmm_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int vmm_gpusock_open(struct vmm_dev *dev, int *their_end);
void vmm_gpusock_close(struct vmm_dev *dev);
int vmm_gpusock_service(struct vmm_dev *dev);
bool vmm_gpusock_pollable(const struct vmm_dev *dev);

/* Monotonic milliseconds, and what is left of a deadline in them (>= 0). */
static inline int64_t vmm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int vmm_remaining_ms(int64_t deadline)
{
	int64_t left = deadline - vmm_now_ms();

	return left < 0 ? 0 : (int)left;
}

static inline void vmm_put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vmm_put64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t vmm_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static inline uint64_t vmm_get64(const uint8_t *p)
{
	return (uint64_t)vmm_get32(p) | (uint64_t)vmm_get32(p + 4) << 32;
}

/* vmm_gpu internals for vmm_ctx (asynchronous, out-of-order completion). */
struct vmm_dev *vmm_gpu_dev(struct vmm_gpu *gpu);
/* Takes every used entry of queue q (after an interrupt); 0 or -1. */
int vmm_gpu_drain(struct vmm_gpu *gpu, unsigned q);
/* A nowait fenced command: 1 answered, 0 in flight, -1 no such command. */
int vmm_gpu_fence_state(const struct vmm_gpu *gpu, uint64_t fence_id);

#endif
