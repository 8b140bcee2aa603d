<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\Exception\AuthenticationException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\NotFoundException;
use Duckstore\Connection\Tests\Support\DriverTestCase;
use Google\Protobuf\Any;
use Keboola\StorageDriver\Command\Backend\InitBackendCommand;
use Keboola\StorageDriver\Command\Backend\InitBackendResponse;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Bucket\CreateBucketResponse;
use Keboola\StorageDriver\Command\Bucket\DropBucketCommand;
use Keboola\StorageDriver\Command\Info\ObjectInfoCommand;
use Keboola\StorageDriver\Command\Info\ObjectInfoResponse;
use Keboola\StorageDriver\Command\Info\ObjectType;
use Keboola\StorageDriver\Command\Project\CreateProjectResponse;
use Keboola\StorageDriver\Command\Project\DropProjectCommand;
use Keboola\StorageDriver\Command\Table\AddColumnCommand;
use Keboola\StorageDriver\Command\Table\CreateTableCommand;
use Keboola\StorageDriver\Command\Table\DeleteTableRowsCommand;
use Keboola\StorageDriver\Command\Table\DeleteTableRowsResponse;
use Keboola\StorageDriver\Command\Table\DropTableCommand;
use Keboola\StorageDriver\Command\Table\ImportExportShared;
use Keboola\StorageDriver\Command\Table\ImportExportShared\ExportOrderBy;
use Keboola\StorageDriver\Command\Table\ImportExportShared\FilePath;
use Keboola\StorageDriver\Command\Table\ImportExportShared\ImportOptions;
use Keboola\StorageDriver\Command\Table\ImportExportShared\Table;
use Keboola\StorageDriver\Command\Table\ImportExportShared\TableWhereFilter;
use Keboola\StorageDriver\Command\Table\PreviewTableCommand;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;
use Keboola\StorageDriver\Command\Table\TableColumnShared;
use Keboola\StorageDriver\Command\Table\TableExportToFileCommand;
use Keboola\StorageDriver\Command\Table\TableExportToFileResponse;
use Keboola\StorageDriver\Command\Table\TableImportFromFileCommand;
use Keboola\StorageDriver\Command\Table\TableImportFromFileCommand\CsvTypeOptions;
use Keboola\StorageDriver\Command\Table\TableImportResponse;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;

/** Keboola Connection's table lifecycle, command by command, through the PHP client. */
final class DriverFlowTest extends DriverTestCase
{
    public function testWholeKeboolaFlowThroughTheClient(): void
    {
        $client = $this->client();

        $init = $this->exec($client, new InitBackendCommand());
        $this->assertInstanceOf(InitBackendResponse::class, $init);
        $this->assertNotEmpty($this->logger->messages('info'), 'InitBackend sends an Informational message: it must reach the logger');

        $created = $this->exec($client, (new \Keboola\StorageDriver\Command\Project\CreateProjectCommand())->setProjectId('php_flow'));
        $this->assertInstanceOf(CreateProjectResponse::class, $created);
        $this->assertSame('php_flow', $created->getProjectUserName());
        $this->assertNotSame('', $created->getProjectPassword());
        $creds = (new GenericBackendCredentials())->setHost('php_flow')->setPrincipal($created->getProjectPassword());

        // An option without effect comes back as a Warning message: a PSR-3 warning with its text.
        $this->assertNull($this->exec($client, (new \Keboola\StorageDriver\Command\Project\UpdateProjectCommand())
            ->setProjectId('php_flow')->setTimezone('Europe/Prague')));
        $this->assertCount(1, $this->logger->messages('warning'));
        $this->assertStringContainsString('timezone', $this->logger->messages('warning')[0]);

        $bucket = $this->exec($client, (new CreateBucketCommand())->setBucketId('in.c-main'), $creds);
        $this->assertInstanceOf(CreateBucketResponse::class, $bucket);
        $this->assertSame(['in.c-main'], iterator_to_array($bucket->getPath()));
        $this->assertSame('in.c-main', $bucket->getCreateBucketObjectName());

        $info = $this->exec($client, (new CreateTableCommand())
            ->setPath(['in.c-main'])->setTableName('orders')
            ->setColumns([
                (new TableColumnShared())->setName('id')->setType('INTEGER'),
                (new TableColumnShared())->setName('name')->setType('VARCHAR')->setNullable(true),
                (new TableColumnShared())->setName('amount')->setType('DECIMAL')->setLength('12,2')->setNullable(true),
            ])
            ->setPrimaryKeysNames(['id']), $creds);
        $this->assertInstanceOf(ObjectInfoResponse::class, $info);
        $this->assertSame(['id', 'name', 'amount'], $this->columnNames($info));
        $this->assertSame(['id'], iterator_to_array($info->getTableInfo()->getPrimaryKeysNames()));

        $this->server()->uploadFile('php_flow', 'in/orders.csv', $created->getProjectPassword(),
            "id,name,amount\n1,alice,10.50\n2,bob,20.00\n3,carol,\n");
        $csv = new Any();
        $csv->pack((new CsvTypeOptions())->setDelimiter(',')->setEnclosure('"'));
        $imported = $this->exec($client, (new TableImportFromFileCommand())
            ->setFileProvider(ImportExportShared\FileProvider::S3)
            ->setFileFormat(ImportExportShared\FileFormat::CSV)
            ->setFormatTypeOptions($csv)
            ->setFilePath((new FilePath())->setPath('in')->setFileName('orders.csv'))
            ->setDestination((new Table())->setPath(['in.c-main'])->setTableName('orders'))
            ->setImportOptions((new ImportOptions())
                ->setImportType(ImportOptions\ImportType::FULL)
                ->setNumberOfIgnoredLines(1)
                ->setImportStrategy(ImportOptions\ImportStrategy::USER_DEFINED_TABLE)), $creds);
        $this->assertInstanceOf(TableImportResponse::class, $imported);
        $this->assertSame(3, (int) $imported->getImportedRowsCount());
        $this->assertSame(3, (int) $imported->getTableRowsCount());

        $this->assertSame([['1', 'alice', '10.50'], ['2', 'bob', '20.00'], ['3', 'carol', null]], $this->preview($client, $creds));

        $table = $this->exec($client, (new ObjectInfoCommand())->setPath(['in.c-main', 'orders'])->setExpectedObjectType(ObjectType::TABLE), $creds);
        $this->assertSame(ObjectType::TABLE, $table->getObjectType());
        $this->assertSame(3, (int) $table->getTableInfo()->getRowsCount());
        $this->assertSame(['INTEGER', 'VARCHAR', 'DECIMAL'], array_map(
            static fn ($c): string => $c->getType(), iterator_to_array($table->getTableInfo()->getColumns())));
        $schema = $this->exec($client, (new ObjectInfoCommand())->setPath(['in.c-main'])->setExpectedObjectType(ObjectType::SCHEMA), $creds);
        $this->assertSame(['orders'], $this->objectNames($schema->getSchemaInfo()->getObjects()));
        $database = $this->exec($client, (new ObjectInfoCommand())->setPath([])->setExpectedObjectType(ObjectType::DATABASE), $creds);
        $this->assertSame(['in.c-main'], $this->objectNames($database->getDatabaseInfo()->getObjects()));

        $exported = $this->exec($client, (new TableExportToFileCommand())
            ->setSource((new Table())->setPath(['in.c-main'])->setTableName('orders'))
            ->setFileProvider(ImportExportShared\FileProvider::S3)
            ->setFileFormat(ImportExportShared\FileFormat::CSV)
            ->setFilePath((new FilePath())->setPath('out')->setFileName('orders.csv'))
            ->setExportOptions((new ImportExportShared\ExportOptions())
                ->setColumnsToExport(['id', 'name'])
                ->setOrderBy([(new ExportOrderBy())->setColumnName('id')])), $creds);
        $this->assertInstanceOf(TableExportToFileResponse::class, $exported);
        $this->assertSame('orders', $exported->getTableInfo()->getTableName());
        $this->assertStringContainsString('out/orders.csv', implode("\n", array_map(
            static fn ($m): string => $m->getMessage(), $client->getLastMessages())));
        $file = $this->server()->downloadFile('php_flow', 'out/orders.csv', $created->getProjectPassword());
        $this->assertSame(['"id","name"', '"1","alice"', '"2","bob"', '"3","carol"'], preg_split('/\r?\n/', trim($file)));

        $added = $this->exec($client, (new AddColumnCommand())->setPath(['in.c-main'])->setTableName('orders')
            ->setColumnDefinition((new TableColumnShared())->setName('note')->setType('VARCHAR')->setNullable(true)), $creds);
        $this->assertInstanceOf(ObjectInfoResponse::class, $added);
        $this->assertSame(['id', 'name', 'amount', 'note'], $this->columnNames($added));

        $deleted = $this->exec($client, (new DeleteTableRowsCommand())->setPath(['in.c-main'])->setTableName('orders')
            ->setWhereFilters([(new TableWhereFilter())->setColumnsName('id')
                ->setOperator(TableWhereFilter\Operator::eq)->setValues(['2'])
                ->setDataType(ImportExportShared\DataType::INTEGER)]), $creds);
        $this->assertInstanceOf(DeleteTableRowsResponse::class, $deleted);
        $this->assertSame(1, (int) $deleted->getDeletedRowsCount());
        $this->assertSame(2, (int) $deleted->getTableRowsCount());
        $this->assertSame([['1', 'alice', '10.50', null], ['3', 'carol', null, null]], $this->preview($client, $creds));

        $this->assertNull($this->exec($client, (new DropTableCommand())->setPath(['in.c-main'])->setTableName('orders'), $creds));
        $gone = $this->expectDriverError(NotFoundException::class, DriverException::ERR_TABLE_NOT_FOUND, fn () =>
            $this->exec($client, (new ObjectInfoCommand())->setPath(['in.c-main', 'orders'])->setExpectedObjectType(ObjectType::TABLE), $creds));
        $this->assertFalse($gone->isRetryable());

        $this->assertNull($this->exec($client, (new DropBucketCommand())->setBucketObjectName('in.c-main'), $creds));
        $empty = $this->exec($client, (new ObjectInfoCommand())->setPath([])->setExpectedObjectType(ObjectType::DATABASE), $creds);
        $this->assertSame([], $this->objectNames($empty->getDatabaseInfo()->getObjects()));

        $this->assertNull($this->exec($client, (new DropProjectCommand())->setProjectDatabaseName('php_flow')));
        // The project's key went with it.
        $this->expectDriverError(AuthenticationException::class, DriverException::ERR_AUTHENTICATION, fn () =>
            $this->exec($client, (new ObjectInfoCommand())->setPath([]), $creds));
    }

    public function testRunIdBecomesTheRequestIdAndKeysCannotCarryHeaders(): void
    {
        $client = $this->client();
        $creds = $this->project($client, 'run_ids');
        $client->runCommand($creds, new \Keboola\StorageDriver\Command\Info\ListSchemasCommand(), [],
            (new \Keboola\StorageDriver\Command\Common\RuntimeOptions())->setRunId('connection-run-4711'));
        $this->assertStringContainsString('"request_id":"connection-run-4711"', $this->server()->logTail(200),
            "the service's log line of the call carries Connection's run id");

        try {
            $this->exec($client, new \Keboola\StorageDriver\Command\Info\ListSchemasCommand(),
                (new GenericBackendCredentials())->setHost('run_ids')->setPrincipal($creds->getPrincipal() . "\r\nX-Evil: 1"));
            $this->fail('a key with a line break must be refused');
        } catch (\InvalidArgumentException $e) {
            $this->assertStringContainsString('control characters', $e->getMessage());
        }
    }

    /** @return string[] */
    private function columnNames(ObjectInfoResponse $info): array
    {
        return array_map(static fn ($c): string => $c->getName(), iterator_to_array($info->getTableInfo()->getColumns()));
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

    /** @return array<int, array<int, ?string>> the table's rows by id, SQL NULL as null */
    private function preview($client, GenericBackendCredentials $creds): array
    {
        $preview = $this->exec($client, (new PreviewTableCommand())->setPath(['in.c-main'])->setTableName('orders')
            ->setOrderBy([(new ExportOrderBy())->setColumnName('id')->setDataType(ImportExportShared\DataType::INTEGER)]), $creds);
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
}
