<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

/** One HTTP answer: status, headers (names in lower case; the last value of a repeated header) and body. */
final class HttpResponse
{
    /** @param array<string, string> $headers */
    public function __construct(
        public readonly int $status,
        public readonly array $headers,
        public readonly string $body,
        public readonly int $newConnections,
    ) {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }
}
