<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The answer is not a DriverResponse the client can read, or names a response class that does not exist: not retryable. */
class ProtocolException extends DriverException
{
}
