<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\TimeoutException;
use Google\Protobuf\Any;
use Google\Protobuf\Internal\DescriptorPool;
use Google\Protobuf\Internal\Message;
use InvalidArgumentException;
use Keboola\StorageDriver\Command\Common\DriverRequest;
use Keboola\StorageDriver\Command\Common\DriverResponse;
use Keboola\StorageDriver\Command\Common\LogMessage;
use Keboola\StorageDriver\Command\Common\RuntimeOptions;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;
use Throwable;

/**
 * Keboola's storage driver for duckstore: runCommand() packs credentials and command into a
 * DriverRequest, posts it to the service's HTTP bridge (POST /driver/execute, protobuf body) and
 * unpacks the DriverResponse. It is generic: any command message goes through, and the response
 * class is the one the answer's type URL names, so a command the service learns later needs no
 * change here.
 *
 * Authentication: the key of GenericBackendCredentials (secret, else principal) goes as
 * "Authorization: Bearer <key>"; credentials without a key (admin commands) use the configured
 * service key. The project a command acts on is credentials.host.
 *
 * Errors become DriverException subclasses (see ErrorMapper). Retryable ones (503, 429, timeouts,
 * no connection) are sent again with exponential backoff, up to ClientConfig::maxRetries times;
 * so a call takes at most (maxRetries + 1) * (connect + request timeout) plus the waits.
 * The LogMessages of every answer, failed ones included, go to the PSR-3 logger if one is given,
 * and each retry is logged there as a warning.
 * One instance keeps one connection alive; it is not meant to be shared between processes.
 */
final class DuckDBDriverClient implements ClientInterface
{
    public const PATH = '/driver/execute';

    private readonly HttpTransport $transport;
    private readonly ?LogForwarder $log;
    private readonly ?object $logger;
    /** @var LogMessage[] */
    private array $lastMessages = [];
    private int $lastAttempts = 0;
    private int $lastNewConnections = 0;
    /** Whether the protobuf C extension (not Debian's pure-PHP runtime) decodes messages. */
    private static ?bool $nativeProtobuf = null;

    public function __construct(private readonly ClientConfig $config, ?object $logger = null)
    {
        $this->log = LogForwarder::of($logger);
        $this->logger = $logger;
        $this->transport = new HttpTransport($config);
    }

    public function runCommand(
        Message $credentials,
        Message $command,
        array $features,
        Message $runtimeOptions,
    ): ?Message {
        foreach ($features as $i => $feature) {
            if (!is_string($feature)) {
                throw new InvalidArgumentException(sprintf('features[%s] must be a string, got %s', $i, get_debug_type($feature)));
            }
        }
        if (!$runtimeOptions instanceof RuntimeOptions) {
            throw new InvalidArgumentException(sprintf('runtimeOptions must be a %s, got %s', RuntimeOptions::class, $runtimeOptions::class));
        }

        $request = new DriverRequest();
        $packedCredentials = new Any();
        $packedCredentials->pack($credentials);
        $request->setCredentials($packedCredentials);
        $packedCommand = new Any();
        $packedCommand->pack($command);
        $request->setCommand($packedCommand);
        $request->setFeatures(array_values($features));
        $request->setRuntimeOptions($runtimeOptions);

        $headers = [
            'Content-Type' => 'application/x-protobuf',
            'Accept' => 'application/x-protobuf',
        ];
        $key = $this->keyOf($credentials);
        if ($key !== '') {
            $headers['Authorization'] = 'Bearer ' . $key;
        }
        $runId = $runtimeOptions->getRunId();
        // The service takes a request id of up to 39 letters, digits, "-" and "_" (else it makes one).
        if (preg_match('/^[A-Za-z0-9_-]{1,39}$/', $runId)) {
            $headers['X-Request-Id'] = $runId;
        }

        $response = $this->send($request->serializeToString(), $headers, $command);
        $this->log?->forward($response->getMessages());

        $packed = $response->getCommandResponse();
        if ($packed === null || $packed->getTypeUrl() === '') {
            return null;
        }
        return self::unpack($packed);
    }

    /** @return LogMessage[] the messages of the last answer (also of a failed one) */
    public function getLastMessages(): array
    {
        return $this->lastMessages;
    }

    /** How many times the last command was sent (1 = no retry). */
    public function getLastAttempts(): int
    {
        return $this->lastAttempts;
    }

    /** Connections the last call opened (0 when it reused a kept-alive one). */
    public function getLastNewConnections(): int
    {
        return $this->lastNewConnections;
    }

    /**
     * The message an Any holds, as an instance of the generated class for its type URL.
     *
     * @throws DriverException (ProtocolException) when no class for that type is loaded or the bytes do not decode
     */
    public static function unpack(Any $any): Message
    {
        self::$nativeProtobuf ??= extension_loaded('protobuf');
        $url = $any->getTypeUrl();
        $name = substr($url, (int) strrpos($url, '/') + (str_contains($url, '/') ? 1 : 0));
        if (!preg_match('/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/', $name)) {
            throw new Exception\ProtocolException(
                sprintf('duckstore: the response type URL "%s" does not name a protobuf message', $url),
                DriverException::ERR_UNKNOWN,
                false,
            );
        }
        $class = implode('\\', array_map('ucfirst', explode('.', $name)));
        if (!class_exists($class)) {
            $descriptor = DescriptorPool::getGeneratedPool()->getDescriptorByProtoName('.' . $name);
            $class = $descriptor?->getClass();
        }
        if ($class === null || $class === '' || !class_exists($class) || !is_subclass_of($class, Message::class)) {
            throw new Exception\ProtocolException(
                sprintf('duckstore: the response type "%s" has no generated PHP class', $url),
                DriverException::ERR_UNKNOWN,
                false,
            );
        }
        $bytes = $any->getValue();
        try {
            // The one large answer Connection asks for often has a direct decoder, faster than the
            // pure-PHP runtime's generic one (not than the C extension's, which then decodes it);
            // it leaves every shape it does not handle (and malformed bytes) to the runtime below.
            if ($class === PreviewTableResponse::class && !self::$nativeProtobuf
                && ($message = PreviewDecoder::decode($bytes)) !== null) {
                return $message;
            }
            if (!WireFormat::wellFormed($bytes)) {
                throw new \UnexpectedValueException('the bytes are not well-formed protobuf');
            }
            /** @var Message $message */
            $message = new $class();
            $message->mergeFromString($bytes);
        } catch (Throwable $e) {
            throw new Exception\ProtocolException(
                sprintf('duckstore: the %s in the response does not decode: %s', $name, $e->getMessage()),
                DriverException::ERR_UNKNOWN,
                false,
                null,
                null,
                [],
                [],
                1,
                $e,
            );
        }
        return $message;
    }

    private function keyOf(Message $credentials): string
    {
        if ($credentials instanceof GenericBackendCredentials) {
            $key = $credentials->getSecret() !== '' ? $credentials->getSecret() : $credentials->getPrincipal();
            if ($key !== '') {
                // It goes into a header: a line break would let it add headers of its own.
                if (preg_match('/[\x00-\x20\x7f]/', $key)) {
                    throw new InvalidArgumentException('credentials: the key (secret or principal) contains spaces or control characters');
                }
                return $key;
            }
        }
        return $this->config->serviceKey;
    }

    /** @param array<string, string> $headers */
    private function send(string $body, array $headers, Message $command): DriverResponse
    {
        $this->lastMessages = [];
        $this->lastNewConnections = 0;
        for ($attempt = 1; ; $attempt++) {
            $this->lastAttempts = $attempt;
            $retryAfter = null;
            try {
                $http = $this->transport->post(self::PATH, $body, $headers);
                $this->lastNewConnections += $http->newConnections;
                $response = null;
                // An empty DriverResponse is an empty body, which may come without a content type.
                $type = strtolower($http->header('content-type') ?? '');
                if ((str_starts_with($type, 'application/x-protobuf') && WireFormat::wellFormed($http->body))
                    || ($type === '' && $http->body === '')) {
                    try {
                        $response = new DriverResponse();
                        $response->mergeFromString($http->body);
                    } catch (Throwable) {
                        $response = null;
                    }
                }
                if ($http->status === 200) {
                    if ($response === null) {
                        throw ErrorMapper::protocol('the answer is not a DriverResponse', $http, $attempt);
                    }
                    $this->lastMessages = iterator_to_array($response->getMessages());
                    return $response;
                }
                $error = ErrorMapper::map($http, $response, $attempt);
                $this->lastMessages = $error->getLogMessages();
                $retryAfter = self::retryAfterMs($http->header('retry-after'));
            } catch (DriverException $e) {
                $error = $e;
                $error->setAttempts($attempt);
            }

            $retry = $error->isRetryable() && $attempt <= $this->config->maxRetries
                && ($this->config->retryTimeouts || !$error instanceof TimeoutException);
            if (!$retry) {
                $this->log?->forward($this->lastMessages);
                throw $error;
            }
            $delay = $this->backoffMs($attempt, $retryAfter);
            $this->logger?->log('warning', sprintf(
                'duckstore: %s failed (attempt %d of %d): %s; retrying in %d ms',
                $command::class,
                $attempt,
                $this->config->maxRetries + 1,
                $error->getMessage(),
                $delay,
            ), ['code' => $error->getCode(), 'httpStatus' => $error->getHttpStatus(), 'attempt' => $attempt]);
            usleep($delay * 1000);
        }
    }

    /** Exponential backoff with jitter (75-100 % of base * 2^(attempt-1)); Retry-After wins when it asks for longer. */
    private function backoffMs(int $attempt, ?int $retryAfterMs): int
    {
        $base = min($this->config->maxBackoffMs, $this->config->backoffMs * (2 ** min($attempt - 1, 20)));
        $delay = (int) round($base * (0.75 + mt_rand() / mt_getrandmax() / 4));
        if ($retryAfterMs !== null) {
            $delay = max($delay, $retryAfterMs);
        }
        return min($delay, $this->config->maxBackoffMs);
    }

    private static function retryAfterMs(?string $value): ?int
    {
        if ($value === null || !preg_match('/^\s*(\d{1,6})\s*$/', $value, $m)) {
            return null;  // HTTP dates are not worth honoring for a service on a private network
        }
        return (int) $m[1] * 1000;
    }
}
