/*
 * bridge.c - the HTTP bridge: POST /driver/execute.
 */
#include "rest/rest.h"

const ds_rest_route_t ds_rest_driver_routes[] = {{.method = NULL}};
const size_t ds_rest_n_driver_routes = 0;
