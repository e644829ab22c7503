/*
 * vmm: a vhost-user front end that behaves like QEMU 7.2 plus the Linux 6.1
 * virtio-gpu driver, for driving a vhost-user-gpu back end in tests.
 *
 * It is written from the protocol notes in shared/reference (vhost-user.md,
 * virtio-gpu.md, vhost-user-gpu-socket.md), independently from crossway's
 * own back end, so that a misreading on one side shows up as a failure.
 *
 * Layers, each usable on its own:
 *   vmm_mem    guest RAM: one memfd, several regions, a page allocator
 *   vmm_vring  a split virtqueue (driver side) living in guest RAM
 *   vmm_dev    the vhost-user connection: handshake phases A-E, kick/call,
 *              the GPU socket (optionally answered like QEMU) and fault hooks
 *   vmm_gpu    a virtio-gpu driver: commands, resources, fences, drawing
 *
 * Single-threaded. Functions returning int give 0 (or a documented positive
 * value) on success and -1 on failure, with the reason in vmm_dev_error()
 * (or vmm_vring_error() for ring-level calls).
 */
#ifndef CW_VMM_H
#define CW_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Guest memory                                                        */
/* ------------------------------------------------------------------ */

#define VMM_PAGE_SIZE 4096u
#define VMM_MAX_REGIONS 32u
/* region_hint value: no preference (largest regions are tried first). */
#define VMM_REGION_ANY (-1)
/* vmm_mem_alloc flag: the allocation may cross GPA-adjacent regions. */
#define VMM_ALLOC_SPAN 1u

struct vmm_region {
	uint64_t gpa;         /* guest-physical address */
	uint64_t size;
	uint64_t uaddr;       /* front-end user address (our own mapping) */
	uint64_t mmap_offset; /* offset of the region in the memfd */
};

struct vmm_mem;

/*
 * Creates `size` bytes of guest RAM in one memfd split into `nregions`
 * regions. 1 region: gpa 0, whole file. 2 regions: exactly QEMU's q35
 * layout (gpa 0 size 0xa0000 offset 0; gpa 0xc0000 offset 0xc0000 rest).
 * More: the part above 0xc0000 is cut into GPA-adjacent regions whose file
 * offsets are in reverse order, so that GPA, file offset and user address
 * differ for every region and a buffer can straddle two regions.
 * Returns NULL with errno set.
 */
struct vmm_mem *vmm_mem_new(uint64_t size, unsigned nregions);
void vmm_mem_free(struct vmm_mem *mem);
int vmm_mem_fd(const struct vmm_mem *mem);
unsigned vmm_mem_region_count(const struct vmm_mem *mem);
const struct vmm_region *vmm_mem_region(const struct vmm_mem *mem, unsigned i);

/* Host pointer for [gpa, gpa+len) if it lies inside one region, else NULL. */
void *vmm_mem_ptr(struct vmm_mem *mem, uint64_t gpa, uint64_t len);
/* Piecewise copies that may cross GPA-adjacent regions. -1 if unmapped. */
int vmm_mem_write(struct vmm_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int vmm_mem_read(struct vmm_mem *mem, uint64_t gpa, void *dst, uint64_t len);
int vmm_mem_gpa_to_uaddr(const struct vmm_mem *mem, uint64_t gpa, uint64_t *uaddr);
/* An address range that no region covers, for "outside RAM" faults. */
uint64_t vmm_mem_hole_gpa(const struct vmm_mem *mem);
uint64_t vmm_mem_hole_uaddr(const struct vmm_mem *mem);

/*
 * Allocates whole zeroed pages; the region named by region_hint is tried
 * first. Returns 0 and the GPA, or -1 (ENOMEM) when nothing fits.
 */
int vmm_mem_alloc(struct vmm_mem *mem, uint64_t size, int region_hint,
		unsigned flags, uint64_t *gpa);
void vmm_mem_release(struct vmm_mem *mem, uint64_t gpa, uint64_t size);
uint64_t vmm_mem_pages_in_use(const struct vmm_mem *mem);

/* ------------------------------------------------------------------ */
/* Split virtqueue, driver side                                        */
/* ------------------------------------------------------------------ */

struct vmm_vring;

/* One buffer of a chain; readable buffers must come before writable ones. */
struct vmm_vbuf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/* A descriptor written verbatim by the fault hooks; `next` is an index
 * into the caller's array (remapped to the real descriptor index). */
struct vmm_rawdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/*
 * Allocates a ring of `num` entries (power of two) laid out like Linux:
 * desc at +0, avail at +16*num, used 64-byte aligned after the avail ring.
 */
struct vmm_vring *vmm_vring_new(struct vmm_mem *mem, unsigned index,
		unsigned num, int region_hint);
void vmm_vring_free(struct vmm_vring *vr);
void vmm_vring_set_features(struct vmm_vring *vr, bool indirect, bool event_idx);
const char *vmm_vring_error(const struct vmm_vring *vr);

unsigned vmm_vring_index(const struct vmm_vring *vr);
unsigned vmm_vring_num(const struct vmm_vring *vr);
unsigned vmm_vring_num_free(const struct vmm_vring *vr);
uint64_t vmm_vring_desc_gpa(const struct vmm_vring *vr);
uint64_t vmm_vring_avail_gpa(const struct vmm_vring *vr);
uint64_t vmm_vring_used_gpa(const struct vmm_vring *vr);
uint16_t vmm_vring_avail_idx(const struct vmm_vring *vr); /* published */
uint16_t vmm_vring_used_idx(const struct vmm_vring *vr);  /* device's */
uint16_t vmm_vring_last_used(const struct vmm_vring *vr); /* consumed */
unsigned vmm_vring_in_flight(const struct vmm_vring *vr);

/*
 * Adds a chain and publishes it in the avail ring (no kick). With INDIRECT
 * negotiated and more than one buffer the chain goes into an indirect table,
 * as Linux does. `token` is returned by vmm_vring_pop_used.
 */
int vmm_vring_add(struct vmm_vring *vr, const struct vmm_vbuf *bufs,
		unsigned n, void *token);
/* Fault hooks: descriptors written verbatim (loops, bad flags...). */
int vmm_vring_add_raw(struct vmm_vring *vr, const struct vmm_rawdesc *d,
		unsigned n, uint32_t writable, void *token);
/* One INDIRECT descriptor whose `len` is table_len, whatever n is. */
int vmm_vring_add_indirect_raw(struct vmm_vring *vr,
		const struct vmm_rawdesc *table, unsigned n, uint32_t table_len,
		uint32_t writable, void *token);
/* True if the device asked to be kicked (avail_event or NO_NOTIFY). */
bool vmm_vring_kick_prepare(struct vmm_vring *vr);
/* 1: one entry returned; 0: nothing new; -1: the device broke the ring. */
int vmm_vring_pop_used(struct vmm_vring *vr, void **token, uint32_t *len);
/* Publishes used_event (EVENT_IDX); true if more entries are already there. */
bool vmm_vring_enable_cb(struct vmm_vring *vr);
/* Ask for no interrupts at all (polling), or for every one again. */
void vmm_vring_disable_cb(struct vmm_vring *vr);

/* ------------------------------------------------------------------ */
/* vhost-user device                                                   */
/* ------------------------------------------------------------------ */

enum vmm_profile {
	/* vhost-user-gpu-pci of QEMU 7.2 with a Linux 6.1 guest: only VIRGL
	 * and EDID pass through, ring features are forced by properties. */
	VMM_PROFILE_QEMU72,
	/* A generic front end: every virtio-gpu bit the driver knows
	 * (including RESOURCE_BLOB, RESOURCE_UUID, CONTEXT_INIT) and the ring
	 * features are negotiated against what the back end offers. */
	VMM_PROFILE_GENERIC,
};

/* Plays QEMU's side of the GPU socket (vhost-user-gpu-socket.md). */
struct vmm_gpu_socket_peer {
	bool enabled;
	uint64_t protocol_features; /* GET_PROTOCOL_FEATURES answer (7.2: 0) */
	unsigned num_outputs;       /* enabled entries in GET_DISPLAY_INFO */
	uint32_t width, height;     /* their size (QEMU default 1280x800) */
};

/* Which virtio device the vhost-user back end serves. */
enum vmm_device_kind {
	VMM_DEVICE_GPU,   /* vhost-user-gpu-pci (device id 16) */
	VMM_DEVICE_INPUT, /* vhost-user-input-pci (device id 18), see vmm_input */
};

struct vmm_config {
	enum vmm_profile profile;
	enum vmm_device_kind device; /* default GPU; see vmm_config_set_device */
	uint64_t mem_size;           /* default 512 MiB */
	unsigned nregions;           /* default 2 (QEMU layout) */
	/* Queue 0 and 1 sizes: GPU ctrlq/cursorq, input eventq/statusq. */
	unsigned ctrl_queue_size;    /* default 64 (QEMU uses 256 with VIRGL) */
	unsigned cursor_queue_size;  /* default 16 (input: 64) */
	/* Device properties (qemu72) or driver support (generic). */
	bool indirect_desc, event_idx, queue_reset, edid;
	unsigned max_outputs;        /* QEMU overrides num_scanouts (qemu72) */
	unsigned force_num_scanouts; /* generic: override the back end's value */
	uint64_t features_add;       /* forced into SET_FEATURES */
	uint64_t features_del;       /* removed from SET_FEATURES */
	uint64_t protocol_mask;      /* protocol features we accept */
	int timeout_ms;              /* replies and command completions */
	bool span_buffers;           /* command buffers straddle regions */
	bool span_backing;           /* resource backing (mem entries) too */
	bool trace;                  /* log every vhost-user message */
	/* GPU_SET_SOCKET at DRIVER_OK: always with qemu72; a generic front
	 * end (vhost-user-device, crosvm) has no such socket. */
	bool gpu_socket;
	struct vmm_gpu_socket_peer gpu_peer;
};

void vmm_config_init(struct vmm_config *cfg, enum vmm_profile profile);
/* Switches an initialised config to another device: its queue sizes, no
 * GPU socket, no device feature bits of another device. */
void vmm_config_set_device(struct vmm_config *cfg, enum vmm_device_kind device);

/* Device configuration space (virtio-gpu.md §1), host byte order. */
struct vmm_gpu_config {
	uint32_t events_read, events_clear, num_scanouts, num_capsets;
};

/* GPU socket requests (back end -> front end), vhost-user-gpu-socket.md §3. */
enum {
	VMM_GPU_MSG_GET_PROTOCOL_FEATURES = 1,
	VMM_GPU_MSG_SET_PROTOCOL_FEATURES,
	VMM_GPU_MSG_GET_DISPLAY_INFO,
	VMM_GPU_MSG_CURSOR_POS,
	VMM_GPU_MSG_CURSOR_POS_HIDE,
	VMM_GPU_MSG_CURSOR_UPDATE,
	VMM_GPU_MSG_SCANOUT,
	VMM_GPU_MSG_UPDATE,
	VMM_GPU_MSG_DMABUF_SCANOUT,
	VMM_GPU_MSG_DMABUF_UPDATE,
	VMM_GPU_MSG_GET_EDID,
	VMM_GPU_MSG_DMABUF_SCANOUT2,
	VMM_GPU_MSG_MAX, /* counts of unknown requests go to index 0 */
};

struct vmm_gpu_socket_stats {
	uint64_t msgs[VMM_GPU_MSG_MAX]; /* per request code; [0] = unknown */
	uint64_t bytes;                 /* including headers */
	uint64_t fds;                   /* received (and closed) */
	uint64_t replies;               /* sent by the peer */
	uint64_t errors;                /* malformed or 7.2-fatal messages */
	uint64_t sockets;               /* GPU_SET_SOCKET sent so far */
	bool eof;                       /* back end closed its end */
	char last_error[160];
};

struct vmm_dev_stats {
	uint64_t messages_sent, replies_received;
	uint64_t kicks, kicks_suppressed;
	uint64_t calls[2];              /* interrupts seen per queue */
	uint64_t calls_forwarded;       /* pending on a call fd when replaced */
	uint64_t stale_calls[2];        /* signals on replaced call fds (lost) */
	uint64_t err_signals[2];        /* SET_VRING_ERR fds signalled */
	uint64_t slave_requests;        /* back-end request channel */
	uint64_t late_used_writes;      /* used ring touched after GET_VRING_BASE */
	uint16_t vring_base[2];         /* last GET_VRING_BASE answers */
};

/* Receives events the GPU driver layer (or a test) wants to see. */
struct vmm_dev_listener {
	/* A complete message arrived on the GPU socket. */
	void (*gpu_socket_msg)(void *data, uint32_t request,
			const uint8_t *payload, uint32_t size);
	/* Rings were reset or the connection dropped: in-flight buffers are
	 * abandoned and the device lost its state, as for a guest reset. */
	void (*device_reset)(void *data);
	void *data;
};

/* A raw vhost-user message (header fields plus payload and fds). */
struct vmm_msg {
	uint32_t request, flags, size;
	uint8_t payload[4096];
	int fds[8];
	unsigned nfds;
};

struct vmm_dev;

struct vmm_dev *vmm_dev_new(const struct vmm_config *cfg);
/* A second device of the same VM: QEMU gives every vhost-user back end the
 * same guest RAM. `mem` is borrowed and must outlive the device (its page
 * allocator is shared too); NULL makes a new one as vmm_dev_new does. */
struct vmm_dev *vmm_dev_new_with_mem(const struct vmm_config *cfg, struct vmm_mem *mem);
void vmm_dev_free(struct vmm_dev *dev);
const char *vmm_dev_error(const struct vmm_dev *dev);
const struct vmm_config *vmm_dev_config(const struct vmm_dev *dev);
struct vmm_mem *vmm_dev_mem(struct vmm_dev *dev);
void vmm_dev_set_listener(struct vmm_dev *dev, const struct vmm_dev_listener *l);

/* Connects to a listening back end, retrying until timeout_ms. */
int vmm_dev_connect(struct vmm_dev *dev, const char *path, int timeout_ms);
int vmm_dev_connect_fd(struct vmm_dev *dev, int fd); /* takes the fd */
/* §10.1 A: features, protocol features, queues, slots, owner, call/err. */
int vmm_dev_realize(struct vmm_dev *dev);
/* §10.1 B: GET_CONFIG twice, as the guest driver probes. An input device's
 * probe is its driver's business (vmm_input_probe): here it is only marked
 * as done. */
int vmm_dev_probe(struct vmm_dev *dev);
/* §10.1 C: GPU socket, features, memory, rings, enable, call fds. Runs B
 * first if it has not run since the last reset. New rings if none. */
int vmm_dev_driver_ok(struct vmm_dev *dev);
/* §10.1 D: close GPU socket, disable, GET_VRING_BASE, new call fds. */
int vmm_dev_reset(struct vmm_dev *dev);
/* §10.1 E: reset (if running), GET_CONFIG x2, C with new ring addresses. */
int vmm_dev_rebind(struct vmm_dev *dev);
/* Close the vhost-user socket at once ("the VMM died"). */
void vmm_dev_disconnect(struct vmm_dev *dev);
/* Connect to the same path again and run A. */
int vmm_dev_reconnect(struct vmm_dev *dev, int timeout_ms);
/* A GET_FEATURES round trip: is the back end still answering? */
int vmm_dev_ping(struct vmm_dev *dev);
/* 0 once the back end closed the connection, -1 on timeout. */
int vmm_dev_wait_disconnect(struct vmm_dev *dev, int timeout_ms);

bool vmm_dev_connected(const struct vmm_dev *dev);
bool vmm_dev_running(const struct vmm_dev *dev);
uint64_t vmm_dev_backend_features(const struct vmm_dev *dev);
uint64_t vmm_dev_features(const struct vmm_dev *dev);  /* SET_FEATURES */
uint64_t vmm_dev_backend_protocol_features(const struct vmm_dev *dev);
uint64_t vmm_dev_protocol_features(const struct vmm_dev *dev);
uint64_t vmm_dev_max_queues(const struct vmm_dev *dev);
uint64_t vmm_dev_max_mem_slots(const struct vmm_dev *dev);
/* What the guest sees (QEMU's overrides applied) and what the back end said. */
const struct vmm_gpu_config *vmm_dev_gpu_config(const struct vmm_dev *dev);
const struct vmm_gpu_config *vmm_dev_backend_config(const struct vmm_dev *dev);
const struct vmm_dev_stats *vmm_dev_stats(const struct vmm_dev *dev);
const struct vmm_gpu_socket_stats *vmm_dev_gpu_socket_stats(const struct vmm_dev *dev);
bool vmm_dev_has_feature(const struct vmm_dev *dev, unsigned bit);

/* The rings of the running device (NULL before DRIVER_OK). */
struct vmm_vring *vmm_dev_vring(struct vmm_dev *dev, unsigned q);
/* Kick queue q if the device wants it (avail_event / NO_NOTIFY). */
int vmm_dev_kick(struct vmm_dev *dev, unsigned q);
/* 1: queue q got an interrupt; 0: timeout; -1: error. Services the GPU
 * socket, the back-end channel and the err fds meanwhile. */
int vmm_dev_wait_call(struct vmm_dev *dev, unsigned q, int timeout_ms);
/* 1: fd readable; 0: timeout; -1 error. Same servicing. fd may be -1. */
int vmm_dev_wait_fd(struct vmm_dev *dev, int fd, int timeout_ms);
/* Reads whatever the GPU socket has; 0 or -1. */
int vmm_dev_service(struct vmm_dev *dev);

/*
 * Config space as QEMU forwards guest accesses: GET_CONFIG / SET_CONFIG with
 * this offset and size (flags 0). SET_CONFIG carries NEED_REPLY when
 * REPLY_ACK is negotiated, as QEMU's vhost_user_set_config does, and a
 * refusal (ack != 0) fails. The reply to GET_CONFIG must have exactly the
 * size asked for.
 */
int vmm_dev_get_config(struct vmm_dev *dev, uint32_t offset, void *buf, uint32_t size);
int vmm_dev_set_config(struct vmm_dev *dev, uint32_t offset, const void *buf,
		uint32_t size);

/* Fault hooks. */
int vmm_dev_send_raw(struct vmm_dev *dev, uint32_t request, uint32_t flags,
		const void *payload, uint32_t size, const int *fds, unsigned nfds);
/* Reads one message of any kind (no checks); fds are the caller's. */
int vmm_dev_recv_raw(struct vmm_dev *dev, struct vmm_msg *msg, int timeout_ms);
/* SET_VRING_ADDR with arbitrary user addresses, NEED_REPLY when REPLY_ACK
 * is negotiated. Returns the ack (0 ok, >0 nack), 0 without REPLY_ACK. */
int vmm_dev_set_vring_addr_raw(struct vmm_dev *dev, unsigned q,
		uint64_t desc, uint64_t used, uint64_t avail, uint64_t *ack);
const char *vmm_vhost_request_name(uint32_t request);

/* ------------------------------------------------------------------ */
/* virtio-gpu driver                                                   */
/* ------------------------------------------------------------------ */

enum { VMM_GPU_CTRLQ = 0, VMM_GPU_CURSORQ = 1 };

/* Options for one command; NULL means unfenced and synchronous. */
struct vmm_gpu_opts {
	bool fence;             /* FLAG_FENCE with fence_id */
	uint64_t fence_id;
	uint32_t ctx_id;
	bool ring_idx_flag;     /* FLAG_INFO_RING_IDX with ring_idx */
	uint8_t ring_idx;
	bool nowait;            /* submit only; see vmm_gpu_wait_fence */
};

struct vmm_gpu_cmd;
struct vmm_gpu;

struct vmm_gpu_display {
	uint32_t x, y, width, height, enabled, flags;
};

enum vmm_pattern_kind {
	VMM_PATTERN_SOLID,     /* one colour */
	VMM_PATTERN_QUADRANTS, /* red, green / blue, white */
	VMM_PATTERN_COORDS,    /* a different colour for every pixel */
};

struct vmm_pattern {
	enum vmm_pattern_kind kind;
	uint32_t rgb; /* SOLID: 0xRRGGBB */
};

struct vmm_gpu_stats {
	uint64_t commands, responses, errors; /* errors: ERR_* responses */
	uint64_t fences_done, fence_order_violations;
	uint64_t updates_ok, updates_bad, scanouts_ok, scanouts_bad;
	uint64_t updates_unchecked; /* size-checked only (verification off) */
	uint64_t cursors_ok, cursors_bad;
	char last_update[160];  /* result of the latest UPDATE check */
	char last_scanout[160]; /* ... SCANOUT check */
	char last_cursor[160];  /* ... CURSOR_* check */
};

/* Malformed chains carrying a GET_DISPLAY_INFO, for robustness tests. */
enum vmm_gpu_fault {
	VMM_FAULT_DESC_LOOP,        /* two descriptors chained to each other */
	VMM_FAULT_INDIRECT_BADLEN,  /* indirect table len = arg (default 17) */
	VMM_FAULT_INDIRECT_LOOP,    /* loop inside an indirect table */
	VMM_FAULT_DESC_OUTSIDE,     /* command buffer outside guest RAM */
	VMM_FAULT_NEXT_RANGE,       /* next index beyond the ring size */
	VMM_FAULT_LEN_HUGE,         /* 4 GiB - 1 byte command buffer */
};

struct vmm_gpu *vmm_gpu_new(struct vmm_dev *dev);
void vmm_gpu_free(struct vmm_gpu *gpu);
const struct vmm_gpu_stats *vmm_gpu_stats(const struct vmm_gpu *gpu);
/*
 * Pixel verification of GPU-socket UPDATE and CURSOR_UPDATE payloads (on by
 * default). Off, they are still size-checked and counted (updates_unchecked),
 * so that benchmarks do not measure our comparison loops.
 */
void vmm_gpu_set_verify(struct vmm_gpu *gpu, bool on);

/*
 * Generic submission: the command in one readable buffer, `extra` (if any)
 * in a second readable buffer, the response in a writable buffer of
 * resp_len bytes (none on the cursor queue, like Linux).
 * Returns the response type (0x1100...), 0 for a cursor command or a
 * nowait submission, -1 on a protocol error or timeout.
 */
int vmm_gpu_exec(struct vmm_gpu *gpu, unsigned queue, const void *cmd,
		size_t cmd_len, const void *extra, size_t extra_len,
		void *resp, size_t resp_len, const struct vmm_gpu_opts *opts);
/* Waits for a nowait command by fence id; returns its response type. */
int vmm_gpu_wait_fence(struct vmm_gpu *gpu, uint64_t fence_id, int timeout_ms);
/* Waits for every outstanding command. */
int vmm_gpu_wait_all(struct vmm_gpu *gpu, int timeout_ms);
unsigned vmm_gpu_in_flight(const struct vmm_gpu *gpu);
/* Frees answered nowait commands without a fence (nothing can wait for
 * them by id), as a streaming submitter must; returns how many. */
unsigned vmm_gpu_collect(struct vmm_gpu *gpu);

/* Typed commands; each returns the response type or -1 (see exec). */
int vmm_gpu_get_display_info(struct vmm_gpu *gpu,
		struct vmm_gpu_display out[16], const struct vmm_gpu_opts *o);
int vmm_gpu_get_edid(struct vmm_gpu *gpu, uint32_t scanout,
		uint8_t edid[1024], uint32_t *size, const struct vmm_gpu_opts *o);
int vmm_gpu_resource_create_2d(struct vmm_gpu *gpu, uint32_t id,
		uint32_t format, uint32_t width, uint32_t height,
		const struct vmm_gpu_opts *o);
/* Allocates stride*height bytes of guest pages as `nents` entries (0: as
 * few as possible) and sends ATTACH_BACKING. */
int vmm_gpu_attach_backing(struct vmm_gpu *gpu, uint32_t id, unsigned nents,
		const struct vmm_gpu_opts *o);
int vmm_gpu_detach_backing(struct vmm_gpu *gpu, uint32_t id,
		const struct vmm_gpu_opts *o);
int vmm_gpu_transfer_to_host_2d(struct vmm_gpu *gpu, uint32_t id,
		uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		const struct vmm_gpu_opts *o);
int vmm_gpu_set_scanout(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		uint32_t x, uint32_t y, uint32_t w, uint32_t h,
		const struct vmm_gpu_opts *o);
int vmm_gpu_resource_flush(struct vmm_gpu *gpu, uint32_t id, uint32_t x,
		uint32_t y, uint32_t w, uint32_t h, const struct vmm_gpu_opts *o);
int vmm_gpu_resource_unref(struct vmm_gpu *gpu, uint32_t id,
		const struct vmm_gpu_opts *o);
/* GUEST blob with SHAREABLE, backed like vmm_gpu_attach_backing. */
int vmm_gpu_resource_create_blob(struct vmm_gpu *gpu, uint32_t id,
		uint32_t format, uint32_t width, uint32_t height, unsigned nents,
		const struct vmm_gpu_opts *o);
int vmm_gpu_set_scanout_blob(struct vmm_gpu *gpu, uint32_t scanout,
		uint32_t id, const struct vmm_gpu_opts *o);
int vmm_gpu_assign_uuid(struct vmm_gpu *gpu, uint32_t id, uint8_t uuid[16],
		const struct vmm_gpu_opts *o);
int vmm_gpu_update_cursor(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		uint32_t x, uint32_t y, uint32_t hot_x, uint32_t hot_y);
int vmm_gpu_move_cursor(struct vmm_gpu *gpu, uint32_t scanout, uint32_t id,
		uint32_t x, uint32_t y);

/*
 * Submits a malformed chain on the control queue and waits up to timeout.
 * Returns 1 if the device gave the chain back (used_len and resp_type set,
 * no checks), 0 if it did not answer, -1 on a ring-level violation.
 */
int vmm_gpu_inject(struct vmm_gpu *gpu, enum vmm_gpu_fault fault, uint32_t arg,
		int timeout_ms, uint32_t *used_len, uint32_t *resp_type);

/* Resource bookkeeping (what the guest driver knows). */
uint32_t vmm_gpu_next_resource_id(struct vmm_gpu *gpu);
bool vmm_gpu_resource_exists(const struct vmm_gpu *gpu, uint32_t id);
unsigned vmm_gpu_resource_entries(const struct vmm_gpu *gpu, uint32_t id);
bool vmm_gpu_resource_size(const struct vmm_gpu *gpu, uint32_t id, uint32_t *w,
		uint32_t *h);
uint32_t vmm_gpu_scanout_resource(const struct vmm_gpu *gpu, uint32_t scanout);
/* Writes the pattern into the resource's guest backing. */
int vmm_gpu_draw(struct vmm_gpu *gpu, uint32_t id, const struct vmm_pattern *p);
/* The pixel the pattern gives at (x, y) in a w x h image, as ARGB. */
uint32_t vmm_pattern_pixel(const struct vmm_pattern *p, uint32_t x,
		uint32_t y, uint32_t w, uint32_t h);
int vmm_pattern_parse(const char *text, struct vmm_pattern *p);

const char *vmm_gpu_cmd_name(uint32_t type);
const char *vmm_gpu_resp_name(uint32_t type);

/* ------------------------------------------------------------------ */
/* virtio-input driver                                                 */
/* ------------------------------------------------------------------ */

/*
 * The Linux 6.1 virtio_input driver behind QEMU 7.2's vhost-user-input-pci,
 * on a vmm_dev made with device VMM_DEVICE_INPUT. Config accesses are what
 * QEMU forwards (virtio-pci modern): every guest config read is one
 * GET_CONFIG of the whole 136 bytes, every guest byte write is one
 * SET_CONFIG of QEMU's whole config buffer (the last read, with that byte
 * changed). Events arrive in 8-byte device-writable buffers on queue 0 and
 * are taken after an interrupt (call fd), each buffer re-posted at once;
 * status events go out in 8-byte device-readable buffers on queue 1.
 */

enum { VMM_INPUT_EVENTQ = 0, VMM_INPUT_STATUSQ = 1 };

#define VMM_INPUT_CONFIG_SIZE 136u
#define VMM_INPUT_MAX_BUFFERS 64u  /* Linux's evts[64] */
#define VMM_INPUT_EV_MAX 0x20u     /* EV_CNT */
#define VMM_INPUT_ABS_MAX 0x40u    /* ABS_CNT */

/* Config selectors (virtio 1.2 §5.8.4). */
enum {
	VMM_INPUT_CFG_UNSET = 0x00,
	VMM_INPUT_CFG_ID_NAME = 0x01,
	VMM_INPUT_CFG_ID_SERIAL = 0x02,
	VMM_INPUT_CFG_ID_DEVIDS = 0x03,
	VMM_INPUT_CFG_PROP_BITS = 0x10,
	VMM_INPUT_CFG_EV_BITS = 0x11,
	VMM_INPUT_CFG_ABS_INFO = 0x12,
};

struct vmm_input_event {
	uint16_t type, code;
	uint32_t value;
};

struct vmm_input_absinfo {
	uint32_t min, max, fuzz, flat, res;
};

/* What the driver learnt while probing, as Linux keeps it. */
struct vmm_input_info {
	char name[65], serial[65];     /* Linux reads at most 64 bytes */
	uint8_t name_size, serial_size; /* as the device announced */
	bool has_devids;
	uint16_t bustype, vendor, product, version;
	uint8_t prop_size;
	uint8_t props[128];
	bool rep;                       /* EV_BITS/EV_REP has a size */
	uint8_t ev_size[VMM_INPUT_EV_MAX]; /* 0: type not offered */
	uint8_t ev_bits[VMM_INPUT_EV_MAX][128];
	bool abs_valid[VMM_INPUT_ABS_MAX];
	struct vmm_input_absinfo abs[VMM_INPUT_ABS_MAX];
};

struct vmm_input_stats {
	uint64_t config_reads, config_writes; /* GET_CONFIG / SET_CONFIG sent */
	uint64_t events;                      /* read from used buffers */
	uint64_t bad_len;                     /* used len != 8 on an event buffer */
	uint64_t reposted;
	uint64_t status_sent, status_done;
	uint64_t fault_buffers_returned;
	uint64_t fault_violations;            /* the device wrote where it must not */
	char last_fault[160];                 /* what happened to the latest one */
};

/* Malformed buffers for the event queue (the device must survive them). */
enum vmm_input_fault {
	VMM_INPUT_FAULT_READABLE, /* an 8-byte device-readable buffer */
	VMM_INPUT_FAULT_SHORT,    /* a 4-byte device-writable buffer */
};

struct vmm_input_listener {
	/* An event was taken from the event queue (already re-posted). */
	void (*event)(void *data, const struct vmm_input_event *ev);
	/* A fault buffer came back; stats.last_fault says how. */
	void (*fault_returned)(void *data, enum vmm_input_fault kind, uint32_t len);
	void *data;
};

struct vmm_input;

struct vmm_input *vmm_input_new(struct vmm_dev *dev);
void vmm_input_free(struct vmm_input *in);
void vmm_input_set_listener(struct vmm_input *in, const struct vmm_input_listener *l);
const struct vmm_input_info *vmm_input_info(const struct vmm_input *in);
const struct vmm_input_stats *vmm_input_stats(const struct vmm_input *in);

/* Linux's probe: ID_NAME, ID_SERIAL, ID_DEVIDS, PROP_BITS, EV_BITS (EV_REP
 * size, then KEY REL ABS MSC SW LED SND), ABS_INFO for every axis set. */
int vmm_input_probe(struct vmm_input *in);
/* One select/subsel as the driver writes it; returns the size byte. */
int vmm_input_select(struct vmm_input *in, uint8_t select, uint8_t subsel);
/* DRIVER_OK (probing first if needed), then `nbufs` event buffers posted
 * and kicked (Linux: the queue size, at most 64). */
int vmm_input_start(struct vmm_input *in, unsigned nbufs);
/* Posts more event buffers (after a stall, or after a fault buffer). */
int vmm_input_post(struct vmm_input *in, unsigned nbufs);
/* Off: used buffers are read but not given back, a guest that stops
 * taking events once its buffers are gone. On: re-posts what was held. */
int vmm_input_set_repost(struct vmm_input *in, bool on);
/* Device reset (vhost-user.md §10.1 D): every buffer is abandoned. */
int vmm_input_reset(struct vmm_input *in);
/*
 * Waits up to timeout_ms for an interrupt on either queue and takes what
 * the device returned. 1: something was taken; 0: nothing; -1: error,
 * including a used ring that moved without an interrupt (QEMU would not
 * have told the guest).
 */
int vmm_input_wait(struct vmm_input *in, int timeout_ms);
/* Sends a status event (EV_LED...) and waits until the device returns it. */
int vmm_input_send_status(struct vmm_input *in, const struct vmm_input_event *ev);
/* Posts a malformed buffer on the event queue and kicks. */
int vmm_input_inject(struct vmm_input *in, enum vmm_input_fault kind);
/* Event buffers the device holds now. */
unsigned vmm_input_posted(const struct vmm_input *in);

/* "EV_KEY" ..., or NULL for types without a name. */
const char *vmm_input_type_name(uint16_t type);
/* Parses "EV_KEY" or a number. -1 if neither. */
int vmm_input_type_parse(const char *text, uint16_t *type);

#endif
