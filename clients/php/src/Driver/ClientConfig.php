<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use InvalidArgumentException;

/**
 * Where the duckstore service is and how to talk to it. Immutable; every value is checked when the
 * object is made, so a bad setting fails at configuration time with a message naming it.
 *
 * serviceKey is the service's admin key: it authenticates commands whose credentials carry no key
 * (InitBackend, CreateProject, DropProject) and the GET /backends call of the registry.
 * Timeouts are in milliseconds. A retryable failure (503, 429, a timeout, no connection) is sent
 * again up to maxRetries times, waiting backoffMs, then twice that, ... at most maxBackoffMs
 * (or what the service's Retry-After asks for, within the same cap).
 */
final class ClientConfig
{
    public const ENV_URL = 'DUCKSTORE_DRIVER_URL';
    public const ENV_SERVICE_KEY = 'DUCKSTORE_DRIVER_SERVICE_KEY';
    public const ENV_CONNECT_TIMEOUT_MS = 'DUCKSTORE_DRIVER_CONNECT_TIMEOUT_MS';
    public const ENV_REQUEST_TIMEOUT_MS = 'DUCKSTORE_DRIVER_REQUEST_TIMEOUT_MS';
    public const ENV_KEEP_ALIVE = 'DUCKSTORE_DRIVER_KEEP_ALIVE';
    public const ENV_MAX_RETRIES = 'DUCKSTORE_DRIVER_MAX_RETRIES';
    public const ENV_BACKOFF_MS = 'DUCKSTORE_DRIVER_BACKOFF_MS';
    public const ENV_MAX_BACKOFF_MS = 'DUCKSTORE_DRIVER_MAX_BACKOFF_MS';

    public readonly string $baseUrl;

    public function __construct(
        string $baseUrl,
        public readonly string $serviceKey = '',
        public readonly int $connectTimeoutMs = 2000,
        public readonly int $requestTimeoutMs = 120000,
        public readonly bool $keepAlive = true,
        public readonly int $maxRetries = 3,
        public readonly int $backoffMs = 100,
        public readonly int $maxBackoffMs = 5000,
        public readonly bool $retryTimeouts = true,
    ) {
        $parts = parse_url($baseUrl);
        if ($parts === false || !isset($parts['scheme'], $parts['host'])
            || !in_array(strtolower($parts['scheme']), ['http', 'https'], true)) {
            throw new InvalidArgumentException(sprintf(
                'baseUrl "%s" is not an http:// or https:// URL with a host',
                $baseUrl,
            ));
        }
        if (isset($parts['query']) || isset($parts['fragment'])) {
            throw new InvalidArgumentException(sprintf('baseUrl "%s" must not have a query or fragment', $baseUrl));
        }
        $this->baseUrl = rtrim($baseUrl, '/');
        if (preg_match('/[\x00-\x20\x7f]/', $serviceKey)) {
            throw new InvalidArgumentException('serviceKey must not contain spaces or control characters');
        }
        self::requireRange('connectTimeoutMs', $connectTimeoutMs, 1, 600000);
        self::requireRange('requestTimeoutMs', $requestTimeoutMs, 1, 86400000);
        self::requireRange('maxRetries', $maxRetries, 0, 100);
        self::requireRange('backoffMs', $backoffMs, 0, 600000);
        self::requireRange('maxBackoffMs', $maxBackoffMs, $backoffMs, 600000);
    }

    /**
     * Reads the configuration from environment variables (DUCKSTORE_DRIVER_*; see the ENV_
     * constants). Only the URL is required.
     *
     * @param array<string, string>|null $env the variables to read; null = the process environment
     */
    public static function fromEnvironment(?array $env = null): self
    {
        $env ??= getenv();
        $url = $env[self::ENV_URL] ?? '';
        if ($url === '') {
            throw new InvalidArgumentException(self::ENV_URL . ' is not set (the duckstore service URL, e.g. http://127.0.0.1:8000)');
        }
        $int = static function (string $name, int $default) use ($env): int {
            $v = $env[$name] ?? '';
            if ($v === '') {
                return $default;
            }
            if (!preg_match('/^[0-9]{1,9}$/', $v)) {
                throw new InvalidArgumentException(sprintf('%s: "%s" is not a whole number', $name, $v));
            }
            return (int) $v;
        };
        $keepAlive = strtolower($env[self::ENV_KEEP_ALIVE] ?? '');
        if (!in_array($keepAlive, ['', '1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], true)) {
            throw new InvalidArgumentException(sprintf('%s: "%s" is not a boolean (1/0, true/false)', self::ENV_KEEP_ALIVE, $keepAlive));
        }
        try {
            return new self(
                $url,
                $env[self::ENV_SERVICE_KEY] ?? '',
                $int(self::ENV_CONNECT_TIMEOUT_MS, 2000),
                $int(self::ENV_REQUEST_TIMEOUT_MS, 120000),
                !in_array($keepAlive, ['0', 'false', 'no', 'off'], true),
                $int(self::ENV_MAX_RETRIES, 3),
                $int(self::ENV_BACKOFF_MS, 100),
                $int(self::ENV_MAX_BACKOFF_MS, 5000),
            );
        } catch (InvalidArgumentException $e) {
            throw new InvalidArgumentException('duckstore driver configuration: ' . $e->getMessage(), 0, $e);
        }
    }

    private static function requireRange(string $name, int $value, int $min, int $max): void
    {
        if ($value < $min || $value > $max) {
            throw new InvalidArgumentException(sprintf('%s must be between %d and %d, got %d', $name, $min, $max, $value));
        }
    }
}
