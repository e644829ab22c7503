#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CW_MAX_OUTPUT_DIMENSION 16384

static bool
parse_bounded_int(const char *text, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
		return false;
	}
	*out = value;
	return true;
}

bool
cw_options_parse_size(const char *text, struct cw_output_size *size)
{
	const char *x = strchr(text, 'x');
	if (x == NULL || x == text || x - text > 5) {
		return false;
	}
	char width_text[8] = {0};
	memcpy(width_text, text, (size_t)(x - text));
	long w, h;
	if (!parse_bounded_int(width_text, 1, CW_MAX_OUTPUT_DIMENSION, &w) ||
			!parse_bounded_int(x + 1, 1, CW_MAX_OUTPUT_DIMENSION, &h)) {
		return false;
	}
	size->width = (int)w;
	size->height = (int)h;
	return true;
}

/* "--size 800x600,640x480" and repeated --size both add outputs. */
static bool
add_sizes(struct cw_options *opts, const char *list, char *err, size_t err_size)
{
	char buf[256];
	if (strlen(list) >= sizeof(buf)) {
		snprintf(err, err_size, "--size: list too long");
		return false;
	}
	strcpy(buf, list);
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item != NULL;
			item = strtok_r(NULL, ",", &save)) {
		if (opts->size_count >= CW_MAX_HEADLESS_OUTPUTS) {
			snprintf(err, err_size, "--size: at most %d outputs", CW_MAX_HEADLESS_OUTPUTS);
			return false;
		}
		if (!cw_options_parse_size(item, &opts->sizes[opts->size_count])) {
			snprintf(err, err_size, "--size: '%s' is not WxH (1..%d)", item,
				CW_MAX_OUTPUT_DIMENSION);
			return false;
		}
		opts->size_count++;
	}
	return true;
}

enum {
	OPT_HEADLESS = 0x100,
	OPT_SIZE,
	OPT_SOCKET,
	OPT_SCREENSHOT,
	OPT_SCREENSHOT_AFTER,
	OPT_EXIT_WITH_CHILD,
	OPT_VM,
	OPT_VM_CONFIG,
};

static const struct option long_options[] = {
	{"headless", no_argument, NULL, OPT_HEADLESS},
	{"size", required_argument, NULL, OPT_SIZE},
	{"socket", required_argument, NULL, OPT_SOCKET},
	{"startup", required_argument, NULL, 's'},
	{"screenshot", required_argument, NULL, OPT_SCREENSHOT},
	{"screenshot-after", required_argument, NULL, OPT_SCREENSHOT_AFTER},
	{"exit-with-child", no_argument, NULL, OPT_EXIT_WITH_CHILD},
	{"vm", required_argument, NULL, OPT_VM},
	{"vm-config", required_argument, NULL, OPT_VM_CONFIG},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};

bool
cw_options_parse(struct cw_options *opts, int argc, char *argv[],
	char *err, size_t err_size)
{
	*opts = (struct cw_options){0};
	opts->screenshot_after = 1;
	err[0] = '\0';

	optind = 1;
	opterr = 0;
	int c;
	long value;
	while ((c = getopt_long(argc, argv, ":s:vhV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_HEADLESS:
			opts->backend = CW_BACKEND_HEADLESS;
			break;
		case OPT_SIZE:
			if (!add_sizes(opts, optarg, err, err_size)) {
				return false;
			}
			break;
		case OPT_SOCKET:
			if (optarg[0] == '\0' || strchr(optarg, '/') != NULL) {
				snprintf(err, err_size, "--socket: a plain name is expected, got '%s'", optarg);
				return false;
			}
			opts->socket_name = optarg;
			break;
		case 's':
			opts->startup_cmd = optarg;
			break;
		case OPT_SCREENSHOT:
			opts->screenshot_path = optarg;
			break;
		case OPT_SCREENSHOT_AFTER:
			if (!parse_bounded_int(optarg, 0, 1000, &value)) {
				snprintf(err, err_size, "--screenshot-after: '%s' is not a count 0..1000", optarg);
				return false;
			}
			opts->screenshot_after = (int)value;
			break;
		case OPT_EXIT_WITH_CHILD:
			opts->exit_with_startup_cmd = true;
			break;
		case OPT_VM:
			if (opts->vm_spec_count >= CW_MAX_VM_SPECS) {
				snprintf(err, err_size, "--vm: at most %d VMs", CW_MAX_VM_SPECS);
				return false;
			}
			opts->vm_specs[opts->vm_spec_count++] = optarg;
			break;
		case OPT_VM_CONFIG:
			opts->vm_config_path = optarg;
			break;
		case 'v':
			opts->verbose = true;
			break;
		case 'h':
			opts->show_help = true;
			break;
		case 'V':
			opts->show_version = true;
			break;
		case ':':
			snprintf(err, err_size, "option '%s' needs a value", argv[optind - 1]);
			return false;
		default:
			snprintf(err, err_size, "unknown option '%s'", argv[optind - 1]);
			return false;
		}
	}
	if (optind < argc) {
		snprintf(err, err_size, "unexpected argument '%s'", argv[optind]);
		return false;
	}
	if (opts->size_count > 0 && opts->backend != CW_BACKEND_HEADLESS) {
		snprintf(err, err_size, "--size only applies with --headless");
		return false;
	}
	if (opts->backend == CW_BACKEND_HEADLESS && opts->size_count == 0) {
		opts->sizes[0] = (struct cw_output_size){1280, 720};
		opts->size_count = 1;
	}
	return true;
}

void
cw_options_print_usage(const char *prog)
{
	printf("Usage: %s [options]\n"
		"\n"
		"  --headless              run without a display (CI, screenshots)\n"
		"  --size WxH[,WxH...]     headless output sizes (repeatable; default 1280x720)\n"
		"  --socket NAME           Wayland socket name (default: first free wayland-N)\n"
		"  -s, --startup CMD       run CMD (with /bin/sh -c) once crossway is ready\n"
		"  --exit-with-child       exit when the startup command exits\n"
		"  --vm NAME=SOCKET[,input=SOCKET][,color=#RRGGBB][,outputs=N][,max-resources=N]\n"
		"       [,max-memory=MiB][,config-events=on][,contexts=off]\n"
		"                          serve a VM's virtio-gpu over vhost-user on SOCKET (repeatable);\n"
		"                          input=: also its keyboard and tablet (vhost-user-input-pci);\n"
		"                          config-events=on: display-size events (not for QEMU 7.2)\n"
		"                          contexts=off: no guest application windows (cross-domain)\n"
		"  --vm-config PATH        VMs, one spec per line (default $XDG_CONFIG_HOME/crossway/vms.conf)\n"
		"  --screenshot PATH       write a PNG of the first output and exit, once\n"
		"  --screenshot-after N    ... N toplevels are mapped and drawn (default 1)\n"
		"  -v, --verbose           debug logging\n"
		"  -V, --version           print the version\n"
		"  -h, --help              this help\n"
		"\n"
		"Without --headless the backend follows the environment, as in other wlroots\n"
		"compositors: nested in Wayland (WAYLAND_DISPLAY) or X11 (DISPLAY), otherwise a\n"
		"DRM/KMS desktop session through libseat. WLR_BACKENDS overrides.\n"
		"\n"
		"Key bindings: Super+Shift+E exits; Super+drag moves; Super+right-drag resizes;\n"
		"Ctrl+Alt+F1..F12 switch virtual terminals in a desktop session.\n",
		prog);
}
