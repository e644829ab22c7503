/*
 * cw-vmm: drives a vhost-user-gpu back end the way QEMU 7.2 and a Linux
 * guest would, one scripted step at a time, printing one result line per
 * step. Built on the vmm library (vmm.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_gpu.h>

#include "vmm.h"

#define PROG "cw-vmm"
#define CURSOR_SIZE 64u
#define FAULT_TIMEOUT_MS 1000
/* Longest a wait on stdin or a timer delays taking input events. */
#define PUMP_SLICE_MS 10

/* Two halves: ISO C only promises 4095-character string literals. */
static const char usage_options[] =
"usage: " PROG " [--socket PATH] [--input-socket PATH] [OPTIONS] STEP [ARGS]...\n"
"\n"
"Acts as a VMM (QEMU 7.2's vhost-user-gpu-pci and vhost-user-input-pci)\n"
"plus the guest's virtio-gpu and virtio_input drivers towards the\n"
"vhost-user back ends listening on PATH. Steps run in order; each prints\n"
"one line (display-info: one per enabled scanout). The exit status is 1 at\n"
"the first failing step, 2 for usage errors.\n"
"\n"
"Options:\n"
"  --socket PATH          vhost-user-gpu socket of the back end\n"
"  --input-socket PATH    vhost-user-input socket (same VM: same guest RAM)\n"
"                         at least one of the two is required\n"
"  --profile qemu72|generic\n"
"                         qemu72 (default): only VIRGL/EDID pass through,\n"
"                         ring features forced; generic: also RESOURCE_BLOB,\n"
"                         RESOURCE_UUID, CONTEXT_INIT, all as offered\n"
"  --regions N            guest RAM regions (default 2, QEMU's q35 layout)\n"
"  --mem MIB              guest RAM size (default 512)\n"
"  --span[=buffers|backing]  place multi-page command buffers and/or resource\n"
"                         backing across GPA-adjacent regions (needs N>2)\n"
"  --timeout MS           reply/command timeout (default 5000)\n"
"  --gpu-peer[=WxH]       answer the GPU socket as QEMU does (display size\n"
"                         default 1280x800); without it, it is only read\n"
"  --gpu-socket --no-gpu-socket   send GPU_SET_SOCKET at DRIVER_OK (default:\n"
"                         qemu72 yes, generic no; --gpu-peer implies yes)\n"
"  --gpu-peer-edid        the peer also offers the EDID socket feature (8.1+)\n"
"  --max-outputs N        num_scanouts QEMU reports (qemu72, default 1)\n"
"  --num-scanouts N       generic: override the back end's num_scanouts\n"
"  --ctrl-size N --cursor-size N   queue sizes (default 64, 16)\n"
"  --no-indirect --no-event-idx --no-queue-reset --no-edid\n"
"                         device properties off (like event_idx=off ...)\n"
"  --features-add HEX --features-del HEX   edit SET_FEATURES\n"
"  --protocol-mask HEX    protocol features we accept\n"
"  --trace                log every vhost-user message to stderr\n"
"\n";

static const char usage_steps[] =
"Handshake steps (vhost-user.md §10.1):\n"
"  connect [MS]           connect (retrying up to MS) and realize (A)\n"
"  probe                  GET_CONFIG twice (B)\n"
"  driver-ok              DRIVER_OK burst (C); probes first if needed\n"
"  reset                  device reset (D)\n"
"  rebind                 reset if running, probe, DRIVER_OK with new rings (E)\n"
"  kill                   close the vhost-user socket at once\n"
"  reconnect [MS]         connect again to PATH and realize\n"
"  expect-disconnect [MS] succeed once the back end closes the connection\n"
"  ping                   GET_FEATURES round trip\n"
"\n"
"virtio-gpu steps (options: --scanout N --id ID --format F --entries K\n"
"--pattern quadrants|coords|solid:RRGGBB --fence ID (no wait; see wait-fence)\n"
"--expect ok|err|any|0xCODE, default ok):\n"
"  display-info           GET_DISPLAY_INFO: 'display-info 0: 1280x800 enabled'\n"
"  edid [SCANOUT]         GET_EDID\n"
"  scanout W H            create a 2D resource, back it, draw, transfer,\n"
"                         set scanout, flush\n"
"  blob-scanout W H       the same with a GUEST blob and SET_SCANOUT_BLOB\n"
"  create W H | attach | draw | transfer [X Y W H] | set-scanout [X Y W H]\n"
"  flush [X Y W H]        transfer (unless --no-transfer) and flush\n"
"  disable-scanout | unref | detach | uuid\n"
"  cursor X Y             first time: cursor resource + UPDATE_CURSOR;\n"
"                         then MOVE_CURSOR\n"
"  cursor-hide            MOVE_CURSOR with resource 0\n"
"  wait-fence ID [MS]     wait for a --fence command: 'fence 7 done'\n"
"  wait-all [MS]          wait for every outstanding command\n"
"  frames N [X Y W H]     N timed cycles of TRANSFER_TO_HOST_2D (not waited\n"
"                         for, as Linux) + fenced RESOURCE_FLUSH of the rect\n"
"                         (default: whole resource); --depth K cycles in\n"
"                         flight (default 1); --unfenced: unfenced flushes,\n"
"                         each waited for; --no-verify: count GPU-socket\n"
"                         frames without comparing pixels; --fence ID: first\n"
"                         fence (default: after the highest used so far)\n"
"\n"
"GPU socket checks (against what was drawn, transferred and set):\n"
"  expect-update [MS]     wait for UPDATEs newer than the last check and show\n"
"                         the latest (every UPDATE is compared on arrival\n"
"                         and a mismatch fails the step it arrives in)\n"
"  expect-scanout [MS]    the same for SCANOUT\n"
"  expect-cursor [MS]     ... for CURSOR_POS/CURSOR_POS_HIDE/CURSOR_UPDATE\n"
"  gpu-stats              counts of GPU-socket messages\n"
"\n"
"Faults (the step succeeds if the back end is still answering afterwards,\n"
"or with --expect closed if it closed the connection):\n"
"  fault ring-outside [Q]       SET_VRING_ADDR outside guest RAM, then kick\n"
"  fault desc-loop | indirect-loop | desc-outside | next-range | len-huge\n"
"  fault indirect-badlen [LEN]  indirect table length LEN (default 17)\n"
"  fault oversized [W H]        RESOURCE_CREATE_2D 65536x65536 (or W H)\n"
"  raw REQ FLAGS [HEX] [--fds N] [--reply]   any vhost-user message\n"
"\n"
"Other steps:\n"
"  sleep MS               keep servicing the device for MS\n"
"  wait-line              wait for a line on stdin (keeps servicing)\n"
"  stats                  counters: kicks, calls, calls on replaced fds\n"
"                         (stale: QEMU would lose them), err fds, pages\n";

static const char usage_input[] =
"\n"
"virtio-input steps (--input-socket; Linux 6.1's virtio_input driver).\n"
"Every event the guest takes is printed at once as 'event EV_KEY 30 1'\n"
"(type name, code, value; events are read whenever a step waits: input-*,\n"
"sleep and wait-line). 'input-start wait-line' thus streams events until a\n"
"line arrives on stdin. PAT is an fnmatch pattern on 'EV_KEY 30 1'.\n"
"  input-connect [MS]     connect and realize the input device (A)\n"
"  input-probe            config probe as Linux does it: name, serial,\n"
"                         devids, props, EV_REP, EV_BITS, ABS_INFO (one\n"
"                         GET_CONFIG per guest read, one SET_CONFIG per write)\n"
"  input-start [N]        probe if needed, DRIVER_OK, post N event buffers\n"
"                         (default 64) and kick\n"
"  input-post N           post N more event buffers\n"
"  input-stall            stop re-posting buffers (a guest that stops\n"
"                         taking events once its buffers are used up)\n"
"  input-resume           re-post every held buffer and re-post again\n"
"  input-until PAT [MS]   wait for an event matching PAT among those not\n"
"                         yet consumed; consumes up to it\n"
"  input-next PAT...      the next unconsumed events are exactly these\n"
"                         (up to 8, waits for them); consumes them\n"
"  input-quiet MS         no event arrives for MS; consumes everything\n"
"  input-skip             consume every event received so far\n"
"  input-status TYPE CODE VALUE   a status event on the status queue\n"
"                         (e.g. EV_LED 1 1), waits until it is returned\n"
"  input-fault readable|short     an 8-byte device-readable or a 4-byte\n"
"                         buffer on the event queue (returned buffers are\n"
"                         reported as 'fault-buffer ...' lines)\n"
"  input-config-fault set OFFSET SIZE | get SIZE [OFFSET]\n"
"                         SET_CONFIG/GET_CONFIG with odd offsets or sizes;\n"
"                         the step succeeds if the back end still answers\n"
"                         (--expect closed: if it closed the connection)\n"
"  input-reset            device reset (D); input-start starts again\n"
"  input-stats            counters of the input device\n";

enum expect { EXP_OK, EXP_ERR, EXP_ANY, EXP_CODE, EXP_ALIVE, EXP_CLOSED };

struct step {
	const char *name;
	const char *pos[8];
	unsigned npos;
	/* options */
	struct vmm_pattern pattern;
	const char *pattern_text;
	uint32_t scanout, id, format, entries, fds, depth;
	bool has_id, has_fence, no_transfer, reply, unfenced, no_verify;
	uint64_t fence;
	enum expect expect;
	uint32_t expect_code;
};

struct ctx {
	struct vmm_config cfg;
	const char *socket, *input_socket;
	struct vmm_dev *dev;
	struct vmm_gpu *gpu;
	/* The input device of the same VM (its own vhost-user connection). */
	struct vmm_dev *idev;
	struct vmm_input *input;
	struct vmm_input_event *events; /* every event taken, in order */
	size_t nevents, cap_events;
	size_t consumed;                /* input-until/next/quiet cursor */
	uint32_t cursor_res;
	uint64_t seen[VMM_GPU_MSG_MAX];
	uint64_t ring_desc[2];
	uint64_t max_fence;   /* highest fence id given to any step so far */
	unsigned responses;   /* virtio-gpu responses seen in this step */
	bool expected_error;  /* --expect was met in this step */
	char err[600];
};

struct step_def {
	const char *name;
	int (*run)(struct ctx *c, struct step *s);
	bool fault; /* err-fd signals are expected */
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int dev_fail(struct ctx *c)
{
	return fail(c, "%s", vmm_dev_error(c->dev));
}

/* ------------------------------------------------------------------ */
/* Argument helpers                                                    */
/* ------------------------------------------------------------------ */

static int parse_u64(const char *text, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(text, &end, 0);
	return errno || end == text || *end ? -1 : 0;
}

static int parse_u32(const char *text, uint32_t *v)
{
	uint64_t w;

	if (parse_u64(text, &w) < 0 || w > UINT32_MAX)
		return -1;
	*v = (uint32_t)w;
	return 0;
}

/* Positional argument i, or def when absent. */
static int pos_u32(struct ctx *c, const struct step *s, unsigned i, uint32_t def,
		uint32_t *v)
{
	if (i >= s->npos) {
		*v = def;
		return 0;
	}
	if (parse_u32(s->pos[i], v) < 0)
		return fail(c, "bad number '%s'", s->pos[i]);
	return 0;
}

static int need_pos(struct ctx *c, const struct step *s, unsigned n)
{
	if (s->npos < n)
		return fail(c, "needs %u arguments", n);
	return 0;
}

static int parse_expect(const char *text, struct step *s)
{
	static const struct { const char *name; enum expect e; } names[] = {
		{ "ok", EXP_OK }, { "err", EXP_ERR }, { "any", EXP_ANY },
		{ "alive", EXP_ALIVE }, { "closed", EXP_CLOSED },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(text, names[i].name) == 0) {
			s->expect = names[i].e;
			return 0;
		}
	}
	s->expect = EXP_CODE;
	return parse_u32(text, &s->expect_code);
}

/* ------------------------------------------------------------------ */
/* Command results                                                     */
/* ------------------------------------------------------------------ */

static bool is_error_resp(int r)
{
	return r >= VIRTIO_GPU_RESP_ERR_UNSPEC;
}

/*
 * -1: failure; 0: carry on; 1: the device answered an error that the step
 * expected, so the step stops there successfully.
 */
static int result(struct ctx *c, const struct step *s, int r, const char *what)
{
	if (r < 0)
		return dev_fail(c);
	c->responses++;
	if (is_error_resp(r)) {
		if (s->expect == EXP_ANY || s->expect == EXP_ERR ||
				(s->expect == EXP_CODE && (uint32_t)r == s->expect_code)) {
			printf("%s: %s %s (expected)\n", s->name, what,
					vmm_gpu_resp_name((uint32_t)r));
			c->expected_error = true;
			return 1;
		}
		return fail(c, "%s answered %s (0x%x)", what, vmm_gpu_resp_name((uint32_t)r),
				(unsigned)r);
	}
	if (s->expect == EXP_CODE && (uint32_t)r == s->expect_code)
		c->expected_error = true; /* an OK code asked for by number */
	return 0;
}

/* A step told to expect an error must have met one. */
static int check_expected(struct ctx *c, const struct step *s)
{
	if (s->expect != EXP_ERR && s->expect != EXP_CODE)
		return 0;
	if (c->responses == 0 || c->expected_error)
		return 0;
	return fail(c, "every command succeeded, expected %s",
			s->expect == EXP_ERR ? "an error" : vmm_gpu_resp_name(s->expect_code));
}

static const struct vmm_gpu_opts *fence_opts(const struct step *s,
		struct vmm_gpu_opts *o)
{
	if (!s->has_fence)
		return NULL;
	*o = (struct vmm_gpu_opts){ .fence = true, .fence_id = s->fence, .nowait = true };
	return o;
}

static uint32_t target_id(const struct ctx *c, const struct step *s)
{
	return s->has_id ? s->id : vmm_gpu_scanout_resource(c->gpu, s->scanout);
}

static const char *pattern_name(const struct step *s)
{
	return s->pattern_text ? s->pattern_text : "quadrants";
}

/* ------------------------------------------------------------------ */
/* Handshake steps                                                     */
/* ------------------------------------------------------------------ */

static void print_connected(const struct ctx *c, const char *name)
{
	printf("%s: features 0x%" PRIx64 " protocol 0x%" PRIx64 " (accepted 0x%" PRIx64
			") queues %" PRIu64 " mem-slots %" PRIu64 "\n", name,
			vmm_dev_backend_features(c->dev),
			vmm_dev_backend_protocol_features(c->dev),
			vmm_dev_protocol_features(c->dev), vmm_dev_max_queues(c->dev),
			vmm_dev_max_mem_slots(c->dev));
}

static int step_connect(struct ctx *c, struct step *s)
{
	uint32_t ms;

	if (pos_u32(c, s, 0, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	if (!c->socket)
		return fail(c, "no --socket given");
	if (vmm_dev_connect(c->dev, c->socket, (int)ms) < 0 || vmm_dev_realize(c->dev) < 0)
		return dev_fail(c);
	print_connected(c, s->name);
	return 0;
}

static int step_reconnect(struct ctx *c, struct step *s)
{
	uint32_t ms;

	if (pos_u32(c, s, 0, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	if (vmm_dev_reconnect(c->dev, (int)ms) < 0)
		return dev_fail(c);
	c->cursor_res = 0;
	print_connected(c, s->name);
	return 0;
}

static int step_probe(struct ctx *c, struct step *s)
{
	const struct vmm_gpu_config *g, *b;

	if (vmm_dev_probe(c->dev) < 0)
		return dev_fail(c);
	g = vmm_dev_gpu_config(c->dev);
	b = vmm_dev_backend_config(c->dev);
	printf("%s: num_scanouts %u num_capsets %u events_read 0x%x "
			"(back end: num_scanouts %u events_read 0x%x)\n", s->name,
			g->num_scanouts, g->num_capsets, g->events_read,
			b->num_scanouts, b->events_read);
	return 0;
}

static void print_rings(const struct ctx *c, const char *name, const char *extra)
{
	struct vmm_vring *q0 = vmm_dev_vring(c->dev, 0), *q1 = vmm_dev_vring(c->dev, 1);

	printf("%s: features 0x%" PRIx64 " memory %s vq0 %u@0x%" PRIx64
			" vq1 %u@0x%" PRIx64 "%s\n", name, vmm_dev_features(c->dev),
			vmm_dev_protocol_features(c->dev) & (1u << 15) ? "ADD_MEM_REG" : "SET_MEM_TABLE",
			vmm_vring_num(q0), vmm_vring_desc_gpa(q0),
			vmm_vring_num(q1), vmm_vring_desc_gpa(q1), extra);
}

static void remember_rings(struct ctx *c)
{
	for (unsigned q = 0; q < 2; q++)
		c->ring_desc[q] = vmm_vring_desc_gpa(vmm_dev_vring(c->dev, q));
}

static int step_driver_ok(struct ctx *c, struct step *s)
{
	if (vmm_dev_driver_ok(c->dev) < 0)
		return dev_fail(c);
	print_rings(c, s->name, "");
	remember_rings(c);
	return 0;
}

static int step_reset(struct ctx *c, struct step *s)
{
	const struct vmm_dev_stats *st = vmm_dev_stats(c->dev);

	if (vmm_dev_reset(c->dev) < 0)
		return dev_fail(c);
	c->cursor_res = 0;
	printf("%s: vq0 base %u vq1 base %u\n", s->name, st->vring_base[0], st->vring_base[1]);
	return 0;
}

static int step_rebind(struct ctx *c, struct step *s)
{
	uint64_t old[2] = { c->ring_desc[0], c->ring_desc[1] };
	bool moved;

	if (vmm_dev_rebind(c->dev) < 0)
		return dev_fail(c);
	c->cursor_res = 0;
	remember_rings(c);
	moved = old[0] != c->ring_desc[0] && old[1] != c->ring_desc[1];
	print_rings(c, s->name, moved ? " (new ring addresses)" : "");
	return 0;
}

static int step_kill(struct ctx *c, struct step *s)
{
	vmm_dev_disconnect(c->dev);
	c->cursor_res = 0;
	printf("%s: connection closed\n", s->name);
	return 0;
}

static int step_expect_disconnect(struct ctx *c, struct step *s)
{
	uint32_t ms;

	if (pos_u32(c, s, 0, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	if (vmm_dev_wait_disconnect(c->dev, (int)ms) < 0)
		return dev_fail(c);
	printf("%s: the back end closed the connection\n", s->name);
	return 0;
}

static int step_ping(struct ctx *c, struct step *s)
{
	if (vmm_dev_ping(c->dev) < 0)
		return dev_fail(c);
	printf("%s: back end alive\n", s->name);
	return 0;
}

/* ------------------------------------------------------------------ */
/* virtio-gpu steps                                                    */
/* ------------------------------------------------------------------ */

static int step_display_info(struct ctx *c, struct step *s)
{
	struct vmm_gpu_display d[16];
	struct vmm_gpu_opts o;
	unsigned shown = 0;
	int r = vmm_gpu_get_display_info(c->gpu, d, fence_opts(s, &o));
	int k = result(c, s, r, "GET_DISPLAY_INFO");

	if (k != 0 || r == 0)
		return k < 0 ? -1 : 0;
	for (unsigned i = 0; i < 16; i++) {
		if (!d[i].enabled)
			continue;
		printf("%s %u: %ux%u", s->name, i, d[i].width, d[i].height);
		if (d[i].x || d[i].y)
			printf("+%u+%u", d[i].x, d[i].y);
		printf(" enabled\n");
		shown++;
	}
	if (!shown)
		printf("%s: no scanout enabled\n", s->name);
	return 0;
}

static bool edid_valid(const uint8_t *e, uint32_t size)
{
	static const uint8_t header[8] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };
	uint8_t sum = 0;

	if (size < 128 || size > 1024 || memcmp(e, header, sizeof(header)) != 0)
		return false;
	for (unsigned i = 0; i < 128; i++)
		sum = (uint8_t)(sum + e[i]);
	return sum == 0;
}

static int step_edid(struct ctx *c, struct step *s)
{
	uint8_t edid[1024];
	uint32_t so, size = 0;
	int r, k;

	if (pos_u32(c, s, 0, s->scanout, &so) < 0)
		return -1;
	r = vmm_gpu_get_edid(c->gpu, so, edid, &size, NULL);
	k = result(c, s, r, "GET_EDID");
	if (k != 0)
		return k < 0 ? -1 : 0;
	if (!edid_valid(edid, size))
		return fail(c, "EDID of scanout %u (%u bytes) has a bad header or checksum", so, size);
	printf("%s %u: %u bytes, header and checksum ok\n", s->name, so, size);
	return 0;
}

static int create_res(struct ctx *c, struct step *s, uint32_t id, uint32_t w, uint32_t h)
{
	int r = vmm_gpu_resource_create_2d(c->gpu, id, s->format, w, h, NULL);

	return result(c, s, r, "RESOURCE_CREATE_2D");
}

static int attach(struct ctx *c, struct step *s, uint32_t id)
{
	int r = vmm_gpu_attach_backing(c->gpu, id, s->entries, NULL);

	return result(c, s, r, "RESOURCE_ATTACH_BACKING");
}

static int draw(struct ctx *c, struct step *s, uint32_t id)
{
	return vmm_gpu_draw(c->gpu, id, &s->pattern) < 0 ? dev_fail(c) : 0;
}

static int transfer(struct ctx *c, struct step *s, uint32_t id, uint32_t x,
		uint32_t y, uint32_t w, uint32_t h)
{
	int r = vmm_gpu_transfer_to_host_2d(c->gpu, id, x, y, w, h, NULL);

	return result(c, s, r, "TRANSFER_TO_HOST_2D");
}

static int flush(struct ctx *c, struct step *s, uint32_t id, uint32_t x,
		uint32_t y, uint32_t w, uint32_t h)
{
	struct vmm_gpu_opts o;
	int r = vmm_gpu_resource_flush(c->gpu, id, x, y, w, h, fence_opts(s, &o));

	return result(c, s, r, "RESOURCE_FLUSH");
}

static int set_scanout(struct ctx *c, struct step *s, uint32_t id, uint32_t x,
		uint32_t y, uint32_t w, uint32_t h)
{
	int r = vmm_gpu_set_scanout(c->gpu, s->scanout, id, x, y, w, h, NULL);

	return result(c, s, r, "SET_SCANOUT");
}

static void print_fence(const struct step *s)
{
	if (s->has_fence)
		printf(", fence %" PRIu64 " submitted", s->fence);
	printf("\n");
}

static int step_scanout(struct ctx *c, struct step *s)
{
	uint32_t w, h, id = s->has_id ? s->id : vmm_gpu_next_resource_id(c->gpu);
	int k;

	if (need_pos(c, s, 2) < 0 || pos_u32(c, s, 0, 0, &w) < 0 || pos_u32(c, s, 1, 0, &h) < 0)
		return -1;
	/* The sequence a Linux KMS client causes (virtio-gpu.md §7.3). */
	if ((k = create_res(c, s, id, w, h)) != 0 || (k = attach(c, s, id)) != 0 ||
			(k = draw(c, s, id)) != 0 || (k = transfer(c, s, id, 0, 0, w, h)) != 0 ||
			(k = set_scanout(c, s, id, 0, 0, w, h)) != 0 ||
			(k = flush(c, s, id, 0, 0, w, h)) != 0)
		return k < 0 ? -1 : 0;
	printf("%s %u: resource %u %ux%u format %u, %u mem entries, pattern %s",
			s->name, s->scanout, id, w, h, s->format,
			vmm_gpu_resource_entries(c->gpu, id), pattern_name(s));
	print_fence(s);
	return 0;
}

static int step_blob_scanout(struct ctx *c, struct step *s)
{
	uint32_t w, h, id = s->has_id ? s->id : vmm_gpu_next_resource_id(c->gpu);
	int r, k;

	if (need_pos(c, s, 2) < 0 || pos_u32(c, s, 0, 0, &w) < 0 || pos_u32(c, s, 1, 0, &h) < 0)
		return -1;
	r = vmm_gpu_resource_create_blob(c->gpu, id, s->format, w, h, s->entries, NULL);
	if ((k = result(c, s, r, "RESOURCE_CREATE_BLOB")) != 0 || (k = draw(c, s, id)) != 0)
		return k < 0 ? -1 : 0;
	r = vmm_gpu_set_scanout_blob(c->gpu, s->scanout, id, NULL);
	/* Linux still sends TRANSFER_TO_HOST_2D for blob dumb buffers. */
	if ((k = result(c, s, r, "SET_SCANOUT_BLOB")) != 0 ||
			(k = transfer(c, s, id, 0, 0, w, h)) != 0 ||
			(k = flush(c, s, id, 0, 0, w, h)) != 0)
		return k < 0 ? -1 : 0;
	printf("%s %u: blob resource %u %ux%u format %u, %u mem entries, pattern %s",
			s->name, s->scanout, id, w, h, s->format,
			vmm_gpu_resource_entries(c->gpu, id), pattern_name(s));
	print_fence(s);
	return 0;
}

static int step_create(struct ctx *c, struct step *s)
{
	uint32_t w, h, id = s->has_id ? s->id : vmm_gpu_next_resource_id(c->gpu);
	int k;

	if (need_pos(c, s, 2) < 0 || pos_u32(c, s, 0, 0, &w) < 0 || pos_u32(c, s, 1, 0, &h) < 0)
		return -1;
	if ((k = create_res(c, s, id, w, h)) != 0)
		return k < 0 ? -1 : 0;
	printf("%s: resource %u %ux%u format %u\n", s->name, id, w, h, s->format);
	return 0;
}

/* The resource a step acts on: --id, or the one on --scanout, or the
 * most recently created one. */
static uint32_t pick_res(struct ctx *c, const struct step *s)
{
	uint32_t id = target_id(c, s);

	return id ? id : vmm_gpu_next_resource_id(c->gpu) - 1;
}

static int step_attach(struct ctx *c, struct step *s)
{
	uint32_t id = pick_res(c, s);
	int k = attach(c, s, id);

	if (k != 0)
		return k < 0 ? -1 : 0;
	printf("%s: resource %u, %u mem entries\n", s->name, id,
			vmm_gpu_resource_entries(c->gpu, id));
	return 0;
}

static int step_draw(struct ctx *c, struct step *s)
{
	uint32_t id = pick_res(c, s);

	if (draw(c, s, id) < 0)
		return -1;
	printf("%s: resource %u pattern %s\n", s->name, id, pattern_name(s));
	return 0;
}

/* X Y W H from the positional args from index i on; default: the whole
 * resource w x h. */
static int rect_args_at(struct ctx *c, const struct step *s, unsigned i,
		uint32_t w, uint32_t h, uint32_t r[4])
{
	if (s->npos != i && s->npos != i + 4 && i == 0)
		return fail(c, "takes no arguments or X Y W H");
	if (s->npos != i && s->npos != i + 4)
		return fail(c, "takes %u arguments, then optionally X Y W H", i);
	return pos_u32(c, s, i, 0, &r[0]) < 0 || pos_u32(c, s, i + 1, 0, &r[1]) < 0 ||
		pos_u32(c, s, i + 2, w, &r[2]) < 0 ||
		pos_u32(c, s, i + 3, h, &r[3]) < 0 ? -1 : 0;
}

static int rect_args(struct ctx *c, const struct step *s, uint32_t w, uint32_t h,
		uint32_t r[4])
{
	return rect_args_at(c, s, 0, w, h, r);
}

static int res_size(struct ctx *c, uint32_t id, uint32_t *w, uint32_t *h)
{
	if (!vmm_gpu_resource_size(c->gpu, id, w, h))
		return fail(c, "the driver knows no resource %u", id);
	return 0;
}

static int step_transfer(struct ctx *c, struct step *s)
{
	uint32_t id = pick_res(c, s), w, h, r[4];
	int k;

	if (res_size(c, id, &w, &h) < 0 || rect_args(c, s, w, h, r) < 0)
		return -1;
	if ((k = transfer(c, s, id, r[0], r[1], r[2], r[3])) != 0)
		return k < 0 ? -1 : 0;
	printf("%s: resource %u %u,%u %ux%u\n", s->name, id, r[0], r[1], r[2], r[3]);
	return 0;
}

static int step_set_scanout(struct ctx *c, struct step *s)
{
	uint32_t id = pick_res(c, s), w, h, r[4];
	int k;

	if (res_size(c, id, &w, &h) < 0 || rect_args(c, s, w, h, r) < 0)
		return -1;
	if ((k = set_scanout(c, s, id, r[0], r[1], r[2], r[3])) != 0)
		return k < 0 ? -1 : 0;
	printf("%s %u: resource %u %u,%u %ux%u\n", s->name, s->scanout, id,
			r[0], r[1], r[2], r[3]);
	return 0;
}

/* Like a DIRTYFB: TRANSFER_TO_HOST_2D and RESOURCE_FLUSH of a rectangle. */
static int step_flush(struct ctx *c, struct step *s)
{
	uint32_t id = target_id(c, s), w, h, r[4];
	int k;

	if (!id)
		return fail(c, "no resource on scanout %u (use --id)", s->scanout);
	if (res_size(c, id, &w, &h) < 0 || rect_args(c, s, w, h, r) < 0)
		return -1;
	if (!s->no_transfer && (k = transfer(c, s, id, r[0], r[1], r[2], r[3])) != 0)
		return k < 0 ? -1 : 0;
	if ((k = flush(c, s, id, r[0], r[1], r[2], r[3])) != 0)
		return k < 0 ? -1 : 0;
	printf("%s: resource %u %u,%u %ux%u", s->name, id, r[0], r[1], r[2], r[3]);
	print_fence(s);
	return 0;
}

static int step_disable_scanout(struct ctx *c, struct step *s)
{
	int k = set_scanout(c, s, 0, 0, 0, 0, 0);

	if (k != 0)
		return k < 0 ? -1 : 0;
	printf("%s %u: disabled\n", s->name, s->scanout);
	return 0;
}

static int simple_res_step(struct ctx *c, struct step *s,
		int (*fn)(struct vmm_gpu *, uint32_t, const struct vmm_gpu_opts *),
		const char *what)
{
	uint32_t id = pick_res(c, s);
	struct vmm_gpu_opts o;
	int k = result(c, s, fn(c->gpu, id, fence_opts(s, &o)), what);

	if (k != 0)
		return k < 0 ? -1 : 0;
	printf("%s: resource %u", s->name, id);
	print_fence(s);
	return 0;
}

static int step_unref(struct ctx *c, struct step *s)
{
	return simple_res_step(c, s, vmm_gpu_resource_unref, "RESOURCE_UNREF");
}

static int step_detach(struct ctx *c, struct step *s)
{
	return simple_res_step(c, s, vmm_gpu_detach_backing, "RESOURCE_DETACH_BACKING");
}

static int step_uuid(struct ctx *c, struct step *s)
{
	uint32_t id = pick_res(c, s);
	uint8_t u[16];
	int k = result(c, s, vmm_gpu_assign_uuid(c->gpu, id, u, NULL), "RESOURCE_ASSIGN_UUID");

	if (k != 0)
		return k < 0 ? -1 : 0;
	printf("%s %u: ", s->name, id);
	for (unsigned i = 0; i < 16; i++)
		printf("%02x%s", u[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
	printf("\n");
	return 0;
}

/* A 64x64 ARGB cursor, transferred like Linux does before UPDATE_CURSOR. */
static int make_cursor(struct ctx *c, struct step *s, uint32_t *id)
{
	struct step cs = *s;
	int k;

	*id = vmm_gpu_next_resource_id(c->gpu);
	cs.format = VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM;
	cs.entries = 0;
	if ((k = create_res(c, &cs, *id, CURSOR_SIZE, CURSOR_SIZE)) != 0 ||
			(k = attach(c, &cs, *id)) != 0 || (k = draw(c, &cs, *id)) != 0 ||
			(k = transfer(c, &cs, *id, 0, 0, CURSOR_SIZE, CURSOR_SIZE)) != 0)
		return k < 0 ? -1 : 1;
	return 0;
}

static int step_cursor(struct ctx *c, struct step *s)
{
	uint32_t x, y;
	int k;

	if (need_pos(c, s, 2) < 0 || pos_u32(c, s, 0, 0, &x) < 0 || pos_u32(c, s, 1, 0, &y) < 0)
		return -1;
	if (c->cursor_res && vmm_gpu_resource_exists(c->gpu, c->cursor_res)) {
		if (vmm_gpu_move_cursor(c->gpu, s->scanout, c->cursor_res, x, y) < 0)
			return dev_fail(c);
		printf("%s %u: move to %u,%u\n", s->name, s->scanout, x, y);
		return 0;
	}
	if ((k = make_cursor(c, s, &c->cursor_res)) != 0)
		return k < 0 ? -1 : 0;
	if (vmm_gpu_update_cursor(c->gpu, s->scanout, c->cursor_res, x, y, 0, 0) < 0)
		return dev_fail(c);
	printf("%s %u: update resource %u at %u,%u\n", s->name, s->scanout,
			c->cursor_res, x, y);
	return 0;
}

static int step_cursor_hide(struct ctx *c, struct step *s)
{
	if (vmm_gpu_move_cursor(c->gpu, s->scanout, 0, 0, 0) < 0)
		return dev_fail(c);
	printf("%s %u: hidden\n", s->name, s->scanout);
	return 0;
}

static int step_wait_fence(struct ctx *c, struct step *s)
{
	uint64_t id;
	uint32_t ms;
	int r;

	if (need_pos(c, s, 1) < 0)
		return -1;
	if (parse_u64(s->pos[0], &id) < 0)
		return fail(c, "bad fence id '%s'", s->pos[0]);
	if (pos_u32(c, s, 1, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	r = vmm_gpu_wait_fence(c->gpu, id, (int)ms);
	if (r < 0)
		return dev_fail(c);
	printf("fence %" PRIu64 " done (%s)\n", id, vmm_gpu_resp_name((uint32_t)r));
	return 0;
}

static int step_wait_all(struct ctx *c, struct step *s)
{
	uint32_t ms;
	unsigned n = vmm_gpu_in_flight(c->gpu);

	if (pos_u32(c, s, 0, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	if (vmm_gpu_wait_all(c->gpu, (int)ms) < 0)
		return dev_fail(c);
	printf("%s: %u commands done\n", s->name, n);
	return 0;
}

/* ------------------------------------------------------------------ */
/* GPU socket checks                                                   */
/* ------------------------------------------------------------------ */

static uint64_t msg_count(const struct ctx *c, const uint32_t *types, unsigned n)
{
	const struct vmm_gpu_socket_stats *st = vmm_dev_gpu_socket_stats(c->dev);
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += st->msgs[types[i]];
	return sum;
}

static uint64_t seen_count(const struct ctx *c, const uint32_t *types, unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += c->seen[types[i]];
	return sum;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until more messages of the given types arrived than seen, and
 * marks them all seen; returns how many were new. */
static int wait_msgs(struct ctx *c, struct step *s, const uint32_t *types, unsigned n)
{
	uint64_t before = seen_count(c, types, n);
	const struct vmm_gpu_socket_stats *st = vmm_dev_gpu_socket_stats(c->dev);
	uint32_t ms;
	int64_t deadline;

	if (pos_u32(c, s, 0, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	deadline = now_ms() + ms;
	while (msg_count(c, types, n) <= seen_count(c, types, n)) {
		int64_t left = deadline - now_ms();

		if (left <= 0)
			return fail(c, "nothing arrived on the GPU socket within %u ms", ms);
		if (vmm_dev_wait_fd(c->dev, -1, (int)(left > 50 ? 50 : left)) < 0)
			return dev_fail(c);
		if (st->eof && msg_count(c, types, n) <= seen_count(c, types, n))
			return fail(c, "the back end closed the GPU socket");
	}
	for (unsigned i = 0; i < n; i++)
		c->seen[types[i]] = st->msgs[types[i]];
	return (int)(seen_count(c, types, n) - before);
}

/* Every message was checked on arrival; the latest result is shown. */
static int report_check(struct ctx *c, int fresh, const char *line)
{
	if (fresh < 0)
		return -1;
	if (fresh > 1)
		printf("%s (latest of %d)\n", line, fresh);
	else
		printf("%s\n", line);
	return strstr(line, "MISMATCH") ? fail(c, "%s", line) : 0;
}

static int step_expect_update(struct ctx *c, struct step *s)
{
	static const uint32_t t[] = { VMM_GPU_MSG_UPDATE };

	return report_check(c, wait_msgs(c, s, t, 1), vmm_gpu_stats(c->gpu)->last_update);
}

static int step_expect_scanout(struct ctx *c, struct step *s)
{
	static const uint32_t t[] = { VMM_GPU_MSG_SCANOUT };

	return report_check(c, wait_msgs(c, s, t, 1), vmm_gpu_stats(c->gpu)->last_scanout);
}

static int step_expect_cursor(struct ctx *c, struct step *s)
{
	static const uint32_t t[] = {
		VMM_GPU_MSG_CURSOR_POS, VMM_GPU_MSG_CURSOR_POS_HIDE, VMM_GPU_MSG_CURSOR_UPDATE,
	};

	return report_check(c, wait_msgs(c, s, t, 3), vmm_gpu_stats(c->gpu)->last_cursor);
}

/* ------------------------------------------------------------------ */
/* Benchmark loop                                                      */
/* ------------------------------------------------------------------ */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Our own CPU time (user + system), to tell whether we were the bottleneck. */
static double cpu_ms(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* One cycle's submissions: the transfer is not waited for (Linux does not
 * wait for it either); the flush is fenced and waited for later, or, with
 * --unfenced, waited for at once. */
static int frame_submit(struct ctx *c, struct step *s, uint32_t id, const uint32_t *r,
		uint64_t fence)
{
	struct vmm_gpu_opts tx = { .nowait = true };
	struct vmm_gpu_opts fo = { .fence = true, .fence_id = fence, .nowait = true };
	int rc;

	if (vmm_gpu_transfer_to_host_2d(c->gpu, id, r[0], r[1], r[2], r[3], &tx) < 0)
		return dev_fail(c);
	rc = vmm_gpu_resource_flush(c->gpu, id, r[0], r[1], r[2], r[3],
			s->unfenced ? NULL : &fo);
	if (s->unfenced)
		return result(c, s, rc, "RESOURCE_FLUSH") != 0 ? -1 : 0;
	return rc < 0 ? dev_fail(c) : 0;
}

static int frames_loop(struct ctx *c, struct step *s, uint32_t id, const uint32_t *r,
		uint32_t n, uint64_t first)
{
	uint32_t depth = s->depth ? s->depth : 1, sent = 0, done = 0;

	while (done < n) {
		while (sent < n && sent - done < depth) {
			if (frame_submit(c, s, id, r, first + sent) < 0)
				return -1;
			sent++;
			if (s->unfenced)
				done++;
		}
		if (!s->unfenced) {
			int rc = vmm_gpu_wait_fence(c->gpu, first + done, c->cfg.timeout_ms);

			if (result(c, s, rc, "RESOURCE_FLUSH") != 0)
				return -1;
			done++;
		}
		vmm_gpu_collect(c->gpu);
	}
	/* The transfers' answers; then what the back end sent before its last
	 * answer is in our socket buffer. */
	if (vmm_gpu_wait_all(c->gpu, c->cfg.timeout_ms) < 0 || vmm_dev_service(c->dev) < 0)
		return dev_fail(c);
	return 0;
}

static int step_frames(struct ctx *c, struct step *s)
{
	const struct vmm_gpu_socket_stats *gs = vmm_dev_gpu_socket_stats(c->dev);
	uint32_t n, w, h, r[4], id = target_id(c, s);
	uint64_t first = s->has_fence ? s->fence : c->max_fence + 1;
	uint64_t updates, bytes, errors = vmm_gpu_stats(c->gpu)->errors;
	double ms, cpu;
	int64_t t0;
	int rc;

	if (!id)
		return fail(c, "no resource on scanout %u (use --id)", s->scanout);
	if (need_pos(c, s, 1) < 0 || pos_u32(c, s, 0, 0, &n) < 0 || n == 0 ||
			res_size(c, id, &w, &h) < 0 || rect_args_at(c, s, 1, w, h, r) < 0)
		return c->err[0] ? -1 : fail(c, "needs N > 0");
	if (s->unfenced && s->depth > 1)
		return fail(c, "--unfenced flushes are waited for one by one (no --depth)");
	if (vmm_dev_service(c->dev) < 0)
		return dev_fail(c);
	updates = gs->msgs[VMM_GPU_MSG_UPDATE];
	bytes = gs->bytes;
	vmm_gpu_set_verify(c->gpu, !s->no_verify);
	cpu = cpu_ms();
	t0 = now_ns();
	rc = frames_loop(c, s, id, r, n, first);
	ms = (double)(now_ns() - t0) / 1e6;
	cpu = cpu_ms() - cpu;
	vmm_gpu_set_verify(c->gpu, true);
	if (!s->unfenced && first + n - 1 > c->max_fence)
		c->max_fence = first + n - 1;
	if (rc < 0)
		return -1;
	if (vmm_gpu_stats(c->gpu)->errors != errors)
		return fail(c, "%" PRIu64 " commands answered with an error",
				vmm_gpu_stats(c->gpu)->errors - errors);
	printf("%s: %u x %u,%u %ux%u on resource %u, %s, depth %u: %.1f ms, %.1f/s; "
			"GPU socket: %" PRIu64 " updates, %" PRIu64 " bytes; front end CPU %.1f ms\n",
			s->name, n, r[0], r[1], r[2], r[3], id, s->unfenced ? "unfenced" : "fenced",
			s->depth ? s->depth : 1, ms, ms > 0 ? n * 1000.0 / ms : 0.0,
			gs->msgs[VMM_GPU_MSG_UPDATE] - updates, gs->bytes - bytes, cpu);
	return 0;
}

static int step_gpu_stats(struct ctx *c, struct step *s)
{
	const struct vmm_gpu_socket_stats *st;

	if (vmm_dev_service(c->dev) < 0)
		return dev_fail(c);
	st = vmm_dev_gpu_socket_stats(c->dev);
	printf("%s: sockets %" PRIu64 " protocol %" PRIu64 "/%" PRIu64
			" display-info %" PRIu64 " scanout %" PRIu64 " update %" PRIu64
			" cursor-update %" PRIu64 " cursor-pos %" PRIu64 " cursor-hide %" PRIu64
			" dmabuf %" PRIu64 " edid %" PRIu64 " unknown %" PRIu64
			" bytes %" PRIu64 " replies %" PRIu64 " errors %" PRIu64 "%s\n", s->name,
			st->sockets, st->msgs[VMM_GPU_MSG_GET_PROTOCOL_FEATURES],
			st->msgs[VMM_GPU_MSG_SET_PROTOCOL_FEATURES],
			st->msgs[VMM_GPU_MSG_GET_DISPLAY_INFO], st->msgs[VMM_GPU_MSG_SCANOUT],
			st->msgs[VMM_GPU_MSG_UPDATE], st->msgs[VMM_GPU_MSG_CURSOR_UPDATE],
			st->msgs[VMM_GPU_MSG_CURSOR_POS], st->msgs[VMM_GPU_MSG_CURSOR_POS_HIDE],
			st->msgs[VMM_GPU_MSG_DMABUF_SCANOUT] + st->msgs[VMM_GPU_MSG_DMABUF_UPDATE] +
			st->msgs[VMM_GPU_MSG_DMABUF_SCANOUT2],
			st->msgs[VMM_GPU_MSG_GET_EDID], st->msgs[0], st->bytes, st->replies,
			st->errors, st->eof ? " eof" : "");
	return 0;
}

static int step_stats(struct ctx *c, struct step *s)
{
	const struct vmm_dev_stats *d = vmm_dev_stats(c->dev);
	const struct vmm_gpu_stats *g = vmm_gpu_stats(c->gpu);

	printf("%s: sent %" PRIu64 " replies %" PRIu64 " kicks %" PRIu64
			" suppressed %" PRIu64 " calls %" PRIu64 "/%" PRIu64
			" forwarded %" PRIu64 " stale %" PRIu64 "/%" PRIu64
			" err %" PRIu64 "/%" PRIu64
			" late-used-writes %" PRIu64 " commands %" PRIu64 " responses %" PRIu64
			" error-responses %" PRIu64 " fences %" PRIu64 " guest-pages %" PRIu64 "\n",
			s->name, d->messages_sent, d->replies_received, d->kicks,
			d->kicks_suppressed, d->calls[0], d->calls[1], d->calls_forwarded,
			d->stale_calls[0], d->stale_calls[1], d->err_signals[0], d->err_signals[1], d->late_used_writes,
			g->commands, g->responses, g->errors, g->fences_done,
			vmm_mem_pages_in_use(vmm_dev_mem(c->dev)));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Faults                                                              */
/* ------------------------------------------------------------------ */

/* After a fault: is the back end still there, and is that what we want? */
static int aftermath(struct ctx *c, struct step *s, const char *what)
{
	bool alive = vmm_dev_connected(c->dev) && vmm_dev_ping(c->dev) == 0;

	printf("%s %s; back end %s\n", s->name, what,
			alive ? "alive" : "closed the connection");
	if (s->expect == EXP_CLOSED)
		return alive ? fail(c, "the back end survived") : 0;
	return alive ? 0 : fail(c, "the back end is gone: %s", vmm_dev_error(c->dev));
}

static int fault_ring_outside(struct ctx *c, struct step *s)
{
	struct vmm_mem *mem = vmm_dev_mem(c->dev);
	uint64_t hole = vmm_mem_hole_uaddr(mem), ack;
	uint32_t q;
	char what[96];

	if (pos_u32(c, s, 1, 0, &q) < 0)
		return -1;
	if (q > 1)
		return fail(c, "queue %u does not exist", q);
	if (vmm_dev_set_vring_addr_raw(c->dev, q, hole, hole + 0x1000, hole + 0x2000, &ack) < 0)
		return aftermath(c, s, "ring-outside: SET_VRING_ADDR failed");
	/* A careless back end touches the ring on the next kick. */
	if (vmm_dev_kick(c->dev, q) < 0)
		return dev_fail(c);
	snprintf(what, sizeof(what), "ring-outside vq%u: %s %" PRIu64, q,
			vmm_dev_protocol_features(c->dev) & (1u << 3) ? "ack" : "no REPLY_ACK,", ack);
	return aftermath(c, s, what);
}

static int fault_chain(struct ctx *c, struct step *s, enum vmm_gpu_fault f,
		const char *name)
{
	uint32_t arg, len = 0, type = 0;
	char what[128];
	int r;

	if (pos_u32(c, s, 1, 0, &arg) < 0)
		return -1;
	r = vmm_gpu_inject(c->gpu, f, arg, FAULT_TIMEOUT_MS, &len, &type);
	if (r < 0)
		return dev_fail(c);
	if (r == 0 && !vmm_dev_connected(c->dev))
		snprintf(what, sizeof(what), "%s: no response", name);
	else if (r == 0)
		snprintf(what, sizeof(what), "%s: no response within %d ms", name, FAULT_TIMEOUT_MS);
	else
		snprintf(what, sizeof(what), "%s: returned with used len %u (%s)", name, len,
				len >= 24 ? vmm_gpu_resp_name(type) : "no header");
	return aftermath(c, s, what);
}

static int fault_oversized(struct ctx *c, struct step *s)
{
	uint32_t w, h, id = s->has_id ? s->id : vmm_gpu_next_resource_id(c->gpu);
	char what[128];
	int r;

	if (pos_u32(c, s, 1, 65536, &w) < 0 || pos_u32(c, s, 2, 65536, &h) < 0)
		return -1;
	r = vmm_gpu_resource_create_2d(c->gpu, id, s->format, w, h, NULL);
	if (r < 0)
		return aftermath(c, s, "oversized: no answer");
	snprintf(what, sizeof(what), "oversized %ux%u: %s", w, h,
			vmm_gpu_resp_name((uint32_t)r));
	if (!is_error_resp(r) && vmm_gpu_resource_unref(c->gpu, id, NULL) < 0)
		return dev_fail(c);
	if (s->expect == EXP_ERR && !is_error_resp(r))
		return fail(c, "%s, expected an error", what);
	return aftermath(c, s, what);
}

static int step_fault(struct ctx *c, struct step *s)
{
	static const struct { const char *name; enum vmm_gpu_fault f; } chains[] = {
		{ "desc-loop", VMM_FAULT_DESC_LOOP },
		{ "indirect-badlen", VMM_FAULT_INDIRECT_BADLEN },
		{ "indirect-loop", VMM_FAULT_INDIRECT_LOOP },
		{ "desc-outside", VMM_FAULT_DESC_OUTSIDE },
		{ "next-range", VMM_FAULT_NEXT_RANGE },
		{ "len-huge", VMM_FAULT_LEN_HUGE },
	};

	if (need_pos(c, s, 1) < 0)
		return -1;
	if (strcmp(s->pos[0], "ring-outside") == 0)
		return fault_ring_outside(c, s);
	if (strcmp(s->pos[0], "oversized") == 0)
		return fault_oversized(c, s);
	for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
		if (strcmp(s->pos[0], chains[i].name) == 0)
			return fault_chain(c, s, chains[i].f, chains[i].name);
	}
	return fail(c, "unknown fault '%s'", s->pos[0]);
}

static int hex_payload(struct ctx *c, const char *hex, uint8_t *out, uint32_t *len)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > 4096)
		return fail(c, "payload must be an even number of hex digits (at most 8192)");
	for (size_t i = 0; i < n / 2; i++) {
		char byte[3] = { hex[2 * i], hex[2 * i + 1], 0 };
		char *end;

		out[i] = (uint8_t)strtoul(byte, &end, 16);
		if (*end)
			return fail(c, "bad hex '%s'", byte);
	}
	*len = (uint32_t)(n / 2);
	return 0;
}

static int step_raw(struct ctx *c, struct step *s)
{
	static uint8_t payload[4096];
	static struct vmm_msg reply;
	uint32_t req, flags, len = 0;
	int fds[8];
	unsigned nfds = s->fds > 8 ? 8 : s->fds;
	int r;

	if (need_pos(c, s, 2) < 0 || pos_u32(c, s, 0, 0, &req) < 0 ||
			pos_u32(c, s, 1, 0, &flags) < 0)
		return -1;
	if (s->npos > 2 && hex_payload(c, s->pos[2], payload, &len) < 0)
		return -1;
	for (unsigned i = 0; i < nfds; i++)
		fds[i] = vmm_mem_fd(vmm_dev_mem(c->dev)); /* any valid fd will do */
	r = vmm_dev_send_raw(c->dev, req, flags, payload, len, fds, nfds);
	if (r < 0)
		return dev_fail(c);
	if (!s->reply) {
		printf("%s: sent %s(%u) flags 0x%x size %u fds %u\n", s->name,
				vmm_vhost_request_name(req), req, flags, len, nfds);
		return 0;
	}
	if (vmm_dev_recv_raw(c->dev, &reply, c->cfg.timeout_ms) < 0)
		return dev_fail(c);
	printf("%s: reply %s(%u) flags 0x%x size %u fds %u", s->name,
			vmm_vhost_request_name(reply.request), reply.request, reply.flags,
			reply.size, reply.nfds);
	for (unsigned i = 0; i < reply.size && i < 64; i++)
		printf("%s%02x", i ? "" : " payload ", reply.payload[i]);
	printf("\n");
	for (unsigned i = 0; i < reply.nfds; i++)
		close(reply.fds[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Misc steps                                                          */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Waiting: both devices are serviced                                  */
/* ------------------------------------------------------------------ */

static int idev_fail(struct ctx *c)
{
	return fail(c, "input: %s", vmm_dev_error(c->idev));
}

static bool input_running(const struct ctx *c)
{
	return c->idev && vmm_dev_running(c->idev);
}

/*
 * Waits up to ms for fd (-1: none) while taking input events and servicing
 * the GPU device's side channels. 1: fd readable; 0: timeout; -1: error.
 * Input events are taken at once; fd is looked at every PUMP_SLICE_MS.
 */
static int pump(struct ctx *c, int fd, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		int64_t left = deadline - now_ms();
		int slice = left < PUMP_SLICE_MS ? (int)(left < 0 ? 0 : left) : PUMP_SLICE_MS;
		int r;

		if (input_running(c)) {
			if (vmm_input_wait(c->input, slice) < 0)
				return idev_fail(c);
			slice = 0;
		}
		r = vmm_dev_wait_fd(c->dev, fd, slice);
		if (r < 0)
			return dev_fail(c);
		if (r == 1)
			return 1;
		if (now_ms() >= deadline)
			return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Misc steps                                                          */
/* ------------------------------------------------------------------ */

static int step_sleep(struct ctx *c, struct step *s)
{
	uint32_t ms;

	if (need_pos(c, s, 1) < 0 || pos_u32(c, s, 0, 0, &ms) < 0)
		return -1;
	if (pump(c, -1, (int)ms) < 0)
		return -1;
	printf("%s %u\n", s->name, ms);
	return 0;
}

static int step_wait_line(struct ctx *c, struct step *s)
{
	char line[256];
	size_t n = 0;

	for (;;) {
		char ch;
		ssize_t r;

		int ready = pump(c, STDIN_FILENO, 1000);

		if (ready < 0)
			return -1;
		/* A blocking read now would stop the device being serviced. */
		if (ready == 0)
			continue;
		r = read(STDIN_FILENO, &ch, 1);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return fail(c, "stdin closed");
		if (ch == '\n')
			break;
		if (n + 1 < sizeof(line))
			line[n++] = ch;
	}
	line[n] = 0;
	printf("%s: %s\n", s->name, line);
	return 0;
}

/* ------------------------------------------------------------------ */
/* virtio-input steps                                                  */
/* ------------------------------------------------------------------ */

static void format_event(const struct vmm_input_event *ev, char *out, size_t len)
{
	const char *type = vmm_input_type_name(ev->type);

	if (type)
		snprintf(out, len, "%s %u %d", type, ev->code, (int32_t)ev->value);
	else
		snprintf(out, len, "%u %u %d", ev->type, ev->code, (int32_t)ev->value);
}

static void on_input_event(void *data, const struct vmm_input_event *ev)
{
	struct ctx *c = data;
	char text[64];

	format_event(ev, text, sizeof(text));
	printf("event %s\n", text);
	if (c->nevents == c->cap_events) {
		size_t cap = c->cap_events ? 2 * c->cap_events : 256;
		struct vmm_input_event *p = realloc(c->events, cap * sizeof(*p));

		if (!p)
			return; /* printed, not kept: input-until will time out */
		c->events = p;
		c->cap_events = cap;
	}
	c->events[c->nevents++] = *ev;
}

static void on_fault_returned(void *data, enum vmm_input_fault kind, uint32_t len)
{
	struct ctx *c = data;

	(void)kind;
	(void)len;
	printf("fault-buffer: %s\n", vmm_input_stats(c->input)->last_fault);
}

static int need_input(struct ctx *c)
{
	if (!c->input)
		return fail(c, "no --input-socket given");
	return 0;
}

static int step_input_connect(struct ctx *c, struct step *s)
{
	uint32_t ms;

	if (need_input(c) < 0 || pos_u32(c, s, 0, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	if (vmm_dev_connect(c->idev, c->input_socket, (int)ms) < 0 ||
			vmm_dev_realize(c->idev) < 0)
		return idev_fail(c);
	printf("%s: features 0x%" PRIx64 " protocol 0x%" PRIx64 " (accepted 0x%" PRIx64
			") queues %" PRIu64 "\n", s->name, vmm_dev_backend_features(c->idev),
			vmm_dev_backend_protocol_features(c->idev),
			vmm_dev_protocol_features(c->idev), vmm_dev_max_queues(c->idev));
	return 0;
}

/* Set bits as ranges: "1-255,272-276". */
static void print_bits(const uint8_t *bits, unsigned nbits)
{
	bool any = false;

	for (unsigned b = 0; b < nbits; b++) {
		unsigned e = b;

		if (!(bits[b / 8] & (1u << (b % 8))))
			continue;
		while (e + 1 < nbits && (bits[(e + 1) / 8] & (1u << ((e + 1) % 8))))
			e++;
		printf(e > b ? "%s%u-%u" : "%s%u", any ? "," : " ", b, e);
		any = true;
		b = e;
	}
	if (!any)
		printf(" none");
}

static void print_probe(const char *name, const struct vmm_input_info *i)
{
	printf("%s name \"%s\" (size %u)\n", name, i->name, i->name_size);
	printf("%s serial \"%s\" (size %u)\n", name, i->serial, i->serial_size);
	if (i->has_devids)
		printf("%s devids bustype 0x%x vendor 0x%x product 0x%x version 0x%x\n", name,
				i->bustype, i->vendor, i->product, i->version);
	else
		printf("%s devids none\n", name);
	printf("%s props size %u:", name, i->prop_size);
	print_bits(i->props, i->prop_size * 8u);
	printf("\n%s rep %s\n", name, i->rep ? "yes" : "no");
	for (unsigned t = 1; t < VMM_INPUT_EV_MAX; t++) {
		const char *type = vmm_input_type_name((uint16_t)t);

		if (!i->ev_size[t])
			continue;
		printf("%s ev-bits %s size %u:", name, type ? type : "?", i->ev_size[t]);
		print_bits(i->ev_bits[t], i->ev_size[t] < 128 ? i->ev_size[t] * 8u : 1024u);
		printf("\n");
	}
	for (unsigned a = 0; a < VMM_INPUT_ABS_MAX; a++) {
		const struct vmm_input_absinfo *x = &i->abs[a];

		if (i->abs_valid[a])
			printf("%s abs %u min %d max %d fuzz %d flat %d res %d\n", name, a,
					(int32_t)x->min, (int32_t)x->max, (int32_t)x->fuzz,
					(int32_t)x->flat, (int32_t)x->res);
	}
}

static int step_input_probe(struct ctx *c, struct step *s)
{
	const struct vmm_input_stats *st;

	if (need_input(c) < 0)
		return -1;
	if (vmm_input_probe(c->input) < 0)
		return idev_fail(c);
	st = vmm_input_stats(c->input);
	print_probe(s->name, vmm_input_info(c->input));
	printf("%s: %" PRIu64 " GET_CONFIG %" PRIu64 " SET_CONFIG\n", s->name,
			st->config_reads, st->config_writes);
	return 0;
}

static int step_input_start(struct ctx *c, struct step *s)
{
	struct vmm_vring *q0, *q1;
	uint32_t n;

	if (need_input(c) < 0 || pos_u32(c, s, 0, VMM_INPUT_MAX_BUFFERS, &n) < 0)
		return -1;
	if (vmm_input_start(c->input, n) < 0)
		return idev_fail(c);
	q0 = vmm_dev_vring(c->idev, VMM_INPUT_EVENTQ);
	q1 = vmm_dev_vring(c->idev, VMM_INPUT_STATUSQ);
	printf("%s: features 0x%" PRIx64 " eventq %u@0x%" PRIx64 " statusq %u@0x%" PRIx64
			", %u event buffers posted\n", s->name, vmm_dev_features(c->idev),
			vmm_vring_num(q0), vmm_vring_desc_gpa(q0), vmm_vring_num(q1),
			vmm_vring_desc_gpa(q1), n);
	return 0;
}

static int step_input_post(struct ctx *c, struct step *s)
{
	uint32_t n;

	if (need_input(c) < 0 || need_pos(c, s, 1) < 0 || pos_u32(c, s, 0, 0, &n) < 0)
		return -1;
	if (vmm_input_post(c->input, n) < 0)
		return idev_fail(c);
	printf("%s: %u event buffers posted, the device holds %u\n", s->name, n,
			vmm_input_posted(c->input));
	return 0;
}

static int step_input_stall(struct ctx *c, struct step *s)
{
	if (need_input(c) < 0 || vmm_input_set_repost(c->input, false) < 0)
		return c->err[0] ? -1 : idev_fail(c);
	printf("%s: buffers are no longer re-posted (the device holds %u)\n", s->name,
			vmm_input_posted(c->input));
	return 0;
}

static int step_input_resume(struct ctx *c, struct step *s)
{
	if (need_input(c) < 0 || vmm_input_set_repost(c->input, true) < 0)
		return c->err[0] ? -1 : idev_fail(c);
	printf("%s: the device holds %u event buffers\n", s->name, vmm_input_posted(c->input));
	return 0;
}

static bool event_matches(const struct vmm_input_event *ev, const char *pattern)
{
	char text[64];

	format_event(ev, text, sizeof(text));
	return fnmatch(pattern, text, 0) == 0;
}

static int step_input_until(struct ctx *c, struct step *s)
{
	int64_t deadline;
	uint32_t ms;
	size_t start = c->consumed;

	if (need_input(c) < 0 || need_pos(c, s, 1) < 0 ||
			pos_u32(c, s, 1, (uint32_t)c->cfg.timeout_ms, &ms) < 0)
		return -1;
	deadline = now_ms() + ms;
	for (size_t i = c->consumed;; i++) {
		while (i >= c->nevents) {
			if (now_ms() >= deadline)
				return fail(c, "no event '%s' within %u ms (%zu others arrived)",
						s->pos[0], ms, c->nevents - start);
			if (pump(c, -1, PUMP_SLICE_MS) < 0)
				return -1;
			if (i >= c->nevents && !input_running(c))
				return fail(c, "the input device stopped");
		}
		if (event_matches(&c->events[i], s->pos[0])) {
			c->consumed = i + 1;
			printf("%s: '%s' after %zu events\n", s->name, s->pos[0], i + 1 - start);
			return 0;
		}
	}
}

/* pump() returns on every event batch only when it times out; wait in
 * short slices so that a count can be watched. */
static int wait_events(struct ctx *c, size_t count, int64_t deadline)
{
	while (c->nevents < count && now_ms() < deadline) {
		if (pump(c, -1, PUMP_SLICE_MS) < 0)
			return -1;
	}
	return 0;
}

static int step_input_next(struct ctx *c, struct step *s)
{
	size_t want = s->npos;

	if (need_input(c) < 0 || need_pos(c, s, 1) < 0)
		return -1;
	if (wait_events(c, c->consumed + want, now_ms() + c->cfg.timeout_ms) < 0)
		return -1;
	for (size_t k = 0; k < want; k++) {
		char text[64];

		if (c->consumed + k >= c->nevents)
			return fail(c, "event %zu of %zu ('%s') did not arrive within %d ms",
					k + 1, want, s->pos[k], c->cfg.timeout_ms);
		format_event(&c->events[c->consumed + k], text, sizeof(text));
		if (!event_matches(&c->events[c->consumed + k], s->pos[k]))
			return fail(c, "event %zu is '%s', expected '%s'", k + 1, text, s->pos[k]);
	}
	c->consumed += want;
	printf("%s: %zu events as expected\n", s->name, want);
	return 0;
}

static int step_input_quiet(struct ctx *c, struct step *s)
{
	uint32_t ms;
	size_t before = c->nevents;
	char text[64];

	if (need_input(c) < 0 || need_pos(c, s, 1) < 0 || pos_u32(c, s, 0, 0, &ms) < 0)
		return -1;
	if (pump(c, -1, (int)ms) < 0)
		return -1;
	if (c->nevents != before) {
		format_event(&c->events[before], text, sizeof(text));
		return fail(c, "%zu events arrived within %u ms, the first '%s'",
				c->nevents - before, ms, text);
	}
	c->consumed = c->nevents;
	printf("%s: no event for %u ms\n", s->name, ms);
	return 0;
}

static int step_input_skip(struct ctx *c, struct step *s)
{
	if (need_input(c) < 0)
		return -1;
	printf("%s: %zu events consumed\n", s->name, c->nevents - c->consumed);
	c->consumed = c->nevents;
	return 0;
}

static int step_input_status(struct ctx *c, struct step *s)
{
	struct vmm_input_event ev;
	uint32_t code, value;

	if (need_input(c) < 0 || need_pos(c, s, 3) < 0)
		return -1;
	if (vmm_input_type_parse(s->pos[0], &ev.type) < 0)
		return fail(c, "bad event type '%s'", s->pos[0]);
	if (pos_u32(c, s, 1, 0, &code) < 0 || code > UINT16_MAX || pos_u32(c, s, 2, 0, &value) < 0)
		return c->err[0] ? -1 : fail(c, "bad code '%s'", s->pos[1]);
	ev.code = (uint16_t)code;
	ev.value = value;
	if (vmm_input_send_status(c->input, &ev) < 0)
		return idev_fail(c);
	printf("%s: %s %u %u returned by the device\n", s->name, s->pos[0], code, value);
	return 0;
}

static int step_input_fault(struct ctx *c, struct step *s)
{
	enum vmm_input_fault kind;

	if (need_input(c) < 0 || need_pos(c, s, 1) < 0)
		return -1;
	if (strcmp(s->pos[0], "readable") == 0)
		kind = VMM_INPUT_FAULT_READABLE;
	else if (strcmp(s->pos[0], "short") == 0)
		kind = VMM_INPUT_FAULT_SHORT;
	else
		return fail(c, "unknown input fault '%s' (readable or short)", s->pos[0]);
	if (vmm_input_inject(c->input, kind) < 0)
		return idev_fail(c);
	printf("%s: %s buffer posted on the event queue\n", s->name, s->pos[0]);
	return 0;
}

/* After an input config fault: is the back end still there? */
static int input_aftermath(struct ctx *c, struct step *s, const char *what)
{
	bool alive = vmm_dev_connected(c->idev) && vmm_dev_ping(c->idev) == 0;

	printf("%s %s; back end %s\n", s->name, what, alive ? "alive" : "closed the connection");
	if (s->expect == EXP_CLOSED)
		return alive ? fail(c, "the back end survived") : 0;
	return alive ? 0 : fail(c, "the input back end is gone: %s", vmm_dev_error(c->idev));
}

/* A GET_CONFIG's reply: the back end may refuse with a size-0 payload. */
static void describe_config_reply(struct ctx *c, char *what, size_t len,
		uint32_t offset, uint32_t size)
{
	static struct vmm_msg reply;
	int n = snprintf(what, len, "GET_CONFIG offset %u size %u: ", offset, size);

	if (vmm_dev_recv_raw(c->idev, &reply, c->cfg.timeout_ms) < 0) {
		snprintf(what + n, len - (size_t)n, "no reply (%s)", vmm_dev_error(c->idev));
		return;
	}
	snprintf(what + n, len - (size_t)n, "reply %s flags 0x%x size %u",
			vmm_vhost_request_name(reply.request), reply.flags, reply.size);
	for (unsigned i = 0; i < reply.nfds; i++)
		close(reply.fds[i]);
}

static int step_input_config_fault(struct ctx *c, struct step *s)
{
	static uint8_t payload[12 + 4096];
	uint32_t offset = 0, size = 0;
	bool set;
	char what[256];

	if (need_input(c) < 0 || need_pos(c, s, 2) < 0)
		return -1;
	set = strcmp(s->pos[0], "set") == 0;
	if (!set && strcmp(s->pos[0], "get") != 0)
		return fail(c, "input-config-fault: set or get");
	if (set ? pos_u32(c, s, 1, 0, &offset) < 0 || pos_u32(c, s, 2, 0, &size) < 0 :
			pos_u32(c, s, 1, 0, &size) < 0 || pos_u32(c, s, 2, 0, &offset) < 0)
		return -1;
	if (size > 4096)
		return fail(c, "at most 4096 bytes");
	memset(payload, 0, sizeof(payload));
	payload[0] = (uint8_t)offset;
	payload[1] = (uint8_t)(offset >> 8);
	payload[2] = (uint8_t)(offset >> 16);
	payload[3] = (uint8_t)(offset >> 24);
	payload[4] = (uint8_t)size;
	payload[5] = (uint8_t)(size >> 8);
	/* select/subsel-like bytes anywhere the write lands. */
	memset(payload + 12, 0x11, size);
	if (vmm_dev_send_raw(c->idev, set ? 25 : 24, set ? 0x9 : 0x1, payload, 12 + size,
			NULL, 0) < 0)
		return idev_fail(c);
	if (set) {
		static struct vmm_msg reply;
		bool acked = vmm_dev_protocol_features(c->idev) & (1u << 3);

		if (!acked)
			snprintf(what, sizeof(what), "SET_CONFIG offset %u size %u: no REPLY_ACK",
					offset, size);
		else if (vmm_dev_recv_raw(c->idev, &reply, c->cfg.timeout_ms) < 0)
			snprintf(what, sizeof(what), "SET_CONFIG offset %u size %u: no ack (%s)",
					offset, size, vmm_dev_error(c->idev));
		else
			snprintf(what, sizeof(what), "SET_CONFIG offset %u size %u: ack %" PRIu64,
					offset, size, reply.size == 8 ? (uint64_t)reply.payload[0] : 0);
	} else {
		describe_config_reply(c, what, sizeof(what), offset, size);
	}
	return input_aftermath(c, s, what);
}

static int step_input_reset(struct ctx *c, struct step *s)
{
	if (need_input(c) < 0)
		return -1;
	if (vmm_input_reset(c->input) < 0)
		return idev_fail(c);
	printf("%s: eventq base %u statusq base %u\n", s->name,
			vmm_dev_stats(c->idev)->vring_base[0], vmm_dev_stats(c->idev)->vring_base[1]);
	return 0;
}

static int step_input_stats(struct ctx *c, struct step *s)
{
	const struct vmm_input_stats *st;
	const struct vmm_dev_stats *d;

	if (need_input(c) < 0)
		return -1;
	if (input_running(c) && vmm_input_wait(c->input, 0) < 0)
		return idev_fail(c);
	st = vmm_input_stats(c->input);
	d = vmm_dev_stats(c->idev);
	printf("%s: events %" PRIu64 " reposted %" PRIu64 " held-by-device %u bad-len %" PRIu64
			" status %" PRIu64 "/%" PRIu64 " fault-buffers %" PRIu64
			" violations %" PRIu64 " get-config %" PRIu64 " set-config %" PRIu64
			" kicks %" PRIu64 " calls %" PRIu64 "/%" PRIu64 " stale %" PRIu64 "/%" PRIu64
			"\n", s->name, st->events, st->reposted, vmm_input_posted(c->input),
			st->bad_len, st->status_done, st->status_sent, st->fault_buffers_returned,
			st->fault_violations, st->config_reads, st->config_writes, d->kicks,
			d->calls[0], d->calls[1], d->stale_calls[0], d->stale_calls[1]);
	for (unsigned q = 0; q < 2; q++) {
		struct vmm_vring *vr = vmm_dev_vring(c->idev, q);

		if (vr)
			printf("%s vq%u: avail %u used %u consumed %u in-flight %u\n", s->name, q,
					vmm_vring_avail_idx(vr), vmm_vring_used_idx(vr),
					vmm_vring_last_used(vr), vmm_vring_in_flight(vr));
	}
	return 0;
}

static const struct step_def steps[] = {
	{ "connect", step_connect, false },
	{ "probe", step_probe, false },
	{ "driver-ok", step_driver_ok, false },
	{ "reset", step_reset, false },
	{ "rebind", step_rebind, false },
	{ "kill", step_kill, false },
	{ "reconnect", step_reconnect, false },
	{ "expect-disconnect", step_expect_disconnect, true },
	{ "ping", step_ping, false },
	{ "display-info", step_display_info, false },
	{ "edid", step_edid, false },
	{ "scanout", step_scanout, false },
	{ "blob-scanout", step_blob_scanout, false },
	{ "create", step_create, false },
	{ "attach", step_attach, false },
	{ "draw", step_draw, false },
	{ "transfer", step_transfer, false },
	{ "set-scanout", step_set_scanout, false },
	{ "flush", step_flush, false },
	{ "disable-scanout", step_disable_scanout, false },
	{ "unref", step_unref, false },
	{ "detach", step_detach, false },
	{ "uuid", step_uuid, false },
	{ "cursor", step_cursor, false },
	{ "cursor-hide", step_cursor_hide, false },
	{ "wait-fence", step_wait_fence, false },
	{ "wait-all", step_wait_all, false },
	{ "frames", step_frames, false },
	{ "expect-update", step_expect_update, false },
	{ "expect-scanout", step_expect_scanout, false },
	{ "expect-cursor", step_expect_cursor, false },
	{ "gpu-stats", step_gpu_stats, false },
	{ "stats", step_stats, false },
	{ "fault", step_fault, true },
	{ "raw", step_raw, true },
	{ "sleep", step_sleep, false },
	{ "wait-line", step_wait_line, false },
	{ "input-connect", step_input_connect, false },
	{ "input-probe", step_input_probe, false },
	{ "input-start", step_input_start, false },
	{ "input-post", step_input_post, false },
	{ "input-stall", step_input_stall, false },
	{ "input-resume", step_input_resume, false },
	{ "input-until", step_input_until, false },
	{ "input-next", step_input_next, false },
	{ "input-quiet", step_input_quiet, false },
	{ "input-skip", step_input_skip, false },
	{ "input-status", step_input_status, false },
	{ "input-fault", step_input_fault, true },
	{ "input-config-fault", step_input_config_fault, true },
	{ "input-reset", step_input_reset, false },
	{ "input-stats", step_input_stats, false },
};

static const struct step_def *find_step(const char *name)
{
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (strcmp(steps[i].name, name) == 0)
			return &steps[i];
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see " PROG " --help)\n", stderr);
	return -1;
}

static int step_option(struct step *s, const char *opt, const char *val, bool *used_val)
{
	static const char *const with_value[] = {
		"--pattern", "--scanout", "--id", "--format", "--entries", "--fence",
		"--expect", "--fds", "--depth",
	};
	bool needs = false;
	uint64_t fence;

	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
		needs = needs || strcmp(opt, with_value[i]) == 0;
	*used_val = needs;
	if (needs && !val)
		return usage_error("%s: %s needs a value", s->name, opt);
	if (strcmp(opt, "--no-transfer") == 0)
		s->no_transfer = true;
	else if (strcmp(opt, "--unfenced") == 0)
		s->unfenced = true;
	else if (strcmp(opt, "--no-verify") == 0)
		s->no_verify = true;
	else if (strcmp(opt, "--depth") == 0) {
		if (parse_u32(val, &s->depth) < 0 || s->depth == 0)
			return usage_error("%s: bad depth '%s'", s->name, val);
	}
	else if (strcmp(opt, "--reply") == 0)
		s->reply = true;
	else if (strcmp(opt, "--pattern") == 0) {
		s->pattern_text = val;
		if (vmm_pattern_parse(val, &s->pattern) < 0)
			return usage_error("%s: bad pattern '%s'", s->name, val);
	} else if (strcmp(opt, "--scanout") == 0) {
		if (parse_u32(val, &s->scanout) < 0 || s->scanout >= 16)
			return usage_error("%s: bad scanout '%s'", s->name, val);
	} else if (strcmp(opt, "--id") == 0) {
		s->has_id = true;
		if (parse_u32(val, &s->id) < 0)
			return usage_error("%s: bad id '%s'", s->name, val);
	} else if (strcmp(opt, "--format") == 0) {
		if (parse_u32(val, &s->format) < 0)
			return usage_error("%s: bad format '%s'", s->name, val);
	} else if (strcmp(opt, "--entries") == 0) {
		if (parse_u32(val, &s->entries) < 0)
			return usage_error("%s: bad entry count '%s'", s->name, val);
	} else if (strcmp(opt, "--fds") == 0) {
		if (parse_u32(val, &s->fds) < 0)
			return usage_error("%s: bad fd count '%s'", s->name, val);
	} else if (strcmp(opt, "--fence") == 0) {
		if (parse_u64(val, &fence) < 0)
			return usage_error("%s: bad fence '%s'", s->name, val);
		s->has_fence = true;
		s->fence = fence;
	} else if (strcmp(opt, "--expect") == 0) {
		if (parse_expect(val, s) < 0)
			return usage_error("%s: bad --expect '%s'", s->name, val);
	} else {
		return usage_error("%s: unknown option %s", s->name, opt);
	}
	return 0;
}

static void step_defaults(struct step *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->format = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM; /* XRGB8888, as Linux KMS */
	s->pattern.kind = VMM_PATTERN_QUADRANTS;
}

/* Splits argv into steps: a step name, then its arguments and options up
 * to the next step name. */
static int parse_steps(int argc, char **argv, struct step *out, unsigned *n)
{
	*n = 0;
	for (int i = 0; i < argc; i++) {
		struct step *s = *n ? &out[*n - 1] : NULL;
		bool used_val;

		if (find_step(argv[i])) {
			step_defaults(&out[(*n)++], argv[i]);
			continue;
		}
		if (!s)
			return usage_error("unknown step '%s'", argv[i]);
		if (strncmp(argv[i], "--", 2) == 0) {
			if (step_option(s, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &used_val) < 0)
				return -1;
			i += used_val;
		} else if (s->npos < 8) {
			s->pos[s->npos++] = argv[i];
		} else {
			return usage_error("%s: too many arguments", s->name);
		}
	}
	if (*n == 0)
		return usage_error("no steps given");
	return 0;
}

static int parse_size(const char *text, uint32_t *w, uint32_t *h)
{
	char *end;

	*w = (uint32_t)strtoul(text, &end, 10);
	if (*end != 'x')
		return -1;
	*h = (uint32_t)strtoul(end + 1, &end, 10);
	return *end || !*w || !*h ? -1 : 0;
}

/* Global options with a value; returns 1 if it consumed argv[i + 1]. */
static int global_value(struct ctx *c, const char *opt, const char *val)
{
	struct vmm_config *cfg = &c->cfg;
	uint32_t u;

	if (!val)
		return usage_error("%s needs a value", opt);
	if (strcmp(opt, "--socket") == 0) {
		c->socket = val;
		return 1;
	}
	if (strcmp(opt, "--input-socket") == 0) {
		c->input_socket = val;
		return 1;
	}
	if (strcmp(opt, "--features-add") == 0)
		return parse_u64(val, &cfg->features_add) < 0 ? usage_error("bad %s", opt) : 1;
	if (strcmp(opt, "--features-del") == 0)
		return parse_u64(val, &cfg->features_del) < 0 ? usage_error("bad %s", opt) : 1;
	if (strcmp(opt, "--protocol-mask") == 0)
		return parse_u64(val, &cfg->protocol_mask) < 0 ? usage_error("bad %s", opt) : 1;
	if (parse_u32(val, &u) < 0)
		return usage_error("bad value for %s: '%s'", opt, val);
	if (strcmp(opt, "--regions") == 0)
		cfg->nregions = u;
	else if (strcmp(opt, "--mem") == 0)
		cfg->mem_size = (uint64_t)u << 20;
	else if (strcmp(opt, "--timeout") == 0)
		cfg->timeout_ms = (int)u;
	else if (strcmp(opt, "--max-outputs") == 0)
		cfg->max_outputs = u;
	else if (strcmp(opt, "--num-scanouts") == 0)
		cfg->force_num_scanouts = u;
	else if (strcmp(opt, "--ctrl-size") == 0)
		cfg->ctrl_queue_size = u;
	else if (strcmp(opt, "--cursor-size") == 0)
		cfg->cursor_queue_size = u;
	else
		return usage_error("unknown option %s", opt);
	return 1;
}

static int global_flag(struct ctx *c, const char *opt)
{
	struct vmm_config *cfg = &c->cfg;

	if (strcmp(opt, "--span") == 0)
		cfg->span_buffers = cfg->span_backing = true;
	else if (strcmp(opt, "--span=buffers") == 0)
		cfg->span_buffers = true;
	else if (strcmp(opt, "--span=backing") == 0)
		cfg->span_backing = true;
	else if (strcmp(opt, "--trace") == 0)
		cfg->trace = true;
	else if (strcmp(opt, "--no-indirect") == 0)
		cfg->indirect_desc = false;
	else if (strcmp(opt, "--no-event-idx") == 0)
		cfg->event_idx = false;
	else if (strcmp(opt, "--no-queue-reset") == 0)
		cfg->queue_reset = false;
	else if (strcmp(opt, "--no-edid") == 0)
		cfg->edid = false;
	else if (strcmp(opt, "--gpu-socket") == 0)
		cfg->gpu_socket = true;
	else if (strcmp(opt, "--no-gpu-socket") == 0)
		cfg->gpu_socket = false;
	else if (strcmp(opt, "--gpu-peer") == 0)
		cfg->gpu_peer.enabled = cfg->gpu_socket = true;
	else if (strcmp(opt, "--gpu-peer-edid") == 0)
		cfg->gpu_peer.protocol_features |= 1;
	else if (strncmp(opt, "--gpu-peer=", 11) == 0) {
		cfg->gpu_peer.enabled = cfg->gpu_socket = true;
		if (parse_size(opt + 11, &cfg->gpu_peer.width, &cfg->gpu_peer.height) < 0)
			return usage_error("bad size in %s", opt);
	} else {
		return 0;
	}
	return 1;
}

/* Returns the index of the first step word, or -1. */
static int parse_globals(struct ctx *c, int argc, char **argv)
{
	enum vmm_profile profile = VMM_PROFILE_QEMU72;
	int i;

	/* The profile decides the defaults, so find it first. */
	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--profile") != 0)
			continue;
		if (strcmp(argv[i + 1], "generic") == 0)
			profile = VMM_PROFILE_GENERIC;
		else if (strcmp(argv[i + 1], "qemu72") != 0)
			return usage_error("unknown profile '%s'", argv[i + 1]);
	}
	vmm_config_init(&c->cfg, profile);
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		int r;

		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_options, stdout);
			fputs(usage_steps, stdout);
			fputs(usage_input, stdout);
			exit(0);
		}
		if (strcmp(argv[i], "--profile") == 0) {
			i++;
			continue;
		}
		r = global_flag(c, argv[i]);
		if (r == 0)
			r = global_value(c, argv[i], i + 1 < argc ? argv[i + 1] : NULL);
		else
			continue;
		if (r < 0)
			return -1;
		i++;
	}
	if (!c->socket && !c->input_socket)
		return usage_error("--socket or --input-socket is required");
	return i;
}

/* Problems seen on side channels during a step fail that step. */
struct health {
	uint64_t gs_errors, err_signals, late, bad;
	uint64_t input_err, input_late, input_bad_len, input_violations;
};

static void health_snapshot(const struct ctx *c, struct health *h)
{
	const struct vmm_dev_stats *d = vmm_dev_stats(c->dev);
	const struct vmm_gpu_stats *g = vmm_gpu_stats(c->gpu);

	*h = (struct health){ 0 };
	h->gs_errors = vmm_dev_gpu_socket_stats(c->dev)->errors;
	h->err_signals = d->err_signals[0] + d->err_signals[1];
	h->late = d->late_used_writes;
	h->bad = g->updates_bad + g->scanouts_bad + g->cursors_bad;
	if (c->input) {
		const struct vmm_dev_stats *id = vmm_dev_stats(c->idev);
		const struct vmm_input_stats *is = vmm_input_stats(c->input);

		h->input_err = id->err_signals[0] + id->err_signals[1];
		h->input_late = id->late_used_writes;
		h->input_bad_len = is->bad_len;
		h->input_violations = is->fault_violations;
	}
}

static int health_check(struct ctx *c, const struct step_def *def, const struct health *before)
{
	struct health now;

	health_snapshot(c, &now);
	if (now.gs_errors != before->gs_errors)
		return fail(c, "GPU socket: %s", vmm_dev_gpu_socket_stats(c->dev)->last_error);
	if (!def->fault && now.err_signals != before->err_signals)
		return fail(c, "the back end signalled a vring err fd");
	if (now.late != before->late)
		return fail(c, "the back end wrote a used ring after GET_VRING_BASE");
	if (now.bad != before->bad)
		return fail(c, "GPU socket traffic does not match: %s | %s | %s",
				vmm_gpu_stats(c->gpu)->last_update,
				vmm_gpu_stats(c->gpu)->last_scanout,
				vmm_gpu_stats(c->gpu)->last_cursor);
	if (!def->fault && now.input_err != before->input_err)
		return fail(c, "the input back end signalled a vring err fd");
	if (now.input_late != before->input_late)
		return fail(c, "the input back end wrote a used ring after GET_VRING_BASE");
	if (now.input_bad_len != before->input_bad_len)
		return fail(c, "the input back end returned an event buffer with used len != 8");
	if (now.input_violations != before->input_violations)
		return fail(c, "%s", vmm_input_stats(c->input)->last_fault);
	return 0;
}

static int run(struct ctx *c, struct step *list, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const struct step_def *def = find_step(list[i].name);
		struct health h;

		health_snapshot(c, &h);
		if (list[i].has_fence && list[i].fence > c->max_fence)
			c->max_fence = list[i].fence;
		c->err[0] = 0;
		c->responses = 0;
		c->expected_error = false;
		if (def->run(c, &list[i]) < 0 || health_check(c, def, &h) < 0 ||
				check_expected(c, &list[i]) < 0) {
			fprintf(stderr, PROG ": step %u (%s) failed: %s\n", i + 1,
					list[i].name, c->err);
			return -1;
		}
	}
	return 0;
}

/* The input device of the same VM: same profile, timeouts and guest RAM. */
static int make_input(struct ctx *c)
{
	struct vmm_config cfg = c->cfg;
	struct vmm_input_listener l = {
		.event = on_input_event,
		.fault_returned = on_fault_returned,
		.data = c,
	};

	vmm_config_set_device(&cfg, VMM_DEVICE_INPUT);
	c->idev = vmm_dev_new_with_mem(&cfg, vmm_dev_mem(c->dev));
	if (!c->idev)
		return -1;
	c->input = vmm_input_new(c->idev);
	if (!c->input)
		return -1;
	vmm_input_set_listener(c->input, &l);
	return 0;
}

int main(int argc, char **argv)
{
	static struct ctx c;
	struct step *list;
	unsigned n;
	int first, status = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	first = parse_globals(&c, argc, argv);
	if (first < 0)
		return 2;
	list = calloc((size_t)argc, sizeof(*list));
	if (!list)
		return 2;
	if (parse_steps(argc - first, argv + first, list, &n) < 0)
		goto out;
	c.dev = vmm_dev_new(&c.cfg);
	if (!c.dev) {
		fprintf(stderr, PROG ": cannot create guest memory: %s\n", strerror(errno));
		goto out;
	}
	c.gpu = vmm_gpu_new(c.dev);
	if (!c.gpu) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	if (c.input_socket && make_input(&c) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	status = run(&c, list, n) < 0 ? 1 : 0;
out:
	vmm_input_free(c.input);
	vmm_dev_free(c.idev);
	free(c.events);
	vmm_gpu_free(c.gpu);
	vmm_dev_free(c.dev);
	free(list);
	return status;
}
