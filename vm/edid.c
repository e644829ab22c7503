#include "edid.h"

#include <string.h>

#define EDID_MAX_ACTIVE 4095
/* Reduced blanking (in the spirit of CVT-RB): small, fixed porches. */
#define H_BLANK 160
#define H_FRONT 48
#define H_SYNC 32
#define V_BLANK 40
#define V_FRONT 3
#define V_SYNC 6
#define REFRESH_HZ 60
/* 96 dpi, for the physical size a guest uses to pick its scale. */
#define MM_PER_PIXEL (25.4 / 96.0)

static void
put_manufacturer(uint8_t *edid)
{
	/* Three letters, 5 bits each, 'A' = 1, big-endian: "CWY". */
	const char *id = "CWY";
	uint16_t v = (uint16_t)(((id[0] - 'A' + 1) << 10) | ((id[1] - 'A' + 1) << 5) | (id[2] - 'A' + 1));
	edid[8] = (uint8_t)(v >> 8);
	edid[9] = (uint8_t)v;
}

static void
put_detailed_timing(uint8_t *d, int w, int h)
{
	uint32_t h_total = (uint32_t)w + H_BLANK, v_total = (uint32_t)h + V_BLANK;
	uint64_t clock_10khz = ((uint64_t)h_total * v_total * REFRESH_HZ + 5000) / 10000;
	if (clock_10khz > 0xffff) {
		clock_10khz = 0xffff; // the field's limit; the mode is still described
	}
	int w_mm = (int)(w * MM_PER_PIXEL), h_mm = (int)(h * MM_PER_PIXEL);
	if (w_mm > 4095) {
		w_mm = 4095;
	}
	if (h_mm > 4095) {
		h_mm = 4095;
	}
	d[0] = (uint8_t)clock_10khz;
	d[1] = (uint8_t)(clock_10khz >> 8);
	d[2] = (uint8_t)w;
	d[3] = (uint8_t)H_BLANK;
	d[4] = (uint8_t)(((w >> 8) & 0xf) << 4 | ((H_BLANK >> 8) & 0xf));
	d[5] = (uint8_t)h;
	d[6] = (uint8_t)V_BLANK;
	d[7] = (uint8_t)(((h >> 8) & 0xf) << 4 | ((V_BLANK >> 8) & 0xf));
	d[8] = (uint8_t)H_FRONT;
	d[9] = (uint8_t)H_SYNC;
	d[10] = (uint8_t)((V_FRONT & 0xf) << 4 | (V_SYNC & 0xf));
	d[11] = (uint8_t)(((H_FRONT >> 8) & 3) << 6 | ((H_SYNC >> 8) & 3) << 4 |
		((V_FRONT >> 4) & 3) << 2 | ((V_SYNC >> 4) & 3));
	d[12] = (uint8_t)w_mm;
	d[13] = (uint8_t)h_mm;
	d[14] = (uint8_t)(((w_mm >> 8) & 0xf) << 4 | ((h_mm >> 8) & 0xf));
	d[15] = 0;
	d[16] = 0;
	d[17] = 0x1e; // digital separate sync, both polarities positive
}

static void
put_text_descriptor(uint8_t *d, uint8_t tag, const char *text)
{
	memset(d, 0, 18);
	d[3] = tag;
	size_t len = 0;
	while (text != NULL && text[len] != '\0' && len < 13) {
		char c = text[len];
		d[5 + len] = (uint8_t)(c >= 0x20 && c < 0x7f ? c : '_');
		len++;
	}
	if (len < 13) {
		d[5 + len++] = '\n'; // the standard terminator, then space padding
	}
	for (; len < 13; len++) {
		d[5 + len] = ' ';
	}
}

static void
put_range_limits(uint8_t *d)
{
	memset(d, 0, 18);
	d[3] = 0xfd;
	d[5] = 50;  // min vertical Hz
	d[6] = 75;  // max vertical Hz
	d[7] = 30;  // min horizontal kHz
	d[8] = 255; // max horizontal kHz
	d[9] = 255; // max pixel clock / 10 MHz
	d[10] = 0x01; // range limits only
	d[11] = '\n';
	memset(d + 12, ' ', 6);
}

void
vgpu_edid_build(uint8_t edid[VGPU_EDID_SIZE], int width, int height, const char *name)
{
	if (width < 1) {
		width = 1;
	}
	if (height < 1) {
		height = 1;
	}
	if (width > EDID_MAX_ACTIVE) {
		width = EDID_MAX_ACTIVE;
	}
	if (height > EDID_MAX_ACTIVE) {
		height = EDID_MAX_ACTIVE;
	}
	memset(edid, 0, VGPU_EDID_SIZE);
	static const uint8_t header[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
	memcpy(edid, header, sizeof(header));
	put_manufacturer(edid);
	edid[10] = 0x01; // product code
	edid[16] = 1;    // week
	edid[17] = 2026 - 1990;
	edid[18] = 1;    // EDID 1.4
	edid[19] = 4;
	edid[20] = 0xa0; // digital input, 8 bits per colour
	edid[21] = (uint8_t)((width * MM_PER_PIXEL + 5) / 10);  // cm
	edid[22] = (uint8_t)((height * MM_PER_PIXEL + 5) / 10);
	edid[23] = 120;  // gamma 2.2
	edid[24] = 0x06; // sRGB default, preferred timing is native
	/* sRGB primaries and D65 white point, in EDID's 10-bit encoding. */
	static const uint8_t srgb[10] = {0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54};
	memcpy(edid + 25, srgb, sizeof(srgb));
	for (int i = 38; i < 54; i++) {
		edid[i] = 0x01; // standard timings unused
	}
	put_detailed_timing(edid + 54, width, height);
	put_text_descriptor(edid + 72, 0xfc, name != NULL && name[0] != '\0' ? name : "crossway");
	put_range_limits(edid + 90);
	put_text_descriptor(edid + 108, 0xfe, "crossway");
	uint8_t sum = 0;
	for (int i = 0; i < VGPU_EDID_SIZE - 1; i++) {
		sum = (uint8_t)(sum + edid[i]);
	}
	edid[127] = (uint8_t)(0x100 - sum);
}
