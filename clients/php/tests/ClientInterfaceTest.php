<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\ClientConfig;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Google\Protobuf\Internal\Message;
use PHPUnit\Framework\TestCase;

/** The client is a Keboola driver: it implements Keboola's ClientInterface when that package is present. */
final class ClientInterfaceTest extends TestCase
{
    /**
     * @runInSeparateProcess
     * @preserveGlobalState disabled
     */
    public function testKeboolasInterfaceIsUsedWhenPresent(): void
    {
        // Keboola's php-storage-driver-common declares this interface; stand in for it here.
        eval('namespace Keboola\\StorageDriver\\Contract\\Driver; use Google\\Protobuf\\Internal\\Message;
            interface ClientInterface { public function runCommand(Message $credentials, Message $command,
            array $features, Message $runtimeOptions): ?Message; }');
        $client = new DuckDBDriverClient(new ClientConfig('http://127.0.0.1:9'));
        $this->assertInstanceOf('Keboola\\StorageDriver\\Contract\\Driver\\ClientInterface', $client);
    }

    public function testOwnInterfaceHasKeboolasSignature(): void
    {
        $method = new \ReflectionMethod(\Duckstore\Connection\Driver\ClientInterface::class, 'runCommand');
        $params = array_map(static fn (\ReflectionParameter $p): string => $p->getType() . ' $' . $p->getName(), $method->getParameters());
        $this->assertSame(
            [Message::class . ' $credentials', Message::class . ' $command', 'array $features', Message::class . ' $runtimeOptions'],
            $params,
        );
        $this->assertSame('?' . Message::class, (string) $method->getReturnType());
        $this->assertInstanceOf(\Duckstore\Connection\Driver\ClientInterface::class, new DuckDBDriverClient(new ClientConfig('http://127.0.0.1:9')));
    }
}
