<?php

declare(strict_types=1);

/*
 * Finds the runtime libraries that Debian installs outside Composer, so the package needs nothing
 * from a remote registry: the protobuf runtime (php-google-protobuf: Google\Protobuf\*,
 * GPBMetadata\Google\*) and PSR-3 (php-psr-log: Psr\Log\*). Debian puts them under /usr/share/php,
 * which is on PHP's default include_path; they are looked up through the include_path, so another
 * layout works when its directory is on the include_path too. When a project installs these
 * libraries with Composer instead (Keboola Connection does), Composer's own autoloader finds them
 * first and this one is never asked.
 */

spl_autoload_register(static function (string $class): void {
    foreach (['Google\\Protobuf\\', 'GPBMetadata\\Google\\', 'Psr\\Log\\'] as $prefix) {
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = stream_resolve_include_path(str_replace('\\', '/', $class) . '.php');
            if ($file !== false) {
                require_once $file;
            }
            return;
        }
    }
});
