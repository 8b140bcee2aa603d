<?php

declare(strict_types=1);

/*
 * PreviewDecoderTest's probe of another protobuf runtime: run with changed runtime files first on
 * the include_path, it decodes the PreviewTableResponse given in hex as the client does and as the
 * runtime does, and prints JSON: whether the direct decoder is in use, whether it decoded, and
 * the serialized messages (hex) of the client and of the runtime.
 */

require dirname(__DIR__, 4) . '/build/php/vendor/autoload.php';

use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\PreviewDecoder;
use Google\Protobuf\Any;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;

$bytes = hex2bin($argv[1]);
$runtime = new PreviewTableResponse();
$runtime->mergeFromString($bytes);
$client = DuckDBDriverClient::unpack((new Any())
    ->setTypeUrl('type.googleapis.com/keboola.storageDriver.command.table.PreviewTableResponse')->setValue($bytes));
echo json_encode([
    'active' => PreviewDecoder::active(),
    'direct' => PreviewDecoder::decode($bytes) !== null,
    'client' => bin2hex($client->serializeToString()),
    'runtime' => bin2hex($runtime->serializeToString()),
]), "\n";
