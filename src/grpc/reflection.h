/*
 * reflection.h - gRPC server reflection (grpc.reflection.v1 and v1alpha).
 *
 * DESIGN
 * The build embeds the FileDescriptorSet of every file the server serves
 * (protoc --include_imports over the proto/ files and the health and reflection
 * files; see mk/proto.mk). ds_reflection_init indexes it once: each file's
 * serialized FileDescriptorProto (the exact bytes protoc wrote), its
 * dependencies, and every symbol it declares (messages and enums, nested ones
 * too, services and methods). Answers are built from that index only, so
 * what reflection describes is always what the binary was built from.
 * v1 and v1alpha messages are wire-identical: one decoder serves both.
 *
 * Thread-safety: init and free from the thread that starts and stops the
 * server; ds_reflection_answer from any number of threads in between.
 */
#ifndef DS_GRPC_REFLECTION_H
#define DS_GRPC_REFLECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/*
 * Indexes the embedded descriptor set. services (n of them, full names) are
 * what list_services answers; each must be declared in the set, else
 * DS_INTERNAL naming it (a build that lost a file must not start).
 */
ds_status_t ds_reflection_init(const char *const *services, size_t n, ds_err_t *err);
/* Frees the index; safe without init. */
void ds_reflection_free(void);
/*
 * Answers one serialized ServerReflectionRequest with a serialized
 * ServerReflectionResponse in *out (malloc; the caller frees it). Unknown
 * names are answered with an ErrorResponse (NOT_FOUND), as the protocol asks.
 * Returns false (nothing allocated) when req does not decode or memory runs out.
 */
bool ds_reflection_answer(const uint8_t *req, size_t len, uint8_t **out, size_t *out_len);

#endif
