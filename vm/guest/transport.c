#include <errno.h>
#include <string.h>

#include "cwg.h"
#include "transport.h"

struct cwg_transport *cwg_transport_open(const char *spec)
{
	if (strcmp(spec, "drm") == 0)
		return cwg_transport_drm_open("/dev/dri/renderD128");
	if (strncmp(spec, "drm:", 4) == 0 && spec[4])
		return cwg_transport_drm_open(spec + 4);
	if (strncmp(spec, "vhost-user:", 11) == 0 && spec[11]) {
#ifdef CWG_HAVE_VHOST_USER
		return cwg_transport_vhost_user_open(spec + 11);
#else
		cwg_log(CWG_ERROR, "this build has no vhost-user transport");
		errno = ENOTSUP;
		return NULL;
#endif
	}
	cwg_log(CWG_ERROR, "unknown transport '%s' (drm[:PATH] or vhost-user:SOCKET)", spec);
	errno = EINVAL;
	return NULL;
}
