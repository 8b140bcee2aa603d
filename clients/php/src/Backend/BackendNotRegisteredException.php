<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use RuntimeException;

/** A backend name no registered backend has. */
class BackendNotRegisteredException extends RuntimeException
{
}
