/*
 * ds_grpc.h - the gRPC transport: Keboola's StorageDriverService/Execute.
 *
 * DESIGN
 * One unary RPC, /keboola.storageDriver.service.StorageDriverService/Execute
 * (DriverRequest -> DriverResponse), served with the gRPC C core on
 * cfg->grpc_addr. Every request goes through the same dispatcher as the HTTP
 * bridge (grpc/dispatch.h), which calls the command layer; no storage logic
 * lives here. Errors end the call with the mapped gRPC status, a message
 * "[<keboola code>] ..." and trailing metadata "keboola-code".
 */
#ifndef DS_GRPC_GRPC_H
#define DS_GRPC_GRPC_H

#include "core/config.h"
#include "core/status.h"

/*
 * Starts the gRPC server on cfg->grpc_addr ("off": does nothing). Call after
 * ds_service_start. Fails (DS_UNAVAILABLE) when the address cannot be bound.
 * Not thread-safe against ds_grpc_stop; call both from the main thread.
 */
ds_status_t ds_grpc_start(const ds_config_t *cfg, ds_err_t *err);

/*
 * Stops accepting calls, waits for the calls in flight to finish (so no
 * command runs after it returns), and frees the server. Safe to call when
 * the server was never started.
 */
void ds_grpc_stop(void);

#endif
