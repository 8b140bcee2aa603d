<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use Google\Protobuf\Internal\Message;

/** Builds the credentials message a backend's driver expects for a project, or for admin commands. */
interface CredentialsResolverInterface
{
    /**
     * @param string $projectId the project's id on the backend (CreateProjectResponse.projectUserName)
     * @param string $projectKey the project's key (CreateProjectResponse.projectPassword)
     */
    public function forProject(string $projectId, string $projectKey): Message;

    /** Credentials for backend and project lifecycle commands (InitBackend, CreateProject, DropProject). */
    public function forAdmin(): Message;
}
