<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use InvalidArgumentException;
use Keboola\StorageDriver\Command\Table\ImportExportShared\DataType;

/**
 * What a storage backend can do, in the terms Connection decides by (instead of a switch over
 * backend names in every place that cares). Immutable. fromServiceJson() reads the "capabilities"
 * object of duckstore's GET /backends, so the answer is the service's, never a copy kept here;
 * capability flags the service adds later are kept and answered by supports().
 */
final class BackendCapabilities
{
    public const DRIVER_BASED = 'driver';
    public const WORKSPACES = 'workspaces';
    public const SHARING = 'sharing';
    public const BRANCHES = 'branches';
    public const TIME_TRAVEL = 'time_travel';
    public const CASE_SENSITIVE = 'case_sensitive';
    public const TYPED_COLUMNS = 'typed_columns';
    public const IMPORT = 'import';
    public const EXPORT = 'export';
    public const PROFILE = 'profile';
    public const SCHEMA_CHANGES = 'schema_changes';


    /**
     * @param array<string, bool> $flags every boolean capability, by the service's name
     * @param string[] $fileStorages file storage providers the backend's import/export reads and writes
     * @param string[] $importFormats
     * @param string[] $exportFormats
     * @param string[] $unsupportedFilterOperators e.g. "gt", as the service names them
     * @param string[] $unsupportedFilterTypes Keboola filter data types the backend cannot filter by
     */
    public function __construct(
        private readonly array $flags,
        public readonly array $fileStorages,
        public readonly array $importFormats,
        public readonly array $exportFormats,
        public readonly array $unsupportedFilterOperators,
        public readonly array $unsupportedFilterTypes,
        public readonly ?int $maxNameLength,
    ) {
        foreach ($flags as $name => $value) {
            if (!is_string($name) || !is_bool($value)) {
                throw new InvalidArgumentException(sprintf('capability flag "%s" must be a boolean', $name));
            }
        }
    }

    /**
     * @param array<string, mixed> $caps the "capabilities" object of one GET /backends item
     * @param string[] $fileStorages the providers the service's driver accepts for files
     */
    public static function fromServiceJson(array $caps, array $fileStorages): self
    {
        $flags = [];
        foreach ($caps as $name => $value) {
            if (is_bool($value)) {
                $flags[(string) $name] = $value;
            }
        }
        foreach ([self::DRIVER_BASED, self::CASE_SENSITIVE] as $required) {
            if (!array_key_exists($required, $flags)) {
                throw new InvalidArgumentException(sprintf('GET /backends: capability "%s" is missing or not a boolean', $required));
            }
        }
        $list = static function (string $name) use ($caps): array {
            $v = $caps[$name] ?? [];
            if (!is_array($v) || array_filter($v, static fn ($x): bool => !is_string($x)) !== []) {
                throw new InvalidArgumentException(sprintf('GET /backends: capability "%s" is not a list of strings', $name));
            }
            return array_values($v);
        };
        // Data types in filters: the service says yes or no for all typed comparisons at once.
        $typedFilters = ($caps['filter_data_types'] ?? true) === true;
        $unsupportedTypes = $typedFilters ? [] : array_values(array_diff(self::filterDataTypes(), ['STRING']));
        $max = $caps['max_name_length'] ?? null;
        if ($max !== null && (!is_int($max) || $max < 1)) {
            throw new InvalidArgumentException('GET /backends: capability "max_name_length" is not a positive integer');
        }
        // Either spelling of case sensitivity makes a backend case sensitive.
        $flags[self::CASE_SENSITIVE] = $flags[self::CASE_SENSITIVE] || ($flags['case_sensitive_names'] ?? false);
        return new self(
            $flags,
            array_values($fileStorages),
            $list('import_formats'),
            $list('export_formats'),
            $list('unsupported_filter_operators'),
            $unsupportedTypes,
            $max,
        );
    }

    /** @return string[] Keboola's filter data types: the values of the generated ImportExportShared\DataType enum */
    public static function filterDataTypes(): array
    {
        return array_keys((new \ReflectionClass(DataType::class))->getConstants());
    }

    /** Whether the backend has the named capability (unknown names: false). */
    public function supports(string $capability): bool
    {
        return $this->flags[$capability] ?? false;
    }

    public function isDriverBased(): bool
    {
        return $this->supports(self::DRIVER_BASED);
    }

    public function supportsWorkspaces(): bool
    {
        return $this->supports(self::WORKSPACES);
    }

    public function supportsSharing(): bool
    {
        return $this->supports(self::SHARING);
    }

    public function supportsBranches(): bool
    {
        return $this->supports(self::BRANCHES);
    }

    public function supportsTimeTravel(): bool
    {
        return $this->supports(self::TIME_TRAVEL);
    }

    public function isCaseSensitive(): bool
    {
        return $this->supports(self::CASE_SENSITIVE);
    }

    public function supportsFileStorage(string $provider): bool
    {
        return in_array(strtoupper($provider), array_map('strtoupper', $this->fileStorages), true);
    }

    public function isFilterTypeSupported(string $dataType): bool
    {
        return !in_array(strtoupper($dataType), $this->unsupportedFilterTypes, true);
    }

    public function isFilterOperatorSupported(string $operator): bool
    {
        return !in_array(strtolower($operator), array_map('strtolower', $this->unsupportedFilterOperators), true);
    }

    /** @return array<string, bool> */
    public function flags(): array
    {
        return $this->flags;
    }
}
