#ifndef VGPU_EDID_H
#define VGPU_EDID_H

#include <stddef.h>
#include <stdint.h>

#define VGPU_EDID_SIZE 128

/*
 * Builds an EDID 1.4 base block whose preferred (native) mode is
 * width x height at 60 Hz, so the guest's display follows the host window.
 * `name` (ASCII, cut at 13 bytes) becomes the monitor name. Sizes above
 * what a detailed timing can hold (4095) are clamped there.
 */
void vgpu_edid_build(uint8_t edid[VGPU_EDID_SIZE], int width, int height, const char *name);

#endif
