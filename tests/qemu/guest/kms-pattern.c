/*
 * kms-pattern: a minimal KMS dumb-buffer client for the QEMU guest harness.
 *
 * Drives a virtio-gpu DRM device the way the smallest possible KMS client
 * would and shows a known, easy-to-verify picture: four solid quadrants and
 * a 1-pixel black border. Every line it prints starts with "GTEST " and ends
 * with "card=N", so the host can grep the results out of the serial log even
 * when several instances (one per GPU) run at the same time.
 *
 * Built static inside make-initrd.sh:
 *   gcc -static -O2 -I/usr/include/libdrm -o kms-pattern kms-pattern.c
 *
 * Usage: kms-pattern [--card N] [--palette N] [--hold SECONDS]
 *
 * Exit status: 0 when every KMS step up to DIRTYFB succeeded (the
 * RESOURCE_CREATE_BLOB probe is informational and never fails the run),
 * 1 on the first failed step, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <drm.h>
#include <drm_mode.h>
#include <virtgpu_drm.h>

/*
 * libdrm-dev 2.4.114 (Debian 12) stops at GET_CAPS; RESOURCE_CREATE_BLOB
 * is declared here with the layout of the kernel's uapi virtgpu_drm.h.
 */
struct cw_virtgpu_resource_create_blob {
	uint32_t blob_mem;
	uint32_t blob_flags;
	uint32_t bo_handle;
	uint32_t res_handle;
	uint64_t size;
	uint32_t pad;
	uint32_t cmd_size;
	uint64_t cmd;
	uint64_t blob_id;
};
#define CW_VIRTGPU_RESOURCE_CREATE_BLOB 0x0a
#define CW_BLOB_MEM_GUEST 0x0001
#define CW_BLOB_FLAG_USE_MAPPABLE 0x0001
#define CW_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB \
	DRM_IOWR(DRM_COMMAND_BASE + CW_VIRTGPU_RESOURCE_CREATE_BLOB, \
		 struct cw_virtgpu_resource_create_blob)

/* Quadrant colours (0xRRGGBB): top-left, top-right, bottom-left, bottom-right. */
static const uint32_t palettes[][4] = {
	{ 0xff0000, 0x00ff00, 0x0000ff, 0xffffff }, /* 1 */
	{ 0xffff00, 0x00ffff, 0xff00ff, 0x808080 }, /* 2 */
	{ 0xff8000, 0x0080ff, 0x80ff00, 0x404040 }, /* 3 */
	{ 0x800000, 0x008000, 0x000080, 0xc0c0c0 }, /* 4 */
};
#define NUM_PALETTES ((int)(sizeof(palettes) / sizeof(palettes[0])))

static const char *const param_names[] = {
	"", "3D_FEATURES", "CAPSET_QUERY_FIX", "RESOURCE_BLOB", "HOST_VISIBLE",
	"CROSS_DEVICE", "CONTEXT_INIT", "SUPPORTED_CAPSET_IDs",
};

static int card = 0;

static void gtest(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void gtest(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* One write per line, so parallel instances do not interleave. */
	dprintf(STDOUT_FILENO, "GTEST %.*s card=%d\n", n, line, card);
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r == -1 && (errno == EINTR || errno == EAGAIN));
	return r;
}

static int fail(const char *step)
{
	int e = errno;

	gtest("%s FAIL errno=%d (%s)", step, e, strerror(e));
	gtest("kms-pattern exit=1");
	return 1;
}

static void sleep_seconds(unsigned s)
{
	struct timespec ts = { .tv_sec = s, .tv_nsec = 0 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "GTEST usage: kms-pattern [--card N] [--palette 1-%d] [--hold SECONDS]\n",
		NUM_PALETTES);
}

/* Four solid quadrants plus a 1-pixel black border, XRGB8888. */
static void fill_pattern(uint8_t *map, uint32_t w, uint32_t h, uint32_t pitch,
			 const uint32_t *pal)
{
	for (uint32_t y = 0; y < h; y++) {
		uint32_t *row = (uint32_t *)(map + (size_t)y * pitch);
		int bottom = y >= h / 2;

		for (uint32_t x = 0; x < w; x++) {
			int right = x >= w / 2;

			if (x == 0 || y == 0 || x == w - 1 || y == h - 1)
				row[x] = 0x000000;
			else
				row[x] = pal[bottom * 2 + right];
		}
	}
}

int main(int argc, char **argv)
{
	int palette = 1, hold = 3;
	char path[64];
	int fd;

	for (int i = 1; i < argc; i++) {
		int *dst = NULL, min = 0, max = 0;

		if (!strcmp(argv[i], "--card")) {
			dst = &card; min = 0; max = 255;
		} else if (!strcmp(argv[i], "--palette")) {
			dst = &palette; min = 1; max = NUM_PALETTES;
		} else if (!strcmp(argv[i], "--hold")) {
			dst = &hold; min = 0; max = 86400;
		} else {
			usage();
			return 2;
		}
		if (i + 1 >= argc || parse_int(argv[++i], min, max, dst)) {
			usage();
			return 2;
		}
	}
	const uint32_t *pal = palettes[palette - 1];

	gtest("kms-pattern start palette=%d hold=%d", palette, hold);

	/* 1. Open the card. */
	snprintf(path, sizeof(path), "/dev/dri/card%d", card);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return fail("open");
	gtest("open ok %s", path);

	/* 2. GETPARAM 1-7. */
	char summary[160] = "";
	size_t off = 0;
	for (int p = 1; p <= 7; p++) {
		int value = 0;
		struct drm_virtgpu_getparam gp = {
			.param = (uint64_t)p,
			.value = (uint64_t)(uintptr_t)&value,
		};

		if (xioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp) == 0) {
			gtest("getparam %d %s=%d", p, param_names[p], value);
			off += snprintf(summary + off, sizeof(summary) - off, "%s%d",
					p > 1 ? "," : "", value);
		} else {
			int e = errno;

			gtest("getparam %d %s FAIL errno=%d", p, param_names[p], e);
			off += snprintf(summary + off, sizeof(summary) - off, "%se%d",
					p > 1 ? "," : "", e);
		}
	}
	gtest("getparam %s", summary);

	/* 3. Resources (counts, then arrays), then the connector's modes. */
	struct drm_mode_card_res res = { 0 };
	if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res))
		return fail("GETRESOURCES");
	if (!res.count_crtcs || !res.count_connectors) {
		errno = ENODEV;
		return fail("GETRESOURCES(no crtc or connector)");
	}
	uint32_t *crtcs = calloc(res.count_crtcs, sizeof(uint32_t));
	uint32_t *conns = calloc(res.count_connectors, sizeof(uint32_t));
	uint32_t *encs = calloc(res.count_encoders + 1, sizeof(uint32_t));
	uint32_t *fbs = calloc(res.count_fbs + 1, sizeof(uint32_t));
	if (!crtcs || !conns || !encs || !fbs)
		return fail("calloc");
	res.crtc_id_ptr = (uint64_t)(uintptr_t)crtcs;
	res.connector_id_ptr = (uint64_t)(uintptr_t)conns;
	res.encoder_id_ptr = (uint64_t)(uintptr_t)encs;
	res.fb_id_ptr = (uint64_t)(uintptr_t)fbs;
	if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res))
		return fail("GETRESOURCES");
	gtest("resources crtcs=%u connectors=%u encoders=%u fbs=%u max=%ux%u",
	      res.count_crtcs, res.count_connectors, res.count_encoders, res.count_fbs,
	      res.max_width, res.max_height);

	/* The first connected connector with modes; else the first with modes. */
	struct drm_mode_get_connector conn = { 0 };
	struct drm_mode_modeinfo *modes = NULL;
	int chosen = -1;
	for (int pass = 0; pass < 2 && chosen < 0; pass++) {
		for (uint32_t i = 0; i < res.count_connectors && chosen < 0; i++) {
			struct drm_mode_get_connector c = { .connector_id = conns[i] };

			if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c))
				return fail("GETCONNECTOR");
			if (!c.count_modes || (pass == 0 && c.connection != 1))
				continue;
			uint32_t nmodes = c.count_modes;
			struct drm_mode_modeinfo *m = calloc(nmodes, sizeof(*m));
			uint32_t *e = calloc(c.count_encoders + 1, sizeof(uint32_t));
			if (!m || !e)
				return fail("calloc");
			struct drm_mode_get_connector c2 = {
				.connector_id = conns[i],
				.count_modes = nmodes,
				.modes_ptr = (uint64_t)(uintptr_t)m,
				.count_encoders = c.count_encoders,
				.encoders_ptr = (uint64_t)(uintptr_t)e,
			};
			if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &c2))
				return fail("GETCONNECTOR");
			if (!c2.count_modes || c2.count_modes > nmodes) {
				free(m);
				free(e);
				continue; /* changed under us; skip */
			}
			conn = c2;
			conn.encoders_ptr = (uint64_t)(uintptr_t)e;
			modes = m;
			chosen = (int)i;
		}
	}
	if (chosen < 0) {
		errno = ENODEV;
		return fail("connector(no modes)");
	}
	struct drm_mode_modeinfo mode = modes[0];
	gtest("connector id=%u index=%d status=%s modes=%u first=%ux%u@%u",
	      conn.connector_id, chosen,
	      conn.connection == 1 ? "connected" : conn.connection == 2 ? "disconnected" : "unknown",
	      conn.count_modes, mode.hdisplay, mode.vdisplay, mode.vrefresh);

	/* The first CRTC the connector's encoder can drive, else the first CRTC. */
	uint32_t crtc_id = crtcs[0];
	if (conn.count_encoders) {
		struct drm_mode_get_encoder enc = {
			.encoder_id = ((uint32_t *)(uintptr_t)conn.encoders_ptr)[0],
		};
		if (xioctl(fd, DRM_IOCTL_MODE_GETENCODER, &enc) == 0) {
			for (uint32_t i = 0; i < res.count_crtcs && i < 32; i++) {
				if (enc.possible_crtcs & (1u << i)) {
					crtc_id = crtcs[i];
					break;
				}
			}
		}
	}
	gtest("crtc id=%u", crtc_id);

	/* 4. Dumb buffer at 32 bpp and a legacy framebuffer on it. */
	uint32_t w = mode.hdisplay, h = mode.vdisplay;
	struct drm_mode_create_dumb dumb = { .width = w, .height = h, .bpp = 32 };
	if (xioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb))
		return fail("CREATE_DUMB");
	gtest("CREATE_DUMB ok %ux%u bpp=32 handle=%u pitch=%u size=%llu", w, h, dumb.handle,
	      dumb.pitch, (unsigned long long)dumb.size);

	struct drm_mode_fb_cmd fb = {
		.width = w, .height = h, .pitch = dumb.pitch, .bpp = 32, .depth = 24,
		.handle = dumb.handle,
	};
	if (xioctl(fd, DRM_IOCTL_MODE_ADDFB, &fb))
		return fail("ADDFB");
	gtest("ADDFB ok fb=%u", fb.fb_id);

	/* 5. Map it and draw the pattern. */
	struct drm_mode_map_dumb map_req = { .handle = dumb.handle };
	if (xioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map_req))
		return fail("MAP_DUMB");
	uint8_t *map = mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    (off_t)map_req.offset);
	if (map == MAP_FAILED)
		return fail("mmap");
	fill_pattern(map, w, h, dumb.pitch, pal);
	gtest("fill ok palette=%d tl=%06x tr=%06x bl=%06x br=%06x border=000000",
	      palette, pal[0], pal[1], pal[2], pal[3]);

	/* 6. Scan it out. */
	struct drm_mode_crtc setcrtc = {
		.set_connectors_ptr = (uint64_t)(uintptr_t)&conn.connector_id,
		.count_connectors = 1,
		.crtc_id = crtc_id,
		.fb_id = fb.fb_id,
		.mode_valid = 1,
		.mode = mode,
	};
	if (xioctl(fd, DRM_IOCTL_MODE_SETCRTC, &setcrtc))
		return fail("SETCRTC");
	gtest("SETCRTC ok %ux%u pitch=%u", w, h, dumb.pitch);

	/* 7. One full-screen damage rectangle. */
	struct drm_clip_rect clip = { .x1 = 0, .y1 = 0, .x2 = (unsigned short)w,
				      .y2 = (unsigned short)h };
	struct drm_mode_fb_dirty_cmd dirty = {
		.fb_id = fb.fb_id, .num_clips = 1, .clips_ptr = (uint64_t)(uintptr_t)&clip,
	};
	if (xioctl(fd, DRM_IOCTL_MODE_DIRTYFB, &dirty))
		return fail("DIRTYFB");
	gtest("DIRTYFB ok");
	gtest("pattern-shown %ux%u palette=%d", w, h, palette);

	sleep_seconds((unsigned)hold);

	/* 8. Blob probe (informational): GUEST + MAPPABLE, 64 KiB. */
	struct cw_virtgpu_resource_create_blob blob = {
		.blob_mem = CW_BLOB_MEM_GUEST,
		.blob_flags = CW_BLOB_FLAG_USE_MAPPABLE,
		.size = 65536,
	};
	int r = ioctl(fd, CW_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &blob);
	int e = r ? errno : 0;
	gtest("create_blob(GUEST,MAPPABLE) r=%d errno=%d%s", r, e,
	      r ? "" : " (blob resources work)");
	if (r == 0) {
		struct drm_gem_close gc = { .handle = blob.bo_handle };
		xioctl(fd, DRM_IOCTL_GEM_CLOSE, &gc);
	}

	gtest("pattern-done");
	munmap(map, dumb.size);
	close(fd); /* the kernel restores fbcon and drops the framebuffer */
	gtest("kms-pattern exit=0");
	return 0;
}
