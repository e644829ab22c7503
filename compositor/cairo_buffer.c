#include "cairo_buffer.h"

#include <drm_fourcc.h>
#include <stdlib.h>
#include <wlr/util/log.h>

#define CW_CAIRO_BUFFER_MAX 16384

static void
cairo_buffer_destroy(struct wlr_buffer *wlr_buffer)
{
	struct cw_cairo_buffer *buffer = wl_container_of(wlr_buffer, buffer, base);
	cairo_surface_destroy(buffer->surface);
	free(buffer);
}

static bool
cairo_buffer_begin_data_ptr_access(struct wlr_buffer *wlr_buffer, uint32_t flags,
	void **data, uint32_t *format, size_t *stride)
{
	struct cw_cairo_buffer *buffer = wl_container_of(wlr_buffer, buffer, base);
	if (flags & WLR_BUFFER_DATA_PTR_ACCESS_WRITE) {
		return false; // renderers only read it
	}
	cairo_surface_flush(buffer->surface);
	*data = cairo_image_surface_get_data(buffer->surface);
	*format = DRM_FORMAT_ARGB8888;
	*stride = (size_t)cairo_image_surface_get_stride(buffer->surface);
	return true;
}

static void
cairo_buffer_end_data_ptr_access(struct wlr_buffer *wlr_buffer)
{
	(void)wlr_buffer;
}

static const struct wlr_buffer_impl cairo_buffer_impl = {
	.destroy = cairo_buffer_destroy,
	.begin_data_ptr_access = cairo_buffer_begin_data_ptr_access,
	.end_data_ptr_access = cairo_buffer_end_data_ptr_access,
};

struct cw_cairo_buffer *
cw_cairo_buffer_create(int width, int height)
{
	if (width <= 0 || height <= 0 || width > CW_CAIRO_BUFFER_MAX || height > CW_CAIRO_BUFFER_MAX) {
		return NULL;
	}
	struct cw_cairo_buffer *buffer = calloc(1, sizeof(*buffer));
	if (buffer == NULL) {
		return NULL;
	}
	buffer->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
	if (cairo_surface_status(buffer->surface) != CAIRO_STATUS_SUCCESS) {
		wlr_log(WLR_ERROR, "Cannot allocate a %dx%d drawing buffer", width, height);
		cairo_surface_destroy(buffer->surface);
		free(buffer);
		return NULL;
	}
	wlr_buffer_init(&buffer->base, &cairo_buffer_impl, width, height);
	return buffer;
}
