<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver\Exception;

use Keboola\StorageDriver\Command\Common\LogMessage;
use RuntimeException;
use Throwable;

/**
 * A driver command that failed. getCode() is Keboola's numeric error code (the ERR_* constants,
 * as php-storage-driver-common numbers them); isRetryable() says whether sending the same command
 * again may succeed (the service was busy, unavailable or slow) or is pointless (bad input, a
 * missing object, no permission).
 */
class DriverException extends RuntimeException
{
    public const ERR_UNKNOWN = 0;
    public const ERR_COMMAND_NOT_SUPPORTED = 900;
    public const ERR_TIMEOUT = 1000;
    public const ERR_CONNECTION = 1001;
    public const ERR_AUTHENTICATION = 1002;
    public const ERR_NOT_FOUND = 2000;
    public const ERR_DATABASE_NOT_FOUND = 2002;
    public const ERR_SCHEMA_NOT_FOUND = 2003;
    public const ERR_TABLE_NOT_FOUND = 2004;
    public const ERR_COLUMN_NOT_FOUND = 2005;
    public const ERR_OBJECT_ALREADY_EXISTS = 2006;
    public const ERR_RESOURCE_FULL = 2006;
    public const ERR_PERMISSION_DENIED = 2007;
    public const ERR_VALIDATION = 3000;
    public const ERR_FILE_NOT_FOUND = 4201;

    /**
     * @param LogMessage[] $logMessages the messages of the service's answer (the last one is the error)
     * @param array<string, mixed> $context details the service sent (status, field, ...)
     */
    public function __construct(
        string $message,
        int $keboolaCode,
        private readonly bool $retryable,
        private readonly ?int $httpStatus = null,
        private readonly ?int $grpcStatus = null,
        private readonly array $context = [],
        private readonly array $logMessages = [],
        private int $attempts = 1,
        ?Throwable $previous = null,
    ) {
        parent::__construct($message, $keboolaCode, $previous);
    }

    /** Keboola's error code (the same as getCode()). */
    public function getKeboolaCode(): int
    {
        return $this->getCode();
    }

    public function isRetryable(): bool
    {
        return $this->retryable;
    }

    /** The bridge's HTTP status, or null when no answer came (connection refused, timeout). */
    public function getHttpStatus(): ?int
    {
        return $this->httpStatus;
    }

    /** The gRPC status code the service reported (grpc-status), when it sent one. */
    public function getGrpcStatus(): ?int
    {
        return $this->grpcStatus;
    }

    /** duckstore's status name ("not_found", "invalid_argument", ...), when the service sent one. */
    public function getStatus(): ?string
    {
        $status = $this->context['status'] ?? null;
        return is_string($status) ? $status : null;
    }

    /** The request field at fault ("command.tableName", ...), when the service named one. */
    public function getField(): ?string
    {
        $field = $this->context['field'] ?? null;
        return is_string($field) && $field !== '' ? $field : null;
    }

    /** @return array<string, mixed> */
    public function getContext(): array
    {
        return $this->context;
    }

    /** @return LogMessage[] */
    public function getLogMessages(): array
    {
        return $this->logMessages;
    }

    /** How many times the command was sent before this error was given up on. */
    public function getAttempts(): int
    {
        return $this->attempts;
    }

    /** @internal the client records how many sends it took before giving up */
    public function setAttempts(int $attempts): void
    {
        $this->attempts = $attempts;
    }
}
