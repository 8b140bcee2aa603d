<?php

declare(strict_types=1);

/*
 * Per-command overhead of the PHP driver client over a raw curl POST of the same bridge call.
 *
 * Starts build/duckstore on a free port (temporary data directory), creates a project with a
 * table of ROWS rows, then times, interleaved call by call on one kept-alive connection each:
 *   raw    - curl_exec of a DriverRequest serialized once beforehand; the answer is not decoded;
 *   client - DuckDBDriverClient::runCommand() of the same command: pack, serialize, post, decode
 *            the DriverResponse, unpack the response message, forward its log messages.
 * for two commands: ObjectInfo of the table (a small answer) and PreviewTable of ROWS rows.
 *   codec  - the client's own work without the network, on the raw call's bytes: the request
 *            built and serialized, the answer decoded and unpacked (noise-free on a busy machine);
 *   generic- the same, but the response message decoded by the protobuf runtime's generic
 *            parser (what the client did before PreviewTableResponse had a direct decoder).
 * The overhead is client p50 minus raw p50, and should be close to codec p50; min is the best
 * call, the least disturbed by other load. The header gives the load average when the run starts.
 * Environment: N (calls per variant, default 2000), ROWS (default 100).
 *
 *   make bench-php            (or: php clients/php/bench/overhead.php)
 *   make bench-php BENCH_PHP_FLAGS='-d opcache.enable_cli=1 -d opcache.jit=tracing -d opcache.jit_buffer_size=64M'
 */

require dirname(__DIR__, 3) . '/build/php/vendor/autoload.php';

use Duckstore\Connection\Driver\ClientConfig;
use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Tests\Support\DuckstoreServer;
use Google\Protobuf\Any;
use Google\Protobuf\Internal\Message;
use Keboola\StorageDriver\Command\Bucket\CreateBucketCommand;
use Keboola\StorageDriver\Command\Common\DriverRequest;
use Keboola\StorageDriver\Command\Common\DriverResponse;
use Keboola\StorageDriver\Command\Common\RuntimeOptions;
use Keboola\StorageDriver\Command\Info\ObjectInfoCommand;
use Keboola\StorageDriver\Command\Info\ObjectType;
use Keboola\StorageDriver\Command\Project\CreateProjectCommand;
use Keboola\StorageDriver\Command\Table\ImportExportShared;
use Keboola\StorageDriver\Command\Table\ImportExportShared\FilePath;
use Keboola\StorageDriver\Command\Table\ImportExportShared\ImportOptions;
use Keboola\StorageDriver\Command\Table\ImportExportShared\Table;
use Keboola\StorageDriver\Command\Table\PreviewTableCommand;
use Keboola\StorageDriver\Command\Table\TableColumnShared;
use Keboola\StorageDriver\Command\Table\TableImportFromFileCommand;
use Keboola\StorageDriver\Credentials\GenericBackendCredentials;

$n = (int) (getenv('N') ?: 2000);
$rows = (int) (getenv('ROWS') ?: 100);

$server = new DuckstoreServer();
$client = new DuckDBDriverClient(new ClientConfig($server->url(), $server->adminKey));
$none = new RuntimeOptions();
$created = $client->runCommand(new GenericBackendCredentials(), (new CreateProjectCommand())->setProjectId('bench'), [], $none);
$creds = (new GenericBackendCredentials())->setHost('bench')->setPrincipal($created->getProjectPassword());
$client->runCommand($creds, (new CreateBucketCommand())->setBucketId('in.c-bench'), [], $none);
$client->runCommand($creds, (new \Keboola\StorageDriver\Command\Table\CreateTableCommand())
    ->setPath(['in.c-bench'])->setTableName('t')
    ->setColumns([
        (new TableColumnShared())->setName('id')->setType('INTEGER'),
        (new TableColumnShared())->setName('name')->setType('VARCHAR'),
        (new TableColumnShared())->setName('amount')->setType('DECIMAL')->setLength('12,2'),
    ]), [], $none);
$csv = "id,name,amount\n";
for ($i = 1; $i <= $rows; $i++) {
    $csv .= sprintf("%d,customer-%05d,%d.%02d\n", $i, $i, $i * 7, $i % 100);
}
$server->uploadFile('bench', 'in/t.csv', $created->getProjectPassword(), $csv);
$options = new Any();
$options->pack(new TableImportFromFileCommand\CsvTypeOptions());
$client->runCommand($creds, (new TableImportFromFileCommand())
    ->setFileFormat(ImportExportShared\FileFormat::CSV)->setFormatTypeOptions($options)
    ->setFilePath((new FilePath())->setPath('in')->setFileName('t.csv'))
    ->setDestination((new Table())->setPath(['in.c-bench'])->setTableName('t'))
    ->setImportOptions((new ImportOptions())->setNumberOfIgnoredLines(1)
        ->setImportStrategy(ImportOptions\ImportStrategy::USER_DEFINED_TABLE)), [], $none);

$commands = [
    'ObjectInfo (table)' => (new ObjectInfoCommand())->setPath(['in.c-bench', 't'])->setExpectedObjectType(ObjectType::TABLE),
    "PreviewTable ($rows rows)" => (new PreviewTableCommand())->setPath(['in.c-bench'])->setTableName('t'),
];

/** @return float[] milliseconds */
function percentiles(array $samples): array
{
    sort($samples);
    $at = static fn (float $p): float => $samples[min(count($samples) - 1, (int) floor($p * count($samples)))];
    return ['min' => $samples[0], 'p50' => $at(0.50), 'p90' => $at(0.90), 'p99' => $at(0.99)];
}

/**
 * The client's own work on a call, without the network: the request built and serialized as
 * runCommand() does, the answer decoded and unpacked as runCommand() does ($generic: the response
 * message, of class $generic, decoded by the runtime's generic parser instead).
 */
function codec(GenericBackendCredentials $creds, Message $command, RuntimeOptions $options, string $answer, ?string $generic): Message
{
    $request = new DriverRequest();
    $packedCredentials = new Any();
    $packedCredentials->pack($creds);
    $request->setCredentials($packedCredentials);
    $packedCommand = new Any();
    $packedCommand->pack($command);
    $request->setCommand($packedCommand);
    $request->setRuntimeOptions($options);
    $request->serializeToString();
    $decoded = new DriverResponse();
    $decoded->mergeFromString($answer);
    if ($generic === null) {
        return DuckDBDriverClient::unpack($decoded->getCommandResponse());
    }
    $message = new $generic();
    $message->mergeFromString($decoded->getCommandResponse()->getValue());
    return $message;
}

$raw = curl_init($server->url() . DuckDBDriverClient::PATH);
printf("duckstore PHP client overhead, %d calls per variant, PHP %s%s, protobuf runtime %s, preview decoder %s, load %s\n",
    $n, PHP_VERSION, function_exists('opcache_get_status') && (opcache_get_status(false)['jit']['on'] ?? false) ? ' (opcache JIT on)' : '',
    extension_loaded('protobuf') ? 'C extension' : 'pure PHP (Debian php-google-protobuf)',
    \Duckstore\Connection\Driver\PreviewDecoder::active() ? 'direct' : 'runtime (unknown layout)',
    implode(' ', array_map(static fn (float $l): string => sprintf('%.2f', $l), sys_getloadavg() ?: [])));
printf("%-23s %-7s %8s %8s %8s %8s\n", 'command', 'variant', 'min ms', 'p50 ms', 'p90 ms', 'p99 ms');
foreach ($commands as $name => $command) {
    $request = new DriverRequest();
    $c = new Any();
    $c->pack($creds);
    $request->setCredentials($c);
    $cmd = new Any();
    $cmd->pack($command);
    $request->setCommand($cmd);
    $request->setRuntimeOptions(new RuntimeOptions());
    $body = $request->serializeToString();
    curl_setopt_array($raw, [
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $body,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => ['Content-Type: application/x-protobuf', 'Authorization: Bearer ' . $created->getProjectPassword(), 'Expect:'],
    ]);
    $times = ['raw' => [], 'client' => [], 'codec' => [], 'generic' => []];
    for ($i = -200; $i < $n; $i++) {  // the first 200 rounds warm up and are not counted
        $t0 = hrtime(true);
        $answer = curl_exec($raw);
        $t1 = hrtime(true);
        $message = $client->runCommand($creds, $command, [], $none);
        $t2 = hrtime(true);
        if ($answer === false || curl_getinfo($raw, CURLINFO_RESPONSE_CODE) !== 200 || !$message instanceof Message) {
            fwrite(STDERR, "bench: a call failed\n");
            exit(1);
        }
        $t3 = hrtime(true);
        codec($creds, $command, $none, $answer, null);
        $t4 = hrtime(true);
        codec($creds, $command, $none, $answer, $message::class);
        $t5 = hrtime(true);
        if ($i >= 0) {
            $times['raw'][] = ($t1 - $t0) / 1e6;
            $times['client'][] = ($t2 - $t1) / 1e6;
            $times['codec'][] = ($t4 - $t3) / 1e6;
            $times['generic'][] = ($t5 - $t4) / 1e6;
        }
    }
    $p = [];
    foreach ($times as $variant => $samples) {
        $p[$variant] = percentiles($samples);
        printf("%-23s %-7s %8.3f %8.3f %8.3f %8.3f\n", $name, $variant, $p[$variant]['min'], $p[$variant]['p50'], $p[$variant]['p90'], $p[$variant]['p99']);
    }
    printf("%-23s %-7s %17.3f   (client p50 - raw p50)\n", $name, 'overhd', $p['client']['p50'] - $p['raw']['p50']);
}
curl_close($raw);
exit($server->stop() === 0 ? 0 : 1);
