<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use Google\Protobuf\Internal\Message;
use Google\Protobuf\Internal\OneofField;
use Google\Protobuf\Internal\RepeatedField;
use Google\Protobuf\Value;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse\Row;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse\Row\Column;

/**
 * A direct decoder of PreviewTableResponse, the largest answer Connection asks for often.
 *
 * Debian's pure-PHP protobuf runtime decodes generically: for every field of every nested message
 * it looks the field up in the descriptor, reads through a stream object and dispatches through
 * several calls, and each message it constructs walks its descriptor to set its defaults (a
 * google.protobuf.Value makes six oneof holders for its one field); a 100-row preview (some 700
 * messages) takes several milliseconds that way. This class walks the bytes in one loop and builds
 * the same generated objects without their constructors and setters: each message is a clone of
 * an empty one made once by the runtime, and its fields are written in the class's own scope
 * (bound closures), after the decoder has checked what the setters would check (UTF-8 of every
 * string, the types it writes).
 *
 * That relies on the runtime's internal layout (the properties of Message, OneofField,
 * RepeatedField and of the generated classes). The layout is checked once, when the decoder is
 * first used: the classes must have exactly the properties of the runtime this was written for
 * (Debian's php-google-protobuf 3.21), and a sample covering every shape must decode to an object
 * graph identical, property by property, to the runtime's own decode. Otherwise (another runtime
 * version, the C extension) decode() always returns null and the caller decodes with the runtime.
 *
 * It handles exactly the shape duckstore sends: column names, rows of columns with a name, a
 * google.protobuf.Value holding null, a string, a number or a bool, and the truncation flag.
 * Anything else (an unknown field, another wire type, a struct or list value, a value field given
 * twice, an unknown null value, a string that is not UTF-8) makes decode() return null, and the
 * caller decodes with the runtime, which knows every rule and throws its own errors. Bytes that
 * are cut off or overrun a length also give null, so the caller's own well-formedness check
 * reports them.
 */
final class PreviewDecoder
{
    // Tags: field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited). Public only
    // for the parser, which runs in the runtime's Message scope.
    public const RESPONSE_COLUMNS = 10;   // repeated string columns = 1
    public const RESPONSE_ROWS = 18;      // repeated Row rows = 2
    public const ROW_COLUMNS = 10;        // repeated Column columns = 1
    public const COLUMN_NAME = 10;        // string columnName = 1
    public const COLUMN_VALUE = 18;       // google.protobuf.Value value = 2
    public const COLUMN_TRUNCATED = 24;   // bool isTruncated = 3
    public const VALUE_NULL = 8;          // NullValue null_value = 1
    public const VALUE_NUMBER = 17;       // double number_value = 2
    public const VALUE_STRING = 26;       // string string_value = 3
    public const VALUE_BOOL = 32;         // bool bool_value = 4

    /**
     * The instance properties (name => visibility) of each class the decoder writes, as the runtime
     * it was written for has them; properties of a parent class are listed under the parent.
     */
    private const LAYOUT = [
        Message::class => ['desc' => 'private', 'unknown' => 'private'],
        OneofField::class => ['desc' => 'private', 'field_name' => 'private', 'number' => 'private', 'value' => 'private'],
        RepeatedField::class => ['container' => 'private', 'type' => 'private', 'klass' => 'private', 'legacy_klass' => 'private'],
        Value::class => ['kind' => 'protected'],
        Column::class => ['columnName' => 'protected', 'value' => 'protected', 'isTruncated' => 'protected'],
        Row::class => ['columns' => 'private'],
        PreviewTableResponse::class => ['columns' => 'private', 'rows' => 'private'],
    ];

    /** The decoding function (false: the runtime's layout is not the known one; null: not checked yet). */
    private static \Closure|false|null $direct = null;

    /**
     * @return PreviewTableResponse|null the message, or null when the bytes are not of the shape
     *         this decoder handles or the runtime is not the one it knows (decode with the runtime then)
     */
    public static function decode(string $bytes): ?PreviewTableResponse
    {
        $direct = self::$direct ??= self::prepare();
        return $direct === false ? null : $direct($bytes);
    }

    /** Whether the direct path is in use, i.e. the runtime's layout is the one the decoder knows. */
    public static function active(): bool
    {
        self::$direct ??= self::prepare();
        return self::$direct !== false;
    }

    /** The decoding function, or false when the runtime's layout is not the known one. */
    private static function prepare(): \Closure|false
    {
        try {
            if (!self::layoutKnown()) {
                return false;
            }
            $direct = self::build();
            return self::sameGraph(self::runtime($sample = self::sample()), $direct($sample)) ? $direct : false;
        } catch (\Throwable) {
            return false;  // e.g. a property that became typed or read-only in another version
        }
    }

    private static function layoutKnown(): bool
    {
        foreach (self::LAYOUT as $class => $expected) {
            $reflection = new \ReflectionClass($class);
            if ($reflection->isInternal() || $reflection->hasMethod('__clone')) {
                return false;  // the C extension, or a copy that is not a plain property copy
            }
            $found = [];
            foreach ($reflection->getProperties() as $property) {
                if ($property->isStatic() || $property->getDeclaringClass()->getName() !== $class) {
                    continue;
                }
                if ($property->isReadOnly() || $property->hasType()) {
                    return false;
                }
                $found[$property->getName()] = $property->isPrivate() ? 'private' : ($property->isProtected() ? 'protected' : 'public');
            }
            ksort($found);
            ksort($expected);
            if ($found !== $expected) {
                return false;
            }
        }
        return true;
    }

    /**
     * Builds the decoding function: a parser bound to Message's scope (it writes the protected
     * fields of Column and Value), then the repeated fields, rows and response, each written in
     * its own class's scope, from clones of empty objects the runtime made.
     */
    private static function build(): \Closure
    {
        $response = new PreviewTableResponse();
        $row = new Row();
        $readKind = \Closure::bind(static fn (Value $v): OneofField => $v->kind, null, Message::class);
        $empty = new Value();
        $emptyKind = $readKind($empty);
        $kinds = [
            self::VALUE_NULL => $readKind((new Value())->setNullValue(0)),
            self::VALUE_NUMBER => $readKind((new Value())->setNumberValue(0.0)),
            self::VALUE_STRING => $readKind((new Value())->setStringValue('')),
            self::VALUE_BOOL => $readKind((new Value())->setBoolValue(false)),
        ];
        $varint = self::varint(...);

        $column0 = new Column();
        $parse = \Closure::bind(static function (string $bytes) use ($varint, $column0, $empty, $emptyKind, $kinds): ?array {
            $pos = 0;
            $end = strlen($bytes);
            $names = [];
            $cells = [];    // per row, its Column objects
            $strings = [];  // every string read, for one UTF-8 check
            while ($pos < $end) {
                $tag = ord($bytes[$pos]);
                if ($tag < 0x80) {
                    $pos++;
                } else {
                    $tag = $varint($bytes, $pos, $end);
                }
                $len = $pos < $end ? ord($bytes[$pos]) : 0x80;  // past the end: the varint reader gives -1
                if ($len < 0x80) {
                    $pos++;
                } else {
                    $len = $varint($bytes, $pos, $end);
                }
                if ($len < 0 || $len > $end - $pos) {
                    return null;
                }
                if ($tag === PreviewDecoder::RESPONSE_COLUMNS) {
                    $strings[] = $names[] = substr($bytes, $pos, $len);
                    $pos += $len;
                    continue;
                }
                if ($tag !== PreviewDecoder::RESPONSE_ROWS) {
                    return null;
                }
                $rowEnd = $pos + $len;
                $columns = [];
                while ($pos < $rowEnd) {
                    if (ord($bytes[$pos++]) !== PreviewDecoder::ROW_COLUMNS) {
                        return null;
                    }
                    $len = $pos < $rowEnd ? ord($bytes[$pos]) : 0x80;
                    if ($len < 0x80) {
                        $pos++;
                    } else {
                        $len = $varint($bytes, $pos, $rowEnd);
                    }
                    if ($len < 0 || $len > $rowEnd - $pos) {
                        return null;
                    }
                    $columnEnd = $pos + $len;
                    $column = clone $column0;
                    $hasValue = false;
                    while ($pos < $columnEnd) {
                        $tag = ord($bytes[$pos]);
                        if ($tag < 0x80) {
                            $pos++;
                        } else {
                            $tag = $varint($bytes, $pos, $columnEnd);
                        }
                        if ($tag === PreviewDecoder::COLUMN_TRUNCATED) {
                            $flag = $varint($bytes, $pos, $columnEnd);
                            if ($flag === -1) {
                                return null;
                            }
                            $column->isTruncated = $flag !== 0;
                            continue;
                        }
                        $len = $pos < $columnEnd ? ord($bytes[$pos]) : 0x80;
                        if ($len < 0x80) {
                            $pos++;
                        } else {
                            $len = $varint($bytes, $pos, $columnEnd);
                        }
                        if ($len < 0 || $len > $columnEnd - $pos) {
                            return null;
                        }
                        if ($tag === PreviewDecoder::COLUMN_NAME) {
                            $strings[] = $column->columnName = substr($bytes, $pos, $len);
                            $pos += $len;
                            continue;
                        }
                        // A message field given twice is merged by protobuf: leave that to the runtime.
                        if ($tag !== PreviewDecoder::COLUMN_VALUE || $hasValue) {
                            return null;
                        }
                        $hasValue = true;
                        $valueEnd = $pos + $len;
                        $kind = clone $emptyKind;
                        while ($pos < $valueEnd) {
                            $tag = ord($bytes[$pos++]);
                            if ($tag === PreviewDecoder::VALUE_STRING) {
                                $len = $pos < $valueEnd ? ord($bytes[$pos]) : 0x80;
                                if ($len < 0x80) {
                                    $pos++;
                                } else {
                                    $len = $varint($bytes, $pos, $valueEnd);
                                }
                                if ($len < 0 || $len > $valueEnd - $pos) {
                                    return null;
                                }
                                $kind = clone $kinds[PreviewDecoder::VALUE_STRING];
                                $kind->setValue($strings[] = substr($bytes, $pos, $len));
                                $pos += $len;
                            } elseif ($tag === PreviewDecoder::VALUE_NULL) {
                                // NULL_VALUE is the only null value; others keep the runtime's rules.
                                if ($pos >= $valueEnd || $bytes[$pos++] !== "\0") {
                                    return null;
                                }
                                $kind = clone $kinds[PreviewDecoder::VALUE_NULL];
                                $kind->setValue(0);
                            } elseif ($tag === PreviewDecoder::VALUE_NUMBER) {
                                if ($valueEnd - $pos < 8) {
                                    return null;
                                }
                                $kind = clone $kinds[PreviewDecoder::VALUE_NUMBER];
                                $kind->setValue(unpack('e', $bytes, $pos)[1]);
                                $pos += 8;
                            } elseif ($tag === PreviewDecoder::VALUE_BOOL) {
                                $flag = $varint($bytes, $pos, $valueEnd);
                                if ($flag === -1) {
                                    return null;
                                }
                                $kind = clone $kinds[PreviewDecoder::VALUE_BOOL];
                                $kind->setValue($flag !== 0);
                            } else {
                                return null;  // a multi-byte tag, another field or wire type
                            }
                        }
                        $value = clone $empty;
                        $value->kind = $kind;
                        $column->value = $value;
                    }
                    $columns[] = $column;
                }
                $cells[] = $columns;
            }
            return [$names, $cells, $strings];
        }, null, Message::class);

        $stringList = $response->getColumns();
        $rowList = $response->getRows();
        $columnList = $row->getColumns();
        $lists = \Closure::bind(static function (RepeatedField $empty, array $items): RepeatedField {
            $list = clone $empty;
            $list->container = $items;
            return $list;
        }, null, RepeatedField::class);
        $rows = \Closure::bind(static function (array $cells) use ($row, $columnList, $lists): array {
            foreach ($cells as $i => $columns) {
                $cells[$i] = clone $row;
                $cells[$i]->columns = $lists($columnList, $columns);
            }
            return $cells;
        }, null, Row::class);
        $whole = \Closure::bind(static function (array $names, array $rows) use ($response, $stringList, $rowList, $lists): PreviewTableResponse {
            $message = clone $response;
            $message->columns = $lists($stringList, $names);
            $message->rows = $lists($rowList, $rows);
            return $message;
        }, null, PreviewTableResponse::class);

        return static function (string $bytes) use ($parse, $rows, $whole): ?PreviewTableResponse {
            $parsed = $parse($bytes);
            // A string that is not UTF-8 is refused by the runtime's setters: let it throw its error.
            // Strings joined by an ASCII byte are UTF-8 exactly when each one is.
            if ($parsed === null || !preg_match('//u', implode("\n", $parsed[2]))) {
                return null;
            }
            return $whole($parsed[0], $rows($parsed[1]));
        };
    }

    /**
     * An answer with every shape the decoder handles: each kind of value, a value with no kind, a
     * cell with no value, the truncation flag, a string longer than 127 bytes, non-ASCII text and
     * a non-minimal varint tag.
     */
    private static function sample(): string
    {
        $cells = [
            (new Column())->setColumnName('id')->setValue((new Value())->setStringValue('42')),
            (new Column())->setColumnName('název')->setValue((new Value())->setNullValue(0))->setIsTruncated(true),
            (new Column())->setColumnName('n')->setValue((new Value())->setNumberValue(-2.5)),
            (new Column())->setColumnName('b')->setValue((new Value())->setBoolValue(true)),
            (new Column())->setColumnName('e')->setValue(new Value()),
            (new Column())->setColumnName('m'),
            (new Column())->setValue((new Value())->setStringValue(str_repeat('ž', 100))),
        ];
        $message = (new PreviewTableResponse())->setColumns(['id', 'název', 'n', 'b', 'e', 'm', ''])
            ->setRows([(new Row())->setColumns($cells), new Row()]);
        return $message->serializeToString() . "\x92\x00\x04\x0a\x02\x0a\x00";
    }

    private static function runtime(string $bytes): PreviewTableResponse
    {
        $message = new PreviewTableResponse();
        $message->mergeFromString($bytes);
        return $message;
    }

    /**
     * Whether two values are the same object graph: objects of the same class whose properties
     * (private and protected ones too) are the same, recursively, or one shared instance; arrays
     * with the same keys in the same order; scalars identical.
     */
    private static function sameGraph(mixed $a, mixed $b): bool
    {
        if (is_object($a) && is_object($b)) {
            if ($a === $b) {
                return true;
            }
            return $a::class === $b::class && self::sameGraph((array) $a, (array) $b);
        }
        if (is_array($a) && is_array($b)) {
            if (array_keys($a) !== array_keys($b)) {
                return false;
            }
            foreach ($a as $key => $item) {
                if (!self::sameGraph($item, $b[$key])) {
                    return false;
                }
            }
            return true;
        }
        return $a === $b;
    }

    /** Reads a varint at $pos (advancing it): -1 when cut off, longer than 10 bytes or above PHP_INT_MAX. */
    private static function varint(string $bytes, int &$pos, int $end): int
    {
        $value = 0;
        for ($shift = 0; $shift < 63; $shift += 7) {
            if ($pos >= $end) {
                return -1;
            }
            $b = ord($bytes[$pos++]);
            $value |= ($b & 0x7f) << $shift;
            if ($b < 0x80) {
                return $value;
            }
        }
        return -1;
    }
}
