<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

/**
 * The backends Connection knows, by name. Code that used to switch over backend names asks the
 * registry for the project's backend and then its capabilities, client, credentials or config.
 */
interface BackendRegistryInterface
{
    /** @throws \InvalidArgumentException when a backend of that name is registered already */
    public function register(BackendInterface $backend): void;

    public function has(string $name): bool;

    /** @throws BackendNotRegisteredException */
    public function get(string $name): BackendInterface;

    /** @return array<string, BackendInterface> by name, in registration order */
    public function all(): array;

    /** @return string[] names of the backends that have the capability */
    public function namesSupporting(string $capability): array;
}
