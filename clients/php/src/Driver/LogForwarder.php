<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use Google\Protobuf\StringValue;
use InvalidArgumentException;
use Keboola\StorageDriver\Command\Common\LogMessage;
use Throwable;

/**
 * Passes a response's LogMessages to a PSR-3 logger. Any object that is a Psr\Log\LoggerInterface
 * is accepted; so is, when psr/log is not installed, an object with PSR-3's
 * log($level, $message, array $context) method. Levels map one to one (RFC 5424: Informational is
 * "info"); the context is the JSON object the service put into the message's StringValue context.
 */
final class LogForwarder
{
    private const LEVELS = [
        LogMessage\Level::Emergency => 'emergency',
        LogMessage\Level::Alert => 'alert',
        LogMessage\Level::Critical => 'critical',
        LogMessage\Level::Error => 'error',
        LogMessage\Level::Warning => 'warning',
        LogMessage\Level::Notice => 'notice',
        LogMessage\Level::Informational => 'info',
        LogMessage\Level::Debug => 'debug',
    ];

    private function __construct(private readonly object $logger)
    {
    }

    /** Checks that $logger is PSR-3 compatible; null stays null (nothing is logged). */
    public static function of(?object $logger): ?self
    {
        if ($logger === null) {
            return null;
        }
        $psr = 'Psr\\Log\\LoggerInterface';
        if (interface_exists($psr)) {
            if (!$logger instanceof $psr) {
                throw new InvalidArgumentException(sprintf('logger: %s does not implement %s', $logger::class, $psr));
            }
        } elseif (!method_exists($logger, 'log')) {
            throw new InvalidArgumentException(sprintf('logger: %s has no PSR-3 log($level, $message, $context) method', $logger::class));
        }
        return new self($logger);
    }

    public static function levelName(int $level): string
    {
        return self::LEVELS[$level] ?? 'info';
    }

    /** @param iterable<LogMessage> $messages */
    public function forward(iterable $messages): void
    {
        foreach ($messages as $m) {
            $this->logger->log(self::levelName($m->getLevel()), $m->getMessage(), self::contextOf($m));
        }
    }

    /**
     * The message's context as an array: the JSON object of a StringValue context; a context of
     * another type (or not JSON) is kept raw under "context".
     *
     * @return array<string, mixed>
     */
    public static function contextOf(LogMessage $m): array
    {
        $any = $m->getContext();
        if ($any === null || $any->getTypeUrl() === '') {
            return [];
        }
        $raw = $any->getValue();
        if (str_ends_with($any->getTypeUrl(), '/google.protobuf.StringValue')) {
            try {
                $sv = new StringValue();
                $sv->mergeFromString($raw);
                $raw = $sv->getValue();
                $decoded = json_decode($raw, true);
                if (is_array($decoded)) {
                    return $decoded;
                }
            } catch (Throwable) {
                // Not a StringValue after all: keep it raw.
            }
        }
        return ['context' => $raw];
    }
}
