#define _GNU_SOURCE
#include "vm_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* A palette for VMs without an explicit colour: distinct, dark enough for white text. */
static const uint32_t default_colors[] = {
	0xb5420b, 0x2e7d32, 0x6a1b9a, 0x00838f, 0xad1457, 0x827717, 0x4527a0, 0x5d4037,
};

static uint32_t
scale_color(uint32_t rgb, float scale)
{
	uint32_t out = 0;
	for (int shift = 0; shift <= 16; shift += 8) {
		out |= (uint32_t)((float)((rgb >> shift) & 0xff) * scale) << shift;
	}
	return out;
}

/* Within a few steps on every channel: a user could not tell them apart. */
static bool
colors_close(uint32_t a, uint32_t b)
{
	for (int shift = 0; shift <= 16; shift += 8) {
		int d = (int)((a >> shift) & 0xff) - (int)((b >> shift) & 0xff);
		if (d > 24 || d < -24) {
			return false;
		}
	}
	return true;
}

/* A VM's frame, focused or not, must never look like a host window's frame. */
static bool
color_is_distinct(uint32_t color)
{
	const uint32_t host[] = {CW_FRAME_HOST_ACTIVE, CW_FRAME_HOST_INACTIVE};
	const uint32_t vm[] = {color, scale_color(color, CW_FRAME_VM_INACTIVE_SCALE)};
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < 2; j++) {
			if (colors_close(vm[i], host[j])) {
				return false;
			}
		}
	}
	return true;
}

static bool
valid_name(const char *name, size_t len)
{
	if (len == 0 || len > CW_VM_NAME_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '_' || c == '-' || c == '.';
		if (!ok) {
			return false;
		}
	}
	return true;
}

static bool
parse_color(const char *text, uint32_t *color)
{
	if (text[0] == '#') {
		text++;
	}
	if (strlen(text) != 6) {
		return false;
	}
	char *end = NULL;
	unsigned long value = strtoul(text, &end, 16);
	if (*end != '\0') {
		return false;
	}
	*color = (uint32_t)value;
	return true;
}

static bool
parse_number(const char *text, unsigned long long max, unsigned long long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value == 0 || value > max) {
		return false;
	}
	*out = value;
	return true;
}

/* One ",key=value" option of a VM spec. */
static bool
parse_option(struct cw_vm_config *vm, char *option, char *err, size_t err_size)
{
	char *eq = strchr(option, '=');
	if (eq == NULL) {
		snprintf(err, err_size, "VM %s: option '%s' needs a value", vm->name, option);
		return false;
	}
	*eq = '\0';
	const char *key = option, *value = eq + 1;
	unsigned long long number;
	if (strcmp(key, "color") == 0) {
		if (!parse_color(value, &vm->color)) {
			snprintf(err, err_size, "VM %s: color '%s' is not #RRGGBB", vm->name, value);
			return false;
		}
		if (!color_is_distinct(vm->color)) {
			snprintf(err, err_size, "VM %s: color %s looks like crossway's own window frames "
				"(host windows); choose another", vm->name, value);
			return false;
		}
		vm->has_color = true;
	} else if (strcmp(key, "outputs") == 0) {
		if (!parse_number(value, 16, &number)) {
			snprintf(err, err_size, "VM %s: outputs '%s' is not 1..16", vm->name, value);
			return false;
		}
		vm->outputs = (unsigned)number;
	} else if (strcmp(key, "max-resources") == 0) {
		if (!parse_number(value, 65536, &number)) {
			snprintf(err, err_size, "VM %s: max-resources '%s' is not 1..65536", vm->name, value);
			return false;
		}
		vm->max_resources = (uint32_t)number;
	} else if (strcmp(key, "max-memory") == 0) {
		if (!parse_number(value, 65536, &number)) {
			snprintf(err, err_size, "VM %s: max-memory '%s' is not 1..65536 MiB", vm->name, value);
			return false;
		}
		vm->max_memory_mib = number;
	} else if (strcmp(key, "config-events") == 0) {
		if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
			snprintf(err, err_size, "VM %s: config-events is on or off", vm->name);
			return false;
		}
		vm->config_events = strcmp(value, "on") == 0;
	} else if (strcmp(key, "contexts") == 0) {
		if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
			snprintf(err, err_size, "VM %s: contexts is on or off", vm->name);
			return false;
		}
		vm->no_contexts = strcmp(value, "off") == 0;
	} else if (strcmp(key, "input") == 0) {
		if (value[0] == '\0' || vm->input_socket_path != NULL) {
			snprintf(err, err_size, "VM %s: input needs one socket path", vm->name);
			return false;
		}
		vm->input_socket_path = strdup(value);
		if (vm->input_socket_path == NULL) {
			snprintf(err, err_size, "out of memory");
			return false;
		}
	} else {
		snprintf(err, err_size, "VM %s: unknown option '%s'", vm->name, key);
		return false;
	}
	return true;
}

/* Two devices on one socket would steal each other's front ends. */
static bool
sockets_are_unique(const struct cw_vm_config_list *list, const struct cw_vm_config *vm,
	const char *socket, char *err, size_t err_size)
{
	const char *input = vm->input_socket_path;
	if (input != NULL && strcmp(input, socket) == 0) {
		snprintf(err, err_size, "VM %s: its GPU and input sockets are both %s", vm->name, socket);
		return false;
	}
	for (size_t i = 0; i < list->count; i++) {
		const struct cw_vm_config *other = &list->vms[i];
		const char *paths[] = {other->socket_path, other->input_socket_path};
		for (size_t j = 0; j < 2; j++) {
			if (paths[j] != NULL && (strcmp(paths[j], socket) == 0 ||
					(input != NULL && strcmp(paths[j], input) == 0))) {
				snprintf(err, err_size, "VMs %s and %s share the socket %s", other->name,
					vm->name, paths[j]);
				return false;
			}
		}
	}
	return true;
}

bool
cw_vm_config_add(struct cw_vm_config_list *list, const char *spec, char *err, size_t err_size)
{
	if (list->count >= CW_MAX_VMS) {
		snprintf(err, err_size, "at most %d VMs", CW_MAX_VMS);
		return false;
	}
	const char *eq = strchr(spec, '=');
	if (eq == NULL || !valid_name(spec, (size_t)(eq - spec))) {
		snprintf(err, err_size, "'%s' is not NAME=SOCKET (NAME: 1-%d of A-Z a-z 0-9 _ - .)",
			spec, CW_VM_NAME_MAX);
		return false;
	}
	struct cw_vm_config vm = {.outputs = 1};
	memcpy(vm.name, spec, (size_t)(eq - spec));
	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->vms[i].name, vm.name) == 0) {
			snprintf(err, err_size, "VM name '%s' is used twice", vm.name);
			return false;
		}
	}
	char *rest = strdup(eq + 1);
	if (rest == NULL) {
		snprintf(err, err_size, "out of memory");
		return false;
	}
	/* The socket path runs to the first comma; options follow. */
	char *socket = rest;
	char *options = strchr(rest, ',');
	if (options != NULL) {
		*options++ = '\0';
	}
	if (socket[0] == '\0') {
		snprintf(err, err_size, "VM %s: no socket path", vm.name);
		free(rest);
		return false;
	}
	char *save = NULL;
	for (char *opt = options != NULL ? strtok_r(options, ",", &save) : NULL; opt != NULL;
			opt = strtok_r(NULL, ",", &save)) {
		if (!parse_option(&vm, opt, err, err_size)) {
			free(vm.input_socket_path);
			free(rest);
			return false;
		}
	}
	if (!sockets_are_unique(list, &vm, socket, err, err_size)) {
		free(vm.input_socket_path);
		free(rest);
		return false;
	}
	vm.socket_path = strdup(socket);
	free(rest);
	if (vm.socket_path == NULL) {
		free(vm.input_socket_path);
		snprintf(err, err_size, "out of memory");
		return false;
	}
	if (!vm.has_color) {
		vm.color = default_colors[list->count % (sizeof(default_colors) / sizeof(default_colors[0]))];
	}
	list->vms[list->count++] = vm;
	return true;
}

bool
cw_vm_config_load_file(struct cw_vm_config_list *list, const char *path, char *err,
	size_t err_size)
{
	FILE *file = fopen(path, "r");
	if (file == NULL) {
		if (errno == ENOENT) {
			return true;
		}
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return false;
	}
	char line[1024];
	int number = 0;
	bool ok = true;
	while (ok && fgets(line, sizeof(line), file) != NULL) {
		number++;
		/* A comment starts with '#' at the start or after a blank (colours use '#'). */
		for (char *c = line; *c != '\0'; c++) {
			if (*c == '#' && (c == line || c[-1] == ' ' || c[-1] == '\t')) {
				*c = '\0';
				break;
			}
		}
		char *start = line, *end = line + strlen(line);
		while (*start == ' ' || *start == '\t') {
			start++;
		}
		while (end > start && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
				end[-1] == '\t')) {
			*--end = '\0';
		}
		if (*start == '\0') {
			continue;
		}
		char reason[256];
		if (!cw_vm_config_add(list, start, reason, sizeof(reason))) {
			snprintf(err, err_size, "%s:%d: %s", path, number, reason);
			ok = false;
		}
	}
	fclose(file);
	return ok;
}

char *
cw_vm_config_default_path(void)
{
	const char *base = getenv("XDG_CONFIG_HOME");
	const char *suffix = "/crossway/vms.conf";
	char *path = NULL;
	if (base != NULL && base[0] == '/') {
		if (asprintf(&path, "%s%s", base, suffix) < 0) {
			return NULL;
		}
		return path;
	}
	const char *home = getenv("HOME");
	if (home == NULL || home[0] != '/') {
		return NULL;
	}
	if (asprintf(&path, "%s/.config%s", home, suffix) < 0) {
		return NULL;
	}
	return path;
}

void
cw_vm_config_list_finish(struct cw_vm_config_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->vms[i].socket_path);
		free(list->vms[i].input_socket_path);
	}
	list->count = 0;
}
