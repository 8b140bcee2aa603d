<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** No complete answer within the request timeout (or DEADLINE_EXCEEDED): retryable. */
class TimeoutException extends DriverException
{
}
