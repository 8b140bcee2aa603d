<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Backend\BackendCapabilities;
use Duckstore\Connection\Backend\DuckDBBackend;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\Exception\CommandNotSupportedException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Tests\Support\DriverTestCase;
use Google\Protobuf\Internal\Message;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Bucket\ShareBucketCommand;
use Keboola\StorageDriver\Command\Bucket\ShareBucketResponse;
use Keboola\StorageDriver\Command\ExecuteQuery\ExecuteQueryCommand;
use Keboola\StorageDriver\Command\ExecuteQuery\ExecuteQueryResponse;
use Keboola\StorageDriver\Command\Project\CreateDevBranchCommand;
use Keboola\StorageDriver\Command\Project\CreateDevBranchResponse;
use Keboola\StorageDriver\Command\Table\CreateTableCommand;
use Keboola\StorageDriver\Command\Table\CreateTableFromTimeTravelCommand;
use Keboola\StorageDriver\Command\Table\ImportExportShared\Table;
use Keboola\StorageDriver\Command\Table\TableColumnShared;
use Keboola\StorageDriver\Command\Workspace\CreateWorkspaceCommand;
use Keboola\StorageDriver\Command\Workspace\CreateWorkspaceResponse;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;

/**
 * Branches, workspaces, sharing, time travel and ExecuteQuery go through the same generic client.
 * What the driver answers must agree with what GET /backends says the backend can do: a feature
 * the service reports as missing is a CommandNotSupportedException (900, not retryable) naming the
 * command; one it reports as present answers with its documented response class.
 */
final class FeaturesTest extends DriverTestCase
{
    private DuckDBDriverClient $client;
    private GenericBackendCredentials $creds;
    private BackendCapabilities $caps;

    private function prepare(): void
    {
        $this->client = $this->client();
        $this->creds = $this->project($this->client, 'features');
        $this->exec($this->client, (new CreateBucketCommand())->setBucketId('in.c-main'), $this->creds);
        $this->exec($this->client, (new CreateTableCommand())->setPath(['in.c-main'])->setTableName('t')
            ->setColumns([(new TableColumnShared())->setName('a')]), $this->creds);
        $this->caps = (new DuckDBBackend($this->config()))->getCapabilities();
    }

    public function testBranches(): void
    {
        $this->prepare();
        $create = (new CreateDevBranchCommand())->setProjectId('features')->setBranchId('123');
        if (!$this->caps->supportsBranches()) {
            $this->assertUnsupported($create, 'CreateDevBranchCommand');
            return;
        }
        $this->assertInstanceOf(CreateDevBranchResponse::class, $this->exec($this->client, $create, $this->creds));
    }

    public function testWorkspaces(): void
    {
        $this->prepare();
        $create = (new CreateWorkspaceCommand())->setProjectId('features')->setWorkspaceId('ws1');
        if (!$this->caps->supportsWorkspaces()) {
            $this->assertUnsupported($create, 'CreateWorkspaceCommand');
            return;
        }
        $ws = $this->exec($this->client, $create, $this->creds);
        $this->assertInstanceOf(CreateWorkspaceResponse::class, $ws);
        $this->assertNotSame('', $ws->getWorkspacePassword());
    }

    public function testSharing(): void
    {
        $this->prepare();
        $share = (new ShareBucketCommand())->setSourceProjectId('features')->setSourceBucketId('in.c-main')
            ->setSourceBucketObjectName('in.c-main');
        if (!$this->caps->supportsSharing()) {
            $this->assertUnsupported($share, 'ShareBucketCommand');
            return;
        }
        $this->assertInstanceOf(ShareBucketResponse::class, $this->exec($this->client, $share, $this->creds));
    }

    public function testTimeTravel(): void
    {
        $this->prepare();
        $restore = (new CreateTableFromTimeTravelCommand())
            ->setSource((new CreateTableFromTimeTravelCommand\SourceTableMapping())->setPath(['in.c-main'])->setTableName('t'))
            ->setDestination((new Table())->setPath(['in.c-main'])->setTableName('t_restored'))
            ->setTimestamp(time());
        if (!$this->caps->supportsTimeTravel()) {
            $this->assertUnsupported($restore, 'CreateTableFromTimeTravelCommand');
            return;
        }
        // The table exists as of the next second: restore from that moment.
        $created = time();
        while (time() <= $created) {
            usleep(50000);
        }
        $this->exec($this->client, $restore->setTimestamp(time()), $this->creds);
        $this->assertNotNull($this->exec($this->client, (new \Keboola\StorageDriver\Command\Info\ObjectInfoCommand())
            ->setPath(['in.c-main', 't_restored'])->setExpectedObjectType(\Keboola\StorageDriver\Command\Info\ObjectType::TABLE), $this->creds));
    }

    public function testExecuteQuery(): void
    {
        $this->prepare();
        $query = (new ExecuteQueryCommand())->setQuery('SELECT 1 AS one')->setTimeout(10);
        try {
            $answer = $this->exec($this->client, $query, $this->creds);
        } catch (CommandNotSupportedException $e) {
            // Not offered by this build of the service: the error must say which command.
            $this->assertSame(DriverException::ERR_COMMAND_NOT_SUPPORTED, $e->getCode());
            $this->assertFalse($e->isRetryable());
            $this->assertStringContainsString('ExecuteQuery', $e->getMessage());
            return;
        }
        $this->assertInstanceOf(ExecuteQueryResponse::class, $answer);
        $this->assertSame(ExecuteQueryResponse\Status::Success, $answer->getStatus(), $answer->getMessage());
        $this->assertSame(['one'], iterator_to_array($answer->getData()->getColumns()));
    }

    private function assertUnsupported(Message $command, string $name): void
    {
        $e = $this->expectDriverError(CommandNotSupportedException::class, DriverException::ERR_COMMAND_NOT_SUPPORTED, fn () =>
            $this->exec($this->client, $command, $this->creds));
        $this->assertFalse($e->isRetryable());
        $this->assertSame(501, $e->getHttpStatus());
        $this->assertSame(1, $e->getAttempts());
        $this->assertStringContainsString($name, $e->getMessage());
    }
}
