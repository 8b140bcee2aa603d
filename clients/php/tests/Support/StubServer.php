<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests\Support;

use RuntimeException;

/** `php -S` with stub_router.php on a free port: scripted failures in front of a real duckstore. */
final class StubServer
{
    public readonly int $port;
    private readonly string $dir;
    /** @var resource */
    private $proc;

    /**
     * @param array<int, array<string, mixed>> $steps the answers to the first requests, in order
     * @param array<string, mixed> $then the answer to every later request
     */
    public function __construct(string $upstream, array $steps, array $then = ['proxy' => true])
    {
        $this->dir = DuckstoreServer::tempDir('duckstore-stub-');
        file_put_contents($this->dir . '/plan.json', json_encode(['upstream' => $upstream, 'steps' => $steps, 'then' => $then]));
        $this->port = DuckstoreServer::freePort();
        $env = getenv();
        $env['DS_STUB_DIR'] = $this->dir;
        $this->proc = proc_open(
            [PHP_BINARY, '-S', '127.0.0.1:' . $this->port, __DIR__ . '/stub_router.php'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $this->dir . '/out.log', 'w'], 2 => ['file', $this->dir . '/err.log', 'w']],
            $pipes,
            null,
            $env,
        );
        $deadline = microtime(true) + 10;
        while (microtime(true) < $deadline) {
            $s = @stream_socket_client('tcp://127.0.0.1:' . $this->port, $errno, $errstr, 0.2);
            if ($s !== false) {
                fclose($s);
                return;
            }
            usleep(20000);
        }
        throw new RuntimeException('the PHP stub server did not start: ' . @file_get_contents($this->dir . '/err.log'));
    }

    public function __destruct()
    {
        proc_terminate($this->proc, 15);
        proc_close($this->proc);
        DuckstoreServer::removeTree($this->dir);
    }

    public function url(): string
    {
        return 'http://127.0.0.1:' . $this->port;
    }

    /** How many requests reached the stub. */
    public function hits(): int
    {
        return is_file($this->dir . '/hits.log') ? count(file($this->dir . '/hits.log')) : 0;
    }
}
