<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\WireFormat;
use Keboola\StorageDriver\Command\Info\TableInfo;
use PHPUnit\Framework\TestCase;

/** The structural check that stands in for the errors the pure-PHP protobuf runtime does not raise. */
final class WireFormatTest extends TestCase
{
    public function testWholeMessagesPassAndEveryCutInsideAFieldFails(): void
    {
        $info = (new TableInfo())->setPath(['in.c-main'])->setTableName('orders')->setRowsCount(300)
            ->setSizeBytes(1 << 40)->setPrimaryKeysNames(['id']);
        $bytes = $info->serializeToString();
        $this->assertTrue(WireFormat::wellFormed($bytes));
        $this->assertTrue(WireFormat::wellFormed(''));

        // The offsets where a top-level field ends: cutting there leaves a shorter valid message.
        $boundaries = [];
        $fields = [(new TableInfo())->setPath(['in.c-main']), (new TableInfo())->setTableName('orders'),
            (new TableInfo())->setPrimaryKeysNames(['id']), (new TableInfo())->setRowsCount(300), (new TableInfo())->setSizeBytes(1 << 40)];
        $offset = 0;
        foreach ($fields as $f) {
            $offset += strlen($f->serializeToString());
            $boundaries[] = $offset;
        }
        $this->assertSame(strlen($bytes), $offset, 'the fields above are the whole message');
        for ($cut = 1; $cut < strlen($bytes); $cut++) {
            $this->assertSame(in_array($cut, $boundaries, true), WireFormat::wellFormed(substr($bytes, 0, $cut)), "cut at $cut");
        }
        foreach (["\x00", "\x0b", "\x0f\x00", "\xff\xff\xff", "\x08" . str_repeat("\xff", 10) . "\x01"] as $bad) {
            $this->assertFalse(WireFormat::wellFormed($bad), bin2hex($bad));
        }
    }
}
