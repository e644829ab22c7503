/*
 * A fake guest for tests of vm/ and crossway's VM clients, shared by the
 * unit tests (test-cross-domain, test-vm-fds, test-vm-shm) and the
 * cross-domain fuzz target: guest RAM (a sealed memfd registered as a VMM
 * shares it, and mapped here as the guest writes it), guest blobs in it as
 * the device makes them, the xdom_ops a fake device answers with, and the
 * encoding of cross-domain commands.
 *
 * One fake guest per process (vm_fixture). Functions report failure by
 * their result rather than abort, so that the fuzz target (no check.h)
 * uses them too.
 */
#ifndef CW_TEST_VM_FIXTURE_H
#define CW_TEST_VM_FIXTURE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "guest_memory.h"
#include "vgpu_resource.h"

#define VM_FIXTURE_GPA 0x100000ull // guest-physical address of the first byte of guest RAM
#define VM_FIXTURE_PAGE 4096u
#define VM_FIXTURE_MAX_RES 64

struct vm_fixture {
	struct vu_guest_memory mem;
	uint8_t *ram; // guest RAM as the guest writes it
	size_t ram_size;
	/* Resources by id, as the device's table; only attached ones are found. */
	struct vgpu_resource *resources[VM_FIXTURE_MAX_RES];
	bool attached[VM_FIXTURE_MAX_RES];
};

extern struct vm_fixture vm_fixture;

/* Guest RAM of `size` bytes at VM_FIXTURE_GPA. 0 or -errno. */
int vm_fixture_init(size_t size);
/* Drops every resource the table holds and the guest RAM. */
void vm_fixture_finish(void);

/* A blob `id` of `size` bytes on `pages` guest pages from page `page`, as
 * RESOURCE_CREATE_BLOB makes it; NULL on failure. The caller owns it. */
struct vgpu_resource *vm_fixture_new_blob(uint32_t id, uint64_t page, uint64_t pages,
	uint64_t size);
/* The same, kept in the table as resource `id` (< VM_FIXTURE_MAX_RES) and
 * attached. 0, or -1 on failure. */
int vm_fixture_add_blob(uint32_t id, uint64_t page, uint64_t pages, uint64_t size);
/* Unrefs resource `id` of the table, if any. */
void vm_fixture_drop(uint32_t id);
/* Where the guest writes byte `offset` of a blob on one run of pages
 * (guest RAM's start for a resource without backing). */
uint8_t *vm_fixture_bytes(const struct vgpu_resource *res, size_t offset);

/* xdom_ops.resource and .memory of a fake device: the table's attached
 * resources, and the guest RAM. */
struct vgpu_resource *vm_fixture_resource(void *data, uint32_t id);
const struct vu_guest_memory *vm_fixture_memory(void *data);

/* xdom_ops.connect_wayland of a fake device whose test plays the
 * compositor: a socketpair, whose compositor end replaces *compositor (the
 * previous one closed, if >= 0). The context's end, or -errno. */
int vm_fixture_wayland_pair(int *compositor);

/* How many fds this process has open. */
int vm_fixture_open_fds(void);

/* --- cross-domain commands, little endian --------------------------------------- */

static inline void
put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline uint32_t
get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

/* The 8-byte header of a command: its type and size, the rest zero. */
static inline void
cmd_header(uint8_t *p, uint8_t cmd, size_t size)
{
	memset(p, 0, 8);
	p[0] = cmd;
	uint16_t s = htole16((uint16_t)size);
	memcpy(p + 2, &s, 2);
}

#endif
