/*
 * cw-imgcmp: PNG comparison and inspection for crossway's screenshot tests.
 *
 * Every PNG is normalised to 8-bit RGBA on load so that screenshots from
 * different tools (RGB or RGBA, 8 or 16 bit) compare the same way.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#define PROG "cw-imgcmp"

/* Screenshots are far smaller; this bounds memory use to 1 GiB. */
#define MAX_DIMENSION 16384u

enum exit_status {
	EXIT_MATCH = 0,
	EXIT_MISMATCH = 1,
	EXIT_ERROR = 2,
};

enum mode {
	MODE_COMPARE,
	MODE_PROBE,
	MODE_COUNT,
	MODE_BBOX,
	MODE_MAKE_SOLID,
};

struct image {
	uint32_t width, height;
	uint8_t *pixels; /* RGBA, 8 bits per channel, rows packed */
};

struct rect {
	uint32_t x, y, w, h;
};

struct set_pixel {
	uint32_t x, y;
	uint32_t rgb;
};

struct args {
	enum mode mode;
	bool mode_set;
	int tolerance;
	bool tolerance_set;
	const char *diff_path;
	struct rect region;
	bool region_set;
	uint32_t probe_x, probe_y;
	uint32_t rgb;
	uint32_t make_w, make_h;
	struct set_pixel *set_pixels;
	size_t set_pixel_count;
	const char *files[2];
	int file_count;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage:\n"
		"  " PROG " [--tolerance N] [--diff OUT.png] [--region X,Y,W,H] ACTUAL.png REFERENCE.png\n"
		"      exit 0 on match, 1 on mismatch (or different sizes), 2 on error\n"
		"  " PROG " --probe X,Y IMAGE.png\n"
		"  " PROG " --count RRGGBB [--tolerance N] [--region X,Y,W,H] IMAGE.png\n"
		"  " PROG " --bbox RRGGBB [--tolerance N] [--region X,Y,W,H] IMAGE.png\n"
		"  " PROG " --make-solid WxH RRGGBB [--pixel X,Y,RRGGBB]... OUT.png\n"
		"The tolerance (default 2) is the largest per-channel difference that\n"
		"still counts as equal.\n");
}

static uint8_t *pixel_at(const struct image *image, uint32_t x, uint32_t y)
{
	return image->pixels + ((size_t)y * image->width + x) * 4;
}

/* ---- parsing ------------------------------------------------------------ */

static bool parse_uint(const char **s, uint32_t max, uint32_t *out)
{
	uint64_t value = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9') {
		return false;
	}
	while (*p >= '0' && *p <= '9') {
		value = value * 10 + (uint64_t)(*p - '0');
		if (value > max) {
			return false;
		}
		p++;
	}
	*out = (uint32_t)value;
	*s = p;
	return true;
}

/* Parses "N<sep>N<sep>..." with exactly count numbers and nothing after. */
static bool parse_uint_list(const char *s, char sep, uint32_t *values, int count)
{
	for (int i = 0; i < count; i++) {
		if (i > 0) {
			if (*s != sep) {
				return false;
			}
			s++;
		}
		if (!parse_uint(&s, UINT32_MAX, &values[i])) {
			return false;
		}
	}
	return *s == '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

static bool parse_rgb(const char *s, uint32_t *out)
{
	uint32_t value = 0;

	if (strlen(s) != 6) {
		return false;
	}
	for (int i = 0; i < 6; i++) {
		int d = hex_digit(s[i]);
		if (d < 0) {
			return false;
		}
		value = value << 4 | (uint32_t)d;
	}
	*out = value;
	return true;
}

static bool parse_set_pixel(const char *s, struct set_pixel *out)
{
	const char *comma;
	uint32_t xy[2];
	char buf[32];

	/* X,Y,RRGGBB: the colour is after the second comma. */
	comma = strchr(s, ',');
	comma = comma != NULL ? strchr(comma + 1, ',') : NULL;
	if (comma == NULL || (size_t)(comma - s) >= sizeof(buf)) {
		return false;
	}
	memcpy(buf, s, (size_t)(comma - s));
	buf[comma - s] = '\0';
	if (!parse_uint_list(buf, ',', xy, 2) || !parse_rgb(comma + 1, &out->rgb)) {
		return false;
	}
	out->x = xy[0];
	out->y = xy[1];
	return true;
}

static bool set_mode(struct args *args, enum mode mode, const char *option)
{
	if (args->mode_set) {
		fprintf(stderr, PROG ": %s cannot be combined with another mode\n", option);
		return false;
	}
	args->mode = mode;
	args->mode_set = true;
	return true;
}

static bool add_set_pixel(struct args *args, const char *value)
{
	struct set_pixel pixel;
	struct set_pixel *grown;

	if (!parse_set_pixel(value, &pixel)) {
		fprintf(stderr, PROG ": --pixel expects X,Y,RRGGBB, got '%s'\n", value);
		return false;
	}
	grown = realloc(args->set_pixels, (args->set_pixel_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return false;
	}
	args->set_pixels = grown;
	args->set_pixels[args->set_pixel_count++] = pixel;
	return true;
}

/* Handles one option that takes a value. Returns false on a usage error. */
static bool parse_option(struct args *args, const char *opt, const char *value)
{
	uint32_t v[4];

	if (strcmp(opt, "--tolerance") == 0) {
		if (!parse_uint_list(value, ',', v, 1) || v[0] > 255) {
			fprintf(stderr, PROG ": --tolerance expects 0..255, got '%s'\n", value);
			return false;
		}
		args->tolerance = (int)v[0];
		args->tolerance_set = true;
	} else if (strcmp(opt, "--diff") == 0) {
		args->diff_path = value;
	} else if (strcmp(opt, "--region") == 0) {
		if (!parse_uint_list(value, ',', v, 4) || v[2] == 0 || v[3] == 0) {
			fprintf(stderr, PROG ": --region expects X,Y,W,H with W,H > 0, got '%s'\n",
				value);
			return false;
		}
		args->region = (struct rect){ v[0], v[1], v[2], v[3] };
		args->region_set = true;
	} else if (strcmp(opt, "--probe") == 0) {
		if (!set_mode(args, MODE_PROBE, opt)) {
			return false;
		}
		if (!parse_uint_list(value, ',', v, 2)) {
			fprintf(stderr, PROG ": --probe expects X,Y, got '%s'\n", value);
			return false;
		}
		args->probe_x = v[0];
		args->probe_y = v[1];
	} else if (strcmp(opt, "--count") == 0 || strcmp(opt, "--bbox") == 0) {
		if (!set_mode(args, opt[2] == 'c' ? MODE_COUNT : MODE_BBOX, opt)) {
			return false;
		}
		if (!parse_rgb(value, &args->rgb)) {
			fprintf(stderr, PROG ": %s expects RRGGBB, got '%s'\n", opt, value);
			return false;
		}
	} else if (strcmp(opt, "--pixel") == 0) {
		return add_set_pixel(args, value);
	} else {
		fprintf(stderr, PROG ": unknown option '%s'\n", opt);
		return false;
	}
	return true;
}

static bool parse_make_solid(struct args *args, const char *size, const char *rgb)
{
	uint32_t v[2];

	if (!set_mode(args, MODE_MAKE_SOLID, "--make-solid")) {
		return false;
	}
	if (!parse_uint_list(size, 'x', v, 2) || v[0] == 0 || v[1] == 0 ||
			v[0] > MAX_DIMENSION || v[1] > MAX_DIMENSION) {
		fprintf(stderr, PROG ": --make-solid expects WxH with 1 <= W,H <= %u, got '%s'\n",
			MAX_DIMENSION, size);
		return false;
	}
	args->make_w = v[0];
	args->make_h = v[1];
	if (!parse_rgb(rgb, &args->rgb)) {
		fprintf(stderr, PROG ": --make-solid expects a colour RRGGBB, got '%s'\n", rgb);
		return false;
	}
	return true;
}

/* Each mode accepts only some options; reject the rest instead of ignoring. */
static bool check_combination(const struct args *args)
{
	int want_files = args->mode == MODE_COMPARE ? 2 : 1;
	bool filters = args->mode == MODE_COMPARE || args->mode == MODE_COUNT ||
		args->mode == MODE_BBOX;

	if (args->file_count != want_files) {
		fprintf(stderr, PROG ": expected %d file argument%s, got %d\n", want_files,
			want_files == 1 ? "" : "s", args->file_count);
		return false;
	}
	if (!filters && (args->tolerance_set || args->region_set)) {
		fprintf(stderr, PROG ": --tolerance and --region do not apply to this mode\n");
		return false;
	}
	if (args->diff_path != NULL && args->mode != MODE_COMPARE) {
		fprintf(stderr, PROG ": --diff only applies when comparing two images\n");
		return false;
	}
	if (args->set_pixel_count > 0 && args->mode != MODE_MAKE_SOLID) {
		fprintf(stderr, PROG ": --pixel only applies to --make-solid\n");
		return false;
	}
	return true;
}

/* Returns 0 to run, 1 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, struct args *args)
{
	bool options_done = false;

	args->tolerance = 2;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (options_done || strncmp(arg, "--", 2) != 0) {
			if (args->file_count == 2) {
				fprintf(stderr, PROG ": too many file arguments ('%s')\n", arg);
				return 2;
			}
			args->files[args->file_count++] = arg;
		} else if (strcmp(arg, "--") == 0) {
			options_done = true;
		} else if (strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(arg, "--make-solid") == 0) {
			if (i + 2 >= argc) {
				fprintf(stderr, PROG ": --make-solid needs WxH and RRGGBB\n");
				return 2;
			}
			if (!parse_make_solid(args, argv[i + 1], argv[i + 2])) {
				return 2;
			}
			i += 2;
		} else {
			if (i + 1 >= argc) {
				fprintf(stderr, PROG ": option %s needs a value\n", arg);
				return 2;
			}
			if (!parse_option(args, arg, argv[++i])) {
				return 2;
			}
		}
	}
	return check_combination(args) ? 0 : 2;
}

/* ---- PNG reading -------------------------------------------------------- */

struct png_io {
	const char *path;
	FILE *file;
	png_structp png;
	png_infop info;
	png_bytep *rows;
	struct image *image;
};

static void png_error_cb(png_structp png, png_const_charp message)
{
	const char *path = png_get_error_ptr(png);

	fprintf(stderr, PROG ": %s: %s\n", path, message);
	png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp message)
{
	/* Ancillary-chunk complaints (e.g. sRGB profiles) do not affect pixels. */
}

static bool alloc_rows(struct png_io *io)
{
	struct image *image = io->image;

	image->pixels = malloc((size_t)image->width * image->height * 4);
	io->rows = malloc(image->height * sizeof(*io->rows));
	if (image->pixels == NULL || io->rows == NULL) {
		return false;
	}
	for (uint32_t y = 0; y < image->height; y++) {
		io->rows[y] = pixel_at(image, 0, y);
	}
	return true;
}

/* Everything after setjmp; all state lives in *io so longjmp clobbers nothing. */
static bool read_png_body(struct png_io *io)
{
	png_uint_32 width, height;

	png_init_io(io->png, io->file);
	/* libpng's own size limit is far larger; ours is checked below, before
	 * anything is allocated, so the message can say what is wrong. */
	png_read_info(io->png, io->info);
	width = png_get_image_width(io->png, io->info);
	height = png_get_image_height(io->png, io->info);
	if (width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
		fprintf(stderr, PROG ": %s: size %ux%u is outside 1..%u\n", io->path,
			(unsigned)width, (unsigned)height, MAX_DIMENSION);
		return false;
	}

	/* Normalise to 8-bit RGBA: palette/low-depth/tRNS expand, 16 bits strip,
	 * grey becomes RGB, and a missing alpha channel becomes opaque. */
	png_set_expand(io->png);
	png_set_strip_16(io->png);
	png_set_gray_to_rgb(io->png);
	png_set_add_alpha(io->png, 0xff, PNG_FILLER_AFTER);
	png_set_interlace_handling(io->png);
	png_read_update_info(io->png, io->info);
	if (png_get_rowbytes(io->png, io->info) != (size_t)width * 4) {
		fprintf(stderr, PROG ": %s: unexpected layout after conversion\n", io->path);
		return false;
	}

	io->image->width = width;
	io->image->height = height;
	if (!alloc_rows(io)) {
		fprintf(stderr, PROG ": %s: out of memory for %ux%u\n", io->path,
			(unsigned)width, (unsigned)height);
		return false;
	}
	png_read_image(io->png, io->rows);
	png_read_end(io->png, NULL);
	return true;
}

static bool read_png_guarded(struct png_io *io)
{
	if (setjmp(png_jmpbuf(io->png))) {
		return false;
	}
	return read_png_body(io);
}

static bool read_png(const char *path, struct image *image)
{
	struct png_io io = { .path = path, .image = image };
	bool ok = false;

	*image = (struct image){ 0 };
	io.file = fopen(path, "rb");
	if (io.file == NULL) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	io.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, (png_voidp)path, png_error_cb,
		png_warning_cb);
	if (io.png != NULL) {
		io.info = png_create_info_struct(io.png);
	}
	if (io.info == NULL) {
		fprintf(stderr, PROG ": %s: cannot set up libpng\n", path);
	} else {
		ok = read_png_guarded(&io);
	}
	png_destroy_read_struct(&io.png, &io.info, NULL);
	free(io.rows);
	fclose(io.file);
	if (!ok) {
		free(image->pixels);
		*image = (struct image){ 0 };
	}
	return ok;
}

/* ---- PNG writing -------------------------------------------------------- */

static bool write_png_body(struct png_io *io, bool with_alpha)
{
	const struct image *image = io->image;

	png_init_io(io->png, io->file);
	png_set_IHDR(io->png, io->info, image->width, image->height, 8,
		with_alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(io->png, io->info);
	if (!with_alpha) {
		/* Our buffer is RGBA; drop the fourth byte while writing. */
		png_set_filler(io->png, 0, PNG_FILLER_AFTER);
	}
	png_write_image(io->png, io->rows);
	png_write_end(io->png, NULL);
	return true;
}

static bool write_png_guarded(struct png_io *io, bool with_alpha)
{
	if (setjmp(png_jmpbuf(io->png))) {
		return false;
	}
	return write_png_body(io, with_alpha);
}

static bool write_png(const char *path, struct image *image, bool with_alpha)
{
	struct png_io io = { .path = path, .image = image };
	bool ok = false;

	io.rows = malloc(image->height * sizeof(*io.rows));
	if (io.rows == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return false;
	}
	for (uint32_t y = 0; y < image->height; y++) {
		io.rows[y] = pixel_at(image, 0, y);
	}
	io.file = fopen(path, "wb");
	if (io.file == NULL) {
		fprintf(stderr, PROG ": cannot create %s: %s\n", path, strerror(errno));
		free(io.rows);
		return false;
	}
	io.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, (png_voidp)path, png_error_cb,
		png_warning_cb);
	if (io.png != NULL) {
		io.info = png_create_info_struct(io.png);
	}
	if (io.info == NULL) {
		fprintf(stderr, PROG ": %s: cannot set up libpng\n", path);
	} else {
		ok = write_png_guarded(&io, with_alpha);
	}
	png_destroy_write_struct(&io.png, &io.info);
	free(io.rows);
	/* A full disk often only shows up when the last block is flushed. */
	if (fclose(io.file) != 0 && ok) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
		ok = false;
	}
	return ok;
}

/* ---- pixel helpers ------------------------------------------------------ */

static int abs_diff(uint8_t a, uint8_t b)
{
	return a > b ? a - b : b - a;
}

static int rgba_delta(const uint8_t *a, const uint8_t *b)
{
	int max = 0;

	for (int c = 0; c < 4; c++) {
		int d = abs_diff(a[c], b[c]);
		max = d > max ? d : max;
	}
	return max;
}

/* Colour searches ignore alpha: the colour is given as RRGGBB. */
static bool rgb_near(const uint8_t *p, uint32_t rgb, int tolerance)
{
	return abs_diff(p[0], (uint8_t)(rgb >> 16)) <= tolerance &&
		abs_diff(p[1], (uint8_t)(rgb >> 8)) <= tolerance &&
		abs_diff(p[2], (uint8_t)rgb) <= tolerance;
}

static bool in_rect(const struct rect *r, uint32_t x, uint32_t y)
{
	return x >= r->x && y >= r->y && x - r->x < r->w && y - r->y < r->h;
}

/* The area to examine: --region, checked against the image, or all of it. */
static bool effective_region(const struct args *args, const struct image *image,
	struct rect *out)
{
	if (!args->region_set) {
		*out = (struct rect){ 0, 0, image->width, image->height };
		return true;
	}
	if (args->region.x >= image->width || args->region.y >= image->height ||
			args->region.w > image->width - args->region.x ||
			args->region.h > image->height - args->region.y) {
		fprintf(stderr, PROG ": region %u,%u,%u,%u does not fit in the %ux%u image\n",
			args->region.x, args->region.y, args->region.w, args->region.h,
			image->width, image->height);
		return false;
	}
	*out = args->region;
	return true;
}

/* ---- modes -------------------------------------------------------------- */

struct comparison {
	uint64_t differing;
	int max_delta;
	uint32_t first_x, first_y;
};

static void compare_pixels(const struct image *actual, const struct image *reference,
	const struct rect *region, int tolerance, struct comparison *out)
{
	*out = (struct comparison){ 0 };
	for (uint32_t y = region->y; y < region->y + region->h; y++) {
		for (uint32_t x = region->x; x < region->x + region->w; x++) {
			int d = rgba_delta(pixel_at(actual, x, y), pixel_at(reference, x, y));
			out->max_delta = d > out->max_delta ? d : out->max_delta;
			if (d <= tolerance) {
				continue;
			}
			if (out->differing == 0) {
				out->first_x = x;
				out->first_y = y;
			}
			out->differing++;
		}
	}
}

/* Reference darkened to grey so the red differences stand out. */
static bool write_diff(const char *path, const struct image *actual,
	const struct image *reference, const struct rect *region, int tolerance)
{
	struct image diff = { reference->width, reference->height, NULL };
	bool ok;

	diff.pixels = malloc((size_t)diff.width * diff.height * 4);
	if (diff.pixels == NULL) {
		fprintf(stderr, PROG ": out of memory for the diff image\n");
		return false;
	}
	for (uint32_t y = 0; y < diff.height; y++) {
		for (uint32_t x = 0; x < diff.width; x++) {
			const uint8_t *ref = pixel_at(reference, x, y);
			uint8_t *out = pixel_at(&diff, x, y);
			bool differs = in_rect(region, x, y) &&
				rgba_delta(pixel_at(actual, x, y), ref) > tolerance;
			/* Integer Rec. 601 luma, then a quarter of it. */
			uint8_t grey = (uint8_t)((299u * ref[0] + 587u * ref[1] + 114u * ref[2]) /
				4000u);

			out[0] = differs ? 0xff : grey;
			out[1] = differs ? 0x00 : grey;
			out[2] = differs ? 0x00 : grey;
			out[3] = 0xff;
		}
	}
	ok = write_png(path, &diff, true);
	free(diff.pixels);
	return ok;
}

static int run_compare(const struct args *args)
{
	struct image actual, reference;
	struct comparison result;
	struct rect region;
	int status = EXIT_ERROR;

	if (!read_png(args->files[0], &actual)) {
		return EXIT_ERROR;
	}
	if (!read_png(args->files[1], &reference)) {
		free(actual.pixels);
		return EXIT_ERROR;
	}
	if (actual.width != reference.width || actual.height != reference.height) {
		printf("mismatch: size %ux%u differs from reference %ux%u\n", actual.width,
			actual.height, reference.width, reference.height);
		status = EXIT_MISMATCH;
	} else if (effective_region(args, &actual, &region)) {
		compare_pixels(&actual, &reference, &region, args->tolerance, &result);
		if (result.differing == 0) {
			printf("match\n");
			status = EXIT_MATCH;
		} else {
			printf("mismatch: %" PRIu64 " pixels differ, max channel delta %d, "
				"first at (%u,%u)\n", result.differing, result.max_delta,
				result.first_x, result.first_y);
			status = EXIT_MISMATCH;
			if (args->diff_path != NULL && !write_diff(args->diff_path, &actual,
					&reference, &region, args->tolerance)) {
				status = EXIT_ERROR;
			}
		}
	}
	free(actual.pixels);
	free(reference.pixels);
	return status;
}

static int run_probe(const struct args *args)
{
	struct image image;
	int status = EXIT_ERROR;

	if (!read_png(args->files[0], &image)) {
		return EXIT_ERROR;
	}
	if (args->probe_x >= image.width || args->probe_y >= image.height) {
		fprintf(stderr, PROG ": %u,%u is outside the %ux%u image\n", args->probe_x,
			args->probe_y, image.width, image.height);
	} else {
		const uint8_t *p = pixel_at(&image, args->probe_x, args->probe_y);
		printf("%02x%02x%02x\n", p[0], p[1], p[2]);
		status = EXIT_MATCH;
	}
	free(image.pixels);
	return status;
}

/* --count and --bbox: one pass over the region collecting both answers. */
static int run_color_search(const struct args *args)
{
	struct image image;
	struct rect region;
	uint64_t count = 0;
	uint32_t min_x = UINT32_MAX, min_y = UINT32_MAX, max_x = 0, max_y = 0;

	if (!read_png(args->files[0], &image)) {
		return EXIT_ERROR;
	}
	if (!effective_region(args, &image, &region)) {
		free(image.pixels);
		return EXIT_ERROR;
	}
	for (uint32_t y = region.y; y < region.y + region.h; y++) {
		for (uint32_t x = region.x; x < region.x + region.w; x++) {
			if (!rgb_near(pixel_at(&image, x, y), args->rgb, args->tolerance)) {
				continue;
			}
			count++;
			min_x = x < min_x ? x : min_x;
			min_y = y < min_y ? y : min_y;
			max_x = x > max_x ? x : max_x;
			max_y = y > max_y ? y : max_y;
		}
	}
	free(image.pixels);

	if (args->mode == MODE_COUNT) {
		printf("%" PRIu64 "\n", count);
	} else if (count == 0) {
		printf("none\n");
	} else {
		printf("%u %u %u %u\n", min_x, min_y, max_x - min_x + 1, max_y - min_y + 1);
	}
	return EXIT_MATCH;
}

static void put_rgb(uint8_t *p, uint32_t rgb)
{
	p[0] = (uint8_t)(rgb >> 16);
	p[1] = (uint8_t)(rgb >> 8);
	p[2] = (uint8_t)rgb;
	p[3] = 0xff;
}

static int run_make_solid(const struct args *args)
{
	struct image image = { args->make_w, args->make_h, NULL };
	bool ok;

	for (size_t i = 0; i < args->set_pixel_count; i++) {
		if (args->set_pixels[i].x >= image.width || args->set_pixels[i].y >= image.height) {
			fprintf(stderr, PROG ": --pixel %u,%u is outside the %ux%u image\n",
				args->set_pixels[i].x, args->set_pixels[i].y, image.width,
				image.height);
			return EXIT_ERROR;
		}
	}
	image.pixels = malloc((size_t)image.width * image.height * 4);
	if (image.pixels == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return EXIT_ERROR;
	}
	for (uint32_t y = 0; y < image.height; y++) {
		for (uint32_t x = 0; x < image.width; x++) {
			put_rgb(pixel_at(&image, x, y), args->rgb);
		}
	}
	for (size_t i = 0; i < args->set_pixel_count; i++) {
		const struct set_pixel *sp = &args->set_pixels[i];
		put_rgb(pixel_at(&image, sp->x, sp->y), sp->rgb);
	}
	/* Written without alpha, like most screenshots: exercises add_alpha. */
	ok = write_png(args->files[0], &image, false);
	free(image.pixels);
	return ok ? EXIT_MATCH : EXIT_ERROR;
}

int main(int argc, char **argv)
{
	struct args args = { 0 };
	int status;

	status = parse_args(argc, argv, &args);
	if (status == 1) {
		free(args.set_pixels);
		return EXIT_MATCH;
	}
	if (status != 0) {
		if (argc == 1) {
			usage(stderr);
		}
		free(args.set_pixels);
		return EXIT_ERROR;
	}

	switch (args.mode) {
	case MODE_COMPARE:
		status = run_compare(&args);
		break;
	case MODE_PROBE:
		status = run_probe(&args);
		break;
	case MODE_COUNT:
	case MODE_BBOX:
		status = run_color_search(&args);
		break;
	case MODE_MAKE_SOLID:
		status = run_make_solid(&args);
		break;
	}
	free(args.set_pixels);
	if (fflush(stdout) != 0) {
		fprintf(stderr, PROG ": cannot write to stdout\n");
		return EXIT_ERROR;
	}
	return status;
}
