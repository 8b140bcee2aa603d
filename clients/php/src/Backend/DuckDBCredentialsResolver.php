<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use InvalidArgumentException;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;

/**
 * duckstore's credentials: GenericBackendCredentials with host = the project id and principal =
 * the project's key. Admin commands carry no key in the credentials: the driver client sends the
 * configured service key instead (so the admin key never sits in a message Connection may log).
 */
final class DuckDBCredentialsResolver implements CredentialsResolverInterface
{
    public function forProject(string $projectId, string $projectKey): GenericBackendCredentials
    {
        if (!preg_match('/^[A-Za-z0-9_-]{1,64}$/', $projectId)) {
            throw new InvalidArgumentException(sprintf('project id "%s": use 1-64 characters of A-Z a-z 0-9 _ -', $projectId));
        }
        if ($projectKey === '' || preg_match('/[\x00-\x20\x7f]/', $projectKey)) {
            throw new InvalidArgumentException(sprintf('project "%s": the project key is empty or contains spaces or control characters', $projectId));
        }
        return (new GenericBackendCredentials())->setHost($projectId)->setPrincipal($projectKey);
    }

    public function forAdmin(): GenericBackendCredentials
    {
        return new GenericBackendCredentials();
    }
}
