<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The service failed in a way it did not expect (HTTP 500, INTERNAL): not retryable. */
class InternalErrorException extends DriverException
{
}
