/*
 * 3D-context commands of the virtio-gpu driver (virtio-gpu.md §4, §6, §7.4;
 * cross-domain.md §2): what Linux 6.1 sends for DRM_IOCTL_VIRTGPU_GET_CAPS,
 * CONTEXT_INIT, RESOURCE_CREATE_BLOB (GUEST) and EXECBUFFER with RING_IDX.
 * Commands go through vmm_gpu, so every response is checked there (size,
 * fence and ring echo, fence order per timeline).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/virtio_gpu.h>

#include "vmm_ctx.h"
#include "vmm_internal.h"

#define HDR_SIZE 24u
#define ENTRY_SIZE 16u
#define DEFAULT_CHUNK_PAGES 16u

/* Region allocations are spread over the regions like vmm_gpu's. */
static unsigned blob_rr;

static void put_hdr(uint8_t *b, uint32_t type, uint32_t ctx_id)
{
	memset(b, 0, HDR_SIZE);
	vmm_put32(b, type);
	vmm_put32(b + 16, ctx_id);
}

/* o with ctx_id forced (vmm_gpu writes opts->ctx_id into the header). */
static const struct vmm_gpu_opts *with_ctx(struct vmm_gpu_opts *tmp,
		const struct vmm_gpu_opts *o, uint32_t ctx_id)
{
	*tmp = o ? *o : (struct vmm_gpu_opts){ 0 };
	tmp->ctx_id = ctx_id;
	return tmp;
}

static int nodata(struct vmm_gpu *gpu, const uint8_t *cmd, size_t len,
		const void *extra, size_t extra_len, uint32_t ctx_id,
		const struct vmm_gpu_opts *o)
{
	struct vmm_gpu_opts tmp;

	return vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, len, extra, extra_len, NULL,
			HDR_SIZE, with_ctx(&tmp, o, ctx_id));
}

/* ------------------------------------------------------------------ */
/* Capsets                                                             */
/* ------------------------------------------------------------------ */

int vmm_ctx_get_capset_info(struct vmm_gpu *gpu, uint32_t index,
		struct vmm_capset_info *info, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32], resp[40] = { 0 };
	int r;

	put_hdr(cmd, VIRTIO_GPU_CMD_GET_CAPSET_INFO, 0);
	vmm_put32(cmd + 24, index);
	vmm_put32(cmd + 28, 0);
	r = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), NULL, 0, resp,
			sizeof(resp), o);
	if (r == VIRTIO_GPU_RESP_OK_CAPSET_INFO && info) {
		info->id = vmm_get32(resp + 24);
		info->max_version = vmm_get32(resp + 28);
		info->max_size = vmm_get32(resp + 32);
	}
	return r;
}

int vmm_ctx_get_capset(struct vmm_gpu *gpu, uint32_t id, uint32_t version,
		void *data, uint32_t size, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32], *resp;
	int r;

	if (size > (1u << 20)) {
		vmm_dev_fail(vmm_gpu_dev(gpu), "GET_CAPSET: max_size %u is absurd", size);
		return -1;
	}
	resp = calloc(1, HDR_SIZE + size);
	if (!resp) {
		vmm_dev_fail(vmm_gpu_dev(gpu), "out of memory");
		return -1;
	}
	put_hdr(cmd, VIRTIO_GPU_CMD_GET_CAPSET, 0);
	vmm_put32(cmd + 24, id);
	vmm_put32(cmd + 28, version);
	r = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), NULL, 0, resp,
			HDR_SIZE + size, o);
	if (r == VIRTIO_GPU_RESP_OK_CAPSET && data)
		memcpy(data, resp + HDR_SIZE, size);
	free(resp);
	return r;
}

/* ------------------------------------------------------------------ */
/* Contexts                                                            */
/* ------------------------------------------------------------------ */

int vmm_ctx_create(struct vmm_gpu *gpu, uint32_t ctx_id, uint32_t context_init,
		const char *debug_name, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[96];
	size_t nlen = debug_name ? strnlen(debug_name, 64) : 0;

	put_hdr(cmd, VIRTIO_GPU_CMD_CTX_CREATE, ctx_id);
	vmm_put32(cmd + 24, (uint32_t)nlen);
	vmm_put32(cmd + 28, context_init);
	memset(cmd + 32, 0, 64);
	if (nlen)
		memcpy(cmd + 32, debug_name, nlen);
	return nodata(gpu, cmd, sizeof(cmd), NULL, 0, ctx_id, o);
}

int vmm_ctx_destroy(struct vmm_gpu *gpu, uint32_t ctx_id, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[HDR_SIZE];

	put_hdr(cmd, VIRTIO_GPU_CMD_CTX_DESTROY, ctx_id);
	return nodata(gpu, cmd, sizeof(cmd), NULL, 0, ctx_id, o);
}

static int ctx_resource(struct vmm_gpu *gpu, uint32_t type, uint32_t ctx_id,
		uint32_t res_id, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32];

	put_hdr(cmd, type, ctx_id);
	vmm_put32(cmd + 24, res_id);
	vmm_put32(cmd + 28, 0);
	return nodata(gpu, cmd, sizeof(cmd), NULL, 0, ctx_id, o);
}

int vmm_ctx_attach_resource(struct vmm_gpu *gpu, uint32_t ctx_id, uint32_t res_id,
		const struct vmm_gpu_opts *o)
{
	return ctx_resource(gpu, VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, ctx_id, res_id, o);
}

int vmm_ctx_detach_resource(struct vmm_gpu *gpu, uint32_t ctx_id, uint32_t res_id,
		const struct vmm_gpu_opts *o)
{
	return ctx_resource(gpu, VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, ctx_id, res_id, o);
}

int vmm_ctx_submit_3d(struct vmm_gpu *gpu, uint32_t ctx_id, const void *cmds,
		uint32_t len, const uint32_t *size_field, const struct vmm_gpu_opts *o)
{
	uint8_t cmd[32];

	put_hdr(cmd, VIRTIO_GPU_CMD_SUBMIT_3D, ctx_id);
	vmm_put32(cmd + 24, size_field ? *size_field : len);
	vmm_put32(cmd + 28, 0);
	return nodata(gpu, cmd, sizeof(cmd), cmds, len, ctx_id, o);
}

/* ------------------------------------------------------------------ */
/* Guest blobs                                                         */
/* ------------------------------------------------------------------ */

/* Offset in the RAM memfd of [gpa, gpa+len), which must lie in one region. */
static int file_offset(const struct vmm_mem *mem, uint64_t gpa, uint64_t len,
		uint64_t *off)
{
	for (unsigned i = 0; i < vmm_mem_region_count(mem); i++) {
		const struct vmm_region *r = vmm_mem_region(mem, i);

		if (gpa >= r->gpa && gpa + len <= r->gpa + r->size) {
			*off = r->mmap_offset + (gpa - r->gpa);
			return 0;
		}
	}
	return -1;
}

void vmm_blob_release(struct vmm_mem *mem, struct vmm_blob *blob)
{
	if (blob->map)
		munmap(blob->map, blob->size);
	for (unsigned i = 0; i < blob->nents; i++)
		vmm_mem_release(mem, blob->ents[i].gpa, blob->ents[i].len);
	free(blob->ents);
	memset(blob, 0, sizeof(*blob));
}

/* The guest's vmap: every entry mapped from the memfd, end to end. */
static int map_linear(struct vmm_mem *mem, struct vmm_blob *blob)
{
	uint8_t *base = mmap(NULL, blob->size, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t pos = 0;

	if (base == MAP_FAILED)
		return -1;
	for (unsigned i = 0; i < blob->nents; i++) {
		uint64_t off;

		if (file_offset(mem, blob->ents[i].gpa, blob->ents[i].len, &off) < 0 ||
				mmap(base + pos, blob->ents[i].len, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_FIXED, vmm_mem_fd(mem), (off_t)off) ==
				MAP_FAILED) {
			munmap(base, blob->size);
			errno = EFAULT;
			return -1;
		}
		pos += blob->ents[i].len;
	}
	blob->map = base;
	return 0;
}

int vmm_blob_alloc(struct vmm_mem *mem, uint64_t size, unsigned chunk_pages,
		bool scatter, struct vmm_blob *blob)
{
	uint64_t pages = (size + VMM_PAGE_SIZE - 1) / VMM_PAGE_SIZE, done = 0;
	uint64_t nchunks, *gaps, ngaps = 0, prev_off = 0;
	int err = ENOMEM;

	memset(blob, 0, sizeof(*blob));
	if (pages == 0) {
		errno = EINVAL;
		return -1;
	}
	if (!chunk_pages)
		chunk_pages = DEFAULT_CHUNK_PAGES;
	nchunks = (pages + chunk_pages - 1) / chunk_pages;
	blob->ents = calloc(nchunks, sizeof(*blob->ents));
	gaps = calloc(nchunks, sizeof(*gaps));
	if (!blob->ents || !gaps)
		goto fail;
	blob->size = pages * VMM_PAGE_SIZE;
	while (done < pages) {
		uint64_t np = pages - done < chunk_pages ? pages - done : chunk_pages;
		int hint = (int)(blob_rr++ % vmm_mem_region_count(mem));
		struct vmm_blob_entry *last = blob->nents ? &blob->ents[blob->nents - 1] : NULL;
		uint64_t gpa, off;

		if (vmm_mem_alloc(mem, np * VMM_PAGE_SIZE, hint, 0, &gpa) < 0)
			goto fail;
		if (file_offset(mem, gpa, np * VMM_PAGE_SIZE, &off) < 0) {
			vmm_mem_release(mem, gpa, np * VMM_PAGE_SIZE);
			err = EFAULT;
			goto fail;
		}
		/* Like an sg table: physically adjacent pages are one entry
		 * (only inside one region, where the memfd is adjacent too). */
		if (last && last->gpa + last->len == gpa && prev_off + last->len == off &&
				last->len + np * VMM_PAGE_SIZE < (1u << 31)) {
			last->len += (uint32_t)(np * VMM_PAGE_SIZE);
		} else {
			blob->ents[blob->nents++] = (struct vmm_blob_entry){
				gpa, (uint32_t)(np * VMM_PAGE_SIZE) };
			prev_off = off;
		}
		done += np;
		if (scatter && done < pages &&
				vmm_mem_alloc(mem, VMM_PAGE_SIZE, hint, 0, &gaps[ngaps]) == 0)
			ngaps++;
	}
	for (uint64_t i = 0; i < ngaps; i++)
		vmm_mem_release(mem, gaps[i], VMM_PAGE_SIZE);
	free(gaps);
	if (map_linear(mem, blob) < 0) {
		err = errno;
		vmm_blob_release(mem, blob);
		errno = err;
		return -1;
	}
	return 0;
fail:
	for (uint64_t i = 0; i < ngaps; i++)
		vmm_mem_release(mem, gaps[i], VMM_PAGE_SIZE);
	free(gaps);
	vmm_blob_release(mem, blob);
	errno = err;
	return -1;
}

int vmm_ctx_create_blob(struct vmm_gpu *gpu, uint32_t res_id, uint32_t blob_mem,
		uint32_t blob_flags, uint64_t blob_id, const struct vmm_blob *blob,
		const struct vmm_gpu_opts *o)
{
	uint8_t cmd[56], *ents = NULL;
	uint32_t n = blob_mem == VMM_BLOB_MEM_HOST3D ? 0 : blob->nents;
	struct vmm_gpu_opts tmp;
	int r;

	if (n) {
		ents = calloc(n, ENTRY_SIZE);
		if (!ents) {
			vmm_dev_fail(vmm_gpu_dev(gpu), "out of memory");
			return -1;
		}
		for (uint32_t i = 0; i < n; i++) {
			vmm_put64(ents + ENTRY_SIZE * i, blob->ents[i].gpa);
			vmm_put32(ents + ENTRY_SIZE * i + 8, blob->ents[i].len);
			vmm_put32(ents + ENTRY_SIZE * i + 12, 0);
		}
	}
	/* Linux: only HOST3D* blobs carry the context (and a blob id). */
	put_hdr(cmd, VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, 0);
	vmm_put32(cmd + 24, res_id);
	vmm_put32(cmd + 28, blob_mem);
	vmm_put32(cmd + 32, blob_flags);
	vmm_put32(cmd + 36, n);
	vmm_put64(cmd + 40, blob_id);
	vmm_put64(cmd + 48, blob->size);
	r = vmm_gpu_exec(gpu, VMM_GPU_CTRLQ, cmd, sizeof(cmd), ents,
			(size_t)n * ENTRY_SIZE, NULL, HDR_SIZE,
			blob_mem == VMM_BLOB_MEM_GUEST ? with_ctx(&tmp, o, 0) : o);
	free(ents);
	return r;
}

/* ------------------------------------------------------------------ */
/* Completion                                                          */
/* ------------------------------------------------------------------ */

int vmm_ctx_poll(struct vmm_gpu *gpu, int timeout_ms)
{
	struct vmm_dev *dev = vmm_gpu_dev(gpu);
	int r;

	if (!vmm_dev_running(dev) || !vmm_dev_vring(dev, VMM_GPU_CTRLQ)) {
		if (!vmm_dev_connected(dev))
			return -1; /* the reason is already in vmm_dev_error */
		vmm_dev_fail(dev, "the device is not running");
		return -1;
	}
	r = vmm_dev_wait_call(dev, VMM_GPU_CTRLQ, timeout_ms);
	if (r <= 0)
		return r;
	return vmm_gpu_drain(gpu, VMM_GPU_CTRLQ) < 0 ? -1 : 1;
}

int vmm_ctx_fence_take(struct vmm_gpu *gpu, uint64_t fence_id, uint32_t *resp_type)
{
	int st = vmm_gpu_fence_state(gpu, fence_id), r;

	if (st < 0) {
		vmm_dev_fail(vmm_gpu_dev(gpu), "no outstanding command with fence %llu",
				(unsigned long long)fence_id);
		return -1;
	}
	if (st == 0)
		return 0;
	/* Answered: this only checks, copies and frees. */
	r = vmm_gpu_wait_fence(gpu, fence_id, 0);
	if (r < 0)
		return -1;
	if (resp_type)
		*resp_type = (uint32_t)r;
	return 1;
}

int vmm_ctx_call_fd(struct vmm_gpu *gpu)
{
	const struct vmm_dev *dev = vmm_gpu_dev(gpu);

	return dev->running ? dev->q[VMM_GPU_CTRLQ].call_fd : -1;
}

unsigned vmm_ctx_service_fds(struct vmm_gpu *gpu, int *fds, unsigned max)
{
	const struct vmm_dev *dev = vmm_gpu_dev(gpu);
	int all[6] = {
		dev->sock, dev->slave_fd, dev->q[0].err_fd, dev->q[1].err_fd,
		vmm_gpusock_pollable(dev) ? dev->gs.fd : -1,
		dev->running ? dev->q[VMM_GPU_CTRLQ].call_fd : -1,
	};
	unsigned n = 0;

	for (unsigned i = 0; i < 6 && n < max; i++) {
		if (all[i] >= 0)
			fds[n++] = all[i];
	}
	return n;
}
