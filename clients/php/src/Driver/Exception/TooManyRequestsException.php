<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** Too many commands wait for the same object or the same caller (HTTP 429, RESOURCE_EXHAUSTED): retryable. */
class TooManyRequestsException extends DriverException
{
}
