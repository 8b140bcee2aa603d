<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

/**
 * The settings Connection's table code applies before it sends a command to a backend: whether
 * names are case sensitive (two tables "Orders" and "orders" may coexist only when true), which
 * Keboola filter data types and operators the backend cannot filter with, and the longest name.
 * Made from the backend's capabilities, so it follows what the service reports.
 */
final class DriverConfig
{
    /**
     * @param string[] $unsupportedFilterTypes
     * @param string[] $unsupportedFilterOperators
     */
    public function __construct(
        public readonly bool $caseSensitive,
        public readonly array $unsupportedFilterTypes,
        public readonly array $unsupportedFilterOperators,
        public readonly ?int $maxNameLength,
    ) {
    }

    public static function fromCapabilities(BackendCapabilities $caps): self
    {
        return new self(
            $caps->isCaseSensitive(),
            $caps->unsupportedFilterTypes,
            $caps->unsupportedFilterOperators,
            $caps->maxNameLength,
        );
    }

    /** Whether two names denote the same object on this backend. */
    public function sameName(string $a, string $b): bool
    {
        return $this->caseSensitive ? $a === $b : strcasecmp($a, $b) === 0;
    }

    public function isFilterTypeSupported(string $dataType): bool
    {
        return !in_array(strtoupper($dataType), $this->unsupportedFilterTypes, true);
    }
}
