<?php

declare(strict_types=1);

/*
 * Router script for `php -S`: a scripted stand-in for a proxy in front of duckstore. The test
 * writes $DS_STUB_DIR/plan.json: {"upstream": "http://127.0.0.1:<port>", "steps": [...], "then": step}.
 * Request n (counted in hits.log, one line per request) gets steps[n], or "then" once the steps
 * are used up. A step is {"proxy": true} (forward to duckstore, relay status, headers and body) or
 * {"status": 503, "headers": {...}, "body": "..."} ("body_b64" for bytes).
 */

$dir = getenv('DS_STUB_DIR');
$plan = json_decode((string) file_get_contents($dir . '/plan.json'), true);
$hits = is_file($dir . '/hits.log') ? count(file($dir . '/hits.log')) : 0;
file_put_contents($dir . '/hits.log', $_SERVER['REQUEST_METHOD'] . ' ' . $_SERVER['REQUEST_URI'] . "\n", FILE_APPEND);
$step = $plan['steps'][$hits] ?? $plan['then'];

if (!empty($step['proxy'])) {
    $headers = ['Expect:'];
    foreach (['Authorization', 'Content-Type', 'Accept'] as $name) {
        $key = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
        $value = $_SERVER[$key] ?? ($name === 'Content-Type' ? ($_SERVER['CONTENT_TYPE'] ?? null) : null);
        if ($value !== null) {
            $headers[] = "$name: $value";
        }
    }
    $relayed = [];
    $c = curl_init($plan['upstream'] . $_SERVER['REQUEST_URI']);
    curl_setopt_array($c, [
        CURLOPT_CUSTOMREQUEST => $_SERVER['REQUEST_METHOD'],
        CURLOPT_POSTFIELDS => file_get_contents('php://input'),
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 30,
        CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$relayed): int {
            if (preg_match('/^(content-type|grpc-status|grpc-message|keboola-code|retry-after):\s*(.*?)\s*$/i', $line, $m)) {
                $relayed[] = $m[1] . ': ' . $m[2];
            }
            return strlen($line);
        },
    ]);
    $body = curl_exec($c);
    http_response_code((int) curl_getinfo($c, CURLINFO_RESPONSE_CODE));
    foreach ($relayed as $h) {
        header($h);
    }
    echo $body;
    return true;
}

http_response_code($step['status']);
foreach ($step['headers'] ?? [] as $name => $value) {
    header("$name: $value");
}
echo isset($step['body_b64']) ? base64_decode($step['body_b64']) : ($step['body'] ?? '');
return true;
