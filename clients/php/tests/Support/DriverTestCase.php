<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests\Support;

use Duckstore\Connection\Backend\DuckDBCredentialsResolver;
use Duckstore\Connection\Driver\ClientConfig;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\Exception\DriverException;
use Google\Protobuf\Internal\Message;
use Keboola\StorageDriver\Command\Common\RuntimeOptions;
use Keboola\StorageDriver\Command\Project\CreateProjectCommand;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;
use PHPUnit\Framework\TestCase;

/** Every test gets its own duckstore (started on first use, stopped with SIGTERM at teardown). */
abstract class DriverTestCase extends TestCase
{
    private ?DuckstoreServer $server = null;
    protected ?RecordingLogger $logger = null;

    protected function tearDown(): void
    {
        if ($this->server !== null) {
            $server = $this->server;
            $this->server = null;
            $this->assertSame(0, $server->stop(), "duckstore must exit 0 after SIGTERM:\n" . $server->logTail());
        }
    }

    /** For a test that stopped the server itself. */
    protected function forgetServer(): void
    {
        $this->server = null;
    }

    protected function server(): DuckstoreServer
    {
        return $this->server ??= new DuckstoreServer();
    }

    protected function client(array $overrides = []): DuckDBDriverClient
    {
        $this->logger ??= new RecordingLogger();
        return new DuckDBDriverClient($this->config($overrides), $this->logger);
    }

    protected function config(array $overrides = []): ClientConfig
    {
        $needServer = !array_key_exists('baseUrl', $overrides);
        $args = array_merge([
            'baseUrl' => $needServer ? $this->server()->url() : '',
            'serviceKey' => $needServer ? $this->server()->adminKey : '',
            'connectTimeoutMs' => 2000,
            'requestTimeoutMs' => 30000,
            'backoffMs' => 10,
            'maxBackoffMs' => 200,
        ], $overrides);
        return new ClientConfig(...$args);
    }

    protected function exec(DuckDBDriverClient $client, Message $command, ?GenericBackendCredentials $credentials = null): ?Message
    {
        return $client->runCommand($credentials ?? new GenericBackendCredentials(), $command, [], new RuntimeOptions());
    }

    /** Creates a project with the admin key; returns its credentials (host = id, principal = key). */
    protected function project(DuckDBDriverClient $client, string $id): GenericBackendCredentials
    {
        $created = $this->exec($client, (new CreateProjectCommand())->setProjectId($id));
        return (new DuckDBCredentialsResolver())->forProject($created->getProjectUserName(), $created->getProjectPassword());
    }

    /**
     * Runs $fn and returns the DriverException it must throw, checked to be of $class with $code.
     */
    protected function expectDriverError(string $class, int $code, callable $fn): DriverException
    {
        try {
            $fn();
        } catch (DriverException $e) {
            $this->assertInstanceOf($class, $e, 'wrong exception for: ' . $e->getMessage());
            $this->assertSame($code, $e->getCode(), 'wrong Keboola code for: ' . $e->getMessage());
            return $e;
        }
        $this->fail("expected $class ($code), nothing was thrown");
    }
}
