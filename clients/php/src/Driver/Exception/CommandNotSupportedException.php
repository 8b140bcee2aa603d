<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The service or the project's backend does not implement the command (HTTP 501, UNIMPLEMENTED): not retryable. */
class CommandNotSupportedException extends DriverException
{
}
