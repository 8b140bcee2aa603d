<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The object's state forbids the command, e.g. dropping a bucket with tables without cascade (HTTP 409, FAILED_PRECONDITION): not retryable. */
class ConflictException extends DriverException
{
}
