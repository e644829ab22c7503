#include <string.h>

#include "check.h"
#include "options.h"

static bool
parse(struct cw_options *opts, char *err, int argc, char **argv)
{
	return cw_options_parse(opts, argc, argv, err, 256);
}

static void
test_defaults(void)
{
	struct cw_options o;
	char err[256];
	char *argv[] = {"crossway", NULL};
	CHECK(parse(&o, err, 1, argv));
	CHECK(o.backend == CW_BACKEND_AUTO);
	CHECK(o.size_count == 0);
	CHECK(o.socket_name == NULL);
	CHECK(o.screenshot_after == 1);
}

static void
test_headless_sizes(void)
{
	struct cw_options o;
	char err[256];
	char *argv[] = {"crossway", "--headless", "--size", "800x600,640x480", "--size", "1x1", NULL};
	CHECK(parse(&o, err, 6, argv));
	CHECK(o.backend == CW_BACKEND_HEADLESS);
	CHECK(o.size_count == 3);
	CHECK(o.sizes[0].width == 800 && o.sizes[0].height == 600);
	CHECK(o.sizes[1].width == 640 && o.sizes[1].height == 480);
	CHECK(o.sizes[2].width == 1 && o.sizes[2].height == 1);

	char *argv2[] = {"crossway", "--headless", NULL};
	CHECK(parse(&o, err, 2, argv2));
	CHECK(o.size_count == 1 && o.sizes[0].width == 1280 && o.sizes[0].height == 720);
}

static void
test_bad_sizes(void)
{
	struct cw_options o;
	char err[256];
	const char *bad[] = {"0x10", "10x0", "x10", "10x", "10", "16385x10", "-5x10",
		"10x10x10", "99999999999x1", "1x2,", ",", "axb", "10 x10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"crossway", "--headless", "--size", (char *)bad[i], NULL};
		bool ok = parse(&o, err, 4, argv);
		/* "1x2," and "," only contain empty items, which strtok skips. */
		if (strcmp(bad[i], "1x2,") == 0) {
			CHECK(ok && o.size_count == 1);
			continue;
		}
		if (ok && strcmp(bad[i], ",") == 0) {
			CHECK(o.size_count == 1); // falls back to the default size
			continue;
		}
		if (ok) {
			fprintf(stderr, "accepted bad size '%s'\n", bad[i]);
		}
		CHECK(!ok);
		CHECK(strstr(err, "--size") != NULL);
	}
	/* More outputs than crossway keeps. */
	char *argv[] = {"crossway", "--headless", "--size", "1x1,1x1,1x1,1x1,1x1,1x1,1x1,1x1,1x1", NULL};
	CHECK(!parse(&o, err, 4, argv));
}

static void
test_errors(void)
{
	struct cw_options o;
	char err[256];
	char *unknown[] = {"crossway", "--frobnicate", NULL};
	CHECK(!parse(&o, err, 2, unknown));
	CHECK(strstr(err, "--frobnicate") != NULL);

	char *missing[] = {"crossway", "--socket", NULL};
	CHECK(!parse(&o, err, 2, missing));
	CHECK(strstr(err, "--socket") != NULL);

	char *slash[] = {"crossway", "--socket", "../evil", NULL};
	CHECK(!parse(&o, err, 3, slash));

	char *size_without_headless[] = {"crossway", "--size", "10x10", NULL};
	CHECK(!parse(&o, err, 3, size_without_headless));

	char *stray[] = {"crossway", "stray", NULL};
	CHECK(!parse(&o, err, 2, stray));

	char *count[] = {"crossway", "--screenshot-after", "-1", NULL};
	CHECK(!parse(&o, err, 3, count));
}

static void
test_everything(void)
{
	struct cw_options o;
	char err[256];
	char *argv[] = {"crossway", "--headless", "--socket", "wayland-test", "-s", "foot",
		"--screenshot", "/tmp/x.png", "--screenshot-after", "3", "--exit-with-child", "-v", NULL};
	CHECK(parse(&o, err, 12, argv));
	CHECK_STR(o.socket_name, "wayland-test");
	CHECK_STR(o.startup_cmd, "foot");
	CHECK_STR(o.screenshot_path, "/tmp/x.png");
	CHECK(o.screenshot_after == 3);
	CHECK(o.exit_with_startup_cmd);
	CHECK(o.verbose);
}

int
main(void)
{
	test_defaults();
	test_headless_sizes();
	test_bad_sizes();
	test_errors();
	test_everything();
	CHECK_DONE();
}
