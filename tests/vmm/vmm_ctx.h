/*
 * vmm_ctx: the 3D-context side of the virtio-gpu driver (Linux 6.1 with
 * VIRGL and CONTEXT_INIT, as a context-type user such as a cross-domain
 * proxy drives it): capsets, contexts, guest blobs with a linear mapping,
 * SUBMIT_3D fenced on per-context rings, and completion that is taken
 * without blocking and in whatever order the device answers.
 *
 * Builds on vmm_gpu (commands, response checks, per-timeline fence order)
 * and vmm_dev; single-threaded like the rest of vmm. Typed commands return
 * the response type (0x1100...) or -1 as vmm_gpu_exec does; 0 for a nowait
 * submission. Errors are in vmm_dev_error().
 */
#ifndef CW_VMM_CTX_H
#define CW_VMM_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm.h"

/* context_init of CTX_CREATE: bits 0-7 are the capset id. */
#define VMM_CTX_INIT_CAPSET_ID_MASK 0xffu
/* The capset of cross-domain contexts (cross-domain.md §1). */
#define VMM_CAPSET_CROSS_DOMAIN 5u

enum {
	VMM_BLOB_MEM_GUEST = 1,
	VMM_BLOB_MEM_HOST3D = 2,
	VMM_BLOB_MEM_HOST3D_GUEST = 3,
};

enum {
	VMM_BLOB_FLAG_MAPPABLE = 1,
	VMM_BLOB_FLAG_SHAREABLE = 2,
	VMM_BLOB_FLAG_CROSS_DEVICE = 4,
};

struct vmm_capset_info {
	uint32_t id, max_version, max_size;
};

/* GET_CAPSET_INFO by index (0 .. num_capsets-1). */
int vmm_ctx_get_capset_info(struct vmm_gpu *gpu, uint32_t index,
		struct vmm_capset_info *info, const struct vmm_gpu_opts *o);
/* GET_CAPSET; the response buffer has room for `size` bytes of data (the
 * capset's max_size, as Linux asks), copied to `data`. */
int vmm_ctx_get_capset(struct vmm_gpu *gpu, uint32_t id, uint32_t version,
		void *data, uint32_t size, const struct vmm_gpu_opts *o);

/*
 * Context commands. ctx_id goes into the header whatever o->ctx_id says
 * (o may be NULL: unfenced and synchronous). CTX_CREATE sends nlen and the
 * name as Linux does (the task's comm, at most 64 bytes).
 */
int vmm_ctx_create(struct vmm_gpu *gpu, uint32_t ctx_id, uint32_t context_init,
		const char *debug_name, const struct vmm_gpu_opts *o);
int vmm_ctx_destroy(struct vmm_gpu *gpu, uint32_t ctx_id, const struct vmm_gpu_opts *o);
int vmm_ctx_attach_resource(struct vmm_gpu *gpu, uint32_t ctx_id, uint32_t res_id,
		const struct vmm_gpu_opts *o);
int vmm_ctx_detach_resource(struct vmm_gpu *gpu, uint32_t ctx_id, uint32_t res_id,
		const struct vmm_gpu_opts *o);
/*
 * SUBMIT_3D: the 32-byte command in one buffer, the command bytes in a
 * second one (as Linux). For a ring fence pass fence + ring_idx_flag with
 * ring_idx and nowait, then follow it with vmm_ctx_poll/vmm_ctx_fence_take.
 * size_field, if not NULL, is written as the size instead of len (faults).
 */
int vmm_ctx_submit_3d(struct vmm_gpu *gpu, uint32_t ctx_id, const void *cmds,
		uint32_t len, const uint32_t *size_field, const struct vmm_gpu_opts *o);

/*
 * Guest blobs. Pages come from the guest RAM allocator in chunks of at most
 * chunk_pages pages, placed round-robin over the regions; with `scatter`
 * a free page is left between chunks so that the device gets several mem
 * entries as from a Linux sg table. The pages are also mapped into one
 * linear view (`map`, from the RAM memfd), as the guest's vmap of the
 * object is.
 */
struct vmm_blob_entry {
	uint64_t gpa;
	uint32_t len;
};

struct vmm_blob {
	uint64_t size;                /* whole pages */
	void *map;                    /* size bytes, read/write */
	unsigned nents;
	struct vmm_blob_entry *ents;  /* adjacent chunks merged */
};

int vmm_blob_alloc(struct vmm_mem *mem, uint64_t size, unsigned chunk_pages,
		bool scatter, struct vmm_blob *blob);
void vmm_blob_release(struct vmm_mem *mem, struct vmm_blob *blob);
/* RESOURCE_CREATE_BLOB of `blob`'s pages (mem entries in a second buffer).
 * GUEST blobs: hdr.ctx_id 0 and blob_id 0, as Linux sends them. */
int vmm_ctx_create_blob(struct vmm_gpu *gpu, uint32_t res_id, uint32_t blob_mem,
		uint32_t blob_flags, uint64_t blob_id, const struct vmm_blob *blob,
		const struct vmm_gpu_opts *o);

/*
 * Completion without blocking, in any order across timelines.
 * vmm_ctx_poll waits up to timeout_ms (0: just looks) for an interrupt on
 * the control queue and takes every answered command; 1 if there was an
 * interrupt, 0 if not, -1 on error (device gone, broken ring).
 * vmm_ctx_fence_take: for a nowait fenced command, 1 and its response type
 * (the command is freed) once answered, 0 while in flight, -1 if unknown or
 * if the response broke the protocol (header, fence echo, fence order).
 */
int vmm_ctx_poll(struct vmm_gpu *gpu, int timeout_ms);
int vmm_ctx_fence_take(struct vmm_gpu *gpu, uint64_t fence_id, uint32_t *resp_type);
/* The control queue's call eventfd (valid while the device runs): poll it,
 * then vmm_ctx_poll(gpu, 0). -1 before DRIVER_OK. */
int vmm_ctx_call_fd(struct vmm_gpu *gpu);
/* Every fd the device layer needs serviced while waiting (vhost-user
 * socket, back-end channel, err fds, the control queue's call fd); returns
 * how many were stored (at most max). */
unsigned vmm_ctx_service_fds(struct vmm_gpu *gpu, int *fds, unsigned max);

#endif
