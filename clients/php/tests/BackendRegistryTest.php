<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Backend\BackendCapabilities;
use Duckstore\Connection\Backend\BackendNotRegisteredException;
use Duckstore\Connection\Backend\BackendRegistry;
use Duckstore\Connection\Backend\DuckDBBackend;
use Duckstore\Connection\Backend\DuckDBCredentialsResolver;
use Duckstore\Connection\Driver\ClientConfig;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\Exception\AuthenticationException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Tests\Support\DriverTestCase;
use Duckstore\Connection\Tests\Support\DuckstoreServer;
use InvalidArgumentException;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Info\ListSchemasCommand;

/** The registry and the DuckDB backend, with capabilities read from the service's GET /backends. */
final class BackendRegistryTest extends DriverTestCase
{
    public function testCapabilitiesAreTheServicesOwn(): void
    {
        $server = $this->server();
        $raw = $server->rest('GET', '/backends', $server->adminKey)['items'];
        $backend = new DuckDBBackend($this->config());
        $caps = $backend->getCapabilities();

        $item = array_values(array_filter($raw, static fn ($b) => $b['name'] === 'duckdb'))[0];
        $flags = array_filter($item['capabilities'], 'is_bool');
        $this->assertNotEmpty($flags);
        foreach ($flags as $name => $value) {
            if ($name !== 'case_sensitive') {
                $this->assertSame($value, $caps->supports($name), "capability $name");
            }
        }
        $this->assertSame($item['capabilities']['case_sensitive'] || $item['capabilities']['case_sensitive_names'], $caps->isCaseSensitive());
        $this->assertSame($item['capabilities']['branches'], $caps->supportsBranches());
        $this->assertSame($item['capabilities']['workspaces'], $caps->supportsWorkspaces());
        $this->assertSame($item['capabilities']['sharing'], $caps->supportsSharing());
        $this->assertSame($item['capabilities']['time_travel'], $caps->supportsTimeTravel());
        $this->assertTrue($caps->isDriverBased());
        $this->assertSame($item['capabilities']['import_formats'], $caps->importFormats);
        $this->assertSame($item['capabilities']['unsupported_filter_operators'], $caps->unsupportedFilterOperators);
        $this->assertTrue($caps->supportsFileStorage('s3'));
        $this->assertFalse($caps->supportsFileStorage('GCS'));
        $this->assertSame(['status' => 'ok', 'message' => null], $backend->getHealth());

        $config = $backend->getDriverConfig();
        $this->assertSame($caps->isCaseSensitive(), $config->caseSensitive);
        $this->assertSame(!$caps->isCaseSensitive(), $config->sameName('Orders', 'orders'));
    }

    public function testAPluginBackendOfTheServiceReportsItsOwnCapabilities(): void
    {
        // The test plugin "tiny": case sensitive, no gt/lt filters, no typed filters, no driver.
        $plugins = DuckstoreServer::tempDir('duckstore-plugins-');
        copy(dirname(__DIR__, 3) . '/build/test-plugins/tiny.so', $plugins . '/tiny.so');
        try {
            $server = new DuckstoreServer(['DUCKSTORE_PLUGIN_DIR' => $plugins]);
            $config = new ClientConfig($server->url(), $server->adminKey);
            $registry = new BackendRegistry([new DuckDBBackend($config), new DuckDBBackend($config, null, 'tiny')]);

            $tiny = $registry->get('tiny')->getCapabilities();
            $this->assertTrue($tiny->isCaseSensitive());
            $this->assertFalse($tiny->isDriverBased());
            $this->assertFalse($tiny->isFilterOperatorSupported('gt'));
            $this->assertTrue($tiny->isFilterOperatorSupported('eq'));
            $this->assertFalse($tiny->isFilterTypeSupported('INTEGER'));
            $this->assertTrue($tiny->isFilterTypeSupported('STRING'));
            $this->assertSame(16, $tiny->maxNameLength);
            $this->assertSame([], $tiny->fileStorages, 'no import or export: no file storage');
            $tinyConfig = $registry->get('tiny')->getDriverConfig();
            $this->assertTrue($tinyConfig->caseSensitive);
            $this->assertFalse($tinyConfig->sameName('Orders', 'orders'));
            $this->assertContains('TIMESTAMP', $tinyConfig->unsupportedFilterTypes);

            $this->assertSame(['duckdb'], $registry->namesSupporting(BackendCapabilities::DRIVER_BASED));
            $this->assertSame(['duckdb', 'tiny'], array_keys($registry->all()));
            $this->assertSame(0, $server->stop());
        } finally {
            DuckstoreServer::removeTree($plugins);
        }
    }

    public function testRegistryRefusesDuplicatesAndNamesWhatItHas(): void
    {
        $config = new ClientConfig('http://127.0.0.1:9');
        $registry = new BackendRegistry([new DuckDBBackend($config)]);
        $this->assertTrue($registry->has('DuckDB'));
        try {
            $registry->register(new DuckDBBackend($config, null, 'DUCKDB'));
            $this->fail('a second backend named duckdb must be refused');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('registered already', $e->getMessage());
        }
        try {
            $registry->get('snowflake');
            $this->fail('an unknown backend must be refused');
        } catch (BackendNotRegisteredException $e) {
            $this->assertSame('backend "snowflake" is not registered (registered: duckdb)', $e->getMessage());
        }
        $this->expectException(InvalidArgumentException::class);
        $registry->register(new DuckDBBackend($config, null, 'bad name'));
    }

    public function testServiceWithoutTheBackendOrWithAWrongKey(): void
    {
        $server = $this->server();
        try {
            (new DuckDBBackend($this->config(), null, 'bigquery'))->getCapabilities();
            $this->fail('a backend the service does not have must be refused');
        } catch (BackendNotRegisteredException $e) {
            $this->assertStringContainsString('has no backend "bigquery" (it has: duckdb)', $e->getMessage());
        }
        $this->expectDriverError(AuthenticationException::class, DriverException::ERR_AUTHENTICATION, fn () =>
            (new DuckDBBackend(new ClientConfig($server->url(), 'wrong-key')))->getCapabilities());
    }

    public function testCredentialsResolverAndClientFromTheBackend(): void
    {
        $backend = new DuckDBBackend($this->config());
        $resolver = $backend->getCredentialsResolver();
        /** @var DuckDBDriverClient $client */
        $client = $backend->getDriverClient();
        $created = $this->exec($client, (new \Keboola\StorageDriver\Command\Project\CreateProjectCommand())->setProjectId('resolved'));
        $creds = $resolver->forProject($created->getProjectUserName(), $created->getProjectPassword());
        $this->assertSame('resolved', $creds->getHost());
        $this->assertSame($created->getProjectPassword(), $creds->getPrincipal());
        $this->exec($client, (new CreateBucketCommand())->setBucketId('in.c-x'), $creds);
        $this->assertSame(['in.c-x'], iterator_to_array($this->exec($client, new ListSchemasCommand(), $creds)->getSchemas()));
        $this->assertSame('', $resolver->forAdmin()->getPrincipal(), 'the admin key stays out of the message');

        foreach ([['', 'k'], ['a b', 'k'], ['p', ''], ['p', "k\n"]] as [$id, $key]) {
            try {
                (new DuckDBCredentialsResolver())->forProject($id, $key);
                $this->fail(sprintf('project "%s" with key "%s" must be refused', $id, $key));
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString('project', $e->getMessage());
            }
        }
    }

    public function testConfigurationFromEnvironmentIsChecked(): void
    {
        $config = ClientConfig::fromEnvironment([
            'DUCKSTORE_DRIVER_URL' => 'http://duckstore.internal:8000/',
            'DUCKSTORE_DRIVER_SERVICE_KEY' => 'admin-key',
            'DUCKSTORE_DRIVER_REQUEST_TIMEOUT_MS' => '5000',
            'DUCKSTORE_DRIVER_KEEP_ALIVE' => 'false',
            'DUCKSTORE_DRIVER_MAX_RETRIES' => '0',
        ]);
        $this->assertSame('http://duckstore.internal:8000', $config->baseUrl);
        $this->assertSame('admin-key', $config->serviceKey);
        $this->assertSame(5000, $config->requestTimeoutMs);
        $this->assertSame(2000, $config->connectTimeoutMs);
        $this->assertFalse($config->keepAlive);
        $this->assertSame(0, $config->maxRetries);
        $backend = DuckDBBackend::fromEnvironment(null, ['DUCKSTORE_DRIVER_URL' => 'http://h:1', 'DUCKSTORE_DRIVER_BACKEND' => 'postgres']);
        $this->assertSame('postgres', $backend->getName());

        $bad = [
            [[], 'DUCKSTORE_DRIVER_URL is not set'],
            [['DUCKSTORE_DRIVER_URL' => 'ftp://x'], 'not an http:// or https:// URL'],
            [['DUCKSTORE_DRIVER_URL' => 'http://x', 'DUCKSTORE_DRIVER_REQUEST_TIMEOUT_MS' => '5s'], 'DUCKSTORE_DRIVER_REQUEST_TIMEOUT_MS: "5s" is not a whole number'],
            [['DUCKSTORE_DRIVER_URL' => 'http://x', 'DUCKSTORE_DRIVER_CONNECT_TIMEOUT_MS' => '0'], 'connectTimeoutMs must be between 1 and'],
            [['DUCKSTORE_DRIVER_URL' => 'http://x', 'DUCKSTORE_DRIVER_KEEP_ALIVE' => 'maybe'], 'DUCKSTORE_DRIVER_KEEP_ALIVE: "maybe" is not a boolean'],
            [['DUCKSTORE_DRIVER_URL' => 'http://x', 'DUCKSTORE_DRIVER_SERVICE_KEY' => "a\nb"], 'serviceKey must not contain'],
        ];
        foreach ($bad as [$env, $expected]) {
            try {
                ClientConfig::fromEnvironment($env);
                $this->fail('must be refused: ' . json_encode($env));
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString($expected, $e->getMessage());
            }
        }
    }
}
