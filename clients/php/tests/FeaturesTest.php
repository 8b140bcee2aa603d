<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Backend\BackendCapabilities;
use Duckstore\Connection\Backend\DuckDBBackend;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\Exception\CommandNotSupportedException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\NotFoundException;
use Duckstore\Connection\Driver\Exception\PermissionDeniedException;
use Duckstore\Connection\Driver\Exception\ValidationException;
use Duckstore\Connection\Tests\Support\DriverTestCase;
use Google\Protobuf\Any;
use Google\Protobuf\Internal\Message;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Bucket\CreateBucketResponse;
use Keboola\StorageDriver\Command\Bucket\ShareBucketCommand;
use Keboola\StorageDriver\Command\ExecuteQuery\ExecuteQueryCommand;
use Keboola\StorageDriver\Command\ExecuteQuery\ExecuteQueryResponse;
use Keboola\StorageDriver\Command\Info\ObjectInfoCommand;
use Keboola\StorageDriver\Command\Info\ObjectInfoResponse;
use Keboola\StorageDriver\Command\Info\ObjectType;
use Keboola\StorageDriver\Command\Project\CreateDevBranchCommand;
use Keboola\StorageDriver\Command\Project\CreateDevBranchResponse;
use Keboola\StorageDriver\Command\Project\DropDevBranchCommand;
use Keboola\StorageDriver\Command\Table\CreateTableCommand;
use Keboola\StorageDriver\Command\Table\CreateTableFromTimeTravelCommand;
use Keboola\StorageDriver\Command\Table\ImportExportShared;
use Keboola\StorageDriver\Command\Table\ImportExportShared\ExportOrderBy;
use Keboola\StorageDriver\Command\Table\ImportExportShared\FilePath;
use Keboola\StorageDriver\Command\Table\ImportExportShared\ImportOptions;
use Keboola\StorageDriver\Command\Table\ImportExportShared\Table;
use Keboola\StorageDriver\Command\Table\ImportExportShared\TableWhereFilter;
use Keboola\StorageDriver\Command\Table\PreviewTableCommand;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;
use Keboola\StorageDriver\Command\Table\TableColumnShared;
use Keboola\StorageDriver\Command\Table\TableImportFromFileCommand;
use Keboola\StorageDriver\Command\Table\TableImportFromFileCommand\CsvTypeOptions;
use Keboola\StorageDriver\Command\Table\TableImportFromTableCommand;
use Keboola\StorageDriver\Command\Table\TableImportResponse;
use Keboola\StorageDriver\Command\Workspace\CreateWorkspaceCommand;
use Keboola\StorageDriver\Command\Workspace\CreateWorkspaceResponse;
use Keboola\StorageDriver\Command\Workspace\DropWorkspaceCommand;
use Keboola\StorageDriver\Command\Workspace\LoadTableToWorkspaceCommand;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;

/**
 * Branches, workspaces, ExecuteQuery, sharing and time travel go through the same generic client,
 * as Connection uses them. What the driver answers must agree with what GET /backends says the
 * backend can do: the features the service has run as whole flows (data written, read back and
 * removed again); the ones it reports as missing are a CommandNotSupportedException (900, not
 * retryable) naming the command.
 */
final class FeaturesTest extends DriverTestCase
{
    private const PROJECT = 'features';
    private const BUCKET = 'in.c-main';

    private DuckDBDriverClient $client;
    private GenericBackendCredentials $creds;
    private string $projectKey;
    private BackendCapabilities $caps;

    private function prepare(): void
    {
        $this->client = $this->client();
        $this->creds = $this->project($this->client, self::PROJECT);
        $this->projectKey = $this->creds->getPrincipal();
        $this->exec($this->client, (new CreateBucketCommand())->setBucketId(self::BUCKET), $this->creds);
        $this->caps = (new DuckDBBackend($this->config()))->getCapabilities();
    }

    /**
     * A dev branch as Connection drives it: created, a bucket and a table of its own written and
     * read back, main's table changed in the branch only (copy on write), then dropped with the
     * role name CreateDevBranch answered.
     */
    public function testBranchFlow(): void
    {
        $this->prepare();
        $this->assertTrue($this->caps->supportsBranches(), 'GET /backends must report branches: the service has them');
        $this->createTable([self::BUCKET], 'items');
        $this->importCsv([self::BUCKET], 'items', "id,name\n1,main-one\n");

        $branch = $this->exec($this->client, (new CreateDevBranchCommand())
            ->setProjectId(self::PROJECT)->setBranchId('123'), $this->creds);
        $this->assertInstanceOf(CreateDevBranchResponse::class, $branch);
        $this->assertSame(self::PROJECT . '/123', $branch->getDevBranchReadOnlyRoleName());

        // A bucket of the branch only: its path names the branch.
        $bucket = $this->exec($this->client, (new CreateBucketCommand())->setBucketId('in.c-dev')
            ->setBranchId('123')->setIsBranchDefault(false), $this->creds);
        $this->assertInstanceOf(CreateBucketResponse::class, $bucket);
        $devPath = iterator_to_array($bucket->getPath());
        $this->assertSame(['123/in.c-dev'], $devPath);
        $created = $this->createTable($devPath, 'dev_items');
        $this->assertSame($devPath, iterator_to_array($created->getTableInfo()->getPath()));
        $imported = $this->importCsv($devPath, 'dev_items', "id,name\n7,seven\n8,eight\n");
        $this->assertSame(2, (int) $imported->getTableRowsCount());
        $this->assertSame([['7', 'seven'], ['8', 'eight']], $this->preview($devPath, 'dev_items'));

        // Main's table seen through the branch, then written there: main keeps its one row.
        $branchMain = ['123/' . self::BUCKET];
        $this->assertSame([['1', 'main-one']], $this->preview($branchMain, 'items'));
        $this->importCsv($branchMain, 'items', "id,name\n2,branch-two\n", true);
        $this->assertSame([['1', 'main-one'], ['2', 'branch-two']], $this->preview($branchMain, 'items'));
        $this->assertSame([['1', 'main-one']], $this->preview([self::BUCKET], 'items'));
        $mainBuckets = $this->exec($this->client, (new ObjectInfoCommand())->setPath([])
            ->setExpectedObjectType(ObjectType::DATABASE), $this->creds);
        $this->assertSame([self::BUCKET], $this->objectNames($mainBuckets->getDatabaseInfo()->getObjects()),
            'the branch bucket must not appear in main');

        $this->assertNull($this->exec($this->client, (new DropDevBranchCommand())
            ->setDevBranchReadOnlyRoleName($branch->getDevBranchReadOnlyRoleName()), $this->creds));
        $gone = $this->expectDriverError(NotFoundException::class, DriverException::ERR_NOT_FOUND, fn () =>
            $this->preview($devPath, 'dev_items'));
        $this->assertFalse($gone->isRetryable());
        $this->assertStringContainsString('123', $gone->getMessage());
        $this->assertSame([['1', 'main-one']], $this->preview([self::BUCKET], 'items'));

        // A role name that is not what CreateDevBranch answers is refused and changes nothing.
        $bad = $this->expectDriverError(ValidationException::class, DriverException::ERR_VALIDATION, fn () =>
            $this->exec($this->client, (new DropDevBranchCommand())->setDevBranchReadOnlyRoleName('123'), $this->creds));
        $this->assertStringContainsString('devBranchReadOnlyRoleName', $bad->getMessage());
    }

    /**
     * A transformation as Connection runs it: a workspace created, two storage tables loaded into
     * it, ExecuteQuery joining them into a workspace table, that table unloaded into storage
     * (TableImportFromTable with the workspace as the source), the workspace dropped.
     */
    public function testWorkspaceFlow(): void
    {
        $this->prepare();
        $this->assertTrue($this->caps->supportsWorkspaces(), 'GET /backends must report workspaces: the service has them');
        $this->createTable([self::BUCKET], 'customers');
        $this->importCsv([self::BUCKET], 'customers', "id,name\n1,Ann\n2,Bob\n3,Cid\n");
        $this->createTable([self::BUCKET], 'orders', ['id', 'customer', 'amount', 'state']);
        $this->importCsv([self::BUCKET], 'orders', "id,customer,amount,state\n10,1,5,TX\n11,1,4,CA\n12,2,10,TX\n13,1,7,TX\n");

        $ws = $this->exec($this->client, (new CreateWorkspaceCommand())
            ->setProjectId(self::PROJECT)->setWorkspaceId('tr'), $this->creds);
        $this->assertInstanceOf(CreateWorkspaceResponse::class, $ws);
        $this->assertSame('WORKSPACE_tr', $ws->getWorkspaceObjectName());
        $this->assertNotSame('', $ws->getWorkspaceUserName());
        $this->assertNotSame('', $ws->getWorkspacePassword());
        $object = $ws->getWorkspaceObjectName();

        $this->assertNull($this->exec($this->client, (new LoadTableToWorkspaceCommand())
            ->setSource((new LoadTableToWorkspaceCommand\SourceTableMapping())->setPath([self::BUCKET])->setTableName('customers'))
            ->setDestination((new Table())->setPath([$object])->setTableName('customers'))
            ->setImportOptions((new ImportOptions())->setImportType(ImportOptions\ImportType::FULL)), $this->creds));
        $this->assertStringContainsString('3 rows', $this->lastMessagesText());
        $this->assertNull($this->exec($this->client, (new LoadTableToWorkspaceCommand())
            ->setSource((new LoadTableToWorkspaceCommand\SourceTableMapping())->setPath([self::BUCKET])->setTableName('orders')
                ->setWhereFilters([(new TableWhereFilter())->setColumnsName('state')
                    ->setOperator(TableWhereFilter\Operator::eq)->setValues(['TX'])]))
            ->setDestination((new Table())->setPath([$object])->setTableName('orders'))
            ->setImportOptions((new ImportOptions())->setImportType(ImportOptions\ImportType::FULL)), $this->creds));
        $this->assertStringContainsString('3 rows', $this->lastMessagesText(), 'the filter keeps the three TX orders');

        $made = $this->query('CREATE TABLE report AS SELECT c.name, sum(o.amount::INTEGER) AS total '
            . 'FROM orders o JOIN customers c ON c.id = o.customer GROUP BY c.name', [$object]);
        $this->assertSame(ExecuteQueryResponse\Status::Success, $made->getStatus(), $made->getMessage());
        $report = $this->query('SELECT name, total FROM report ORDER BY name', [$object]);
        $this->assertSame(ExecuteQueryResponse\Status::Success, $report->getStatus(), $report->getMessage());
        $this->assertSame(['name', 'total'], iterator_to_array($report->getData()->getColumns()));
        $this->assertSame([['Ann', '12'], ['Bob', '10']], $this->queryRows($report, ['name', 'total']));

        $unloaded = $this->exec($this->client, (new TableImportFromTableCommand())
            ->setSource((new TableImportFromTableCommand\SourceTableMapping())->setPath([$object])->setTableName('report'))
            ->setDestination((new Table())->setPath([self::BUCKET])->setTableName('report'))
            ->setImportOptions((new ImportOptions())->setImportType(ImportOptions\ImportType::FULL)
                ->setCreateMode(ImportOptions\CreateMode::REPLACE)), $this->creds);
        $this->assertInstanceOf(TableImportResponse::class, $unloaded);
        $this->assertSame(2, (int) $unloaded->getImportedRowsCount());
        $this->assertSame([['Ann', '12'], ['Bob', '10']], $this->preview([self::BUCKET], 'report', 'name'));
        // ExecuteQuery without a path restriction reads the project's storage (read-only).
        $storage = $this->query('SELECT count(*) AS n FROM "in.c-main"."report"', []);
        $this->assertSame(ExecuteQueryResponse\Status::Success, $storage->getStatus(), $storage->getMessage());
        $this->assertSame([['2']], $this->queryRows($storage, ['n']));

        $this->assertNull($this->exec($this->client, (new DropWorkspaceCommand())->setWorkspaceObjectName($object), $this->creds));
        $gone = $this->expectDriverError(NotFoundException::class, DriverException::ERR_NOT_FOUND, fn () =>
            $this->query('SELECT 1', [$object]));
        $this->assertStringContainsString('tr', $gone->getMessage());
        $this->assertFalse($gone->isRetryable());
        // The unloaded table stays in storage.
        $this->assertSame([['Ann', '12'], ['Bob', '10']], $this->preview([self::BUCKET], 'report', 'name'));
    }

    /**
     * A statement that fails is answered in-band (status Error with DuckDB's message, the call
     * itself succeeds, nothing retried); a request the service cannot take at all is an exception.
     */
    public function testExecuteQueryErrorsComeBackInBand(): void
    {
        $this->prepare();
        $object = $this->exec($this->client, (new CreateWorkspaceCommand())->setWorkspaceId('q'), $this->creds)
            ->getWorkspaceObjectName();

        $ok = $this->query('SELECT NULL AS a, \'x\' AS b, 1 AS one', [$object]);
        $this->assertSame(ExecuteQueryResponse\Status::Success, $ok->getStatus(), $ok->getMessage());
        $this->assertSame(['a', 'b', 'one'], iterator_to_array($ok->getData()->getColumns()));
        $this->assertSame([[null, 'x', '1']], $this->queryRows($ok, ['a', 'b', 'one']));

        $missing = $this->query('SELECT * FROM no_such_table', [$object]);
        $this->assertSame(ExecuteQueryResponse\Status::Error, $missing->getStatus());
        $this->assertStringContainsString('no_such_table', $missing->getMessage());
        $this->assertSame(1, $this->client->getLastAttempts(), 'an in-band error is an answer, not a retry');

        $two = $this->query('SELECT 1; SELECT 2', [$object]);
        $this->assertSame(ExecuteQueryResponse\Status::Error, $two->getStatus());
        $this->assertStringContainsStringIgnoringCase('one sql statement', $two->getMessage());

        $readOnly = $this->query('CREATE TABLE x AS SELECT 1 AS a', []);
        $this->assertSame(ExecuteQueryResponse\Status::Error, $readOnly->getStatus());
        $this->assertStringContainsString('read-only', $readOnly->getMessage());

        $slow = $this->query('SELECT count(*) FROM range(1000000000) a, range(1000000000) b', [$object], 1);
        $this->assertSame(ExecuteQueryResponse\Status::Error, $slow->getStatus());
        $this->assertStringContainsString('timeout', $slow->getMessage());

        $e = $this->expectDriverError(ValidationException::class, DriverException::ERR_VALIDATION, fn () =>
            $this->query('SELECT 1', [self::BUCKET]));
        $this->assertStringContainsString('pathRestriction', $e->getMessage());
        $this->assertFalse($e->isRetryable());
    }

    /**
     * Project keys with a scope, as Connection gets them for read-only users and branch jobs: a
     * read key reads but every write is a PermissionDeniedException that changes nothing; a
     * branch key writes its own branch and is refused on main.
     */
    public function testScopedKeysThroughTheDriver(): void
    {
        $this->prepare();
        $this->createTable([self::BUCKET], 'items');
        $this->importCsv([self::BUCKET], 'items', "id,name\n1,one\n");
        $this->exec($this->client, (new CreateDevBranchCommand())->setBranchId('dev'), $this->creds);
        $read = $this->scopedCredentials('{"scope": "read"}');
        $branchKey = $this->scopedCredentials('{"scope": "branch", "branch": "dev"}');

        $this->assertSame([['1', 'one']], $this->preview([self::BUCKET], 'items', 'id', $read));
        $denied = $this->expectDriverError(PermissionDeniedException::class, DriverException::ERR_PERMISSION_DENIED, fn () =>
            $this->exec($this->client, (new CreateTableCommand())->setPath([self::BUCKET])->setTableName('nope')
                ->setColumns([(new TableColumnShared())->setName('a')]), $read));
        $this->assertFalse($denied->isRetryable());
        $this->assertSame(1, $denied->getAttempts());
        $this->expectDriverError(NotFoundException::class, DriverException::ERR_TABLE_NOT_FOUND, fn () =>
            $this->exec($this->client, (new ObjectInfoCommand())->setPath([self::BUCKET, 'nope'])
                ->setExpectedObjectType(ObjectType::TABLE), $this->creds));

        $this->importCsv(['dev/' . self::BUCKET], 'items', "id,name\n2,two\n", true, $branchKey);
        $this->assertSame([['1', 'one'], ['2', 'two']], $this->preview(['dev/' . self::BUCKET], 'items', 'id', $branchKey));
        $this->expectDriverError(PermissionDeniedException::class, DriverException::ERR_PERMISSION_DENIED, fn () =>
            $this->importCsv([self::BUCKET], 'items', "id,name\n3,three\n", true, $branchKey));
        $this->assertSame([['1', 'one']], $this->preview([self::BUCKET], 'items'));
    }

    public function testSharing(): void
    {
        $this->prepare();
        $share = (new ShareBucketCommand())->setSourceProjectId(self::PROJECT)->setSourceBucketId(self::BUCKET)
            ->setSourceBucketObjectName(self::BUCKET);
        if (!$this->caps->supportsSharing()) {
            $this->assertUnsupported($share, 'ShareBucketCommand');
            return;
        }
        $this->assertInstanceOf(\Keboola\StorageDriver\Command\Bucket\ShareBucketResponse::class,
            $this->exec($this->client, $share, $this->creds));
    }

    public function testTimeTravel(): void
    {
        $this->prepare();
        $this->createTable([self::BUCKET], 't');
        $restore = (new CreateTableFromTimeTravelCommand())
            ->setSource((new CreateTableFromTimeTravelCommand\SourceTableMapping())->setPath([self::BUCKET])->setTableName('t'))
            ->setDestination((new Table())->setPath([self::BUCKET])->setTableName('t_restored'))
            ->setTimestamp(time());
        if (!$this->caps->supportsTimeTravel()) {
            $this->assertUnsupported($restore, 'CreateTableFromTimeTravelCommand');
            return;
        }
        // A moment given to the second is the end of that second, and only a second that has ended may be
        // asked for: wait for the second in which the table certainly existed to end, then restore from it.
        $created = time();
        while (time() <= $created) {
            usleep(50000);
        }
        $this->exec($this->client, $restore->setTimestamp($created), $this->creds);
        $this->assertInstanceOf(ObjectInfoResponse::class, $this->exec($this->client, (new ObjectInfoCommand())
            ->setPath([self::BUCKET, 't_restored'])->setExpectedObjectType(ObjectType::TABLE), $this->creds));
    }

    /** Credentials of a new project key created over REST with $scopeJson. */
    private function scopedCredentials(string $scopeJson): GenericBackendCredentials
    {
        $key = $this->server()->rest('POST', '/projects/' . self::PROJECT . '/keys', $this->projectKey, $scopeJson)['key'];
        return (new GenericBackendCredentials())->setHost(self::PROJECT)->setPrincipal($key);
    }

    /** @param string[] $path @param string[] $columns */
    private function createTable(array $path, string $name, array $columns = ['id', 'name']): ObjectInfoResponse
    {
        $info = $this->exec($this->client, (new CreateTableCommand())->setPath($path)->setTableName($name)
            ->setColumns(array_map(static fn (string $c) => (new TableColumnShared())->setName($c), $columns)), $this->creds);
        $this->assertInstanceOf(ObjectInfoResponse::class, $info);
        return $info;
    }

    /** Uploads $csv (with a header line) as a Storage File and imports it into the table. @param string[] $path */
    private function importCsv(array $path, string $table, string $csv, bool $incremental = false,
        ?GenericBackendCredentials $creds = null): TableImportResponse
    {
        $file = 'in/' . bin2hex(random_bytes(8)) . '.csv';
        $this->server()->uploadFile(self::PROJECT, $file, $this->projectKey, $csv);
        $options = new Any();
        $options->pack((new CsvTypeOptions())->setDelimiter(',')->setEnclosure('"'));
        $imported = $this->exec($this->client, (new TableImportFromFileCommand())
            ->setFileProvider(ImportExportShared\FileProvider::S3)
            ->setFileFormat(ImportExportShared\FileFormat::CSV)
            ->setFormatTypeOptions($options)
            ->setFilePath((new FilePath())->setPath('in')->setFileName(substr($file, 3)))
            ->setDestination((new Table())->setPath($path)->setTableName($table))
            ->setImportOptions((new ImportOptions())
                ->setImportType($incremental ? ImportOptions\ImportType::INCREMENTAL : ImportOptions\ImportType::FULL)
                ->setNumberOfIgnoredLines(1)), $creds ?? $this->creds);
        $this->assertInstanceOf(TableImportResponse::class, $imported);
        return $imported;
    }

    /** @param string[] $path @return array<int, array<int, ?string>> the rows ordered by $orderBy */
    private function preview(array $path, string $table, string $orderBy = 'id', ?GenericBackendCredentials $creds = null): array
    {
        $preview = $this->exec($this->client, (new PreviewTableCommand())->setPath($path)->setTableName($table)
            ->setOrderBy([(new ExportOrderBy())->setColumnName($orderBy)]), $creds ?? $this->creds);
        $this->assertInstanceOf(PreviewTableResponse::class, $preview);
        $rows = [];
        foreach ($preview->getRows() as $row) {
            $values = [];
            foreach ($row->getColumns() as $column) {
                $value = $column->getValue();
                $values[] = $value->hasNullValue() ? null : $value->getStringValue();
            }
            $rows[] = $values;
        }
        return $rows;
    }

    /** @param string[] $pathRestriction */
    private function query(string $sql, array $pathRestriction, int $timeout = 30): ExecuteQueryResponse
    {
        $answer = $this->exec($this->client, (new ExecuteQueryCommand())->setQuery($sql)
            ->setPathRestriction($pathRestriction)->setTimeout($timeout), $this->creds);
        $this->assertInstanceOf(ExecuteQueryResponse::class, $answer);
        return $answer;
    }

    /** @param string[] $columns @return array<int, array<int, ?string>> each row's values, NULL (no entry) as null */
    private function queryRows(ExecuteQueryResponse $answer, array $columns): array
    {
        $rows = [];
        foreach ($answer->getData()->getRows() as $row) {
            $fields = $row->getFields();
            $rows[] = array_map(static fn (string $c): ?string => isset($fields[$c]) ? $fields[$c] : null, $columns);
        }
        return $rows;
    }

    /** @return string[] */
    private function objectNames(iterable $objects): array
    {
        $names = [];
        foreach ($objects as $o) {
            $names[] = $o->getObjectName();
        }
        return $names;
    }

    private function lastMessagesText(): string
    {
        return implode("\n", array_map(static fn ($m): string => $m->getMessage(), $this->client->getLastMessages()));
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
