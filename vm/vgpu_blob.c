/*
 * Blob resources in guest memory, shown without any copy: the guest's pages
 * are mapped (from the VM's memory file) into one linear view that the
 * renderer samples, and, where the kernel has /dev/udmabuf, also exported
 * as a dmabuf that a GPU renderer imports directly.
 */
#define _GNU_SOURCE
#include <drm_fourcc.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/udmabuf.h>
#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wlr/util/log.h>

#include "vgpu_resource.h"

#define PAGE_SIZE_BYTES 4096u

/* Whether the memory file cannot shrink under us (a mapping would then SIGBUS). */
static bool
file_is_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

/*
 * Maps the entries at their places in one reserved range, merging runs of
 * entries that are adjacent in the file into one mapping (kernel mappings
 * are a bounded resource). False if one cannot be mapped.
 */
static bool
map_linear(struct vgpu_resource *res, const struct vu_guest_memory *mem,
	const struct vgpu_backing_entry *entries, uint32_t count, uint64_t total)
{
	uint8_t *base = mmap(NULL, (size_t)total, PROT_NONE,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		return false;
	}
	res->blob_map = base;
	res->blob_map_size = (size_t)total;
	uint64_t pos = 0;
	for (uint32_t i = 0; i < count;) {
		int fd;
		uint64_t offset;
		if (!vu_mem_gpa_to_file(mem, entries[i].gpa, entries[i].length, &fd, &offset) ||
				offset % PAGE_SIZE_BYTES != 0 || !file_is_sealed(fd)) {
			return false;
		}
		/* Extend the run while the next entry continues it in the same file. */
		uint64_t length = entries[i].length;
		uint32_t next = i + 1;
		while (next < count) {
			int next_fd;
			uint64_t next_offset;
			if (!vu_mem_gpa_to_file(mem, entries[next].gpa, entries[next].length, &next_fd,
					&next_offset) || next_fd != fd || next_offset != offset + length) {
				break;
			}
			length += entries[next].length;
			next++;
		}
		/* Read-only: nothing on the host may write into a guest's memory. */
		void *at = mmap(base + pos, length, PROT_READ, MAP_SHARED | MAP_FIXED, fd, (off_t)offset);
		if (at == MAP_FAILED) {
			return false;
		}
		res->blob_pieces++;
		pos += length;
		i = next;
	}
	return true;
}

/* A udmabuf of the same pages, if the kernel offers it; -1 otherwise. */
static int
make_udmabuf(const struct vu_guest_memory *mem, const struct vgpu_backing_entry *entries,
	uint32_t count)
{
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		return -1; // no udmabuf here: the linear view serves alone
	}
	size_t size = sizeof(struct udmabuf_create_list) + count * sizeof(struct udmabuf_create_item);
	struct udmabuf_create_list *list = calloc(1, size);
	int dmabuf = -1;
	if (list == NULL) {
		goto out;
	}
	list->flags = UDMABUF_FLAGS_CLOEXEC;
	list->count = count;
	for (uint32_t i = 0; i < count; i++) {
		int fd;
		uint64_t offset;
		if (!vu_mem_gpa_to_file(mem, entries[i].gpa, entries[i].length, &fd, &offset)) {
			goto out;
		}
		list->list[i] = (struct udmabuf_create_item){
			.memfd = (uint32_t)fd, .offset = offset, .size = entries[i].length};
	}
	/* Needs memfds sealed against shrinking, as QEMU's memory-backend-memfd does. */
	dmabuf = ioctl(dev, UDMABUF_CREATE_LIST, list);
	if (dmabuf < 0) {
		wlr_log(WLR_DEBUG, "udmabuf refused the guest pages (%s): mapping them instead",
			strerror(errno));
		dmabuf = -1;
	}
out:
	free(list);
	close(dev);
	return dmabuf;
}

static bool
entries_are_pages(const struct vgpu_backing_entry *entries, uint32_t count, uint64_t *total)
{
	*total = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (entries[i].gpa % PAGE_SIZE_BYTES != 0 || entries[i].length % PAGE_SIZE_BYTES != 0 ||
				entries[i].length == 0) {
			return false;
		}
		*total += entries[i].length;
		if (*total > VGPU_MAX_BLOB_SIZE) {
			return false;
		}
	}
	return true;
}

struct vgpu_resource *
vgpu_resource_create_blob(uint32_t id, const struct vu_guest_memory *mem,
	const struct vgpu_backing_entry *entries, uint32_t count, uint64_t size, uint32_t *error)
{
	uint64_t total;
	if (count == 0 || size == 0 || !entries_are_pages(entries, count, &total) || size > total) {
		*error = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		return NULL;
	}
	/* A 1x1 placeholder: a blob has no format until an image is made of it. */
	struct vgpu_resource *res = vgpu_resource_create_2d(id, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1, 1);
	if (res == NULL) {
		*error = VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		return NULL;
	}
	res->blob = true;
	res->blob_size = size;
	res->blob_dmabuf = -1;
	if (!map_linear(res, mem, entries, count, total)) {
		*error = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
		vgpu_resource_unref(res);
		return NULL;
	}
	/*
	 * Kept for host writes into the blob (cross-domain rings): the view is
	 * read-only. Guest-adjacent entries are merged, so the list is about as
	 * long as blob_pieces, which the device bounds per VM.
	 */
	struct vgpu_backing_entry *copy = calloc(count, sizeof(*copy));
	if (copy == NULL) {
		*error = VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
		vgpu_resource_unref(res);
		return NULL;
	}
	uint32_t merged = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct vgpu_backing_entry *last = merged > 0 ? &copy[merged - 1] : NULL;
		if (last != NULL && last->gpa + last->length == entries[i].gpa &&
				(uint64_t)last->length + entries[i].length <= UINT32_MAX) {
			last->length += entries[i].length;
		} else {
			copy[merged++] = (struct vgpu_backing_entry){
				.gpa = entries[i].gpa, .length = entries[i].length};
		}
	}
	vgpu_resource_set_backing(res, copy, merged);
	res->blob_dmabuf = make_udmabuf(mem, entries, count);
	return res;
}

/* --- images inside a blob ------------------------------------------------------ */

struct blob_image {
	struct wlr_buffer base;
	struct vgpu_resource *blob; // locked
	uint32_t drm_format, stride, offset;
};

static struct blob_image *
blob_image_from_buffer(struct wlr_buffer *buffer)
{
	return wl_container_of(buffer, (struct blob_image *)NULL, base);
}

static void
blob_image_destroy(struct wlr_buffer *buffer)
{
	struct blob_image *image = blob_image_from_buffer(buffer);
	wlr_buffer_unlock(&image->blob->base);
	free(image);
}

static bool
blob_image_begin_data_ptr_access(struct wlr_buffer *buffer, uint32_t flags, void **data,
	uint32_t *format, size_t *stride)
{
	struct blob_image *image = blob_image_from_buffer(buffer);
	if (flags & WLR_BUFFER_DATA_PTR_ACCESS_WRITE) {
		return false;
	}
	*data = image->blob->blob_map + image->offset;
	*format = image->drm_format;
	*stride = image->stride;
	return true;
}

static void
blob_image_end_data_ptr_access(struct wlr_buffer *buffer)
{
	(void)buffer;
}

static bool
blob_image_get_dmabuf(struct wlr_buffer *buffer, struct wlr_dmabuf_attributes *attribs)
{
	struct blob_image *image = blob_image_from_buffer(buffer);
	/*
	 * Only layouts every GPU imports: wlroots 0.15 does not fall back to the
	 * data pointer when a dmabuf import fails, which would show nothing.
	 */
	if (image->blob->blob_dmabuf < 0 || image->stride % 256 != 0 || image->offset % 4096 != 0) {
		return false;
	}
	*attribs = (struct wlr_dmabuf_attributes){
		.width = buffer->width,
		.height = buffer->height,
		.format = image->drm_format,
		.modifier = DRM_FORMAT_MOD_LINEAR,
		.n_planes = 1,
		.offset = {image->offset},
		.stride = {image->stride},
		.fd = {image->blob->blob_dmabuf},
	};
	return true;
}

static const struct wlr_buffer_impl blob_image_impl = {
	.destroy = blob_image_destroy,
	.get_dmabuf = blob_image_get_dmabuf,
	.begin_data_ptr_access = blob_image_begin_data_ptr_access,
	.end_data_ptr_access = blob_image_end_data_ptr_access,
};

struct wlr_buffer *
vgpu_blob_image_create(struct vgpu_resource *blob, uint32_t drm_format, uint32_t width,
	uint32_t height, uint32_t stride, uint32_t offset)
{
	/*
	 * The whole image, row by row, must lie inside the blob, and the stride
	 * stay in the range renderers index with an int.
	 */
	if (!blob->blob || blob->unreferenced || width == 0 || height == 0 ||
			width > VGPU_MAX_RESOURCE_DIMENSION ||
			height > VGPU_MAX_RESOURCE_DIMENSION || stride < (uint64_t)width * 4 ||
			stride % 4 != 0 || stride > VGPU_MAX_RESOURCE_DIMENSION * 4 ||
			(uint64_t)offset + (uint64_t)stride * (height - 1) + (uint64_t)width * 4 >
				blob->blob_size) {
		return NULL;
	}
	struct blob_image *image = calloc(1, sizeof(*image));
	if (image == NULL) {
		return NULL;
	}
	image->blob = blob;
	wlr_buffer_lock(&blob->base);
	image->drm_format = drm_format;
	image->stride = stride;
	image->offset = offset;
	wlr_buffer_init(&image->base, &blob_image_impl, (int)width, (int)height);
	return &image->base;
}

/* --- placeholders: guest blobs sent to the compositor's clients ------------------ */

/*
 * One placeholder: an empty sealed memfd whose inode stands for a blob.
 * The registry holds the fd open, so the inode (the key) cannot be reused
 * for another file while the entry exists.
 */
struct placeholder {
	struct wl_list link; // placeholders
	dev_t dev;
	ino_t ino;
	int fd;
	uint64_t key;               // never reused (vgpu_blob_import_key)
	const void *owner;          // the exporting device
	struct vgpu_resource *blob; // what it stands for now (not locked: forgotten at unref)
};

/* Every device's placeholders: crossway runs all VMs on one event loop thread. */
static struct wl_list placeholders = {&placeholders, &placeholders};
static uint64_t last_key;

static void
placeholder_free(struct placeholder *p)
{
	wl_list_remove(&p->link);
	close(p->fd);
	free(p);
}

static struct placeholder *
placeholder_create(struct vgpu_resource *blob, const void *owner)
{
	struct placeholder *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return NULL;
	}
	p->fd = memfd_create("crossway-guest-blob", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct stat st;
	/* Sealed empty: a client that maps it instead of importing sees nothing. */
	if (p->fd < 0 || fcntl(p->fd, F_ADD_SEALS,
			F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0 ||
			fstat(p->fd, &st) != 0) {
		int err = errno;
		if (p->fd >= 0) {
			close(p->fd);
		}
		free(p);
		errno = err;
		return NULL;
	}
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->key = ++last_key;
	p->owner = owner;
	p->blob = blob;
	wl_list_insert(&placeholders, &p->link);
	return p;
}

int
vgpu_blob_export_fd(struct vgpu_resource *blob, const void *owner)
{
	if (blob == NULL || !blob->blob || blob->unreferenced) {
		return -EINVAL;
	}
	/* One placeholder per blob: every export hands out the same inode. */
	struct placeholder *p, *found = NULL;
	wl_list_for_each(p, &placeholders, link) {
		if (p->blob == blob && p->owner == owner) {
			found = p;
			break;
		}
	}
	if (found == NULL) {
		found = placeholder_create(blob, owner);
		if (found == NULL) {
			return errno > 0 ? -errno : -ENOMEM;
		}
	}
	int fd = fcntl(found->fd, F_DUPFD_CLOEXEC, 0);
	return fd >= 0 ? fd : -errno;
}

/* The placeholder's blob, locked, if `owner` exported it and the blob is alive. */
static struct vgpu_resource *
placeholder_import(struct placeholder *p, const void *owner)
{
	/* Another VM's blob is never this VM's client's buffer. */
	if (p->owner != owner || p->blob == NULL || p->blob->unreferenced) {
		return NULL;
	}
	wlr_buffer_lock(&p->blob->base);
	return p->blob;
}

struct vgpu_resource *
vgpu_blob_import_fd_key(int fd, const void *owner, uint64_t *key)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		return NULL;
	}
	struct placeholder *p;
	wl_list_for_each(p, &placeholders, link) {
		if (p->dev == st.st_dev && p->ino == st.st_ino) {
			struct vgpu_resource *blob = placeholder_import(p, owner);
			if (blob != NULL && key != NULL) {
				*key = p->key;
			}
			return blob;
		}
	}
	return NULL; // a host file, or a placeholder whose blob is gone
}

struct vgpu_resource *
vgpu_blob_import_fd(int fd, const void *owner)
{
	return vgpu_blob_import_fd_key(fd, owner, NULL);
}

struct vgpu_resource *
vgpu_blob_import_key(uint64_t key, const void *owner)
{
	struct placeholder *p;
	wl_list_for_each(p, &placeholders, link) {
		if (p->key == key) {
			return placeholder_import(p, owner);
		}
	}
	return NULL;
}

int
vgpu_blob_replace(struct vgpu_resource *old_blob, struct vgpu_resource *new_blob,
	const void *owner)
{
	if (old_blob == NULL || new_blob == NULL || !old_blob->blob || !new_blob->blob ||
			old_blob->unreferenced || new_blob->unreferenced) {
		return -EINVAL;
	}
	int moved = 0;
	struct placeholder *p;
	wl_list_for_each(p, &placeholders, link) {
		if (p->blob == old_blob && p->owner == owner) {
			p->blob = new_blob;
			moved++;
		}
	}
	return moved;
}

void
vgpu_blob_forget(struct vgpu_resource *blob)
{
	struct placeholder *p, *tmp;
	wl_list_for_each_safe(p, tmp, &placeholders, link) {
		if (p->blob == blob) {
			placeholder_free(p);
		}
	}
}

unsigned
vgpu_blob_placeholder_count(void)
{
	return (unsigned)wl_list_length(&placeholders);
}
