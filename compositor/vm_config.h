#ifndef CW_VM_CONFIG_H
#define CW_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_MAX_VMS 16
#define CW_VM_NAME_MAX 32

/* One VM as the user configured it (--vm or the config file). */
struct cw_vm_config {
	char name[CW_VM_NAME_MAX + 1]; // [A-Za-z0-9_.-]: shown in titles and logs
	char *socket_path;             // owned: the virtio-gpu device
	char *input_socket_path;       // owned, NULL: no virtio-input device
	uint32_t color;                // 0xRRGGBB of its frame
	bool has_color;
	unsigned outputs;              // scanouts offered to the guest (1..16)
	uint32_t max_resources;        // 0: default
	uint64_t max_memory_mib;       // 0: default
	bool config_events;            // send config-change events (not for QEMU 7.2)
	bool no_contexts;              // contexts=off: no cross-domain (guest app windows)
};

struct cw_vm_config_list {
	struct cw_vm_config vms[CW_MAX_VMS];
	size_t count;
};

/*
 * Parses "NAME=SOCKET[,input=SOCKET][,color=#RRGGBB][,outputs=N][,max-resources=N]
 * [,max-memory=MiB][,config-events=on][,contexts=off]"
 * and appends it. Returns false with a one-line reason in err.
 */
bool cw_vm_config_add(struct cw_vm_config_list *list, const char *spec, char *err,
	size_t err_size);
/*
 * Reads one spec per line from path ('#' starts a comment, blank lines are
 * skipped). A missing file is not an error. Errors name the line.
 */
bool cw_vm_config_load_file(struct cw_vm_config_list *list, const char *path, char *err,
	size_t err_size);
/* $XDG_CONFIG_HOME/crossway/vms.conf, or ~/.config/crossway/vms.conf; NULL if neither. */
char *cw_vm_config_default_path(void);
void cw_vm_config_list_finish(struct cw_vm_config_list *list);

#endif
