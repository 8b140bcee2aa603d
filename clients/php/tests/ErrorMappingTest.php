<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\Exception\AlreadyExistsException;
use Duckstore\Connection\Driver\Exception\AuthenticationException;
use Duckstore\Connection\Driver\Exception\CommandNotSupportedException;
use Duckstore\Connection\Driver\Exception\ConflictException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\NotFoundException;
use Duckstore\Connection\Driver\Exception\PermissionDeniedException;
use Duckstore\Connection\Driver\Exception\ValidationException;
use Duckstore\Connection\Tests\Support\DriverTestCase;
use InvalidArgumentException;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Bucket\DropBucketCommand;
use Keboola\StorageDriver\Command\Common\LogMessage;
use Keboola\StorageDriver\Command\Common\RuntimeOptions;
use Keboola\StorageDriver\Command\Info\ObjectInfoCommand;
use Keboola\StorageDriver\Command\Info\ObjectType;
use Keboola\StorageDriver\Command\Info\TableInfo;
use Keboola\StorageDriver\Command\Table\CreateTableCommand;
use Keboola\StorageDriver\Command\Table\TableColumnShared;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;

/** Each kind of failure the service reports arrives as the exception Connection expects. */
final class ErrorMappingTest extends DriverTestCase
{
    public function testServiceErrorsMapToKeboolaExceptionsAndCodes(): void
    {
        $client = $this->client();
        $creds = $this->project($client, 'errs');
        $this->exec($client, (new CreateBucketCommand())->setBucketId('in.c-main'), $creds);

        // Validation: the field at fault travels with the exception; nothing is created.
        $bad = $this->expectDriverError(ValidationException::class, DriverException::ERR_VALIDATION, fn () =>
            $this->exec($client, (new CreateTableCommand())->setPath(['in.c-main'])->setTableName('t')
                ->setColumns([(new TableColumnShared())->setName('a')->setType('NOT_A_TYPE')]), $creds));
        $this->assertFalse($bad->isRetryable());
        $this->assertSame(400, $bad->getHttpStatus());
        $this->assertSame(3, $bad->getGrpcStatus());
        $this->assertSame('invalid_argument', $bad->getStatus());
        $this->assertStringContainsString('NOT_A_TYPE', $bad->getMessage());
        $this->assertStringNotContainsString('[3000]', $bad->getMessage(), 'the code is getCode(), not part of the text');
        $this->assertSame(1, $bad->getAttempts(), 'a validation error is never sent again');
        $schema = $this->exec($client, (new ObjectInfoCommand())->setPath(['in.c-main'])->setExpectedObjectType(ObjectType::SCHEMA), $creds);
        $this->assertCount(0, $schema->getSchemaInfo()->getObjects(), 'a refused CreateTable must create nothing');
        // The Error message of the answer reached the logger as a PSR-3 "error" with its context.
        $errors = array_values(array_filter($this->logger->records, static fn ($r) => $r[0] === 'error'));
        $this->assertNotEmpty($errors);
        $this->assertSame(3000, end($errors)[2]['code'] ?? null);
        $messages = $bad->getLogMessages();
        $this->assertSame(LogMessage\Level::Error, end($messages)->getLevel());

        $this->expectDriverError(NotFoundException::class, DriverException::ERR_TABLE_NOT_FOUND, fn () =>
            $this->exec($client, (new ObjectInfoCommand())->setPath(['in.c-main', 'missing'])->setExpectedObjectType(ObjectType::TABLE), $creds));
        $missingBucket = $this->expectDriverError(NotFoundException::class, DriverException::ERR_SCHEMA_NOT_FOUND, fn () =>
            $this->exec($client, (new ObjectInfoCommand())->setPath(['in.c-nope'])->setExpectedObjectType(ObjectType::SCHEMA), $creds));
        $this->assertFalse($missingBucket->isRetryable());
        $this->assertSame(404, $missingBucket->getHttpStatus());

        $dup = $this->expectDriverError(AlreadyExistsException::class, DriverException::ERR_OBJECT_ALREADY_EXISTS, fn () =>
            $this->exec($client, (new CreateBucketCommand())->setBucketId('in.c-main'), $creds));
        $this->assertFalse($dup->isRetryable());

        $this->exec($client, (new CreateTableCommand())->setPath(['in.c-main'])->setTableName('t')
            ->setColumns([(new TableColumnShared())->setName('a')]), $creds);
        $conflict = $this->expectDriverError(ConflictException::class, DriverException::ERR_VALIDATION, fn () =>
            $this->exec($client, (new DropBucketCommand())->setBucketObjectName('in.c-main'), $creds));
        $this->assertFalse($conflict->isRetryable());
        $this->assertSame(9, $conflict->getGrpcStatus());

        $wrongKey = (new GenericBackendCredentials())->setHost('errs')->setPrincipal('not-a-key');
        $auth = $this->expectDriverError(AuthenticationException::class, DriverException::ERR_AUTHENTICATION, fn () =>
            $this->exec($client, (new ObjectInfoCommand())->setPath([]), $wrongKey));
        $this->assertSame(401, $auth->getHttpStatus());
        $this->assertFalse($auth->isRetryable());

        // A project's key on another project, and on an admin command.
        $other = $this->project($client, 'errs_other');
        $onOther = (new GenericBackendCredentials())->setHost('errs_other')->setPrincipal($creds->getPrincipal());
        $this->expectDriverError(PermissionDeniedException::class, DriverException::ERR_PERMISSION_DENIED, fn () =>
            $this->exec($client, (new ObjectInfoCommand())->setPath([]), $onOther));
        $this->expectDriverError(PermissionDeniedException::class, DriverException::ERR_PERMISSION_DENIED, fn () =>
            $this->exec($client, (new \Keboola\StorageDriver\Command\Project\CreateProjectCommand())->setProjectId('x'), $other));

        // A message that is no command at all.
        $unsupported = $this->expectDriverError(CommandNotSupportedException::class, DriverException::ERR_COMMAND_NOT_SUPPORTED, fn () =>
            $this->exec($client, new TableInfo(), $creds));
        $this->assertFalse($unsupported->isRetryable());
        $this->assertStringContainsString('keboola.storageDriver.command.info.TableInfo', $unsupported->getMessage());
    }

    public function testBadArgumentsAreRefusedBeforeAnythingIsSent(): void
    {
        $client = $this->client(['baseUrl' => 'http://127.0.0.1:9', 'maxRetries' => 0]);
        try {
            $client->runCommand(new GenericBackendCredentials(), new ObjectInfoCommand(), [42], new RuntimeOptions());
            $this->fail('a feature that is not a string must be refused');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('features[0]', $e->getMessage());
        }
        try {
            $client->runCommand(new GenericBackendCredentials(), new ObjectInfoCommand(), [], new GenericBackendCredentials());
            $this->fail('runtimeOptions of another type must be refused');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('runtimeOptions', $e->getMessage());
        }
        $this->assertSame(0, $client->getLastAttempts(), 'nothing was sent');

        try {
            new \Duckstore\Connection\Driver\DuckDBDriverClient(new \Duckstore\Connection\Driver\ClientConfig('http://127.0.0.1:9'), new \stdClass());
            $this->fail('a logger that is not PSR-3 must be refused');
        } catch (InvalidArgumentException $e) {
            $this->assertSame('logger: stdClass does not implement Psr\\Log\\LoggerInterface', $e->getMessage());
        }
    }
}
