#ifndef CW_CAIRO_BUFFER_H
#define CW_CAIRO_BUFFER_H

#include <cairo.h>
#include <wlr/types/wlr_buffer.h>

/*
 * A wlr_buffer backed by a cairo image surface (ARGB8888, premultiplied),
 * for the parts of the frame that crossway draws itself. Draw into
 * `surface`, then hand `base` to the scene; the scene keeps its own lock.
 */
struct cw_cairo_buffer {
	struct wlr_buffer base;
	cairo_surface_t *surface;
};

/* Returns NULL if the size is out of range or memory is short. */
struct cw_cairo_buffer *cw_cairo_buffer_create(int width, int height);

#endif
