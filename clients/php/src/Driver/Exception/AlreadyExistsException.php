<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** An object of that name exists already (HTTP 409, ALREADY_EXISTS): not retryable. */
class AlreadyExistsException extends DriverException
{
}
