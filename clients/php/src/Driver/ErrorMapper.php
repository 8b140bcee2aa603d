<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use Duckstore\Connection\Driver\Exception\AlreadyExistsException;
use Duckstore\Connection\Driver\Exception\AuthenticationException;
use Duckstore\Connection\Driver\Exception\CommandNotSupportedException;
use Duckstore\Connection\Driver\Exception\ConflictException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\InternalErrorException;
use Duckstore\Connection\Driver\Exception\NotFoundException;
use Duckstore\Connection\Driver\Exception\PermissionDeniedException;
use Duckstore\Connection\Driver\Exception\ServiceUnavailableException;
use Duckstore\Connection\Driver\Exception\TimeoutException;
use Duckstore\Connection\Driver\Exception\TooManyRequestsException;
use Duckstore\Connection\Driver\Exception\ValidationException;
use Duckstore\Connection\Driver\Exception\ProtocolException;
use Keboola\StorageDriver\Command\Common\DriverResponse;
use Keboola\StorageDriver\Command\Common\LogMessage;

/**
 * Turns a failed bridge answer into the exception Keboola Connection expects. The kind comes from
 * the grpc-status header the bridge sends (the same status a gRPC client would get), else from the
 * HTTP status (an answer from a proxy in front of the service has no grpc-status); Keboola's code
 * from the keboola-code header, else the context of the answer's last Error message, else the
 * kind's default; the text from that Error message, else grpc-message, else the HTTP status.
 */
final class ErrorMapper
{
    /** gRPC status => [exception class, default Keboola code, retryable] */
    private const BY_GRPC = [
        1 => [TimeoutException::class, DriverException::ERR_TIMEOUT, true],              // CANCELLED
        3 => [ValidationException::class, DriverException::ERR_VALIDATION, false],       // INVALID_ARGUMENT
        4 => [TimeoutException::class, DriverException::ERR_TIMEOUT, true],              // DEADLINE_EXCEEDED
        5 => [NotFoundException::class, DriverException::ERR_NOT_FOUND, false],          // NOT_FOUND
        6 => [AlreadyExistsException::class, DriverException::ERR_OBJECT_ALREADY_EXISTS, false],
        7 => [PermissionDeniedException::class, DriverException::ERR_PERMISSION_DENIED, false],
        8 => [TooManyRequestsException::class, DriverException::ERR_RESOURCE_FULL, true], // RESOURCE_EXHAUSTED
        9 => [ConflictException::class, DriverException::ERR_VALIDATION, false],         // FAILED_PRECONDITION
        12 => [CommandNotSupportedException::class, DriverException::ERR_COMMAND_NOT_SUPPORTED, false],
        13 => [InternalErrorException::class, DriverException::ERR_UNKNOWN, false],      // INTERNAL
        14 => [ServiceUnavailableException::class, DriverException::ERR_CONNECTION, true], // UNAVAILABLE
        16 => [AuthenticationException::class, DriverException::ERR_AUTHENTICATION, false],
    ];

    /** HTTP status => the gRPC status it stands for when no grpc-status header came. */
    private const GRPC_OF_HTTP = [
        400 => 3, 401 => 16, 403 => 7, 404 => 5, 408 => 4, 409 => 6, 413 => 3, 429 => 8,
        500 => 13, 501 => 12, 502 => 14, 503 => 14, 504 => 4,
    ];

    public static function map(HttpResponse $http, ?DriverResponse $body, int $attempts): DriverException
    {
        $grpc = $http->header('grpc-status');
        $grpcStatus = $grpc !== null && ctype_digit($grpc) ? (int) $grpc : null;
        $kind = $grpcStatus ?? (self::GRPC_OF_HTTP[$http->status] ?? ($http->status >= 500 ? 13 : 3));
        [$class, $code, $retryable] = self::BY_GRPC[$kind]
            ?? [InternalErrorException::class, DriverException::ERR_UNKNOWN, false];

        $messages = $body !== null ? iterator_to_array($body->getMessages()) : [];
        $error = null;
        foreach ($messages as $m) {
            if ($m->getLevel() <= LogMessage\Level::Error) {
                $error = $m;
            }
        }
        $context = $error !== null ? LogForwarder::contextOf($error) : [];

        // REST answers (GET /backends) carry {"error": {"code", "message", "keboola_code", ...}}.
        $json = null;
        if ($body === null && str_starts_with(strtolower($http->header('content-type') ?? ''), 'application/json')) {
            $decoded = json_decode($http->body, true);
            $json = is_array($decoded) && is_array($decoded['error'] ?? null) ? $decoded['error'] : null;
            if ($json !== null) {
                $context = ['status' => $json['code'] ?? null, 'field' => $json['field'] ?? null, 'code' => $json['keboola_code'] ?? null];
            }
        }

        $keboola = $http->header('keboola-code');
        if ($keboola !== null && ctype_digit($keboola)) {
            $code = (int) $keboola;
        } elseif (isset($context['code']) && is_int($context['code'])) {
            $code = $context['code'];
        }

        if ($error !== null && $error->getMessage() !== '') {
            $text = $error->getMessage();
        } elseif ($json !== null && is_string($json['message'] ?? null) && $json['message'] !== '') {
            $text = $json['message'];
        } elseif (($header = $http->header('grpc-message')) !== null && $header !== '') {
            $text = self::percentDecode($header);
        } else {
            $snippet = trim(preg_replace('/\s+/', ' ', substr($http->body, 0, 200)) ?? '');
            $text = sprintf('HTTP %d%s', $http->status, $snippet !== '' && preg_match('//u', $snippet) === 1 ? ': ' . $snippet : '');
        }
        // The service writes "[2004] table ... not found"; the code travels as getCode().
        $text = preg_replace('/^\[\d+\]\s*/', '', $text) ?? $text;

        return new $class(
            sprintf('duckstore: %s', $text),
            $code,
            $retryable,
            $http->status,
            $grpcStatus,
            $context,
            $messages,
            $attempts,
        );
    }

    /** A response the client could not read: never worth sending again. */
    public static function protocol(string $what, HttpResponse $http, int $attempts): ProtocolException
    {
        return new ProtocolException(
            sprintf('duckstore: %s (HTTP %d, content type "%s")', $what, $http->status, $http->header('content-type') ?? ''),
            DriverException::ERR_UNKNOWN,
            false,
            $http->status,
            null,
            [],
            [],
            $attempts,
        );
    }

    /** grpc-message is percent-encoded by gRPC servers; plain text passes unchanged. */
    private static function percentDecode(string $v): string
    {
        return preg_replace_callback('/%([0-9A-Fa-f]{2})/', static fn (array $m): string => chr((int) hexdec($m[1])), $v) ?? $v;
    }
}
