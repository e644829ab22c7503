#include "screenshot.h"

#include <drm_fourcc.h>
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wlr/render/wlr_renderer.h>
#include <wlr/types/wlr_output_layout.h>
#include <wlr/util/log.h>

#include "output.h"
#include "server.h"

bool
cw_png_write_xrgb(const char *path, const uint8_t *pixels, uint32_t width,
	uint32_t height, uint32_t stride)
{
	FILE *file = fopen(path, "wb");
	if (file == NULL) {
		wlr_log(WLR_ERROR, "Cannot open %s: %s", path, strerror(errno));
		return false;
	}
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
	uint8_t *row = malloc((size_t)width * 3);
	bool ok = false;
	if (png == NULL || info == NULL || row == NULL) {
		goto out;
	}
	if (setjmp(png_jmpbuf(png))) {
		wlr_log(WLR_ERROR, "libpng failed writing %s", path);
		goto out;
	}
	png_init_io(png, file);
	png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < height; y++) {
		const uint32_t *src = (const uint32_t *)(pixels + (size_t)y * stride);
		for (uint32_t x = 0; x < width; x++) {
			row[x * 3 + 0] = (uint8_t)(src[x] >> 16);
			row[x * 3 + 1] = (uint8_t)(src[x] >> 8);
			row[x * 3 + 2] = (uint8_t)src[x];
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	ok = true;
out:
	png_destroy_write_struct(&png, &info);
	free(row);
	if (fclose(file) != 0) {
		ok = false;
	}
	return ok;
}

bool
cw_screenshot_output(struct cw_output *output, const char *path)
{
	struct cw_server *server = output->server;
	struct wlr_output *wlr_output = output->output;
	int width = wlr_output->width, height = wlr_output->height;
	if (width <= 0 || height <= 0) {
		return false;
	}
	uint32_t stride = (uint32_t)width * 4;
	uint8_t *pixels = malloc((size_t)stride * (size_t)height);
	if (pixels == NULL) {
		return false;
	}
	if (!wlr_output_attach_render(wlr_output, NULL)) {
		free(pixels);
		return false;
	}
	struct wlr_box box;
	cw_output_layout_box(server->output_layout, wlr_output, &box);
	wlr_renderer_begin(server->renderer, (uint32_t)width, (uint32_t)height);
	wlr_renderer_clear(server->renderer, (float[4]){0.0f, 0.0f, 0.0f, 1.0f});
	wlr_scene_render_output(server->scene, wlr_output, box.x, box.y, NULL);
	uint32_t flags = 0;
	bool ok = wlr_renderer_read_pixels(server->renderer, DRM_FORMAT_XRGB8888, &flags,
		stride, (uint32_t)width, (uint32_t)height, 0, 0, 0, 0, pixels);
	wlr_renderer_end(server->renderer);
	/* The capture is never shown: the output keeps its committed frame. */
	wlr_output_rollback(wlr_output);
	if (ok && (flags & WLR_RENDERER_READ_PIXELS_Y_INVERT)) {
		uint8_t *tmp = malloc(stride);
		for (int y = 0; tmp != NULL && y < height / 2; y++) {
			uint8_t *a = pixels + (size_t)y * stride;
			uint8_t *b = pixels + (size_t)(height - 1 - y) * stride;
			memcpy(tmp, a, stride);
			memcpy(a, b, stride);
			memcpy(b, tmp, stride);
		}
		ok = tmp != NULL;
		free(tmp);
	}
	if (ok) {
		ok = cw_png_write_xrgb(path, pixels, (uint32_t)width, (uint32_t)height, stride);
	} else {
		wlr_log(WLR_ERROR, "Cannot read the pixels of output %s", wlr_output->name);
	}
	free(pixels);
	return ok;
}
