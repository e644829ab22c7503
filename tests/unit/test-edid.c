#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "edid.h"

static int
dtd_width(const uint8_t *d)
{
	return d[2] | ((d[4] >> 4) << 8);
}

static int
dtd_height(const uint8_t *d)
{
	return d[5] | ((d[7] >> 4) << 8);
}

static void
check_block(int w, int h, int want_w, int want_h, const char *name, const char *want_name)
{
	uint8_t edid[VGPU_EDID_SIZE];
	vgpu_edid_build(edid, w, h, name);
	static const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	CHECK(memcmp(edid, header, 8) == 0);
	uint8_t sum = 0;
	for (int i = 0; i < VGPU_EDID_SIZE; i++) {
		sum = (uint8_t)(sum + edid[i]);
	}
	CHECK(sum == 0);
	CHECK(edid[18] == 1 && edid[19] == 4);
	CHECK(dtd_width(edid + 54) == want_w);
	CHECK(dtd_height(edid + 54) == want_h);
	/* Pixel clock: non-zero, in 10 kHz units, about (w+blank)(h+blank)*60. */
	int clock = edid[54] | (edid[55] << 8);
	CHECK(clock > 0);
	/* Monitor name descriptor. */
	CHECK(edid[72 + 3] == 0xfc);
	CHECK(memcmp(edid + 72 + 5, want_name, strlen(want_name)) == 0);
	CHECK(edid[126] == 0); // no extension blocks
}

/* With an output path: write one EDID for edid-decode's conformance check. */
static int
write_edid(const char *path, int w, int h)
{
	uint8_t edid[VGPU_EDID_SIZE];
	vgpu_edid_build(edid, w, h, "conformance");
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(edid, 1, sizeof(edid), f) != sizeof(edid)) {
		return 1;
	}
	return fclose(f) == 0 ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	if (argc == 4) {
		return write_edid(argv[1], atoi(argv[2]), atoi(argv[3]));
	}
	check_block(1024, 768, 1024, 768, "work", "work\n");
	check_block(1920, 1080, 1920, 1080, NULL, "crossway\n");
	check_block(1, 1, 1, 1, "x", "x\n");
	/* Out-of-range sizes are clamped, never wrapped. */
	check_block(0, -5, 1, 1, "zero", "zero\n");
	check_block(16384, 9000, 4095, 4095, "big", "big\n");
	/* Names are cut at 13 bytes and controls replaced. */
	check_block(800, 600, 800, 600, "a\x01very-long-vm-name", "a_very-long-v");
	/* 1920x1080: (1920+160)*(1080+40)*60 Hz = 139.776 MHz. */
	uint8_t edid[VGPU_EDID_SIZE];
	vgpu_edid_build(edid, 1920, 1080, "t");
	CHECK((edid[54] | (edid[55] << 8)) == 13978);
	CHECK_DONE();
}
