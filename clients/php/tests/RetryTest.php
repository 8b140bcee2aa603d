<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\Exception\ConnectionException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\ProtocolException;
use Duckstore\Connection\Driver\Exception\ServiceUnavailableException;
use Duckstore\Connection\Driver\Exception\TimeoutException;
use Duckstore\Connection\Driver\Exception\ValidationException;
use Duckstore\Connection\Tests\Support\DriverTestCase;
use Duckstore\Connection\Tests\Support\DuckstoreServer;
use Duckstore\Connection\Tests\Support\StubServer;
use Google\Protobuf\Any;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Common\DriverResponse;
use Keboola\StorageDriver\Command\Info\ListSchemasCommand;
use Keboola\StorageDriver\Command\Info\ListSchemasResponse;
use Keboola\StorageDriver\Command\Project\CreateProjectCommand;
use Keboola\StorageDriver\Command\Project\CreateProjectResponse;

/** Retries with backoff on 503/429/timeouts, none on other errors, and bounded failure when the service is gone. */
final class RetryTest extends DriverTestCase
{
    private const UNAVAILABLE = ['status' => 503, 'headers' => ['Content-Type' => 'text/plain'], 'body' => 'service restarting'];

    public function testUnavailableTwiceThenTheRealAnswer(): void
    {
        $stub = new StubServer($this->server()->url(), [self::UNAVAILABLE, self::UNAVAILABLE]);
        $client = $this->client(['baseUrl' => $stub->url(), 'serviceKey' => $this->server()->adminKey, 'maxRetries' => 3]);

        $created = $this->exec($client, (new CreateProjectCommand())->setProjectId('retried'));
        $this->assertInstanceOf(CreateProjectResponse::class, $created);
        $this->assertSame('retried', $created->getProjectUserName());
        $this->assertSame(3, $client->getLastAttempts());
        $this->assertSame(3, $stub->hits(), 'two 503s, then the answer from duckstore');
        $warnings = $this->logger->messages('warning');
        $this->assertCount(2, $warnings, 'each retry is logged');
        $this->assertStringContainsString('attempt 1 of 4', $warnings[0]);
        $this->assertStringContainsString('service restarting', $warnings[0]);
    }

    public function testTooManyRequestsIsRetriedAndHonorsRetryAfterWithinTheCap(): void
    {
        $busy = ['status' => 429, 'headers' => ['Retry-After' => '1', 'grpc-status' => '8', 'keboola-code' => '2006'], 'body' => ''];
        $stub = new StubServer($this->server()->url(), [$busy]);
        $client = $this->client(['baseUrl' => $stub->url(), 'serviceKey' => $this->server()->adminKey, 'maxBackoffMs' => 300]);
        $t0 = microtime(true);
        $this->assertInstanceOf(CreateProjectResponse::class, $this->exec($client, (new CreateProjectCommand())->setProjectId('busy')));
        $elapsed = microtime(true) - $t0;
        $this->assertSame(2, $stub->hits());
        $this->assertGreaterThanOrEqual(0.29, $elapsed, 'Retry-After asked for 1 s; the wait is capped at maxBackoffMs (300 ms)');
        $this->assertLessThan(5.0, $elapsed);
    }

    public function testRetriesAreBoundedAndTheLastErrorIsThrown(): void
    {
        $stub = new StubServer($this->server()->url(), [], self::UNAVAILABLE);
        $client = $this->client(['baseUrl' => $stub->url(), 'maxRetries' => 2]);
        $e = $this->expectDriverError(ServiceUnavailableException::class, DriverException::ERR_CONNECTION, fn () =>
            $this->exec($client, new ListSchemasCommand()));
        $this->assertTrue($e->isRetryable());
        $this->assertSame(503, $e->getHttpStatus());
        $this->assertSame(3, $e->getAttempts());
        $this->assertSame(3, $stub->hits());
        $this->assertStringContainsString('service restarting', $e->getMessage());
    }

    public function testNonRetryableErrorsAreSentOnce(): void
    {
        $stub = new StubServer($this->server()->url(), []);
        $client = $this->client(['baseUrl' => $stub->url(), 'serviceKey' => $this->server()->adminKey]);
        $creds = $this->project($client, 'once');
        $this->expectDriverError(ValidationException::class, DriverException::ERR_VALIDATION, fn () =>
            $this->exec($client, (new CreateBucketCommand())->setBucketId('in.c-bad name!'), $creds));
        $this->assertSame(2, $stub->hits(), 'CreateProject once, the refused CreateBucket once');
        $this->assertSame(1, $client->getLastAttempts());
    }

    public function testServerThatIsDownGivesAClearExceptionInBoundedTime(): void
    {
        $client = $this->client(['maxRetries' => 2, 'backoffMs' => 50, 'maxBackoffMs' => 100]);
        $creds = $this->project($client, 'down');
        $this->assertInstanceOf(ListSchemasResponse::class, $this->exec($client, new ListSchemasCommand(), $creds));
        $url = $this->server()->url();
        $this->assertSame(0, $this->server()->stop());

        $t0 = microtime(true);
        $e = $this->expectDriverError(ConnectionException::class, DriverException::ERR_CONNECTION, fn () =>
            $this->exec($client, new ListSchemasCommand(), $creds));
        $elapsed = microtime(true) - $t0;
        $this->assertTrue($e->isRetryable());
        $this->assertNull($e->getHttpStatus());
        $this->assertSame(3, $e->getAttempts());
        $this->assertStringContainsString($url . '/driver/execute', $e->getMessage());
        $this->assertLessThan(3.0, $elapsed, 'three refused connections and two short waits');
        $this->forgetServer();  // stopped above: teardown has nothing left to stop
    }

    public function testServerThatAcceptsButNeverAnswersTimesOutInBoundedTime(): void
    {
        // A listening socket nobody accepts from: the kernel completes the handshake, no answer ever comes.
        $socket = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        $this->assertNotFalse($socket, $errstr);
        $client = $this->client([
            'baseUrl' => 'http://' . stream_socket_get_name($socket, false),
            'requestTimeoutMs' => 300,
            'maxRetries' => 1,
            'backoffMs' => 50,
            'maxBackoffMs' => 50,
        ]);
        $t0 = microtime(true);
        $e = $this->expectDriverError(TimeoutException::class, DriverException::ERR_TIMEOUT, fn () =>
            $this->exec($client, new ListSchemasCommand()));
        $elapsed = microtime(true) - $t0;
        $once = $this->client([
            'baseUrl' => 'http://' . stream_socket_get_name($socket, false),
            'requestTimeoutMs' => 300,
            'retryTimeouts' => false,
        ]);
        $this->assertSame(1, $this->expectDriverError(TimeoutException::class, DriverException::ERR_TIMEOUT, fn () =>
            $this->exec($once, new ListSchemasCommand()))->getAttempts(), 'retryTimeouts: false sends once');
        fclose($socket);
        $this->assertTrue($e->isRetryable());
        $this->assertSame(2, $e->getAttempts());
        $this->assertStringContainsString('300 ms', $e->getMessage());
        $this->assertGreaterThanOrEqual(0.6, $elapsed, 'two attempts of 300 ms each');
        $this->assertLessThan(2.5, $elapsed);
    }

    public function testAProxysErrorPageIsMappedByItsStatus(): void
    {
        $badGateway = ['status' => 502, 'headers' => ['Content-Type' => 'text/html'], 'body' => "<html><body>\n<h1>502 Bad Gateway</h1></body></html>"];
        $stub = new StubServer($this->server()->url(), [], $badGateway);
        $client = $this->client(['baseUrl' => $stub->url(), 'maxRetries' => 1]);
        $e = $this->expectDriverError(ServiceUnavailableException::class, DriverException::ERR_CONNECTION, fn () =>
            $this->exec($client, new ListSchemasCommand()));
        $this->assertNull($e->getGrpcStatus());
        $this->assertSame(502, $e->getHttpStatus());
        $this->assertStringContainsString('HTTP 502: <html><body> <h1>502 Bad Gateway', $e->getMessage());
        $this->assertSame(2, $stub->hits());
    }

    public function testAnswersTheClientCannotReadAreProtocolErrorsAndNotRetried(): void
    {
        $unknown = new DriverResponse();
        $any = new Any();
        $any->setTypeUrl('type.googleapis.com/acme.storage.NoSuchResponse');
        $any->setValue('');
        $unknown->setCommandResponse($any);
        $truncated = new DriverResponse();
        $any = new Any();
        $any->setTypeUrl('type.googleapis.com/keboola.storageDriver.command.info.ListSchemasResponse');
        $any->setValue("\x0a\x09in.c-");  // a schema name of 9 bytes, cut after 5
        $truncated->setCommandResponse($any);
        $badName = new DriverResponse();
        $any = new Any();
        $any->setTypeUrl('type.googleapis.com/..\\Evil\\Class');
        $badName->setCommandResponse($any);
        $cases = [
            [['status' => 200, 'headers' => ['Content-Type' => 'text/html'], 'body' => '<html>login</html>'], 'the answer is not a DriverResponse'],
            [['status' => 200, 'headers' => ['Content-Type' => 'application/x-protobuf'], 'body_b64' => base64_encode("\xff\xff\xff")], 'the answer is not a DriverResponse'],
            [['status' => 200, 'headers' => ['Content-Type' => 'application/x-protobuf'], 'body_b64' => base64_encode($unknown->serializeToString())], 'acme.storage.NoSuchResponse" has no generated PHP class'],
            [['status' => 200, 'headers' => ['Content-Type' => 'application/x-protobuf'], 'body_b64' => base64_encode($badName->serializeToString())], 'does not name a protobuf message'],
            [['status' => 200, 'headers' => ['Content-Type' => 'application/x-protobuf'], 'body_b64' => base64_encode($truncated->serializeToString())], 'ListSchemasResponse in the response does not decode'],
        ];
        foreach ($cases as [$step, $expected]) {
            $stub = new StubServer($this->server()->url(), [], $step);
            $client = $this->client(['baseUrl' => $stub->url()]);
            $e = $this->expectDriverError(ProtocolException::class, DriverException::ERR_UNKNOWN, fn () =>
                $this->exec($client, new ListSchemasCommand()));
            $this->assertStringContainsString($expected, $e->getMessage());
            $this->assertFalse($e->isRetryable());
            $this->assertSame(1, $stub->hits());
        }
    }

    public function testKeepAliveReusesTheConnection(): void
    {
        $client = $this->client();
        $creds = $this->project($client, 'alive');
        $this->exec($client, new ListSchemasCommand(), $creds);
        $this->assertSame(0, $client->getLastNewConnections(), 'keep-alive: the second call reuses the first one\'s connection');

        $fresh = $this->client(['keepAlive' => false]);
        $this->exec($fresh, new ListSchemasCommand(), $creds);
        $this->exec($fresh, new ListSchemasCommand(), $creds);
        $this->assertSame(1, $fresh->getLastNewConnections(), 'without keep-alive every call connects');
    }
}
