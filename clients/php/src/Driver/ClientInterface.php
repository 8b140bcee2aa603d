<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use Google\Protobuf\Internal\Message;

/*
 * Keboola's driver interface. When Keboola's php-storage-driver-common is installed, this name is
 * an alias of its Keboola\StorageDriver\Contract\Driver\ClientInterface, so the duckstore client
 * is accepted wherever Connection expects a driver; otherwise the package declares the same
 * interface itself.
 */
if (interface_exists('Keboola\\StorageDriver\\Contract\\Driver\\ClientInterface')) {
    class_alias('Keboola\\StorageDriver\\Contract\\Driver\\ClientInterface', ClientInterface::class);
} else {
    interface ClientInterface
    {
        /**
         * Runs one driver command and returns its response message (null when the command has none).
         *
         * @param string[] $features
         */
        public function runCommand(
            Message $credentials,
            Message $command,
            array $features,
            Message $runtimeOptions,
        ): ?Message;
    }
}
