<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests\Support;

use RuntimeException;

/**
 * The real build/duckstore on a free loopback port with a temporary data directory, as an operator
 * runs it (`serve --data-dir ... --http-addr ... --grpc-addr off`, DUCKSTORE_ADMIN_KEY set).
 * stop() sends SIGTERM and returns the exit code; the destructor kills what is still running and
 * removes the directory. DUCKSTORE_TEST_BINARY points at another binary (the ASan build).
 */
final class DuckstoreServer
{
    private const START_TIMEOUT = 15.0;
    private const STOP_TIMEOUT = 20.0;

    public readonly string $dir;
    public readonly string $adminKey;
    public int $port;
    /** @var resource|null */
    private $proc = null;

    /** @param array<string, string> $env extra DUCKSTORE_* settings */
    public function __construct(array $env = [])
    {
        $root = dirname(__DIR__, 4);
        $binary = getenv('DUCKSTORE_TEST_BINARY') ?: $root . '/build/duckstore';
        if (!is_executable($binary)) {
            throw new RuntimeException("$binary does not exist: build it with `make` first");
        }
        $this->dir = self::tempDir('duckstore-php-');
        mkdir($this->dir . '/data');
        $this->adminKey = 'php-admin-' . bin2hex(random_bytes(16));

        $vars = [];
        foreach (getenv() as $k => $v) {
            if (!str_starts_with($k, 'DUCKSTORE_')) {
                $vars[$k] = $v;
            }
        }
        $vars['DUCKSTORE_ADMIN_KEY'] = $this->adminKey;
        $vars = array_merge($vars, $env);
        // A free port may be taken by another process between the probe and duckstore's bind; then
        // /health could answer from that process. Only an answer to our own admin key counts.
        for ($try = 1; ; $try++) {
            $port = self::freePort();
            $argv = [$binary, 'serve', '--data-dir', $this->dir . '/data', '--http-addr', '127.0.0.1:' . $port, '--grpc-addr', 'off'];
            $this->proc = proc_open($argv, [
                0 => ['file', '/dev/null', 'r'],
                1 => ['file', $this->dir . '/stdout.log', 'w'],
                2 => ['file', $this->dir . '/stderr.log', 'a'],
            ], $pipes, $root, $vars);
            if (!is_resource($this->proc)) {
                throw new RuntimeException('could not start ' . $binary);
            }
            $this->port = $port;
            try {
                $this->waitHealthy();
                if ($this->raw('GET', '/backends', $this->adminKey)[0] === 200 && proc_get_status($this->proc)['running']) {
                    return;
                }
            } catch (RuntimeException $e) {
                if ($try >= 3) {
                    throw $e;
                }
            }
            if ($try >= 3) {
                throw new RuntimeException("duckstore did not answer to its own admin key on port $port:\n" . $this->logTail());
            }
            proc_terminate($this->proc, 9);
            proc_close($this->proc);
            $this->proc = null;
        }
    }

    public function __destruct()
    {
        if ($this->proc !== null) {
            proc_terminate($this->proc, 9);
            proc_close($this->proc);
            $this->proc = null;
        }
        self::removeTree($this->dir);
    }

    public function url(): string
    {
        return 'http://127.0.0.1:' . $this->port;
    }

    /** SIGTERM and wait; returns the exit code. */
    public function stop(): int
    {
        if ($this->proc === null) {
            throw new RuntimeException('server not running');
        }
        proc_terminate($this->proc, 15);
        $deadline = microtime(true) + self::STOP_TIMEOUT;
        while (($st = proc_get_status($this->proc))['running']) {
            if (microtime(true) > $deadline) {
                proc_terminate($this->proc, 9);
                throw new RuntimeException('duckstore did not exit within ' . self::STOP_TIMEOUT . " s of SIGTERM:\n" . $this->logTail());
            }
            usleep(20000);
        }
        proc_close($this->proc);
        $this->proc = null;
        return $st['exitcode'];
    }

    public function logTail(int $lines = 30): string
    {
        $text = @file_get_contents($this->dir . '/stderr.log') ?: '';
        return implode("\n", array_slice(explode("\n", trim($text)), -$lines));
    }

    /** Uploads a Storage File (REST: POST /projects/{id}/files?name=<key>). Returns the file's JSON. */
    public function uploadFile(string $projectId, string $key, string $apiKey, string $content): array
    {
        return $this->rest('POST', "/projects/$projectId/files?name=" . rawurlencode($key), $apiKey, $content, 'application/octet-stream');
    }

    /** Downloads the Storage File with that exact key. */
    public function downloadFile(string $projectId, string $key, string $apiKey): string
    {
        $list = $this->rest('GET', "/projects/$projectId/files?prefix=" . rawurlencode($key), $apiKey);
        foreach ($list['items'] ?? [] as $f) {
            if (($f['name'] ?? null) === $key) {
                return $this->raw('GET', "/projects/$projectId/files/{$f['id']}/download", $apiKey)[1];
            }
        }
        throw new RuntimeException("file \"$key\" not found in project $projectId: " . json_encode($list));
    }

    /** A REST call that must answer 2xx with JSON. */
    public function rest(string $method, string $path, string $apiKey, ?string $body = null, string $type = 'application/json'): array
    {
        [$status, $text] = $this->raw($method, $path, $apiKey, $body, $type);
        if ($status < 200 || $status > 299) {
            throw new RuntimeException("$method $path: HTTP $status: $text");
        }
        return $text === '' ? [] : json_decode($text, true, 512, JSON_THROW_ON_ERROR);
    }

    /** @return array{0: int, 1: string} */
    public function raw(string $method, string $path, string $apiKey, ?string $body = null, string $type = 'application/json'): array
    {
        $c = curl_init($this->url() . $path);
        curl_setopt_array($c, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => 30,
            CURLOPT_HTTPHEADER => ['Authorization: Bearer ' . $apiKey, 'Content-Type: ' . $type, 'Expect:'],
        ]);
        if ($body !== null) {
            curl_setopt($c, CURLOPT_POSTFIELDS, $body);
        }
        $text = curl_exec($c);
        $status = curl_getinfo($c, CURLINFO_RESPONSE_CODE);
        curl_close($c);
        if ($text === false) {
            throw new RuntimeException("$method $path: no answer");
        }
        return [$status, $text];
    }

    private function waitHealthy(): void
    {
        $deadline = microtime(true) + self::START_TIMEOUT;
        while (microtime(true) < $deadline) {
            $st = proc_get_status($this->proc);
            if (!$st['running']) {
                throw new RuntimeException("duckstore exited with {$st['exitcode']} during startup:\n" . $this->logTail());
            }
            $c = curl_init($this->url() . '/health');
            curl_setopt_array($c, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT_MS => 2000]);
            curl_exec($c);
            $code = curl_getinfo($c, CURLINFO_RESPONSE_CODE);
            curl_close($c);
            if ($code === 200) {
                return;
            }
            usleep(50000);
        }
        throw new RuntimeException('GET /health not 200 within ' . self::START_TIMEOUT . " s:\n" . $this->logTail());
    }

    public static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($s === false) {
            throw new RuntimeException("no free port: $errstr");
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    public static function tempDir(string $prefix): string
    {
        $dir = sys_get_temp_dir() . '/' . $prefix . bin2hex(random_bytes(6));
        mkdir($dir, 0700);
        return $dir;
    }

    public static function removeTree(string $dir): void
    {
        if (!is_dir($dir)) {
            return;
        }
        $it = new \RecursiveIteratorIterator(
            new \RecursiveDirectoryIterator($dir, \FilesystemIterator::SKIP_DOTS),
            \RecursiveIteratorIterator::CHILD_FIRST,
        );
        foreach ($it as $f) {
            $f->isDir() && !$f->isLink() ? rmdir($f->getPathname()) : unlink($f->getPathname());
        }
        rmdir($dir);
    }
}
