/*
 * files.c - REST routes of Storage Files.
 */
#include "rest/rest.h"

const ds_rest_route_t ds_rest_file_routes[] = {{.method = NULL}};
const size_t ds_rest_n_file_routes = 0;
