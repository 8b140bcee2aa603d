<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The project, bucket, table, column or file does not exist (HTTP 404, NOT_FOUND): not retryable. */
class NotFoundException extends DriverException
{
}
