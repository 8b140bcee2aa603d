<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

/** The key may not act on that project or run that command (HTTP 403, PERMISSION_DENIED): not retryable. */
class PermissionDeniedException extends DriverException
{
}
