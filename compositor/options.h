#ifndef CW_OPTIONS_H
#define CW_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define CW_MAX_HEADLESS_OUTPUTS 8
#define CW_MAX_VM_SPECS 16

enum cw_backend_choice {
	CW_BACKEND_AUTO = 0, // wlroots picks: DRM+libinput, Wayland or X11
	CW_BACKEND_HEADLESS,
};

struct cw_output_size {
	int width, height;
};

/* Everything the command line can set. Strings point into argv. */
struct cw_options {
	enum cw_backend_choice backend;
	struct cw_output_size sizes[CW_MAX_HEADLESS_OUTPUTS];
	size_t size_count;
	const char *socket_name;      // NULL: first free wayland-N
	const char *startup_cmd;      // -s
	const char *screenshot_path;  // --screenshot
	int screenshot_after;         // toplevels mapped before the shot
	bool exit_with_startup_cmd;   // --exit-with-child
	const char *vm_specs[CW_MAX_VM_SPECS]; // --vm NAME=SOCKET[,...], checked later
	size_t vm_spec_count;
	const char *vm_config_path;   // --vm-config; NULL: the default file
	bool verbose;
	bool show_help;
	bool show_version;
};

/*
 * Parses argv into opts. Returns true on success; on failure writes one
 * line naming the bad argument into err (size err_size) and returns false.
 */
bool cw_options_parse(struct cw_options *opts, int argc, char *argv[],
	char *err, size_t err_size);

void cw_options_print_usage(const char *prog);

/* Parses "WxH" with 1 <= W,H <= 16384. */
bool cw_options_parse_size(const char *text, struct cw_output_size *size);

#endif
