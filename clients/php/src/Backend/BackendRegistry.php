<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use InvalidArgumentException;

/** In-memory BackendRegistryInterface. Names compare case-insensitively ("DuckDB" = "duckdb"). */
final class BackendRegistry implements BackendRegistryInterface
{
    /** @var array<string, BackendInterface> */
    private array $backends = [];

    /** @param BackendInterface[] $backends */
    public function __construct(array $backends = [])
    {
        foreach ($backends as $backend) {
            $this->register($backend);
        }
    }

    public function register(BackendInterface $backend): void
    {
        $name = $backend->getName();
        if (!preg_match('/^[A-Za-z0-9_-]{1,64}$/', $name)) {
            throw new InvalidArgumentException(sprintf('backend name "%s": use 1-64 characters of A-Z a-z 0-9 _ -', $name));
        }
        if ($this->has($name)) {
            throw new InvalidArgumentException(sprintf('backend "%s" is registered already', $name));
        }
        $this->backends[strtolower($name)] = $backend;
    }

    public function has(string $name): bool
    {
        return isset($this->backends[strtolower($name)]);
    }

    public function get(string $name): BackendInterface
    {
        $backend = $this->backends[strtolower($name)] ?? null;
        if ($backend === null) {
            $known = array_map(static fn (BackendInterface $b): string => $b->getName(), $this->backends);
            throw new BackendNotRegisteredException(sprintf(
                'backend "%s" is not registered (registered: %s)',
                $name,
                $known === [] ? 'none' : implode(', ', $known),
            ));
        }
        return $backend;
    }

    public function all(): array
    {
        $out = [];
        foreach ($this->backends as $backend) {
            $out[$backend->getName()] = $backend;
        }
        return $out;
    }

    public function namesSupporting(string $capability): array
    {
        $names = [];
        foreach ($this->backends as $backend) {
            if ($backend->getCapabilities()->supports($capability)) {
                $names[] = $backend->getName();
            }
        }
        return $names;
    }
}
