/*
 * A VM as crossway's VM client registry and wl_shm know it, for tests with
 * the compositor's side (test-vm-fds, test-vm-shm): named, with no clients
 * and no device. Its device pointer is a token only compared (blob owners),
 * never used: the VM's own address, so that every VM has its own.
 */
#ifndef CW_TEST_VM_FIXTURE_VM_H
#define CW_TEST_VM_FIXTURE_VM_H

#include <stdio.h>
#include <wayland-server-core.h>

#include "vm.h"

static inline void
vm_fixture_fake_vm(struct cw_vm *vm, const char *name)
{
	*vm = (struct cw_vm){0};
	snprintf(vm->config.name, sizeof(vm->config.name), "%s", name);
	vm->device = (struct vgpu_device *)(void *)vm;
	wl_list_init(&vm->clients);
}

#endif
