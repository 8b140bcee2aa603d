<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The service could not be reached (refused, unresolvable, connection reset): retryable. */
class ConnectionException extends DriverException
{
}
