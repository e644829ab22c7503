#define _GNU_SOURCE
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xdom.h"

#define IMPL(c) ((c)->transport->impl)

/* ------------------------------------------------------------------ */
/* Set-up and teardown                                                 */
/* ------------------------------------------------------------------ */

static int blob_create_cb(void *user, size_t size, struct cwg_blob *blob)
{
	struct cwg_client *c = user;
	return IMPL(c)->blob_create(c->ctx, size, blob);
}

static void blob_destroy_cb(void *user, struct cwg_blob *blob)
{
	struct cwg_client *c = user;
	IMPL(c)->blob_destroy(c->ctx, blob);
}

static int submit(struct cwg_client *c, const void *cmd, size_t size, int ring,
	const struct cwg_blob *const *blobs, unsigned n)
{
	int ret = IMPL(c)->submit(c->ctx, cmd, size, ring, blobs, n);
	if (ret < 0)
		cwg_client_fail(c, "submitting a cross-domain command failed: %s", strerror(-ret));
	return ret;
}

struct cwg_client *cwg_client_new(struct cwg_transport *transport, int sock)
{
	struct cwg_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->transport = transport;
	c->sock = sock;
	cwg_buf_init(&c->in, CWG_IN_BUFFER);
	cwg_objects_init(&c->objects, CWG_MAX_OBJECTS);
	struct cwg_blob_ops ops = { blob_create_cb, blob_destroy_cb, c };
	cwg_shm_init(&c->shm, &ops);
	for (unsigned i = 0; i < CWG_MAX_PIPES; i++)
		c->pipes[i].fd = -1;

	c->ctx = transport->impl->context_create(transport);
	if (!c->ctx) {
		int err = errno;
		cwg_log(CWG_ERROR, "cannot create a cross-domain context: %s", strerror(err));
		free(c);
		errno = err;
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		int ret = IMPL(c)->blob_create(c->ctx, XDOM_RING_SIZE, &c->rings[i]);
		if (ret < 0) {
			cwg_log(CWG_ERROR, "cannot create a ring buffer: %s", strerror(-ret));
			if (i == 1)
				IMPL(c)->blob_destroy(c->ctx, &c->rings[0]);
			IMPL(c)->context_destroy(c->ctx);
			free(c);
			errno = -ret;
			return NULL;
		}
	}
	const struct cwg_blob *rings[2] = { &c->rings[0], &c->rings[1] };
	size_t n = cwg_xdom_init(c->cmd, c->rings[0].res_id, c->rings[1].res_id);
	if (submit(c, c->cmd, n, -1, rings, 2) < 0) {
		c->sock = -1;
		cwg_client_destroy(c);
		errno = EIO;
		return NULL;
	}
	cwg_client_maybe_poll(c);
	if (c->dead) {
		c->sock = -1;
		cwg_client_destroy(c);
		errno = EIO;
		return NULL;
	}
	return c;
}

static void free_object_data(struct cwg_client *c, struct cwg_object *o)
{
	switch (o->type) {
	case CWG_OBJ_POOL:
		cwg_shm_pool_unref(&c->shm, o->data);
		break;
	case CWG_OBJ_BUFFER:
		cwg_shm_buffer_destroy(&c->shm, o->data);
		break;
	case CWG_OBJ_SURFACE:
		free(o->data);
		break;
	default:
		break;
	}
	o->data = NULL;
}

static void outq_free_entry(struct cwg_outq_entry *e)
{
	if (!e->fds_sent)
		for (unsigned i = 0; i < e->nfds; i++)
			if (e->fds[i] >= 0)
				close(e->fds[i]);
	free(e->data);
	free(e);
}

static void pipe_close(struct cwg_pipe *p)
{
	if (p->fd >= 0)
		close(p->fd);
	cwg_buf_free(&p->pending);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

void cwg_client_destroy(struct cwg_client *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->objects.cap; i++) {
		struct cwg_object *o = &c->objects.slots[i];
		if (o->id && !o->tomb)
			free_object_data(c, o);
	}
	cwg_objects_finish(&c->objects);
	for (unsigned i = 0; i < c->nfds; i++)
		if (c->fds[i].fd >= 0) {
			if (c->fds[i].kind == CWG_FD_DMABUF && c->fds[i].resolved &&
					IMPL(c)->dmabuf_release)
				IMPL(c)->dmabuf_release(c->ctx, c->fds[i].blob.handle);
			close(c->fds[i].fd);
		}
	while (c->out_head) {
		struct cwg_outq_entry *e = c->out_head;
		c->out_head = e->next;
		outq_free_entry(e);
	}
	for (unsigned i = 0; i < CWG_MAX_PIPES; i++)
		if (c->pipes[i].used)
			pipe_close(&c->pipes[i]);
	/* Stream fds are owned by their queue entries (freed above). */
	cwg_buf_free(&c->in);
	if (c->ctx) {
		if (c->shm.pools)
			cwg_log(CWG_DEBUG, "%u pools still referenced at teardown", c->shm.pools);
		IMPL(c)->blob_destroy(c->ctx, &c->rings[0]);
		IMPL(c)->blob_destroy(c->ctx, &c->rings[1]);
		IMPL(c)->context_destroy(c->ctx);
	}
	if (c->sock >= 0)
		close(c->sock);
	free(c);
}

static int outq_push(struct cwg_client *c, const uint8_t *data, size_t len,
	struct cwg_outq_entry **out)
{
	struct cwg_outq_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (len) {
		e->data = malloc(len);
		if (!e->data) {
			free(e);
			return -ENOMEM;
		}
		memcpy(e->data, data, len);
	}
	e->len = len;
	if (c->out_tail)
		c->out_tail->next = e;
	else
		c->out_head = e;
	c->out_tail = e;
	c->out_bytes += len;
	if (out)
		*out = e;
	return 0;
}

void cwg_client_fail(struct cwg_client *c, const char *fmt, ...)
{
	if (c->dead)
		return;
	c->dead = true;
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cwg_log(CWG_ERROR, "client ended: %s", why);
	if (c->sock >= 0 && cwg_wire_scan_at_boundary(&c->scan)) {
		uint8_t msg[600];
		char text[300];
		snprintf(text, sizeof(text), "crossway-guest: %s", why);
		size_t n = cwg_wire_display_error(msg, sizeof(msg), CWG_WL_DISPLAY_ID, 3, text);
		if (n)
			outq_push(c, msg, n, NULL);
	}
}

/* ------------------------------------------------------------------ */
/* Client -> host                                                      */
/* ------------------------------------------------------------------ */

static void fdent_release(struct cwg_client *c, struct cwg_fdent *f)
{
	if (f->kind == CWG_FD_DMABUF && f->resolved && IMPL(c)->dmabuf_release)
		IMPL(c)->dmabuf_release(c->ctx, f->blob.handle);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int pipe_add(struct cwg_client *c, enum cwg_pipe_kind kind, uint32_t id, int fd)
{
	for (unsigned i = 0; i < CWG_MAX_PIPES; i++) {
		struct cwg_pipe *p = &c->pipes[i];
		if (p->used)
			continue;
		memset(p, 0, sizeof(*p));
		p->used = true;
		p->kind = kind;
		p->id = id;
		p->fd = fd;
		cwg_buf_init(&p->pending, CWG_PIPE_BUFFER);
		return (int)i;
	}
	return -ENOSPC;
}

static struct cwg_pipe *pipe_find(struct cwg_client *c, enum cwg_pipe_kind kind, uint32_t id)
{
	for (unsigned i = 0; i < CWG_MAX_PIPES; i++)
		if (c->pipes[i].used && c->pipes[i].kind == kind && c->pipes[i].id == id)
			return &c->pipes[i];
	return NULL;
}

/* What the SEND carries for the fds at the head of the queue: at most 28,
 * only resolved ones, at most one READ_PIPE. *more: resolved fds remain. */
static unsigned fd_prefix(const struct cwg_client *c, bool *more)
{
	unsigned n = 0, pipes = 0;
	*more = false;
	for (; n < c->nfds; n++) {
		const struct cwg_fdent *f = &c->fds[n];
		if (!f->resolved)
			return n;
		if (n == XDOM_MAX_IDENTIFIERS || (f->kind == CWG_FD_READ_PIPE && pipes == 1)) {
			*more = true;
			return n;
		}
		if (f->kind == CWG_FD_READ_PIPE)
			pipes++;
	}
	return n;
}

/* One SEND of data with the first nfd queued fds. */
static int send_chunk(struct cwg_client *c, const uint8_t *data, size_t len, unsigned nfd)
{
	struct cwg_xdom_item items[XDOM_MAX_IDENTIFIERS] = { { 0, 0, 0 } };
	const struct cwg_blob *blobs[XDOM_MAX_IDENTIFIERS];
	unsigned nblobs = 0;
	for (unsigned i = 0; i < nfd; i++) {
		struct cwg_fdent *f = &c->fds[i];
		if (f->kind == CWG_FD_READ_PIPE) {
			f->id = XDOM_PIPE_READ_START + c->read_pipes_sent + 1;
			f->type = XDOM_ID_TYPE_READ_PIPE;
			f->size = 0;
		} else {
			blobs[nblobs++] = &f->blob;
		}
		items[i].id = f->id;
		items[i].type = f->type;
		items[i].size = f->size;
	}
	size_t n = cwg_xdom_send(c->cmd, data, len, items, nfd);
	int ret = submit(c, c->cmd, n, -1, blobs, nblobs);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < nfd; i++) {
		struct cwg_fdent *f = &c->fds[i];
		if (f->kind == CWG_FD_READ_PIPE) {
			c->read_pipes_sent++;
			int fd = f->fd;
			f->fd = -1;
			if (pipe_add(c, CWG_PIPE_READ, f->id, fd) < 0) {
				close(fd);
				cwg_client_fail(c, "too many pipes");
				ret = -ENOSPC;
			}
		} else {
			fdent_release(c, f);
		}
	}
	memmove(c->fds, c->fds + nfd, (c->nfds - nfd) * sizeof(c->fds[0]));
	c->nfds -= nfd;
	return ret;
}

int cwg_client_flush_batch(struct cwg_client *c)
{
	while (c->batch_msgs > 0 && !c->dead) {
		bool more;
		unsigned nfd = fd_prefix(c, &more);
		/* With fds left over, this SEND carries one message only, so
		 * that the next fd still comes no later than its message. */
		unsigned nmsg = more ? 1 : c->batch_msgs;
		size_t len = 0;
		for (unsigned i = 0; i < nmsg; i++)
			len += c->batch_msg[i];
		if (send_chunk(c, c->batch, len, nfd) < 0)
			return -1;
		memmove(c->batch, c->batch + len, c->batch_len - len);
		c->batch_len -= len;
		memmove(c->batch_msg, c->batch_msg + nmsg, (c->batch_msgs - nmsg) * sizeof(c->batch_msg[0]));
		c->batch_msgs -= nmsg;
	}
	return c->dead ? -1 : 0;
}

static int forward(struct cwg_client *c, const uint8_t *data, uint32_t size)
{
	if (size > XDOM_MAX_SEND_DATA) {
		/* A message larger than one SEND: fds on the first chunk. */
		if (cwg_client_flush_batch(c) < 0)
			return -1;
		bool more;
		unsigned nfd = fd_prefix(c, &more);
		for (size_t off = 0; off < size; ) {
			size_t len = size - off;
			if (len > XDOM_MAX_SEND_DATA)
				len = XDOM_MAX_SEND_DATA;
			if (send_chunk(c, data + off, len, off == 0 ? nfd : 0) < 0)
				return -1;
			off += len;
		}
		return 0;
	}
	if (c->batch_len + size > XDOM_MAX_SEND_DATA && cwg_client_flush_batch(c) < 0)
		return -1;
	memcpy(c->batch + c->batch_len, data, size);
	c->batch_len += size;
	c->batch_msg[c->batch_msgs++] = (uint16_t)size;
	return 0;
}

static struct cwg_object *lookup(struct cwg_client *c, uint32_t id, enum cwg_object_type type)
{
	struct cwg_object *o = cwg_objects_get(&c->objects, id);
	return o && o->type == type ? o : NULL;
}

/* Tracks id as a new object (replacing whatever was there). */
static int track(struct cwg_client *c, uint32_t id, enum cwg_object_type type, void *data)
{
	if (id == 0 || id >= CWG_WL_SERVER_ID_START)
		return -EINVAL;
	struct cwg_object *o = cwg_objects_get(&c->objects, id);
	if (o)
		free_object_data(c, o);
	if (!cwg_objects_put(&c->objects, id, type, data)) {
		cwg_client_fail(c, "more than %u tracked objects", CWG_MAX_OBJECTS);
		return -ENOSPC;
	}
	return 0;
}

static void zombie(struct cwg_client *c, struct cwg_object *o)
{
	free_object_data(c, o);
	o->type = CWG_OBJ_ZOMBIE;
}

static int create_pool(struct cwg_client *c, uint32_t id, int32_t size)
{
	struct cwg_fdent *f = NULL;
	for (unsigned i = 0; i < c->nfds; i++)
		if (c->fds[i].kind == CWG_FD_SHM && !c->fds[i].resolved) {
			f = &c->fds[i];
			break;
		}
	if (!f) {
		cwg_client_fail(c, "wl_shm.create_pool without a memory fd");
		return -1;
	}
	struct cwg_pool *pool;
	int ret = cwg_shm_pool_create(&c->shm, f->fd, size, &pool);
	if (ret < 0) {
		if (ret == -ENOSPC)
			cwg_client_fail(c, "wl_shm pool limit reached (%u pools, %llu MiB of blobs)",
				c->shm.max_pools, (unsigned long long)(c->shm.max_blob_bytes >> 20));
		else
			cwg_client_fail(c, "cannot mirror a wl_shm pool of %d bytes: %s", size,
				strerror(-ret));
		return -1;
	}
	close(f->fd);
	f->fd = -1;
	f->resolved = true;
	f->blob = pool->blob;
	f->id = pool->blob.res_id;
	f->type = XDOM_ID_TYPE_VIRTGPU_BLOB;
	f->size = (uint32_t)pool->blob.size;
	if (track(c, id, CWG_OBJ_POOL, pool) < 0) {
		cwg_shm_pool_unref(&c->shm, pool);
		return c->dead ? -1 : 0;
	}
	return 0;
}

static int resize_pool(struct cwg_client *c, struct cwg_pool *pool, int32_t size)
{
	bool replaced;
	uint32_t old_id = 0, new_id = 0;
	struct cwg_blob old = pool->blob;
	int ret = cwg_shm_pool_resize(&c->shm, pool, size, &replaced, &old_id, &new_id);
	if (ret == -EINVAL)
		return 0; // the host refuses it with a protocol error
	if (ret < 0) {
		cwg_client_fail(c, "cannot grow a wl_shm pool to %d bytes: %s", size, strerror(-ret));
		return -1;
	}
	if (!replaced)
		return 0;
	/* Everything before the resize goes first, then the replacement. */
	if (cwg_client_flush_batch(c) < 0)
		return -1;
	const struct cwg_blob *blobs[2] = { &old, &pool->blob };
	size_t n = cwg_xdom_blob_replace(c->cmd, old_id, new_id);
	return submit(c, c->cmd, n, -1, blobs, 2) < 0 ? -1 : 0;
}

static struct cwg_buffer *surface_buffer(struct cwg_client *c, uint32_t id)
{
	struct cwg_object *o = lookup(c, id, CWG_OBJ_BUFFER);
	return o ? o->data : NULL;
}

/* Tracks what the request does; -1 if the client had to be ended. */
static int handle_request(struct cwg_client *c, const uint8_t *data, uint32_t size)
{
	struct cwg_msg m;
	cwg_msg_init(&m, data, size);
	if (m.object == CWG_WL_DISPLAY_ID) {
		if (m.opcode == 1) { // get_registry
			uint32_t id = cwg_msg_u32(&m);
			if (!m.bad && track(c, id, CWG_OBJ_REGISTRY, NULL) < 0 && c->dead)
				return -1;
		}
		return 0;
	}
	struct cwg_object *o = cwg_objects_get(&c->objects, m.object);
	if (!o)
		return 0;
	switch (o->type) {
	case CWG_OBJ_REGISTRY:
		if (m.opcode == 0) { // bind(name, interface, version, id)
			cwg_msg_u32(&m);
			const char *iface = cwg_msg_string(&m);
			cwg_msg_u32(&m);
			uint32_t id = cwg_msg_u32(&m);
			if (m.bad || !iface)
				return 0;
			enum cwg_object_type type = CWG_OBJ_NONE;
			if (strcmp(iface, "wl_shm") == 0)
				type = CWG_OBJ_SHM;
			else if (strcmp(iface, "wl_compositor") == 0)
				type = CWG_OBJ_COMPOSITOR;
			else if (strcmp(iface, "wp_viewporter") == 0)
				type = CWG_OBJ_VIEWPORTER;
			if (type != CWG_OBJ_NONE && track(c, id, type, NULL) < 0 && c->dead)
				return -1;
		}
		return 0;
	case CWG_OBJ_COMPOSITOR:
		if (m.opcode == 0) { // create_surface
			uint32_t id = cwg_msg_u32(&m);
			if (m.bad)
				return 0;
			struct cwg_surface *s = malloc(sizeof(*s));
			if (!s) {
				cwg_client_fail(c, "out of memory");
				return -1;
			}
			cwg_surface_init(s);
			if (track(c, id, CWG_OBJ_SURFACE, s) < 0) {
				free(s);
				return c->dead ? -1 : 0;
			}
		}
		return 0;
	case CWG_OBJ_SHM:
		if (m.opcode == 0) { // create_pool(id, fd, size)
			uint32_t id = cwg_msg_u32(&m);
			int32_t psize = cwg_msg_i32(&m);
			if (m.bad) {
				cwg_client_fail(c, "truncated wl_shm.create_pool");
				return -1;
			}
			return create_pool(c, id, psize);
		}
		if (m.opcode == 1) // release
			zombie(c, o);
		return 0;
	case CWG_OBJ_POOL:
		if (m.opcode == 0) { // create_buffer(id, offset, width, height, stride, format)
			uint32_t id = cwg_msg_u32(&m);
			int32_t offset = cwg_msg_i32(&m), w = cwg_msg_i32(&m), h = cwg_msg_i32(&m);
			int32_t stride = cwg_msg_i32(&m);
			uint32_t format = cwg_msg_u32(&m);
			if (m.bad)
				return 0;
			struct cwg_buffer *b = cwg_shm_buffer_create(o->data, offset, w, h, stride, format);
			if (!b)
				return 0; // invalid: the host raises the protocol error
			if (track(c, id, CWG_OBJ_BUFFER, b) < 0) {
				cwg_shm_buffer_destroy(&c->shm, b);
				return c->dead ? -1 : 0;
			}
		} else if (m.opcode == 1) {
			zombie(c, o);
		} else if (m.opcode == 2) {
			int32_t psize = cwg_msg_i32(&m);
			if (!m.bad)
				return resize_pool(c, o->data, psize);
		}
		return 0;
	case CWG_OBJ_BUFFER:
		if (m.opcode == 0)
			zombie(c, o);
		return 0;
	case CWG_OBJ_VIEWPORTER:
		if (m.opcode == 0) {
			zombie(c, o);
		} else if (m.opcode == 1) { // get_viewport(id, surface)
			uint32_t id = cwg_msg_u32(&m), sid = cwg_msg_u32(&m);
			struct cwg_object *so = lookup(c, sid, CWG_OBJ_SURFACE);
			if (m.bad || !so)
				return 0;
			((struct cwg_surface *)so->data)->has_viewport = true;
			if (track(c, id, CWG_OBJ_VIEWPORT, (void *)(uintptr_t)sid) < 0 && c->dead)
				return -1;
		}
		return 0;
	case CWG_OBJ_VIEWPORT:
		if (m.opcode == 0) {
			struct cwg_object *so = lookup(c, (uint32_t)(uintptr_t)o->data, CWG_OBJ_SURFACE);
			if (so)
				((struct cwg_surface *)so->data)->has_viewport = false;
			zombie(c, o);
		}
		return 0;
	case CWG_OBJ_SURFACE: {
		struct cwg_surface *s = o->data;
		switch (m.opcode) {
		case 0: // destroy
			zombie(c, o);
			break;
		case 1: { // attach(buffer, x, y)
			uint32_t id = cwg_msg_u32(&m);
			if (!m.bad) {
				s->pending_buffer = id;
				s->attached = true;
			}
			break;
		}
		case 2: case 9: { // damage, damage_buffer (x, y, w, h)
			int32_t x = cwg_msg_i32(&m), y = cwg_msg_i32(&m);
			int32_t w = cwg_msg_i32(&m), h = cwg_msg_i32(&m);
			if (!m.bad)
				cwg_damage_add(m.opcode == 2 ? &s->surface_damage : &s->buffer_damage,
					x, y, w, h);
			break;
		}
		case 6: { // commit: the pixels must be in the blob before it
			bool attached = s->attached;
			if (attached)
				s->buffer = s->pending_buffer;
			s->attached = false;
			struct cwg_buffer *b = surface_buffer(c, s->buffer);
			if (cwg_surface_commit(&c->shm, s, m.object, b, attached) < 0) {
				cwg_client_fail(c, "the memory of an shm buffer became unreadable");
				return -1;
			}
			break;
		}
		case 7: {
			int32_t t = cwg_msg_i32(&m);
			if (!m.bad)
				s->transform = t;
			break;
		}
		case 8: {
			int32_t sc = cwg_msg_i32(&m);
			if (!m.bad)
				s->scale = sc;
			break;
		}
		default:
			break;
		}
		return 0;
	}
	default:
		return 0;
	}
}

static bool fd_is_dmabuf(int fd)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	return strncmp(link, "/dmabuf:", 8) == 0;
}

/* Classifies a client fd; the fd is queued (owned) or closed on failure. */
static int add_fd(struct cwg_client *c, int fd)
{
	if (c->nfds >= CWG_MAX_PENDING_FDS) {
		close(fd);
		cwg_client_fail(c, "too many fds without their messages");
		return -1;
	}
	struct cwg_fdent *f = &c->fds[c->nfds];
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		cwg_client_fail(c, "fstat of a client fd: %s", strerror(errno));
		return -1;
	}
	bool dmabuf = fd_is_dmabuf(fd);
	if (!dmabuf && S_ISFIFO(st.st_mode)) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) != O_WRONLY) {
			close(fd);
			cwg_client_fail(c, "a pipe fd that is not a write end (not supported)");
			return -1;
		}
		f->kind = CWG_FD_READ_PIPE;
		f->resolved = true;
		f->type = XDOM_ID_TYPE_READ_PIPE;
		c->nfds++;
		return 0;
	}
	if (!dmabuf && S_ISREG(st.st_mode)) {
		f->kind = CWG_FD_SHM;
		c->nfds++;
		return 0;
	}
	if (!IMPL(c)->dmabuf_resource) {
		close(fd);
		cwg_client_fail(c, "%s fds cannot be passed over the %s transport",
			dmabuf ? "dma-buf" : "this kind of", IMPL(c)->name);
		return -1;
	}
	uint32_t res_id, handle;
	int ret = IMPL(c)->dmabuf_resource(c->ctx, fd, &res_id, &handle);
	if (ret < 0) {
		close(fd);
		cwg_client_fail(c, "an fd that is neither shm memory, a pipe nor a virtio-gpu "
			"dma-buf (%s)", strerror(-ret));
		return -1;
	}
	f->kind = CWG_FD_DMABUF;
	f->resolved = true;
	f->id = res_id;
	f->type = XDOM_ID_TYPE_VIRTGPU_BLOB;
	f->blob.res_id = res_id;
	f->blob.handle = handle;
	c->nfds++;
	return 0;
}

int cwg_client_input(struct cwg_client *c, const uint8_t *data, size_t len,
	const int *fds, unsigned nfds)
{
	for (unsigned i = 0; i < nfds; i++) {
		if (c->dead)
			close(fds[i]);
		else
			add_fd(c, fds[i]); // closes it on failure
	}
	if (c->dead)
		return -1;
	if (cwg_buf_append(&c->in, data, len) < 0) {
		cwg_client_fail(c, "input buffer overflow");
		return -1;
	}
	size_t off = 0;
	while (!c->dead) {
		uint32_t size;
		int r = cwg_wire_frame(c->in.data + off, c->in.len - off, &size);
		if (r < 0) {
			cwg_client_fail(c, "malformed Wayland message header");
			break;
		}
		if (r == 0)
			break;
		const uint8_t *msg = c->in.data + off;
		if (handle_request(c, msg, size) < 0 || forward(c, msg, size) < 0)
			break;
		off += size;
	}
	cwg_buf_consume(&c->in, off);
	if (!c->dead)
		cwg_client_flush_batch(c);
	return c->dead ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Host -> client                                                      */
/* ------------------------------------------------------------------ */

static struct cwg_stream *stream_find(struct cwg_client *c, uint32_t id)
{
	for (unsigned i = 0; i < CWG_MAX_STREAMS; i++)
		if (c->streams[i].used && c->streams[i].id == id)
			return &c->streams[i];
	return NULL;
}

static void on_delete_id(void *user, uint32_t id)
{
	struct cwg_client *c = user;
	struct cwg_object *o = cwg_objects_get(&c->objects, id);
	if (!o)
		return;
	free_object_data(c, o);
	cwg_objects_remove(&c->objects, id);
}

static int handle_receive(struct cwg_client *c, const struct cwg_xdom_host_msg *msg)
{
	for (unsigned i = 0; i < msg->num_items; i++)
		if (msg->items[i].type == XDOM_ID_TYPE_VIRTGPU_BLOB) {
			cwg_client_fail(c, "the host sent a memory fd as a virtio-gpu blob: this host "
				"needs host-visible memory (HOST3D mappable blobs), which crossway-guest "
				"does not use; use crossway's device (streamed memory)");
			return -1;
		}
	if (msg->num_items && !msg->len) {
		cwg_client_fail(c, "host RECEIVE with identifiers but no data");
		return -1;
	}
	if (cwg_wire_scan_feed(&c->scan, msg->data, msg->len, on_delete_id, c) < 0) {
		cwg_client_fail(c, "the host's Wayland stream is malformed");
		return -1;
	}
	struct cwg_outq_entry *e;
	if (outq_push(c, msg->data, msg->len, &e) < 0) {
		cwg_client_fail(c, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < msg->num_items; i++)
		e->fds[i] = -1;
	e->nfds = msg->num_items;
	for (unsigned i = 0; i < msg->num_items; i++) {
		const struct cwg_xdom_item *it = &msg->items[i];
		if (it->type == XDOM_ID_TYPE_WRITE_PIPE) {
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0) {
				cwg_client_fail(c, "pipe: %s", strerror(errno));
				return -1;
			}
			fcntl(p[0], F_SETFL, O_NONBLOCK);
			if (pipe_find(c, CWG_PIPE_WRITE, it->id) || pipe_add(c, CWG_PIPE_WRITE, it->id, p[0]) < 0) {
				close(p[0]);
				close(p[1]);
				cwg_client_fail(c, "too many pipes, or a reused write pipe id");
				return -1;
			}
			e->fds[i] = p[1];
		} else { // XDOM_ID_TYPE_STREAMED_MEMORY
			if (stream_find(c, it->id)) {
				cwg_client_fail(c, "host reused streamed memory id 0x%x", it->id);
				return -1;
			}
			if (it->size > CWG_MAX_STREAM_SIZE ||
					c->stream_bytes + it->size > CWG_MAX_STREAM_BYTES) {
				cwg_client_fail(c, "streamed memory item of %u bytes over the limit", it->size);
				return -1;
			}
			struct cwg_stream *s = NULL;
			for (unsigned k = 0; k < CWG_MAX_STREAMS && !s; k++)
				if (!c->streams[k].used)
					s = &c->streams[k];
			if (!s) {
				cwg_client_fail(c, "too many streamed memory items");
				return -1;
			}
			int fd = memfd_create("crossway-guest-stream", MFD_CLOEXEC | MFD_ALLOW_SEALING);
			if (fd < 0 || ftruncate(fd, it->size) < 0) {
				if (fd >= 0)
					close(fd);
				cwg_client_fail(c, "memfd: %s", strerror(errno));
				return -1;
			}
			e->fds[i] = fd;
			memset(s, 0, sizeof(*s));
			s->used = true;
			s->id = it->id;
			s->fd = fd;
			s->size = it->size;
			s->entry = e;
			e->pending_streams++;
			c->stream_bytes += it->size;
		}
	}
	return 0;
}

static void read_pipe_drain(struct cwg_client *c, struct cwg_pipe *p)
{
	while (p->fd >= 0 && p->pending.len > 0) {
		ssize_t n = write(p->fd, p->pending.data, p->pending.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { // the reader went away: drop the rest
			close(p->fd);
			p->fd = -1;
			p->pending.len = 0;
			break;
		}
		cwg_buf_consume(&p->pending, (size_t)n);
	}
	if (p->hung_up && p->pending.len == 0)
		pipe_close(p);
}

static int handle_read(struct cwg_client *c, const struct cwg_xdom_host_msg *msg)
{
	struct cwg_stream *s = stream_find(c, msg->id);
	if (s) {
		if (msg->len > s->size - s->written) {
			cwg_client_fail(c, "streamed memory 0x%x overflows its size", msg->id);
			return -1;
		}
		for (size_t off = 0; off < msg->len; ) {
			ssize_t n = pwrite(s->fd, msg->data + off, msg->len - off, (off_t)(s->written + off));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				cwg_client_fail(c, "writing streamed memory: %s", strerror(errno));
				return -1;
			}
			off += (size_t)n;
		}
		s->written += (uint32_t)msg->len;
		if (!msg->hang_up)
			return 0;
		if (s->written != s->size) {
			cwg_client_fail(c, "streamed memory 0x%x ended after %u of %u bytes",
				msg->id, s->written, s->size);
			return -1;
		}
		if (fcntl(s->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
			cwg_log(CWG_INFO, "sealing streamed memory: %s", strerror(errno));
		s->entry->pending_streams--;
		c->stream_bytes -= s->size;
		memset(s, 0, sizeof(*s));
		return 0;
	}
	struct cwg_pipe *p = pipe_find(c, CWG_PIPE_READ, msg->id);
	if (!p || p->hung_up) {
		cwg_client_fail(c, "host READ for unknown identifier 0x%x", msg->id);
		return -1;
	}
	if (p->fd >= 0 && msg->len) {
		if (cwg_buf_append(&p->pending, msg->data, msg->len) < 0) {
			cwg_client_fail(c, "pipe buffer overflow");
			return -1;
		}
	}
	p->hung_up = msg->hang_up;
	read_pipe_drain(c, p);
	return 0;
}

int cwg_client_host_message(struct cwg_client *c, const uint8_t *ring, size_t size)
{
	struct cwg_xdom_host_msg msg;
	const char *why = NULL;
	if (cwg_xdom_parse(ring, size, &msg, &why) < 0) {
		cwg_client_fail(c, "broken message from the host: %s", why);
		return -1;
	}
	if (msg.cmd == XDOM_CMD_RECEIVE)
		return handle_receive(c, &msg);
	return handle_read(c, &msg);
}

static bool outq_head_deliverable(const struct cwg_client *c)
{
	return c->out_head && c->out_head->pending_streams == 0;
}

void cwg_client_maybe_poll(struct cwg_client *c)
{
	if (c->dead || c->poll_outstanding)
		return;
	if (c->out_bytes > CWG_OUTQ_HARD) {
		cwg_client_fail(c, "more than %u bytes queued for the client", CWG_OUTQ_HARD);
		return;
	}
	/* Back-pressure: a client (or a pipe reader) that does not read. */
	if (c->out_bytes > CWG_OUTQ_SOFT && outq_head_deliverable(c))
		return;
	for (unsigned i = 0; i < CWG_MAX_PIPES; i++)
		if (c->pipes[i].used && c->pipes[i].kind == CWG_PIPE_READ &&
				c->pipes[i].pending.len > CWG_PIPE_BUFFER - XDOM_MAX_READ_DATA)
			return;
	const struct cwg_blob *ring = &c->rings[1];
	size_t n = cwg_xdom_poll(c->cmd);
	if (submit(c, c->cmd, n, XDOM_CHANNEL_RING, &ring, 1) == 0)
		c->poll_outstanding = true;
}

int cwg_client_events(struct cwg_client *c)
{
	int n = IMPL(c)->take_events(c->ctx);
	if (n < 0) {
		cwg_client_fail(c, "reading fence events: %s", strerror(-n));
		return -1;
	}
	if (n > 0 && c->poll_outstanding && !c->dead) {
		c->poll_outstanding = false;
		memcpy(c->ring_copy, c->rings[1].map, XDOM_RING_SIZE);
		cwg_client_host_message(c, c->ring_copy, XDOM_RING_SIZE);
	}
	cwg_client_maybe_poll(c);
	return c->dead ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Sockets and pipes                                                   */
/* ------------------------------------------------------------------ */

int cwg_client_read_socket(struct cwg_client *c)
{
	uint8_t buf[16384];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} ctl;
	for (int round = 0; round < 16 && !c->dead; round++) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { 0 };
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		ssize_t n = recvmsg(c->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		int fds[64];
		unsigned nfds = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k && nfds < 64; j++)
				memcpy(&fds[nfds++], CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			for (unsigned j = 0; j < nfds; j++)
				close(fds[j]);
			cwg_client_fail(c, "too many fds in one message");
			return -1;
		}
		if (n <= 0) {
			for (unsigned j = 0; j < nfds; j++)
				close(fds[j]);
			if (n < 0)
				cwg_log(CWG_INFO, "client read: %s", strerror(errno));
			c->dead = true; // gone: nothing to tell it
			return -1;
		}
		if (cwg_client_input(c, buf, (size_t)n, fds, nfds) < 0)
			return -1;
	}
	return 0;
}

bool cwg_client_wants_write(const struct cwg_client *c)
{
	return outq_head_deliverable(c);
}

int cwg_client_write_socket(struct cwg_client *c)
{
	while (outq_head_deliverable(c)) {
		struct cwg_outq_entry *e = c->out_head;
		struct iovec iov = { e->data + e->off, e->len - e->off };
		struct msghdr mh = { 0 };
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * XDOM_MAX_IDENTIFIERS)];
		} ctl;
		if (!e->fds_sent && e->nfds) {
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * e->nfds);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * e->nfds);
			memcpy(CMSG_DATA(cm), e->fds, sizeof(int) * e->nfds);
		}
		ssize_t n = e->len ? sendmsg(c->sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0) {
			cwg_log(CWG_INFO, "client write: %s", strerror(errno));
			c->dead = true;
			return -1;
		}
		if (!e->fds_sent) {
			for (unsigned i = 0; i < e->nfds; i++)
				close(e->fds[i]);
			e->fds_sent = true;
		}
		e->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (e->off == e->len) {
			c->out_head = e->next;
			if (!c->out_head)
				c->out_tail = NULL;
			outq_free_entry(e);
		}
	}
	cwg_client_maybe_poll(c);
	return c->dead ? -1 : 0;
}

short cwg_client_pipe_events(const struct cwg_client *c, unsigned i)
{
	const struct cwg_pipe *p = &c->pipes[i];
	if (!p->used || p->fd < 0)
		return 0;
	if (p->kind == CWG_PIPE_WRITE)
		return POLLIN;
	return p->pending.len ? POLLOUT : 0;
}

void cwg_client_pipe_ready(struct cwg_client *c, unsigned i, short revents)
{
	struct cwg_pipe *p = &c->pipes[i];
	if (!p->used || c->dead)
		return;
	if (p->kind == CWG_PIPE_READ) {
		read_pipe_drain(c, p);
		cwg_client_maybe_poll(c);
		return;
	}
	uint8_t buf[XDOM_MAX_READ_DATA];
	ssize_t n = read(p->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	size_t len;
	if (n > 0)
		len = cwg_xdom_write(c->cmd, p->id, buf, (size_t)n, 0);
	else
		len = cwg_xdom_write(c->cmd, p->id, NULL, 0, 1);
	submit(c, c->cmd, len, -1, NULL, 0);
	if (n <= 0)
		pipe_close(p);
}
