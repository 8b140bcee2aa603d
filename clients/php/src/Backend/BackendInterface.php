<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use Duckstore\Connection\Driver\ClientInterface;

/** One storage backend as Connection sees it: its name, what it can do, and how to drive it. */
interface BackendInterface
{
    /** The name Connection stores on a project ("duckdb"). */
    public function getName(): string;

    public function getCapabilities(): BackendCapabilities;

    public function getDriverClient(): ClientInterface;

    public function getCredentialsResolver(): CredentialsResolverInterface;

    public function getDriverConfig(): DriverConfig;
}
