/* The GCS's directory identity file (dir_config_load) and copies of it for the threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

int
dir_config_load(struct dir_config *c, const char *path, char *err, size_t errlen)
{
	struct config cf;
	const char *keys[] = { "uri", "binddn", "password", "base", "ca", "cert", "key" };
	char **dst[] = { &c->uri, &c->bind_dn, &c->password, &c->base, &c->ca, &c->cert, &c->key };
	const char *missing = NULL;

	memset(c, 0, sizeof *c);
	if (config_load(&cf, path, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < GCA_NITEMS(keys); i++) {
		const char *v = config_get(&cf, keys[i]);
		if (v != NULL)
			*dst[i] = xstrdup(v);
	}
	if (config_get_bool(&cf, "starttls", false, &c->starttls, err, errlen) != 0)
		goto fail;
	if ((c->cert == NULL) != (c->key == NULL)) {
		snprintf(err, errlen, "%s: \"cert\" and \"key\" go together", path);
		goto fail;
	}
	if (c->uri == NULL)
		missing = "uri";
	else if (c->bind_dn == NULL)
		missing = "binddn";
	else if (c->base == NULL)
		missing = "base";
	else if (c->password == NULL && (c->cert == NULL || c->key == NULL))
		missing = "password";	/* a certificate bind needs none */
	if (missing != NULL) {
		snprintf(err, errlen, "%s: no \"%s\" line", path, missing);
		goto fail;
	}
	/* A client certificate or a password sent in the clear is refused: say so at start. */
	if ((c->cert != NULL || c->starttls) && c->ca == NULL) {
		snprintf(err, errlen, "%s: TLS to the directory needs a \"ca\" line", path);
		goto fail;
	}
	config_free(&cf);
	return 0;
fail:
	config_free(&cf);
	dir_config_free(c);
	return -1;
}

static char *
dir_config_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

int
dir_config_copy(struct dir_config *dst, const struct dir_config *src)
{
	*dst = *src;
	dst->uri = dir_config_dup(src->uri);
	dst->bind_dn = dir_config_dup(src->bind_dn);
	dst->password = dir_config_dup(src->password);
	dst->base = dir_config_dup(src->base);
	dst->ca = dir_config_dup(src->ca);
	dst->cert = dir_config_dup(src->cert);
	dst->key = dir_config_dup(src->key);
	return 0;
}

void
dir_config_free(struct dir_config *c)
{
	free(c->uri);
	free(c->bind_dn);
	free(c->password);
	free(c->base);
	free(c->ca);
	free(c->cert);
	free(c->key);
	memset(c, 0, sizeof *c);
}
