<?php

declare(strict_types=1);

namespace Duckstore\Connection\Backend;

use Duckstore\Connection\Driver\ClientConfig;
use Duckstore\Connection\Driver\ClientInterface;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\ErrorMapper;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\ProtocolException;
use Duckstore\Connection\Driver\HttpTransport;

/**
 * duckstore as a Connection backend. Its capabilities are the service's own: the first call that
 * needs them asks GET /backends (with the service key) and reads the item of this backend
 * (by default "duckdb"; a plugin backend of the same service, e.g. "postgres", works the same
 * way with its name). refresh() asks again, e.g. after the service was upgraded.
 *
 * File storages: duckstore's driver reads and writes Storage Files of the service, addressed with
 * Keboola's FilePath and provider S3; a backend that imports or exports has that one.
 */
final class DuckDBBackend implements BackendInterface
{
    public const DEFAULT_NAME = 'duckdb';
    public const FILE_STORAGES = ['S3'];

    private ?DuckDBDriverClient $client = null;
    private ?BackendCapabilities $capabilities = null;
    /** @var array<string, mixed>|null */
    private ?array $item = null;
    private readonly DuckDBCredentialsResolver $credentials;

    public function __construct(
        private readonly ClientConfig $config,
        private readonly ?object $logger = null,
        private readonly string $name = self::DEFAULT_NAME,
    ) {
        $this->credentials = new DuckDBCredentialsResolver();
    }

    public static function fromEnvironment(?object $logger = null, ?array $env = null): self
    {
        $env ??= getenv();
        $name = $env['DUCKSTORE_DRIVER_BACKEND'] ?? '';
        return new self(ClientConfig::fromEnvironment($env), $logger, $name !== '' ? $name : self::DEFAULT_NAME);
    }

    public function getName(): string
    {
        return $this->name;
    }

    public function getCapabilities(): BackendCapabilities
    {
        if ($this->capabilities === null) {
            $this->refresh();
        }
        return $this->capabilities;
    }

    public function getDriverClient(): ClientInterface
    {
        return $this->client ??= new DuckDBDriverClient($this->config, $this->logger);
    }

    public function getCredentialsResolver(): CredentialsResolverInterface
    {
        return $this->credentials;
    }

    public function getDriverConfig(): DriverConfig
    {
        return DriverConfig::fromCapabilities($this->getCapabilities());
    }

    /** @return array{status: string, message: ?string} the backend's health as of the last refresh() */
    public function getHealth(): array
    {
        if ($this->item === null) {
            $this->refresh();
        }
        $h = $this->item['health'] ?? [];
        return ['status' => (string) ($h['status'] ?? 'unknown'), 'message' => isset($h['message']) ? (string) $h['message'] : null];
    }

    /**
     * Reads GET /backends again.
     *
     * @throws DriverException when the service cannot be asked, or BackendNotRegisteredException
     *         when it has no backend of this name
     */
    public function refresh(): void
    {
        $transport = new HttpTransport($this->config);
        $headers = ['Accept' => 'application/json'];
        if ($this->config->serviceKey !== '') {
            $headers['Authorization'] = 'Bearer ' . $this->config->serviceKey;
        }
        for ($attempt = 1; ; $attempt++) {
            try {
                $http = $transport->get('/backends', $headers);
                if ($http->status === 200) {
                    break;
                }
                $error = ErrorMapper::map($http, null, $attempt);
            } catch (DriverException $e) {
                $error = $e;
                $error->setAttempts($attempt);
            }
            if (!$error->isRetryable() || $attempt > $this->config->maxRetries) {
                throw $error;
            }
            usleep(min($this->config->maxBackoffMs, $this->config->backoffMs * 2 ** ($attempt - 1)) * 1000);
        }
        $list = json_decode($http->body, true);
        if (!is_array($list) || !is_array($list['items'] ?? null)) {
            throw ErrorMapper::protocol('GET /backends did not answer {"items": [...]}', $http, $attempt);
        }
        $names = [];
        foreach ($list['items'] as $item) {
            if (is_array($item) && is_string($item['name'] ?? null)) {
                $names[] = $item['name'];
                if (strcasecmp($item['name'], $this->name) === 0) {
                    if (!is_array($item['capabilities'] ?? null)) {
                        throw ErrorMapper::protocol(sprintf('GET /backends: backend "%s" has no capabilities object', $this->name), $http, $attempt);
                    }
                    try {
                        $importExport = ($item['capabilities']['import'] ?? false) === true
                            || ($item['capabilities']['export'] ?? false) === true;
                        $this->capabilities = BackendCapabilities::fromServiceJson(
                            $item['capabilities'],
                            $importExport ? self::FILE_STORAGES : [],
                        );
                    } catch (\InvalidArgumentException $e) {
                        throw new ProtocolException('duckstore: ' . $e->getMessage(), DriverException::ERR_UNKNOWN, false, 200);
                    }
                    $this->item = $item;
                    return;
                }
            }
        }
        throw new BackendNotRegisteredException(sprintf(
            'the duckstore service at %s has no backend "%s" (it has: %s)',
            $this->config->baseUrl,
            $this->name,
            $names === [] ? 'none' : implode(', ', $names),
        ));
    }
}
