/*
 * routes_data.c - REST routes of table data: import, export, preview,
 * profile, delete rows, schema changes.
 */
#include "rest/rest.h"

const ds_rest_route_t ds_rest_data_routes[] = {{.method = NULL}};
const size_t ds_rest_n_data_routes = 0;
