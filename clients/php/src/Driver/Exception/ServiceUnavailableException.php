<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The service or its backend is not healthy right now (HTTP 502/503, UNAVAILABLE): retryable. */
class ServiceUnavailableException extends DriverException
{
}
