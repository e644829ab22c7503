#include "text.h"

#include "cairo_buffer.h"

#include <cairo.h>
#include <pango/pangocairo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wlr/util/log.h>

#define CW_TEXT_FONT "DejaVu Sans 10"

/* Length of the UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t
utf8_sequence_length(const unsigned char *s)
{
	uint32_t cp;
	size_t len;
	if (s[0] < 0x80) {
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0; // also stops at the terminating NUL
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past Unicode. */
	static const uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min_for_length[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return len;
}

/* The code point of a valid sequence of `len` bytes. */
static uint32_t
utf8_decode(const unsigned char *s, size_t len)
{
	static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
	uint32_t cp = s[0] & lead_mask[len];
	for (size_t i = 1; i < len; i++) {
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	return cp;
}

/*
 * Characters that reorder or break the line could move text around a
 * title's fixed parts (a VM's "NAME: " prefix): bidi marks, embeddings,
 * overrides and isolates, and the line and paragraph separators.
 */
static bool
is_layout_control(uint32_t cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
		(cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

char *
cw_text_sanitize(const char *text, size_t max_bytes)
{
	if (text == NULL) {
		text = "";
	}
	char *out = malloc(max_bytes + 1);
	if (out == NULL) {
		return NULL;
	}
	size_t o = 0;
	const unsigned char *s = (const unsigned char *)text;
	while (*s != '\0') {
		size_t len = utf8_sequence_length(s);
		bool control = len == 1 && (*s < 0x20 || *s == 0x7f);
		/* C1 controls (U+0080..U+009F) and bidi controls could disguise a title. */
		bool c1 = len == 2 && s[0] == 0xc2 && s[1] < 0xa0;
		bool bidi = len > 1 && is_layout_control(utf8_decode(s, len));
		if (len == 0 || control || c1 || bidi) {
			if (o + 1 > max_bytes) {
				break;
			}
			out[o++] = '_';
			s += len == 0 ? 1 : len;
			continue;
		}
		if (o + len > max_bytes) {
			break;
		}
		memcpy(out + o, s, len);
		o += len;
		s += len;
	}
	out[o] = '\0';
	return out;
}

static PangoLayout *
create_layout(cairo_t *cr, const char *text, int max_width)
{
	PangoLayout *layout = pango_cairo_create_layout(cr);
	PangoFontDescription *font = pango_font_description_from_string(CW_TEXT_FONT);
	pango_layout_set_font_description(layout, font);
	pango_font_description_free(font);
	pango_layout_set_single_paragraph_mode(layout, TRUE);
	pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
	pango_layout_set_width(layout, max_width * PANGO_SCALE);
	/* Plain text: markup from a client is never interpreted. */
	pango_layout_set_text(layout, text, -1);
	return layout;
}

struct wlr_buffer *
cw_text_render(const char *text, const float color[static 4], int max_width, int height)
{
	if (text == NULL || text[0] == '\0' || max_width <= 0 || height <= 0) {
		return NULL;
	}

	/* Measure first so the buffer is only as wide as the text. */
	cairo_surface_t *probe = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
	cairo_t *probe_cr = cairo_create(probe);
	PangoLayout *layout = create_layout(probe_cr, text, max_width);
	int text_width, text_height;
	pango_layout_get_pixel_size(layout, &text_width, &text_height);
	g_object_unref(layout);
	cairo_destroy(probe_cr);
	cairo_surface_destroy(probe);
	if (text_width <= 0) {
		return NULL;
	}
	if (text_width > max_width) {
		text_width = max_width;
	}

	struct cw_cairo_buffer *buffer = cw_cairo_buffer_create(text_width, height);
	if (buffer == NULL) {
		return NULL;
	}
	cairo_t *cr = cairo_create(buffer->surface);
	/* Grey-scale antialiasing: the result does not depend on subpixel order. */
	cairo_font_options_t *font_options = cairo_font_options_create();
	cairo_font_options_set_antialias(font_options, CAIRO_ANTIALIAS_GRAY);
	cairo_font_options_set_hint_style(font_options, CAIRO_HINT_STYLE_FULL);
	cairo_set_font_options(cr, font_options);
	cairo_font_options_destroy(font_options);
	layout = create_layout(cr, text, max_width);
	pango_cairo_update_layout(cr, layout);
	cairo_set_source_rgba(cr, color[0], color[1], color[2], color[3]);
	cairo_move_to(cr, 0, (height - text_height) / 2.0);
	pango_cairo_show_layout(cr, layout);
	g_object_unref(layout);
	cairo_destroy(cr);
	cairo_surface_flush(buffer->surface);
	return &buffer->base;
}
