<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\Exception\ProtocolException;
use Duckstore\Connection\Driver\PreviewDecoder;
use Duckstore\Connection\Driver\WireFormat;
use Google\Protobuf\Any;
use Google\Protobuf\ListValue;
use Google\Protobuf\Struct;
use Google\Protobuf\Value;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse\Row;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse\Row\Column;
use PHPUnit\Framework\TestCase;

/**
 * The direct PreviewTableResponse decoder builds exactly what the protobuf runtime builds, and
 * leaves to the runtime every shape it does not handle and every malformed input.
 */
final class PreviewDecoderTest extends TestCase
{
    public function testDecodesWhatTheRuntimeDecodes(): void
    {
        mt_srand(16);
        for ($case = 0; $case < 200; $case++) {
            $bytes = self::randomPreview()->serializeToString();
            $fast = PreviewDecoder::decode($bytes);
            $this->assertNotNull($fast, "case $case: duckstore's shape must take the direct path");
            $this->assertSame(self::runtime($bytes)->serializeToString(), $fast->serializeToString(), "case $case");
        }

        // Fields in any order, repeated fields appended across concatenated messages, a scalar
        // given twice (the last one counts), non-minimal varints: all as the runtime reads them.
        $a = self::randomPreview()->serializeToString();
        $b = self::randomPreview()->serializeToString();
        $column = "\x18\x01" . "\x0a\x01x" . "\x12\x05\x1a\x03abc" . "\x0a\x01y" . "\x18\x00";
        $odd = "\x92\x00" . chr(strlen($column) + 2) . "\x0a" . chr(strlen($column)) . $column;
        foreach ([$a . $b, $odd, $odd . $a, ''] as $i => $bytes) {
            $fast = PreviewDecoder::decode($bytes);
            $this->assertNotNull($fast, "input $i");
            $this->assertSame(self::runtime($bytes)->serializeToString(), $fast->serializeToString(), "input $i");
        }
        $cell = PreviewDecoder::decode($odd)->getRows()[0]->getColumns()[0];
        $this->assertSame(['y', 'abc', false], [$cell->getColumnName(), $cell->getValue()->getStringValue(), $cell->getIsTruncated()]);

        // Every decoded cell is its own object: changing one leaves the others as decoded.
        $two = PreviewDecoder::decode(self::preview([(new Value())->setStringValue('a'), (new Value())->setStringValue('b')])->serializeToString());
        [$first, $second] = iterator_to_array($two->getRows()[0]->getColumns());
        $first->setColumnName('changed')->setIsTruncated(true)->getValue()->setStringValue('z');
        $this->assertSame(['c1', false, 'b'], [$second->getColumnName(), $second->getIsTruncated(), $second->getValue()->getStringValue()]);
        $this->assertSame('c0', PreviewDecoder::decode(self::preview([new Value()])->serializeToString())->getRows()[0]->getColumns()[0]->getColumnName());
    }

    public function testOtherShapesGoToTheRuntime(): void
    {
        $struct = (new Struct())->setFields(['k' => (new Value())->setStringValue('v')]);
        $list = (new ListValue())->setValues([(new Value())->setBoolValue(true)]);
        $shapes = [
            'struct value' => self::preview([(new Value())->setStructValue($struct)])->serializeToString(),
            'list value' => self::preview([(new Value())->setListValue($list)])->serializeToString(),
            'unknown top-level field' => self::preview([(new Value())->setStringValue('a')])->serializeToString() . "\x18\x05",
            'unknown column field' => "\x12\x06\x0a\x04\x20\x01\x0a\x00",
            'value given twice' => "\x12\x0c\x0a\x0a\x12\x03\x1a\x01a\x12\x03\x1a\x01b",
            'unknown null value' => "\x12\x06\x0a\x04\x12\x02\x08\x01",
        ];
        foreach ($shapes as $name => $bytes) {
            $this->assertNull(PreviewDecoder::decode($bytes), $name);
            $via = DuckDBDriverClient::unpack(self::packed($bytes));
            $this->assertSame(self::runtime($bytes)->serializeToString(), $via->serializeToString(), $name);
        }
        $this->assertSame('b', DuckDBDriverClient::unpack(self::packed($shapes['value given twice']))
            ->getRows()[0]->getColumns()[0]->getValue()->getStringValue(), 'merged by the runtime');
    }

    public function testMalformedBytesAreAProtocolError(): void
    {
        mt_srand(7);
        $bytes = self::randomPreview(5)->serializeToString();
        for ($cut = 1; $cut < strlen($bytes); $cut++) {
            $prefix = substr($bytes, 0, $cut);
            if (WireFormat::wellFormed($prefix)) {
                // A cut between two top-level fields is a shorter valid message.
                $this->assertSame(self::runtime($prefix)->serializeToString(), DuckDBDriverClient::unpack(self::packed($prefix))->serializeToString());
                continue;
            }
            $this->assertNull(PreviewDecoder::decode($prefix), "cut at $cut");
            try {
                DuckDBDriverClient::unpack(self::packed($prefix));
                $this->fail("cut at $cut must not decode");
            } catch (ProtocolException $e) {
                $this->assertStringContainsString('does not decode', $e->getMessage());
            }
        }

        // A string that is not UTF-8 is refused by the generated setter, on the direct path too.
        $latin1 = "\x12\x08\x0a\x06\x12\x04\x1a\x02\xe9t";
        try {
            DuckDBDriverClient::unpack(self::packed($latin1));
            $this->fail('a value that is not UTF-8 must not decode');
        } catch (ProtocolException $e) {
            $this->assertStringContainsString('utf-8', strtolower($e->getMessage()));
        }
    }

    private static function runtime(string $bytes): PreviewTableResponse
    {
        $m = new PreviewTableResponse();
        $m->mergeFromString($bytes);
        return $m;
    }

    private static function packed(string $bytes): Any
    {
        return (new Any())->setTypeUrl('type.googleapis.com/keboola.storageDriver.command.table.PreviewTableResponse')
            ->setValue($bytes);
    }

    /** @param Value[] $values one row, one column per value */
    private static function preview(array $values): PreviewTableResponse
    {
        $names = [];
        $columns = [];
        foreach ($values as $i => $v) {
            $names[] = "c$i";
            $columns[] = (new Column())->setColumnName("c$i")->setValue($v);
        }
        return (new PreviewTableResponse())->setColumns($names)->setRows([(new Row())->setColumns($columns)]);
    }

    private static function randomPreview(int $maxRows = 20): PreviewTableResponse
    {
        $texts = ['', 'a', 'customer-00042', "line\nbreak", 'Příliš žluťoučký kůň', '日本語', str_repeat('x', 300), '"quoted",comma'];
        $n = mt_rand(0, 5);
        $names = [];
        for ($c = 0; $c < $n; $c++) {
            $names[] = $texts[mt_rand(0, count($texts) - 1)];
        }
        $rows = [];
        for ($r = mt_rand(0, $maxRows); $r > 0; $r--) {
            $columns = [];
            foreach ($names as $name) {
                $column = (new Column())->setColumnName($name)->setIsTruncated(mt_rand(0, 4) === 0);
                $v = new Value();
                switch (mt_rand(0, 5)) {
                    case 0: $v->setNullValue(0); break;
                    case 1: $v->setNumberValue((mt_rand() - mt_getrandmax() / 2) / 7); break;
                    case 2: $v->setBoolValue(mt_rand(0, 1) === 1); break;
                    case 3: $v = null; break;  // a column without a value
                    default: $v->setStringValue($texts[mt_rand(0, count($texts) - 1)]);
                }
                if ($v !== null) {
                    $column->setValue($v);
                }
                $columns[] = $column;
            }
            $rows[] = (new Row())->setColumns($columns);
        }
        return (new PreviewTableResponse())->setColumns($names)->setRows($rows);
    }
}
