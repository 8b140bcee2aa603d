<?php

declare(strict_types=1);

namespace Duckstore\Connection\Tests;

use Duckstore\Connection\Driver\DuckDBDriverClient;
use Duckstore\Connection\Driver\Exception\ProtocolException;
use Duckstore\Connection\Driver\PreviewDecoder;
use Duckstore\Connection\Driver\WireFormat;
use Duckstore\Connection\Tests\Support\DuckstoreServer;
use Google\Protobuf\Any;
use Google\Protobuf\Internal\Message;
use Google\Protobuf\Internal\OneofField;
use Google\Protobuf\Internal\RepeatedField;
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
        $this->assertTrue(PreviewDecoder::active(), 'the installed runtime has the layout the decoder knows');
        mt_srand(16);
        for ($case = 0; $case < 200; $case++) {
            $bytes = self::randomPreview()->serializeToString();
            $fast = PreviewDecoder::decode($bytes);
            $this->assertNotNull($fast, "case $case: duckstore's shape must take the direct path");
            $this->assertSame(self::runtime($bytes)->serializeToString(), $fast->serializeToString(), "case $case");
            // Not only the same bytes: the same objects, down to the runtime's private properties.
            $this->assertSame(self::graph(self::runtime($bytes)), self::graph($fast), "case $case");
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

        // Nor do values share their oneof holder, with each other or with the decoder's empty
        // ones: the runtime's setters change that holder in place.
        $bytes = self::preview([new Value(), new Value(), (new Value())->setNullValue(0), (new Value())->setStringValue('s'),
            (new Value())->setStringValue('t'), (new Value())->setNumberValue(1.5), (new Value())->setBoolValue(true)])->serializeToString();
        $cells = iterator_to_array(PreviewDecoder::decode($bytes)->getRows()[0]->getColumns());
        $cells[0]->getValue()->setStringValue('was empty');
        $cells[2]->getValue()->setBoolValue(false);
        $cells[3]->getValue()->setNumberValue(2.0);
        $cells[5]->getValue()->setStringValue('was a number');
        $this->assertFalse($cells[1]->getValue()->hasStringValue());
        $this->assertSame(['t', true], [$cells[4]->getValue()->getStringValue(), $cells[6]->getValue()->getBoolValue()]);
        $again = PreviewDecoder::decode($bytes);
        $this->assertSame(self::graph(self::runtime($bytes)), self::graph($again));
        $list = $again->getRows()[0]->getColumns();
        $list[] = (new Column())->setColumnName('added');
        $this->assertCount(7, PreviewDecoder::decode($bytes)->getRows()[0]->getColumns());
        $this->assertCount(8, $list);
    }

    /**
     * The decoder writes the runtime's internals, so it only runs on the layout it was written
     * for. A runtime whose classes have other properties, or that decodes the checked sample into
     * other objects, leaves every preview to the runtime: the client still returns the runtime's
     * message. Each case runs in its own PHP process with changed copies of runtime files ahead
     * of the installed ones on the include_path.
     */
    public function testAnotherRuntimeLeavesThePreviewToTheRuntime(): void
    {
        mt_srand(3);
        $bytes = self::randomPreview(8)->serializeToString() . self::preview([(new Value())->setNumberValue(0.25)])->serializeToString();
        $oneof = 'Google/Protobuf/Internal/OneofField.php';
        $repeated = 'Google/Protobuf/Internal/RepeatedField.php';
        $message = 'Google/Protobuf/Internal/Message.php';
        $wire = 'Google/Protobuf/Internal/GPBWire.php';
        $cases = [
            'the installed runtime' => [],
            'a renamed property' => [$oneof => ['private $field_name;' => 'private $name;', '$this->field_name' => '$this->name']],
            'an added property' => [$repeated => ['private $container;' => "private \$container;\n    private \$frozen = false;"]],
            'a private property made protected' => [$message => ['private $unknown = "";' => 'protected $unknown = "";']],
            'another decode of a field' => [$wire => ["\$value = unpack('d', \$data)[1];" => "\$value = -unpack('d', \$data)[1];"]],
        ];
        foreach ($cases as $name => $patches) {
            $dir = DuckstoreServer::tempDir('duckstore-php-runtime-');
            try {
                foreach ($patches as $file => $replacements) {
                    $source = file_get_contents(stream_resolve_include_path($file));
                    foreach ($replacements as $from => $to) {
                        $this->assertStringContainsString($from, $source, "$name: the installed runtime's $file");
                        $source = str_replace($from, $to, $source);
                    }
                    @mkdir(dirname("$dir/$file"), 0700, true);
                    file_put_contents("$dir/$file", $source);
                }
                $out = shell_exec(implode(' ', array_map('escapeshellarg', [
                    PHP_BINARY, '-d', 'include_path=' . $dir . PATH_SEPARATOR . get_include_path(),
                    __DIR__ . '/Support/preview_probe.php', bin2hex($bytes),
                ])) . ' 2>&1');
            } finally {
                DuckstoreServer::removeTree($dir);
            }
            $probe = json_decode((string) $out, true);
            $this->assertIsArray($probe, "$name: $out");
            $this->assertSame($patches === [], $probe['active'], $name);
            $this->assertSame($patches === [], $probe['direct'], $name);
            $this->assertSame($probe['runtime'], $probe['client'], "$name: the client returns the runtime's message");
            $this->assertSame($patches === [] || $name !== 'another decode of a field', $probe['runtime'] === bin2hex(self::runtime($bytes)->serializeToString()), $name);
        }
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

        // A string that is not UTF-8 is refused as the generated setters refuse it, wherever it
        // is: in a value, a column's name, the list of names, or split over two strings that
        // would be UTF-8 together ("\xc5\xbe" is one character).
        $notUtf8 = [
            'value' => "\x12\x08\x0a\x06\x12\x04\x1a\x02\xe9t",
            'column name' => "\x12\x08\x0a\x06\x0a\x02\xe9t\x12\x00",
            'names' => "\x0a\x01a\x0a\x02\xe9t",
            'split character' => "\x12\x0b\x0a\x09\x0a\x02a\xc5\x12\x03\x1a\x01\xbe",
            'split over names' => "\x0a\x01\xc5\x0a\x01\xbe",
        ];
        foreach ($notUtf8 as $where => $bytes) {
            $this->assertTrue(WireFormat::wellFormed($bytes), $where);
            $this->assertNull(PreviewDecoder::decode($bytes), $where);
            try {
                DuckDBDriverClient::unpack(self::packed($bytes));
                $this->fail("$where: a string that is not UTF-8 must not decode");
            } catch (ProtocolException $e) {
                $this->assertStringContainsString('utf-8', strtolower($e->getMessage()), $where);
            }
        }
        $this->assertSame('ž', PreviewDecoder::decode("\x0a\x02\xc5\xbe")->getColumns()[0]);
    }

    /**
     * A message as nested arrays of its class and every property (private and protected ones
     * too), the runtime's shared objects (descriptors) by identity, to compare with assertSame.
     */
    private static function graph(mixed $x): mixed
    {
        if (is_array($x)) {
            return array_map(self::graph(...), $x);
        }
        if ($x instanceof Message || $x instanceof OneofField || $x instanceof RepeatedField) {
            return [$x::class => self::graph((array) $x)];
        }
        return is_object($x) ? 'shared ' . $x::class . ' #' . spl_object_id($x) : $x;
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
