<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** No key, or a key the service does not know (HTTP 401, UNAUTHENTICATED): not retryable. */
class AuthenticationException extends DriverException
{
}
