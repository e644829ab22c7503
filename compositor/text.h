#ifndef CW_TEXT_H
#define CW_TEXT_H

#include <stddef.h>
#include <wlr/types/wlr_buffer.h>

/*
 * Window titles come from clients (and later from guests): they are made
 * safe before anything renders them. Invalid UTF-8 and control characters
 * become '_', and the result is cut at max_bytes on a character boundary.
 * Returns a new string.
 */
char *cw_text_sanitize(const char *text, size_t max_bytes);

/*
 * Renders one line of text into a new ARGB8888 buffer at most max_width
 * pixels wide (ellipsised), height pixels high, transparent background.
 * Returns NULL when there is nothing to draw.
 */
struct wlr_buffer *cw_text_render(const char *text, const float color[static 4],
	int max_width, int height);

#endif
