#ifndef CW_SCREENSHOT_H
#define CW_SCREENSHOT_H

#include <stdbool.h>
#include <stdint.h>

struct cw_output;

/*
 * Writes a PNG of what the output shows now (without the cursor). The
 * scene is rendered again into the output's back buffer and read back,
 * so it works with the pixman and the GLES2 renderer alike.
 */
bool cw_screenshot_output(struct cw_output *output, const char *path);

/* Writes width x height XRGB8888 pixels (stride in bytes) as an RGB PNG. */
bool cw_png_write_xrgb(const char *path, const uint8_t *pixels, uint32_t width,
	uint32_t height, uint32_t stride);

#endif
