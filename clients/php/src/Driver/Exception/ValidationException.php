<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The command or its input is invalid (HTTP 400, INVALID_ARGUMENT): not retryable. */
class ValidationException extends DriverException
{
}
