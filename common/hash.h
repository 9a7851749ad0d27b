/* FNV-1a over bytes: the hash of the small in-memory tables (client ids,
 * source addresses). Not for anything an attacker could flood unbounded:
 * each table using it is capped. */
#ifndef WW_COMMON_HASH_H
#define WW_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t hash_fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = UINT64_C(14695981039346656037);
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(1099511628211);
	return h;
}

#endif
