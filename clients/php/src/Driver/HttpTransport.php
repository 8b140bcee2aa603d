<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use CurlHandle;
use Duckstore\Connection\Driver\Exception\ConnectionException;
use Duckstore\Connection\Driver\Exception\DriverException;
use Duckstore\Connection\Driver\Exception\TimeoutException;

/**
 * HTTP/1.1 to the duckstore service with the curl extension. One curl handle lives as long as the
 * transport, so with keepAlive the TCP connection is reused from call to call (and TCP keep-alive
 * probes keep an idle one from being dropped silently); without it every call opens a fresh
 * connection. A failure to get any answer becomes a ConnectionException or TimeoutException
 * (both retryable); HTTP error statuses are returned, not thrown: mapping them is the caller's job.
 * Not safe to share between processes; one instance per client.
 */
final class HttpTransport
{
    private ?CurlHandle $curl = null;

    public function __construct(private readonly ClientConfig $config)
    {
    }

    public function __destruct()
    {
        $this->close();
    }

    /** Drops the kept-alive connection (the next call opens a new one). */
    public function close(): void
    {
        if ($this->curl !== null) {
            curl_close($this->curl);
            $this->curl = null;
        }
    }

    /** @param array<string, string> $headers */
    public function post(string $path, string $body, array $headers): HttpResponse
    {
        return $this->send('POST', $path, $body, $headers);
    }

    /** @param array<string, string> $headers */
    public function get(string $path, array $headers): HttpResponse
    {
        return $this->send('GET', $path, null, $headers);
    }

    /** @param array<string, string> $headers */
    private function send(string $method, string $path, ?string $body, array $headers): HttpResponse
    {
        if ($this->curl === null) {
            $this->curl = curl_init();
        }
        $curl = $this->curl;
        curl_reset($curl);

        $lines = ['Expect:'];  // no "100-continue" round trip before larger bodies
        foreach ($headers as $name => $value) {
            $lines[] = $name . ': ' . $value;
        }
        $received = [];
        $options = [
            CURLOPT_URL => $this->config->baseUrl . $path,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_CONNECTTIMEOUT_MS => $this->config->connectTimeoutMs,
            CURLOPT_TIMEOUT_MS => $this->config->requestTimeoutMs,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_TCP_NODELAY => true,
            CURLOPT_TCP_KEEPALIVE => $this->config->keepAlive ? 1 : 0,
            CURLOPT_FORBID_REUSE => !$this->config->keepAlive,
            CURLOPT_FRESH_CONNECT => !$this->config->keepAlive,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$received): int {
                $colon = strpos($line, ':');
                if ($colon !== false) {
                    $received[strtolower(trim(substr($line, 0, $colon)))] = trim(substr($line, $colon + 1));
                } elseif (str_starts_with($line, 'HTTP/')) {
                    $received = [];  // a new response (after a 1xx): forget the previous headers
                }
                return strlen($line);
            },
        ];
        if ($body !== null) {
            $options[CURLOPT_POST] = true;
            $options[CURLOPT_POSTFIELDS] = $body;
        } else {
            $options[CURLOPT_HTTPGET] = true;
        }
        curl_setopt_array($curl, $options);

        $answer = curl_exec($curl);
        $errno = curl_errno($curl);
        if ($answer === false || $errno !== 0) {
            $error = curl_error($curl);
            $connected = curl_getinfo($curl, CURLINFO_CONNECT_TIME) > 0;
            // A failed connection may have left the handle in a state not worth reusing.
            $this->close();
            $url = $this->config->baseUrl . $path;
            if ($errno === CURLE_OPERATION_TIMEDOUT) {
                $what = $connected
                    ? sprintf('no answer from %s within the request timeout of %d ms', $url, $this->config->requestTimeoutMs)
                    : sprintf('could not connect to %s within the connect timeout of %d ms', $url, $this->config->connectTimeoutMs);
                $class = $connected ? TimeoutException::class : ConnectionException::class;
                $code = $connected ? DriverException::ERR_TIMEOUT : DriverException::ERR_CONNECTION;
                throw new $class(sprintf('duckstore: %s (%s)', $what, $error), $code, true);
            }
            throw new ConnectionException(
                sprintf('duckstore: cannot reach %s: %s (curl error %d)', $url, $error, $errno),
                DriverException::ERR_CONNECTION,
                true,
            );
        }
        return new HttpResponse(
            (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE),
            $received,
            (string) $answer,
            (int) curl_getinfo($curl, CURLINFO_NUM_CONNECTS),
        );
    }
}
