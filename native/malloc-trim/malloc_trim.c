/*
 * malloc_trim(0) for the runtime (runtime/system/malloc-trim.ts). glibc's allocator gives memory back to
 * the system only from the top of its heaps; what is freed between live allocations stays resident, and a
 * long-running process that churns buffers (sockets, serial reads, request bodies) slowly grows by those
 * holes. malloc_trim(0) returns the whole free pages of every arena (madvise). Node has no call for it.
 * Elsewhere (macOS, musl) the allocator has no such call: `supported` is false and trim() returns false.
 */
#include <stdlib.h> /* first: defines __GLIBC__ on glibc */
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#define HAVE_MALLOC_TRIM 1
#else
#define HAVE_MALLOC_TRIM 0
#endif

/* trim(): true when glibc gave memory back to the system. */
static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if HAVE_MALLOC_TRIM
  int released = malloc_trim(0);
#else
  int released = 0;
#endif
  if (napi_get_boolean(env, released == 1, &result) != napi_ok) return NULL;
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value trim, supported;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &trim) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", trim) != napi_ok) return NULL;
  if (napi_get_boolean(env, HAVE_MALLOC_TRIM, &supported) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "supported", supported) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
