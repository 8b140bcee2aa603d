<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests\Support;

use Psr\Log\AbstractLogger;

/** A PSR-3 logger that keeps every record: [level, message, context]. */
final class RecordingLogger extends AbstractLogger
{
    /** @var array<int, array{0: string, 1: string, 2: array<string, mixed>}> */
    public array $records = [];

    public function log($level, $message, array $context = []): void
    {
        $this->records[] = [(string) $level, (string) $message, $context];
    }

    /** @return string[] messages logged at $level */
    public function messages(string $level): array
    {
        return array_values(array_map(
            static fn (array $r): string => $r[1],
            array_filter($this->records, static fn (array $r): bool => $r[0] === $level),
        ));
    }
}
