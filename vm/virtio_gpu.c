/*
 * The virtio-gpu device of one VM: control and cursor queues, 2D resources,
 * scanouts, fences paced by the compositor's frames, and context types
 * (capset 5, cross-domain: vm/cross_domain.c runs each context's commands).
 * Protocol facts: ../shared/reference/virtio-gpu.md. Every guest value is
 * checked here.
 */
#define _GNU_SOURCE
#include "virtio_gpu.h"

#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <wlr/util/log.h>

#include "cross_domain.h"
#include "cross_domain_protocol.h"
#include "edid.h"
#include "vgpu_resource.h"
#include "vhost_user.h"

#define CONTROL_QUEUE 0
#define CURSOR_QUEUE 1
/* Chains handled per event-loop turn, so one VM cannot starve the desktop. */
#define BATCH_LIMIT 128
#define COPY_BUDGET_PER_TURN (64ull << 20)
/* Kernel mappings all blobs of one VM may take (vm.max_map_count is 65530). */
#define VGPU_MAX_BLOB_MAPS 8192
/* A fenced flush whose window shows no frame (off screen) completes anyway. */
#define PRESENT_TIMEOUT_MS 100
#define DEFAULT_WIDTH 1024
#define DEFAULT_HEIGHT 768
#define CURSOR_SIZE 64


/*
 * Fence timelines: Linux signals every earlier fence of the same timeline
 * with a response, so responses go out in order within one. Without
 * INFO_RING_IDX every fence is on the global one; with it each (ctx_id,
 * ring_idx) is its own.
 */
#define GLOBAL_TIMELINE UINT64_MAX
#define CHANNEL_RING_IDX 1 // cross-domain: POLL fences wait for a host message

/* A response held back until its fence may signal (in fence order). */
struct pending_response {
	struct wl_list link; // vgpu_device.pending
	struct vu_chain chain;
	uint32_t written;
	uint64_t timeline;
	uint32_t waiting_scanouts; // bit per scanout whose presentation it awaits
	bool waiting_poll;         // a channel-ring POLL: waits for one message of its context
	uint32_t ctx_id;
};

/*
 * A guest context. Capset 5 runs a cross-domain engine. Capset 0 is the
 * context Linux makes for every DRM file when VIRGL is offered (dumb
 * buffers, PRIME imports): it only tracks attachments, so 2D guests stay
 * quiet; it has nothing to run SUBMIT_3D on.
 */
struct vgpu_context {
	struct wl_list link; // vgpu_device.contexts
	struct vgpu_device *device;
	uint32_t id;
	uint32_t capset;
	uint32_t *attached; // resource ids
	uint32_t attached_count, attached_size;
	struct xdom_context *xdom; // capset 5 only
};

struct scanout {
	struct vgpu_resource *resource; // NULL: disabled
	struct wlr_buffer *image;       // what is shown (locked): the resource, or an image in a blob
	struct wlr_box src;
	int display_width, display_height; // what the guest is offered
	uint32_t cursor_resource;
};

struct vgpu_device {
	char *name;
	struct wl_event_loop *loop;
	struct vgpu_limits limits;
	const struct vgpu_display_ops *ops;
	void *data;
	struct vu_device_ops vu_ops; // this VM's copy: protocol features follow its options
	struct vu_server *server;
	struct vu_dev *dev; // NULL while no VMM is connected
	uint64_t features;

	struct wl_list resources; // vgpu_resource.link
	struct wl_list contexts;  // vgpu_context.link
	uint32_t context_count;
	uint32_t resource_count;
	uint64_t host_memory;
	/*
	 * Blobs' guest pages mapped (address space, not RAM), the kernel
	 * mappings they take (the kernel's count is bounded) and their number:
	 * charged until a blob's last lock goes, which may be after
	 * RESOURCE_UNREF (the compositor's pools and buffers keep the view).
	 */
	struct vgpu_blob_budget *blob_budget;
	struct xdom_budget xdom_budget; // buffers of all cross-domain contexts
	struct scanout scanouts[VGPU_MAX_SCANOUTS];
	uint32_t events_read; // config space: VIRTIO_GPU_EVENT_DISPLAY

	/*
	 * QEMU stops the rings alike for a VM pause and for a driver reset. Only
	 * a reset is followed by the driver probing again (GET_CONFIG) before
	 * the rings restart: then, and only then, the guest's state is dropped.
	 */
	bool rings_stopped;

	struct wl_list pending; // pending_response.link, in arrival (fence) order
	struct wl_event_source *present_timer;
	bool present_timer_armed;
	struct wl_event_source *resume_idle[2]; // continue a queue after BATCH_LIMIT

	int gpu_socket;
	struct wl_event_source *gpu_socket_source;
	struct vgpu_stats stats;
};

static const struct vu_device_ops device_ops;

/* Every line about a VM names it. */
static void vgpu_log(const struct vgpu_device *device, enum wlr_log_importance level,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
vgpu_log(const struct vgpu_device *device, enum wlr_log_importance level, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	vu_vm_logv(level, device->name, "", fmt, args);
	va_end(args);
}

void
vgpu_limits_default(struct vgpu_limits *limits)
{
	limits->max_resources = 1024;
	limits->max_host_memory = 512ull << 20;
	limits->max_blob_memory = 4ull << 30;
	limits->num_scanouts = 1;
	limits->config_events = false;
	limits->contexts = true;
	limits->max_contexts = 16;
}

/* --- responses --------------------------------------------------------------- */

static void
fill_response_header(struct virtio_gpu_ctrl_hdr *resp, const struct virtio_gpu_ctrl_hdr *req,
	uint32_t type)
{
	memset(resp, 0, sizeof(*resp));
	resp->type = htole32(type);
	uint32_t flags = le32toh(req->flags) & (VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX);
	resp->flags = htole32(flags);
	if (flags & VIRTIO_GPU_FLAG_FENCE) {
		resp->fence_id = req->fence_id;
		resp->ctx_id = req->ctx_id;
		resp->ring_idx = req->ring_idx;
	}
}

static bool
feature_negotiated(const struct vgpu_device *device, unsigned bit)
{
	return device->features & (1ull << bit);
}

static uint64_t
timeline_of(const struct vgpu_device *device, const struct virtio_gpu_ctrl_hdr *req)
{
	if ((le32toh(req->flags) & VIRTIO_GPU_FLAG_INFO_RING_IDX) &&
			feature_negotiated(device, VIRTIO_GPU_F_CONTEXT_INIT)) {
		return ((uint64_t)le32toh(req->ctx_id) << 8) | req->ring_idx;
	}
	return GLOBAL_TIMELINE;
}

/* Whether a response still held before `p` is on its timeline. */
static bool
timeline_blocked(const struct vgpu_device *device, const struct pending_response *p)
{
	const struct pending_response *q;
	wl_list_for_each(q, &device->pending, link) {
		if (q == p) {
			return false;
		}
		if (q->timeline == p->timeline) {
			return true;
		}
	}
	return false;
}

/* Pushes what can go out: responses whose work and timeline predecessors are done. */
static void
release_pending(struct vgpu_device *device)
{
	struct pending_response *p, *tmp;
	bool released = false;
	wl_list_for_each_safe(p, tmp, &device->pending, link) {
		/* Fences signal in order per timeline: later ones of it wait too. */
		if (p->waiting_scanouts != 0 || p->waiting_poll || timeline_blocked(device, p)) {
			continue;
		}
		released = true;
		if (device->dev != NULL) {
			vu_dev_push(device->dev, CONTROL_QUEUE, &p->chain, p->written);
		}
		wl_list_remove(&p->link);
		free(p);
	}
	bool waiting = false;
	wl_list_for_each(p, &device->pending, link) {
		waiting = waiting || p->waiting_scanouts != 0;
	}
	if (device->present_timer != NULL && device->present_timer_armed && !waiting) {
		wl_event_source_timer_update(device->present_timer, 0);
		device->present_timer_armed = false;
	} else if (waiting && device->present_timer_armed && released) {
		/* The oldest flush went; give the ones still waiting their own time. */
		wl_event_source_timer_update(device->present_timer, PRESENT_TIMEOUT_MS);
	}
}

static void
drop_pending(struct vgpu_device *device)
{
	struct pending_response *p, *tmp;
	wl_list_for_each_safe(p, tmp, &device->pending, link) {
		wl_list_remove(&p->link);
		free(p);
	}
}

static bool
timeline_busy(const struct vgpu_device *device, uint64_t timeline)
{
	const struct pending_response *p;
	wl_list_for_each(p, &device->pending, link) {
		if (p->timeline == timeline) {
			return true;
		}
	}
	return false;
}

/*
 * Writes the response and returns the chain now, or queues it when it is
 * fenced and must wait for earlier fences of its timeline, for a frame
 * (waiting_scanouts) or for a cross-domain message (waiting_poll). Returns
 * whether it was held.
 */
static bool
respond_held(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *req, const void *resp, size_t resp_size,
	uint32_t waiting_scanouts, bool waiting_poll)
{
	size_t written = vu_chain_write(chain, 0, resp, resp_size);
	if (written < resp_size) {
		vgpu_log(device, WLR_DEBUG, "response of %zu bytes cut to %zu by the guest's buffer",
			resp_size, written);
	}
	bool fenced = le32toh(req->flags) & VIRTIO_GPU_FLAG_FENCE;
	uint64_t timeline = timeline_of(device, req);
	if (!fenced || (waiting_scanouts == 0 && !waiting_poll && !timeline_busy(device, timeline))) {
		vu_dev_push(device->dev, CONTROL_QUEUE, chain, (uint32_t)written);
		return false;
	}
	struct pending_response *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		/* Better an early fence than a lost response. */
		vu_dev_push(device->dev, CONTROL_QUEUE, chain, (uint32_t)written);
		return false;
	}
	p->chain = *chain;
	p->written = (uint32_t)written;
	p->timeline = timeline;
	p->waiting_scanouts = waiting_scanouts;
	p->waiting_poll = waiting_poll;
	p->ctx_id = le32toh(req->ctx_id);
	wl_list_insert(device->pending.prev, &p->link);
	if (waiting_scanouts != 0 && !device->present_timer_armed) {
		/* Armed by the oldest waiting flush, not pushed back by every new one. */
		wl_event_source_timer_update(device->present_timer, PRESENT_TIMEOUT_MS);
		device->present_timer_armed = true;
	}
	return true;
}

static void
respond(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *req, const void *resp, size_t resp_size,
	uint32_t waiting_scanouts)
{
	respond_held(device, chain, req, resp, resp_size, waiting_scanouts, false);
}

static void
respond_type(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *req, uint32_t type)
{
	struct virtio_gpu_ctrl_hdr resp;
	fill_response_header(&resp, req, type);
	if (type >= VIRTIO_GPU_RESP_ERR_UNSPEC) {
		device->stats.errors++;
	}
	respond(device, chain, req, &resp, sizeof(resp), 0);
}

/* --- resources ------------------------------------------------------------- */

static struct vgpu_resource *
find_resource(struct vgpu_device *device, uint32_t id)
{
	struct vgpu_resource *res;
	wl_list_for_each(res, &device->resources, link) {
		if (res->id == id) {
			return res;
		}
	}
	return NULL;
}

/* The guest's resource `id`, or NULL after answering ERR_INVALID_RESOURCE_ID. */
static struct vgpu_resource *
resource_or_error(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr, uint32_t id)
{
	struct vgpu_resource *res = find_resource(device, id);
	if (res == NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	}
	return res;
}

static bool
rect_from_virtio(const struct virtio_gpu_rect *r, struct wlr_box *box)
{
	uint32_t x = le32toh(r->x), y = le32toh(r->y);
	uint32_t w = le32toh(r->width), h = le32toh(r->height);
	if (x > VGPU_MAX_RESOURCE_DIMENSION || y > VGPU_MAX_RESOURCE_DIMENSION ||
			w > VGPU_MAX_RESOURCE_DIMENSION || h > VGPU_MAX_RESOURCE_DIMENSION) {
		return false;
	}
	*box = (struct wlr_box){(int)x, (int)y, (int)w, (int)h};
	return true;
}

static void
disable_scanout(struct vgpu_device *device, unsigned index)
{
	struct scanout *scanout = &device->scanouts[index];
	if (scanout->resource == NULL) {
		return;
	}
	scanout->resource = NULL;
	device->ops->scanout_set(device->data, index, NULL, NULL);
	wlr_buffer_unlock(scanout->image);
	scanout->image = NULL;
}

/* Points a scanout at `image` (locked here) showing `src` of it. */
static void
enable_scanout(struct vgpu_device *device, unsigned index, struct vgpu_resource *res,
	struct wlr_buffer *image, const struct wlr_box *src)
{
	struct scanout *scanout = &device->scanouts[index];
	struct wlr_buffer *old = scanout->image;
	scanout->resource = res;
	scanout->image = wlr_buffer_lock(image);
	scanout->src = *src;
	device->ops->scanout_set(device->data, index, image, src);
	wlr_buffer_unlock(old);
}

/*
 * Host heap a resource costs: its copy and its backing list (2D). A blob's
 * merged entry list is bounded with its mappings (VGPU_MAX_BLOB_MAPS), not here.
 */
static uint64_t
resource_host_bytes(const struct vgpu_resource *res)
{
	return res->blob ? 0 :
		res->data_size + (uint64_t)res->backing_count * sizeof(struct vgpu_backing_entry);
}

static void detach_everywhere(struct vgpu_device *device, uint32_t resource_id);

static void
destroy_resource(struct vgpu_device *device, struct vgpu_resource *res)
{
	detach_everywhere(device, res->id);
	for (unsigned i = 0; i < device->limits.num_scanouts; i++) {
		if (device->scanouts[i].resource == res) {
			disable_scanout(device, i);
		}
		if (device->scanouts[i].cursor_resource == res->id) {
			device->scanouts[i].cursor_resource = 0;
			device->ops->cursor_set(device->data, i, NULL, 0, 0);
		}
	}
	device->resource_count--;
	device->host_memory -= resource_host_bytes(res);
	vgpu_resource_unref(res); // a blob's charge goes with its last lock

}

static void
destroy_all_resources(struct vgpu_device *device)
{
	struct vgpu_resource *res, *tmp;
	wl_list_for_each_safe(res, tmp, &device->resources, link) {
		destroy_resource(device, res);
	}
}


/* --- contexts ------------------------------------------------------------------ */

static struct vgpu_context *
find_context(struct vgpu_device *device, uint32_t id)
{
	struct vgpu_context *ctx;
	wl_list_for_each(ctx, &device->contexts, link) {
		if (ctx->id == id) {
			return ctx;
		}
	}
	return NULL;
}

static bool
context_has(const struct vgpu_context *ctx, uint32_t resource_id)
{
	for (uint32_t i = 0; i < ctx->attached_count; i++) {
		if (ctx->attached[i] == resource_id) {
			return true;
		}
	}
	return false;
}

static void
context_detach(struct vgpu_context *ctx, uint32_t resource_id)
{
	for (uint32_t i = 0; i < ctx->attached_count; i++) {
		if (ctx->attached[i] == resource_id) {
			ctx->attached[i] = ctx->attached[--ctx->attached_count];
			return;
		}
	}
}

/* RESOURCE_UNREF (or a reset) detaches the resource from every context. */
static void
detach_everywhere(struct vgpu_device *device, uint32_t resource_id)
{
	struct vgpu_context *ctx;
	wl_list_for_each(ctx, &device->contexts, link) {
		context_detach(ctx, resource_id);
	}
}

/* --- what a cross-domain engine asks of its device --- */

static struct vgpu_resource *
xdom_resource(void *data, uint32_t id)
{
	struct vgpu_context *ctx = data;
	return context_has(ctx, id) ? find_resource(ctx->device, id) : NULL;
}

static const struct vu_guest_memory *
xdom_memory(void *data)
{
	struct vgpu_context *ctx = data;
	return ctx->device->dev != NULL ? vu_dev_memory(ctx->device->dev) : NULL;
}

/* One message reached the channel ring: the context's oldest held POLL may go. */
static void
xdom_poll_done(void *data)
{
	struct vgpu_context *ctx = data;
	struct vgpu_device *device = ctx->device;
	struct pending_response *p;
	wl_list_for_each(p, &device->pending, link) {
		if (p->waiting_poll && p->ctx_id == ctx->id) {
			p->waiting_poll = false;
			release_pending(device);
			return;
		}
	}
}

static int
xdom_connect_wayland(void *data)
{
	struct vgpu_context *ctx = data;
	struct vgpu_device *device = ctx->device;
	if (device->ops->connect_wayland == NULL) {
		return -ENOTSUP;
	}
	return device->ops->connect_wayland(device->data, ctx->id);
}

static uint64_t
xdom_fds_taken(void *data)
{
	struct vgpu_context *ctx = data;
	struct vgpu_device *device = ctx->device;
	/* Without the compositor's count, fds count as taken once sent. */
	return device->ops->wayland_fds_taken == NULL ? UINT64_MAX :
		device->ops->wayland_fds_taken(device->data, ctx->id);
}

static unsigned
xdom_vm_fds_held(void *data)
{
	struct vgpu_context *ctx = data;
	unsigned held = 0;
	struct vgpu_context *c;
	wl_list_for_each(c, &ctx->device->contexts, link) {
		if (c->xdom != NULL) {
			held += xdom_context_fds_held(c->xdom);
		}
	}
	return held;
}

static const struct xdom_ops xdom_ops = {
	.resource = xdom_resource,
	.memory = xdom_memory,
	.poll_done = xdom_poll_done,
	.connect_wayland = xdom_connect_wayland,
	.fds_taken = xdom_fds_taken,
	.vm_fds_held = xdom_vm_fds_held,
};

/*
 * Held POLL responses of the context (or of every context: ctx NULL) go
 * out now: an early fence beats a descriptor that is never returned.
 */
static void
release_polls(struct vgpu_device *device, struct vgpu_context *ctx)
{
	struct vgpu_context *c;
	wl_list_for_each(c, &device->contexts, link) {
		if ((ctx == NULL || c == ctx) && c->xdom != NULL) {
			xdom_context_cancel_polls(c->xdom);
		}
	}
	struct pending_response *p;
	wl_list_for_each(p, &device->pending, link) {
		if (ctx == NULL || p->ctx_id == ctx->id) {
			p->waiting_poll = false;
		}
	}
	release_pending(device);
}

static void
destroy_context(struct vgpu_device *device, struct vgpu_context *ctx)
{
	xdom_context_destroy(ctx->xdom); // closes its Wayland client
	wl_list_remove(&ctx->link);
	device->context_count--;
	free(ctx->attached);
	free(ctx);
}

static void
destroy_all_contexts(struct vgpu_device *device)
{
	struct vgpu_context *ctx, *tmp;
	wl_list_for_each_safe(ctx, tmp, &device->contexts, link) {
		destroy_context(device, ctx);
	}
}

/* --- commands ---------------------------------------------------------------- */

/* Reads the whole request struct, or answers ERR_UNSPEC and returns false. */
static bool
read_request(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr, void *req, size_t size)
{
	if (vu_chain_read(chain, 0, req, size) != size) {
		vgpu_log(device, WLR_ERROR, "command 0x%x: request shorter than %zu bytes",
			le32toh(hdr->type), size);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_UNSPEC);
		return false;
	}
	return true;
}

static void
cmd_get_display_info(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resp_display_info resp;
	memset(&resp, 0, sizeof(resp));
	fill_response_header(&resp.hdr, hdr, VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	for (unsigned i = 0; i < device->limits.num_scanouts; i++) {
		struct scanout *s = &device->scanouts[i];
		resp.pmodes[i].r.width = htole32((uint32_t)s->display_width);
		resp.pmodes[i].r.height = htole32((uint32_t)s->display_height);
		resp.pmodes[i].enabled = htole32(1);
	}
	respond(device, chain, hdr, &resp, sizeof(resp), 0);
}

static void
cmd_get_edid(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_cmd_get_edid req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t index = le32toh(req.scanout);
	if (index >= device->limits.num_scanouts) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
		return;
	}
	struct virtio_gpu_resp_edid resp;
	memset(&resp, 0, sizeof(resp));
	fill_response_header(&resp.hdr, hdr, VIRTIO_GPU_RESP_OK_EDID);
	resp.size = htole32(VGPU_EDID_SIZE);
	struct scanout *s = &device->scanouts[index];
	vgpu_edid_build(resp.edid, s->display_width, s->display_height, device->name);
	respond(device, chain, hdr, &resp, sizeof(resp), 0);
}

/* Whether one more resource of `bytes` host memory fits the VM's limits. */
static bool
within_budget(const struct vgpu_device *device, uint64_t bytes)
{
	uint64_t max = device->limits.max_host_memory;
	return device->resource_count < device->limits.max_resources &&
		device->host_memory <= max && bytes <= max - device->host_memory;
}

static void
cmd_resource_create_2d(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_create_2d req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t id = le32toh(req.resource_id), format = le32toh(req.format);
	uint32_t width = le32toh(req.width), height = le32toh(req.height);
	if (id == 0 || find_resource(device, id) != NULL) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_2D: resource id %u is %s", id,
			id == 0 ? "zero" : "taken");
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		return;
	}
	if (vgpu_format_to_drm(format) == 0 || width == 0 || height == 0 ||
			width > VGPU_MAX_RESOURCE_DIMENSION || height > VGPU_MAX_RESOURCE_DIMENSION) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_2D: bad format %u or size %ux%u",
			format, width, height);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	uint64_t bytes = (uint64_t)width * 4 * height;
	if (!within_budget(device, bytes)) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_2D: over the VM's limits "
			"(%u resources, %llu of %llu bytes)", device->resource_count,
			(unsigned long long)device->host_memory,
			(unsigned long long)device->limits.max_host_memory);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	struct vgpu_resource *res = vgpu_resource_create_2d(id, format, width, height);
	if (res == NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	wl_list_insert(&device->resources, &res->link);
	device->resource_count++;
	device->host_memory += res->data_size;
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_resource_unref(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_unref req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_resource *res = resource_or_error(device, chain, hdr, le32toh(req.resource_id));
	if (res == NULL) {
		return;
	}
	destroy_resource(device, res);
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

/* Reads and checks ATTACH_BACKING's entries; NULL (and an error sent) if bad. */
static struct vgpu_backing_entry *
read_backing_entries(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr, size_t offset, uint32_t count)
{
	const struct vu_guest_memory *mem = vu_dev_memory(device->dev);
	struct vgpu_backing_entry *entries = calloc(count, sizeof(*entries));
	if (entries == NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return NULL;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct virtio_gpu_mem_entry e;
		if (vu_chain_read(chain, offset + (size_t)i * sizeof(e), &e, sizeof(e)) != sizeof(e)) {
			vgpu_log(device, WLR_ERROR, "%u memory entries announced, fewer sent", count);
			goto invalid;
		}
		uint64_t gpa = le64toh(e.addr);
		uint32_t length = le32toh(e.length);
		struct iovec iov[VU_MAX_MEM_REGIONS];
		if (length == 0 || vu_mem_gpa_to_iovec(mem, gpa, length, iov, VU_MAX_MEM_REGIONS) < 0) {
			vgpu_log(device, WLR_ERROR, "memory entry %u (0x%llx+%u) is not guest RAM",
				i, (unsigned long long)gpa, length);
			goto invalid;
		}
		entries[i].gpa = gpa;
		entries[i].length = length;
	}
	return entries;
invalid:
	free(entries);
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	return NULL;
}

static void
cmd_attach_backing(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_attach_backing req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_resource *res = resource_or_error(device, chain, hdr, le32toh(req.resource_id));
	if (res == NULL) {
		return;
	}
	uint32_t count = le32toh(req.nr_entries);
	if (count == 0 || count > VGPU_MAX_BACKING_ENTRIES || res->backing != NULL || res->blob) {
		vgpu_log(device, WLR_ERROR, "ATTACH_BACKING: %u entries%s", count,
			res->backing != NULL ? " on a resource that has backing" : "");
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_UNSPEC);
		return;
	}
	uint64_t entry_bytes = (uint64_t)count * sizeof(struct vgpu_backing_entry);
	if (device->host_memory > device->limits.max_host_memory ||
			entry_bytes > device->limits.max_host_memory - device->host_memory) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	struct vgpu_backing_entry *entries = read_backing_entries(device, chain, hdr,
		sizeof(struct virtio_gpu_resource_attach_backing), count);
	if (entries == NULL) {
		return;
	}
	vgpu_resource_set_backing(res, entries, count);
	device->host_memory += entry_bytes;
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_detach_backing(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_detach_backing req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_resource *res = find_resource(device, le32toh(req.resource_id));
	if (res == NULL || res->backing == NULL || res->blob) { // a blob's entries are its pages
		respond_type(device, chain, hdr, res == NULL ?
			VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID : VIRTIO_GPU_RESP_ERR_UNSPEC);
		return;
	}
	device->host_memory -= (uint64_t)res->backing_count * sizeof(struct vgpu_backing_entry);
	vgpu_resource_detach_backing(res);
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_set_scanout(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_set_scanout req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t index = le32toh(req.scanout_id), id = le32toh(req.resource_id);
	if (index >= device->limits.num_scanouts) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
		return;
	}
	struct wlr_box rect;
	bool rect_ok = rect_from_virtio(&req.r, &rect);
	if (id == 0 || (rect_ok && (rect.width == 0 || rect.height == 0))) {
		disable_scanout(device, index);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
		return;
	}
	struct vgpu_resource *res = find_resource(device, id);
	if (res == NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		return;
	}
	if (!rect_ok || !vgpu_resource_contains(res, &rect)) {
		vgpu_log(device, WLR_ERROR, "SET_SCANOUT: rect outside resource %u", id);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	if (res->blob) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return; // blobs are shown with SET_SCANOUT_BLOB, which gives their layout
	}
	enable_scanout(device, index, res, &res->base, &rect);
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_transfer_to_host_2d(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_transfer_to_host_2d req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_resource *res = resource_or_error(device, chain, hdr, le32toh(req.resource_id));
	if (res == NULL) {
		return;
	}
	if (res->blob) {
		/* The host sees the guest's pages themselves: nothing to copy (as QEMU). */
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
		return;
	}
	struct wlr_box rect;
	if (!rect_from_virtio(&req.r, &rect)) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	int64_t copied = vgpu_resource_transfer_to_host(res, vu_dev_memory(device->dev), &rect,
		le64toh(req.offset));
	if (copied < 0) {
		vgpu_log(device, WLR_ERROR, "TRANSFER_TO_HOST_2D on resource %u: %s", res->id,
			copied == -EFAULT ? "backing outside guest RAM" : "rect or offset out of range");
		respond_type(device, chain, hdr, copied == -EFAULT ?
			VIRTIO_GPU_RESP_ERR_UNSPEC : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	device->stats.bytes_copied += (uint64_t)copied;
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_resource_flush(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_flush req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_resource *res = resource_or_error(device, chain, hdr, le32toh(req.resource_id));
	if (res == NULL) {
		return;
	}
	struct wlr_box rect;
	if (!rect_from_virtio(&req.r, &rect) || (!res->blob && !vgpu_resource_contains(res, &rect))) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	device->stats.flushes++;
	uint32_t waiting = 0;
	for (unsigned i = 0; i < device->limits.num_scanouts; i++) {
		struct scanout *s = &device->scanouts[i];
		struct wlr_box damage;
		if (s->resource == res && wlr_box_intersection(&damage, &rect, &s->src)) {
			device->ops->scanout_damage(device->data, i, &damage);
			waiting |= 1u << i;
		}
	}
	struct virtio_gpu_ctrl_hdr resp;
	fill_response_header(&resp, hdr, VIRTIO_GPU_RESP_OK_NODATA);
	/* A fenced flush completes once a frame showing it was presented. */
	respond(device, chain, hdr, &resp, sizeof(resp), waiting);
}

static void
cmd_resource_create_blob(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_create_blob req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t id = le32toh(req.resource_id), count = le32toh(req.nr_entries);
	uint64_t size = le64toh(req.size);
	if (id == 0 || find_resource(device, id) != NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		return;
	}
	/*
	 * Host blobs (HOST3D: crosvm's image items and received memory fds,
	 * named by blob_id) live in host memory the guest maps through a
	 * host-visible shared-memory region; this device has none (QEMU 7.2's
	 * vhost-user-gpu-pci offers none), so they are refused. crossway-guest
	 * uses GUEST blobs and streamed memory instead.
	 */
	uint32_t blob_mem = le32toh(req.blob_mem);
	if (blob_mem == VIRTIO_GPU_BLOB_MEM_HOST3D || blob_mem == VIRTIO_GPU_BLOB_MEM_HOST3D_GUEST) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_BLOB %u: host blob (blob_mem %u, blob_id "
			"%llu) refused: this device has no host-visible memory to map it", id, blob_mem,
			(unsigned long long)le64toh(req.blob_id));
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	if (blob_mem != VIRTIO_GPU_BLOB_MEM_GUEST || le64toh(req.blob_id) != 0 ||
			count == 0 || count > VGPU_MAX_BACKING_ENTRIES || size == 0 ||
			size > VGPU_MAX_BLOB_SIZE) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_BLOB: mem %u, %u entries, %llu bytes refused",
			le32toh(req.blob_mem), count, (unsigned long long)size);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	/*
	 * A blob keeps no host copy, only its merged entry list (host writes go
	 * through it). Blobs the guest freed but the compositor still holds
	 * count until they go.
	 */
	const struct vgpu_blob_budget *budget = device->blob_budget;
	if (!within_budget(device, 0) || budget->blobs >= device->limits.max_resources ||
			budget->memory > device->limits.max_blob_memory ||
			size > device->limits.max_blob_memory - budget->memory ||
			budget->maps + count > VGPU_MAX_BLOB_MAPS) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_BLOB: over the VM's limits (%u blobs "
			"with %llu bytes in %u mappings, freed ones the compositor still shows included)",
			budget->blobs, (unsigned long long)budget->memory, budget->maps);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	struct vgpu_backing_entry *entries = read_backing_entries(device, chain, hdr,
		sizeof(req), count);
	if (entries == NULL) {
		return;
	}
	uint32_t error = 0;
	struct vgpu_resource *res = vgpu_resource_create_blob(id, vu_dev_memory(device->dev),
		entries, count, size, &error);
	free(entries);
	if (res == NULL) {
		vgpu_log(device, WLR_ERROR, "RESOURCE_CREATE_BLOB %u: guest pages not mappable "
			"(not page-aligned or not in one memory region)", id);
		respond_type(device, chain, hdr, error);
		return;
	}
	wl_list_insert(&device->resources, &res->link);
	device->resource_count++;
	vgpu_blob_charge(res, device->blob_budget);
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_set_scanout_blob(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_set_scanout_blob req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t index = le32toh(req.scanout_id), id = le32toh(req.resource_id);
	if (index >= device->limits.num_scanouts) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
		return;
	}
	if (id == 0) {
		disable_scanout(device, index);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
		return;
	}
	struct vgpu_resource *res = find_resource(device, id);
	if (res == NULL || !res->blob) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
		return;
	}
	uint32_t drm_format = vgpu_format_to_drm(le32toh(req.format));
	uint32_t width = le32toh(req.width), height = le32toh(req.height);
	struct wlr_box rect;
	struct wlr_buffer *image = drm_format == 0 ? NULL :
		vgpu_blob_image_create(res, drm_format, width, height, le32toh(req.strides[0]),
			le32toh(req.offsets[0]));
	bool rect_ok = rect_from_virtio(&req.r, &rect) && rect.width > 0 && rect.height > 0 &&
		(uint64_t)rect.x + (uint64_t)rect.width <= width &&
		(uint64_t)rect.y + (uint64_t)rect.height <= height;
	if (image == NULL || !rect_ok) {
		vgpu_log(device, WLR_ERROR, "SET_SCANOUT_BLOB: format %u %ux%u stride %u offset %u "
			"does not fit blob %u", le32toh(req.format), width, height,
			le32toh(req.strides[0]), le32toh(req.offsets[0]), id);
		wlr_buffer_drop(image);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	enable_scanout(device, index, res, image, &rect);
	wlr_buffer_drop(image); // the scanout (and the compositor) hold their own locks
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_assign_uuid(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_resource_assign_uuid req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_resource *res = resource_or_error(device, chain, hdr, le32toh(req.resource_id));
	if (res == NULL) {
		return;
	}
	struct virtio_gpu_resp_resource_uuid resp;
	memset(&resp, 0, sizeof(resp));
	fill_response_header(&resp.hdr, hdr, VIRTIO_GPU_RESP_OK_RESOURCE_UUID);
	/* A random (version 4) UUID, unique for this resource's lifetime. */
	if (getrandom(resp.uuid, sizeof(resp.uuid), 0) != sizeof(resp.uuid)) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_UNSPEC);
		return;
	}
	resp.uuid[6] = (uint8_t)((resp.uuid[6] & 0x0f) | 0x40);
	resp.uuid[8] = (uint8_t)((resp.uuid[8] & 0x3f) | 0x80);
	respond(device, chain, hdr, &resp, sizeof(resp), 0);
}

/* Capsets answered: cross-domain (index 0) when contexts are offered, else none. */
static uint32_t
num_capsets(const struct vgpu_device *device)
{
	return device->limits.contexts ? 1 : 0;
}

static void
cmd_get_capset_info(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_get_capset_info req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	if (le32toh(req.capset_index) >= num_capsets(device)) {
		vgpu_log(device, WLR_ERROR, "GET_CAPSET_INFO: no capset index %u",
			le32toh(req.capset_index));
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	struct virtio_gpu_resp_capset_info resp;
	memset(&resp, 0, sizeof(resp));
	fill_response_header(&resp.hdr, hdr, VIRTIO_GPU_RESP_OK_CAPSET_INFO);
	resp.capset_id = htole32(XDOM_CAPSET_ID);
	resp.capset_max_version = htole32(0);
	resp.capset_max_size = htole32(XDOM_CAPSET_SIZE);
	respond(device, chain, hdr, &resp, sizeof(resp), 0);
}

static void
cmd_get_capset(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_get_capset req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t id = le32toh(req.capset_id), version = le32toh(req.capset_version);
	if (num_capsets(device) == 0 || id != XDOM_CAPSET_ID || version != 0) {
		vgpu_log(device, WLR_ERROR, "GET_CAPSET: no capset %u version %u", id, version);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	struct {
		struct virtio_gpu_ctrl_hdr hdr;
		uint32_t version, supported_channels, supports_dmabuf, supports_external_gpu_memory;
	} resp;
	memset(&resp, 0, sizeof(resp));
	fill_response_header(&resp.hdr, hdr, VIRTIO_GPU_RESP_OK_CAPSET);
	resp.version = htole32(XDOM_CAPSET_VERSION);
	resp.supported_channels = htole32(1u << XDOM_CHANNEL_WAYLAND);
	/* No dma-bufs from a host allocator, no host-visible memory: guest pages only. */
	resp.supports_dmabuf = 0;
	resp.supports_external_gpu_memory = 0;
	respond(device, chain, hdr, &resp, sizeof(resp), 0);
}

/* The context named by the header, or NULL after answering ERR_INVALID_CONTEXT_ID. */
static struct vgpu_context *
context_or_error(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr, const char *what)
{
	struct vgpu_context *ctx = find_context(device, le32toh(hdr->ctx_id));
	if (ctx == NULL) {
		vgpu_log(device, WLR_ERROR, "%s: no context %u", what, le32toh(hdr->ctx_id));
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
	}
	return ctx;
}

static void
cmd_ctx_create(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_ctx_create req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	uint32_t id = le32toh(hdr->ctx_id), capset = le32toh(req.context_init) & 0xff;
	if (id == 0 || find_context(device, id) != NULL) {
		vgpu_log(device, WLR_ERROR, "CTX_CREATE: context id %u is %s", id, id == 0 ? "zero" : "taken");
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID);
		return;
	}
	if (capset != XDOM_CAPSET_ID && capset != 0) {
		vgpu_log(device, WLR_ERROR, "CTX_CREATE %u: capset %u is not offered", id, capset);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	if (device->context_count >= device->limits.max_contexts) {
		vgpu_log(device, WLR_ERROR, "CTX_CREATE %u: the VM has its %u contexts", id,
			device->limits.max_contexts);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	struct vgpu_context *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	ctx->device = device;
	ctx->id = id;
	ctx->capset = capset;
	if (capset == XDOM_CAPSET_ID) {
		ctx->xdom = xdom_context_create(device->loop, device->name, id, device, &xdom_ops, ctx);
		if (ctx->xdom == NULL) {
			free(ctx);
			respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
			return;
		}
		xdom_context_set_budget(ctx->xdom, &device->xdom_budget);
	}
	wl_list_insert(device->contexts.prev, &ctx->link);
	device->context_count++;
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_ctx_destroy(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct vgpu_context *ctx = context_or_error(device, chain, hdr, "CTX_DESTROY");
	if (ctx == NULL) {
		return;
	}
	release_polls(device, ctx);
	destroy_context(device, ctx);
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

static void
cmd_ctx_resource(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	bool attach = le32toh(hdr->type) == VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE;
	struct virtio_gpu_ctx_resource req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_context *ctx = context_or_error(device, chain, hdr,
		attach ? "CTX_ATTACH_RESOURCE" : "CTX_DETACH_RESOURCE");
	if (ctx == NULL) {
		return;
	}
	uint32_t id = le32toh(req.resource_id);
	if (resource_or_error(device, chain, hdr, id) == NULL) {
		return;
	}
	if (!attach) {
		context_detach(ctx, id);
	} else if (!context_has(ctx, id)) {
		if (ctx->attached_count == ctx->attached_size) {
			/* Never more than the VM's resources: each id is attached once. */
			uint32_t size = ctx->attached_size == 0 ? 16 : ctx->attached_size * 2;
			uint32_t *grown = realloc(ctx->attached, size * sizeof(*grown));
			if (grown == NULL) {
				respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
				return;
			}
			ctx->attached = grown;
			ctx->attached_size = size;
		}
		ctx->attached[ctx->attached_count++] = id;
	}
	respond_type(device, chain, hdr, VIRTIO_GPU_RESP_OK_NODATA);
}

/* Whether the request is a fence on a cross-domain channel ring (POLL's timeline). */
static bool
on_channel_ring(const struct vgpu_device *device, const struct virtio_gpu_ctrl_hdr *hdr)
{
	uint32_t flags = le32toh(hdr->flags);
	return (flags & VIRTIO_GPU_FLAG_FENCE) && (flags & VIRTIO_GPU_FLAG_INFO_RING_IDX) &&
		feature_negotiated(device, VIRTIO_GPU_F_CONTEXT_INIT) &&
		hdr->ring_idx == CHANNEL_RING_IDX;
}

static void
cmd_submit_3d(struct vgpu_device *device, const struct vu_chain *chain,
	const struct virtio_gpu_ctrl_hdr *hdr)
{
	struct virtio_gpu_cmd_submit req;
	if (!read_request(device, chain, hdr, &req, sizeof(req))) {
		return;
	}
	struct vgpu_context *ctx = context_or_error(device, chain, hdr, "SUBMIT_3D");
	if (ctx == NULL) {
		return;
	}
	uint32_t size = le32toh(req.size);
	/*
	 * A cross-domain context has two rings: 0 (queries, fences signal at
	 * once) and 1 (POLL fences wait for a message). A fence on any other
	 * ring was answered OK at once, so a POLL fenced there completed with
	 * no message in the channel ring and the guest read a stale one.
	 * crosvm refuses fences on other rings too: refuse the submission
	 * before running any of its commands (found by vm-contexts).
	 */
	if (ctx->xdom != NULL && (le32toh(hdr->flags) & VIRTIO_GPU_FLAG_FENCE) &&
			(le32toh(hdr->flags) & VIRTIO_GPU_FLAG_INFO_RING_IDX) &&
			feature_negotiated(device, VIRTIO_GPU_F_CONTEXT_INIT) &&
			hdr->ring_idx > CHANNEL_RING_IDX) {
		vgpu_log(device, WLR_ERROR, "SUBMIT_3D to context %u: fence on ring %u (a "
			"cross-domain context has rings 0 and 1)", ctx->id, hdr->ring_idx);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	if (ctx->xdom == NULL || size > XDOM_MAX_SUBMIT_SIZE) {
		vgpu_log(device, WLR_ERROR, "SUBMIT_3D to context %u: %s", ctx->id, ctx->xdom == NULL ?
			"a context without a capset runs nothing" : "command buffer over 64 KiB");
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	/* A host copy: the guest cannot change a command while it is checked and run. */
	uint8_t *cmds = malloc(size > 0 ? size : 1);
	if (cmds == NULL) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
		return;
	}
	if (vu_chain_read(chain, sizeof(req), cmds, size) != size) {
		vgpu_log(device, WLR_ERROR, "SUBMIT_3D to context %u: %u command bytes announced, "
			"fewer sent", ctx->id, size);
		free(cmds);
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	bool polled = false;
	int r = xdom_context_submit(ctx->xdom, cmds, size, &polled);
	free(cmds);
	if (r < 0) {
		respond_type(device, chain, hdr, VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
		return;
	}
	struct virtio_gpu_ctrl_hdr resp;
	fill_response_header(&resp, hdr, VIRTIO_GPU_RESP_OK_NODATA);
	/* A POLL on the channel ring is answered once one host message is in the ring. */
	bool wait = polled && on_channel_ring(device, hdr);
	if (respond_held(device, chain, hdr, &resp, sizeof(resp), 0, wait) && wait) {
		xdom_context_add_poll(ctx->xdom);
	}
}

struct command {
	uint32_t type;
	int feature; // the VIRTIO_GPU_F_* bit it needs, or -1
	void (*handle)(struct vgpu_device *device, const struct vu_chain *chain,
		const struct virtio_gpu_ctrl_hdr *hdr);
};

static const struct command commands[] = {
	{VIRTIO_GPU_CMD_GET_DISPLAY_INFO, -1, cmd_get_display_info},
	{VIRTIO_GPU_CMD_GET_EDID, VIRTIO_GPU_F_EDID, cmd_get_edid},
	{VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, -1, cmd_resource_create_2d},
	{VIRTIO_GPU_CMD_RESOURCE_UNREF, -1, cmd_resource_unref},
	{VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, -1, cmd_attach_backing},
	{VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING, -1, cmd_detach_backing},
	{VIRTIO_GPU_CMD_SET_SCANOUT, -1, cmd_set_scanout},
	{VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, -1, cmd_transfer_to_host_2d},
	{VIRTIO_GPU_CMD_RESOURCE_FLUSH, -1, cmd_resource_flush},
	{VIRTIO_GPU_CMD_GET_CAPSET_INFO, -1, cmd_get_capset_info},
	{VIRTIO_GPU_CMD_GET_CAPSET, -1, cmd_get_capset},
	{VIRTIO_GPU_CMD_CTX_CREATE, VIRTIO_GPU_F_VIRGL, cmd_ctx_create},
	{VIRTIO_GPU_CMD_CTX_DESTROY, VIRTIO_GPU_F_VIRGL, cmd_ctx_destroy},
	{VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, VIRTIO_GPU_F_VIRGL, cmd_ctx_resource},
	{VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE, VIRTIO_GPU_F_VIRGL, cmd_ctx_resource},
	{VIRTIO_GPU_CMD_SUBMIT_3D, VIRTIO_GPU_F_VIRGL, cmd_submit_3d},
	{VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB, VIRTIO_GPU_F_RESOURCE_BLOB, cmd_resource_create_blob},
	{VIRTIO_GPU_CMD_SET_SCANOUT_BLOB, VIRTIO_GPU_F_RESOURCE_BLOB, cmd_set_scanout_blob},
	{VIRTIO_GPU_CMD_RESOURCE_ASSIGN_UUID, VIRTIO_GPU_F_RESOURCE_UUID, cmd_assign_uuid},
};

static void
dispatch_control(struct vgpu_device *device, const struct vu_chain *chain)
{
	struct virtio_gpu_ctrl_hdr hdr;
	if (vu_chain_read(chain, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		vgpu_log(device, WLR_ERROR, "control request shorter than its header");
		memset(&hdr, 0, sizeof(hdr));
		respond_type(device, chain, &hdr, VIRTIO_GPU_RESP_ERR_UNSPEC);
		return;
	}
	device->stats.commands++;
	uint32_t type = le32toh(hdr.type);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cmd = &commands[i];
		if (cmd->type != type) {
			continue;
		}
		if (cmd->feature >= 0 && !feature_negotiated(device, (unsigned)cmd->feature)) {
			break; // a command of a feature the driver did not negotiate
		}
		cmd->handle(device, chain, &hdr);
		return;
	}
	vgpu_log(device, WLR_DEBUG, "unsupported command 0x%x", type);
	respond_type(device, chain, &hdr, VIRTIO_GPU_RESP_ERR_UNSPEC);
}

static void
dispatch_cursor(struct vgpu_device *device, const struct vu_chain *chain)
{
	struct virtio_gpu_update_cursor req;
	if (vu_chain_read(chain, 0, &req, sizeof(req)) != sizeof(req)) {
		vgpu_log(device, WLR_ERROR, "cursor request shorter than %zu bytes", sizeof(req));
		return;
	}
	uint32_t type = le32toh(req.hdr.type);
	uint32_t index = le32toh(req.pos.scanout_id);
	if (index >= device->limits.num_scanouts) {
		return; // the cursor queue has no error responses
	}
	int x = (int)le32toh(req.pos.x), y = (int)le32toh(req.pos.y);
	if (type == VIRTIO_GPU_CMD_UPDATE_CURSOR) {
		uint32_t id = le32toh(req.resource_id);
		struct vgpu_resource *res = id != 0 ? find_resource(device, id) : NULL;
		if (res != NULL && (res->width != CURSOR_SIZE || res->height != CURSOR_SIZE)) {
			vgpu_log(device, WLR_ERROR, "cursor resource %u is %ux%u, not 64x64", id,
				res->width, res->height);
			res = NULL;
		}
		int hot_x = (int)(le32toh(req.hot_x) % CURSOR_SIZE);
		int hot_y = (int)(le32toh(req.hot_y) % CURSOR_SIZE);
		device->scanouts[index].cursor_resource = res != NULL ? res->id : 0;
		device->ops->cursor_set(device->data, index, res != NULL ? &res->base : NULL,
			hot_x, hot_y);
		device->ops->cursor_move(device->data, index, x, y);
	} else if (type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
		device->ops->cursor_move(device->data, index, x, y);
	}
}

static void process_queue(struct vgpu_device *device, unsigned index);

static void
resume_queue(void *data)
{
	struct vgpu_device *device = data;
	for (unsigned i = 0; i < 2; i++) {
		if (device->resume_idle[i] != NULL) {
			device->resume_idle[i] = NULL;
			process_queue(device, i);
		}
	}
}

static void
process_queue(struct vgpu_device *device, unsigned index)
{
	if (device->dev == NULL || index > CURSOR_QUEUE) {
		return;
	}
	uint64_t copied_before = device->stats.bytes_copied;
	for (int n = 0; n < BATCH_LIMIT; n++) {
		/* Also bounded by bytes copied, so huge transfers cannot stall the desktop. */
		if (device->stats.bytes_copied - copied_before > COPY_BUDGET_PER_TURN) {
			break;
		}
		struct vu_chain chain;
		int r = vu_dev_pop(device->dev, index, &chain);
		if (r <= 0) {
			/*
			 * A broken ring is halted and reported on the err fd by the
			 * vhost-user layer, like QEMU's NEEDS_RESET: the VM keeps
			 * running, the queue stays dead until the driver resets it.
			 */
			return;
		}
		if (index == CONTROL_QUEUE) {
			dispatch_control(device, &chain);
		} else {
			dispatch_cursor(device, &chain);
			vu_dev_push(device->dev, CURSOR_QUEUE, &chain, 0);
		}
		if (device->dev == NULL) {
			return; // a command made us drop the VMM
		}
	}
	/* More may be waiting: continue on the next loop turn, after other work. */
	if (device->resume_idle[index] == NULL) {
		device->resume_idle[index] = wl_event_loop_add_idle(device->loop, resume_queue, device);
	}
}

/* --- vhost-user device ops ----------------------------------------------------- */

static void reset_device_state(struct vgpu_device *device);

static bool
get_config(void *data, uint32_t offset, uint8_t *buf, uint32_t size)
{
	struct vgpu_device *device = data;
	if (device->rings_stopped && (device->resource_count > 0 || device->context_count > 0)) {
		vgpu_log(device, WLR_INFO, "guest driver restarted: dropping its resources");
		reset_device_state(device);
	}
	struct virtio_gpu_config config = {
		.events_read = htole32(device->events_read),
		.events_clear = 0,
		.num_scanouts = htole32(device->limits.num_scanouts),
		.num_capsets = htole32(num_capsets(device)),
	};
	if (offset > sizeof(config) || size > sizeof(config) - offset) {
		return false;
	}
	memcpy(buf, (const uint8_t *)&config + offset, size);
	return true;
}

static bool
set_config(void *data, uint32_t offset, const uint8_t *buf, uint32_t size)
{
	struct vgpu_device *device = data;
	/* Only events_clear is writable: write 1 to clear. */
	if (offset != offsetof(struct virtio_gpu_config, events_clear) || size != 4) {
		return false;
	}
	uint32_t clear;
	memcpy(&clear, buf, 4);
	device->events_read &= ~le32toh(clear);
	return true;
}

static void
features_set(void *data, uint64_t features)
{
	struct vgpu_device *device = data;
	device->features = features;
}

static void
queue_kicked(void *data, struct vu_dev *dev, unsigned index)
{
	struct vgpu_device *device = data;
	(void)dev;
	device->rings_stopped = false;
	process_queue(device, index);
}

static void
queue_stopped(void *data, struct vu_dev *dev, unsigned index)
{
	struct vgpu_device *device = data;
	(void)dev;
	if (index == CONTROL_QUEUE) {
		/*
		 * The ring is still mapped now, but not after: return every held
		 * response at once (an early fence beats a descriptor lost for good).
		 */
		struct pending_response *p;
		wl_list_for_each(p, &device->pending, link) {
			p->waiting_scanouts = 0;
		}
		release_polls(device, NULL); // also tells the engines their POLLs are gone
		device->rings_stopped = true;
	}
}

static void
close_gpu_socket(struct vgpu_device *device)
{
	if (device->gpu_socket_source != NULL) {
		wl_event_source_remove(device->gpu_socket_source);
		device->gpu_socket_source = NULL;
	}
	if (device->gpu_socket >= 0) {
		close(device->gpu_socket);
		device->gpu_socket = -1;
	}
}

/* crossway shows frames itself: the GPU socket stays silent; only EOF matters. */
static int
handle_gpu_socket(int fd, uint32_t mask, void *data)
{
	struct vgpu_device *device = data;
	char buf[256];
	ssize_t n = (mask & WL_EVENT_READABLE) ? read(fd, buf, sizeof(buf)) : 0;
	if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
		close_gpu_socket(device);
	}
	return 0;
}

static void
gpu_socket(void *data, int fd)
{
	struct vgpu_device *device = data;
	/* QEMU sends a new one at every DRIVER_OK: the old one is done. */
	close_gpu_socket(device);
	device->gpu_socket = fd;
	device->gpu_socket_source = wl_event_loop_add_fd(device->loop, fd, WL_EVENT_READABLE,
		handle_gpu_socket, device);
}

static void
connected(void *data, struct vu_dev *dev)
{
	struct vgpu_device *device = data;
	device->dev = dev;
	vgpu_log(device, WLR_INFO, "VMM connected");
	device->ops->connection_changed(device->data, true);
}

static void
reset_device_state(struct vgpu_device *device)
{
	drop_pending(device);
	for (unsigned i = 0; i < 2; i++) {
		if (device->resume_idle[i] != NULL) {
			wl_event_source_remove(device->resume_idle[i]);
			device->resume_idle[i] = NULL;
		}
	}
	destroy_all_contexts(device); // before the resources their rings are
	destroy_all_resources(device);
	close_gpu_socket(device);
	device->events_read = 0;
	device->rings_stopped = false;
}

static void
disconnected(void *data, struct vu_dev *dev)
{
	struct vgpu_device *device = data;
	(void)dev;
	struct vgpu_stats *st = &device->stats;
	/* Benchmarks read this line: what one VM session cost the host. */
	vgpu_log(device, WLR_INFO, "VMM disconnected; session stats: commands=%llu errors=%llu "
		"flushes=%llu bytes_copied=%llu", (unsigned long long)st->commands,
		(unsigned long long)st->errors, (unsigned long long)st->flushes,
		(unsigned long long)st->bytes_copied);
	device->stats = (struct vgpu_stats){0};
	reset_device_state(device);
	/* A new VM starts with the default display, not the last guest's mode. */
	for (unsigned i = 0; i < VGPU_MAX_SCANOUTS; i++) {
		device->scanouts[i].display_width = DEFAULT_WIDTH;
		device->scanouts[i].display_height = DEFAULT_HEIGHT;
	}
	device->dev = NULL;
	device->ops->connection_changed(device->data, false);
}

static const struct vu_device_ops device_ops = {
	/* QEMU 7.2 passes only EDID through; generic front ends get blobs too. */
	.device_features = (1ull << VIRTIO_GPU_F_EDID) | (1ull << VIRTIO_GPU_F_RESOURCE_BLOB) |
		(1ull << VIRTIO_GPU_F_RESOURCE_UUID),
	.protocol_features = 0,
	.num_queues = 2,
	.get_config = get_config,
	.set_config = set_config,
	.features_set = features_set,
	.queue_kicked = queue_kicked,
	.queue_stopped = queue_stopped,
	.gpu_socket = gpu_socket,
	.connected = connected,
	.disconnected = disconnected,
};

/* --- public API ---------------------------------------------------------------- */

static int
handle_present_timeout(void *data)
{
	struct vgpu_device *device = data;
	device->present_timer_armed = false;
	struct pending_response *p;
	wl_list_for_each(p, &device->pending, link) {
		p->waiting_scanouts = 0;
	}
	release_pending(device);
	return 0;
}

struct vgpu_device *
vgpu_device_create(struct wl_event_loop *loop, const char *name, const char *socket_path,
	const struct vgpu_limits *limits, const struct vgpu_display_ops *ops, void *data)
{
	if (limits->num_scanouts < 1 || limits->num_scanouts > VGPU_MAX_SCANOUTS) {
		wlr_log(WLR_ERROR, "[vm %s] %u scanouts: 1 to %d are possible", name,
			limits->num_scanouts, VGPU_MAX_SCANOUTS);
		return NULL;
	}
	struct vgpu_device *device = calloc(1, sizeof(*device));
	if (device == NULL) {
		return NULL;
	}
	device->name = strdup(name);
	device->loop = loop;
	device->limits = *limits;
	device->ops = ops;
	device->data = data;
	device->gpu_socket = -1;
	wl_list_init(&device->resources);
	wl_list_init(&device->contexts);
	wl_list_init(&device->pending);
	for (unsigned i = 0; i < VGPU_MAX_SCANOUTS; i++) {
		device->scanouts[i].display_width = DEFAULT_WIDTH;
		device->scanouts[i].display_height = DEFAULT_HEIGHT;
	}
	device->present_timer = wl_event_loop_add_timer(loop, handle_present_timeout, device);
	device->blob_budget = vgpu_blob_budget_create();
	if (device->name == NULL || device->present_timer == NULL || device->blob_budget == NULL) {
		vgpu_device_destroy(device);
		return NULL;
	}
	device->vu_ops = device_ops;
	if (limits->contexts) {
		/* Linux gates CONTEXT_INIT (and host blobs) on VIRGL: both are needed. */
		device->vu_ops.device_features |= (1ull << VIRTIO_GPU_F_VIRGL) |
			(1ull << VIRTIO_GPU_F_CONTEXT_INIT);
	}
	if (limits->config_events) {
		device->vu_ops.protocol_features |= 1ull << 5; // SLAVE_REQ: the back-end channel
	}
	device->server = vu_server_create(loop, socket_path, name, &device->vu_ops, device);
	if (device->server == NULL) {
		vgpu_device_destroy(device);
		return NULL;
	}
	return device;
}

void
vgpu_device_destroy(struct vgpu_device *device)
{
	if (device == NULL) {
		return;
	}
	/* Disconnects the VMM first: `disconnected` frees the device state. */
	vu_server_destroy(device->server);
	reset_device_state(device);
	if (device->present_timer != NULL) {
		wl_event_source_remove(device->present_timer);
	}
	vgpu_blob_budget_unref(device->blob_budget); // blobs still locked keep it
	free(device->name);
	free(device);
}

void
vgpu_device_set_display_size(struct vgpu_device *device, unsigned scanout, int width, int height)
{
	if (scanout >= device->limits.num_scanouts || width < 1 || height < 1 ||
			width > VGPU_MAX_RESOURCE_DIMENSION || height > VGPU_MAX_RESOURCE_DIMENSION) {
		return;
	}
	struct scanout *s = &device->scanouts[scanout];
	if (s->display_width == width && s->display_height == height) {
		return;
	}
	s->display_width = width;
	s->display_height = height;
	/*
	 * The guest reads it at its next GET_DISPLAY_INFO. The config event is
	 * set for front ends that forward config interrupts; QEMU 7.2's
	 * vhost-user-gpu cannot (it owns events_read and drops back-end
	 * config-change messages).
	 */
	device->events_read |= VIRTIO_GPU_EVENT_DISPLAY;
	if (device->dev != NULL && device->limits.config_events &&
			vu_dev_notify_config_change(device->dev)) {
		vgpu_log(device, WLR_DEBUG, "display %u is now %dx%d: config change sent", scanout,
			width, height);
	}
}

void
vgpu_device_frame_presented(struct vgpu_device *device, unsigned scanout)
{
	if (scanout >= VGPU_MAX_SCANOUTS) {
		return;
	}
	struct pending_response *p;
	wl_list_for_each(p, &device->pending, link) {
		p->waiting_scanouts &= ~(1u << scanout);
	}
	release_pending(device);
}

void
vgpu_device_get_stats(const struct vgpu_device *device, struct vgpu_stats *stats)
{
	*stats = device->stats;
	stats->resources = device->resource_count;
	stats->host_memory = device->host_memory;
}
