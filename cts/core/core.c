/* The core services this CTS knows, by the name cts.conf's core_service gives. */
#include <string.h>

#include "cts/cts.h"

static const struct core_service *core_services[] = { &core_app, &core_criu, &core_vmm };

const struct core_service *
core_find(const char *name)
{
	for (size_t i = 0; i < GCA_NITEMS(core_services); i++) {
		if (strcmp(core_services[i]->name, name) == 0)
			return core_services[i];
	}
	return NULL;
}
