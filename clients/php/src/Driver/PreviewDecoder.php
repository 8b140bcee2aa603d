<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

use Google\Protobuf\DescriptorPool;
use Google\Protobuf\Internal\GPBLabel;
use Google\Protobuf\Internal\Message;
use Google\Protobuf\Value;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse\Row;
use Keboola\StorageDriver\Command\Table\PreviewTableResponse\Row\Column;

/**
 * A direct decoder of PreviewTableResponse, the largest answer Connection asks for often.
 *
 * Debian's pure-PHP protobuf runtime decodes generically: for every field of every nested message
 * it looks the field up in the descriptor, reads through a stream object and dispatches through
 * several calls; a 100-row preview (some 700 messages) takes several milliseconds that way. This
 * class walks the bytes in one loop per nesting level and fills the same generated classes through
 * their public setters, so the result is the same object the runtime would build (same UTF-8 and
 * type checks, which throw the runtime's own exceptions).
 *
 * It handles exactly the shape duckstore sends: column names, rows of columns with a name, a
 * google.protobuf.Value holding null, a string, a number or a bool, and the truncation flag.
 * Anything else (an unknown field, another wire type, a struct or list value, a value field given
 * twice, an unknown null value) makes decode() return null, and the caller decodes with the
 * runtime, which knows every rule. Bytes that are cut off or overrun a length also give null, so
 * the caller's own well-formedness check reports them.
 */
final class PreviewDecoder
{
    // Tags: field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited).
    private const RESPONSE_COLUMNS = 10;   // repeated string columns = 1
    private const RESPONSE_ROWS = 18;      // repeated Row rows = 2
    private const ROW_COLUMNS = 10;        // repeated Column columns = 1
    private const COLUMN_NAME = 10;        // string columnName = 1
    private const COLUMN_VALUE = 18;       // google.protobuf.Value value = 2
    private const COLUMN_TRUNCATED = 24;   // bool isTruncated = 3
    private const VALUE_NULL = 8;          // NullValue null_value = 1
    private const VALUE_NUMBER = 17;       // double number_value = 2
    private const VALUE_STRING = 26;       // string string_value = 3
    private const VALUE_BOOL = 32;         // bool bool_value = 4

    /**
     * An empty Column to clone (false: construct each one). Cloning skips the runtime's
     * descriptor walk in the constructor; it is only right for a message whose fields are all
     * singular and outside oneofs (their values are plain PHP values or message references, so a
     * clone of an empty one is an independent empty one), which cloneable() checks once against
     * the generated descriptor.
     */
    private static Column|false|null $emptyColumn = null;

    /**
     * @return PreviewTableResponse|null the message, or null when the bytes are not of the shape
     *         this decoder handles (decode them with the runtime then)
     * @throws \Exception from a generated setter (e.g. a string that is not UTF-8), as the runtime throws it
     */
    public static function decode(string $bytes): ?PreviewTableResponse
    {
        $pos = 0;
        $end = strlen($bytes);
        $names = [];
        $rows = [];
        while ($pos < $end) {
            $tag = self::varint($bytes, $pos, $end);
            $len = self::varint($bytes, $pos, $end);
            if ($len < 0 || $len > $end - $pos) {
                return null;
            }
            if ($tag === self::RESPONSE_COLUMNS) {
                $names[] = substr($bytes, $pos, $len);
            } elseif ($tag === self::RESPONSE_ROWS) {
                $row = self::row($bytes, $pos, $pos + $len);
                if ($row === null) {
                    return null;
                }
                $rows[] = $row;
            } else {
                return null;
            }
            $pos += $len;
        }
        $response = new PreviewTableResponse();
        $response->setColumns($names);
        $response->setRows($rows);
        return $response;
    }

    private static function row(string $bytes, int $pos, int $end): ?Row
    {
        $columns = [];
        while ($pos < $end) {
            if (self::varint($bytes, $pos, $end) !== self::ROW_COLUMNS) {
                return null;
            }
            $len = self::varint($bytes, $pos, $end);
            if ($len < 0 || $len > $end - $pos) {
                return null;
            }
            $column = self::column($bytes, $pos, $pos + $len);
            if ($column === null) {
                return null;
            }
            $columns[] = $column;
            $pos += $len;
        }
        $row = new Row();
        $row->setColumns($columns);
        return $row;
    }

    private static function column(string $bytes, int $pos, int $end): ?Column
    {
        self::$emptyColumn ??= self::cloneable(new Column());
        $column = self::$emptyColumn === false ? new Column() : clone self::$emptyColumn;
        $hasValue = false;
        while ($pos < $end) {
            $tag = self::varint($bytes, $pos, $end);
            if ($tag === self::COLUMN_TRUNCATED) {
                $flag = self::varint($bytes, $pos, $end);
                if ($flag === -1) {
                    return null;
                }
                $column->setIsTruncated($flag !== 0);
                continue;
            }
            if ($tag !== self::COLUMN_NAME && $tag !== self::COLUMN_VALUE) {
                return null;
            }
            $len = self::varint($bytes, $pos, $end);
            if ($len < 0 || $len > $end - $pos) {
                return null;
            }
            if ($tag === self::COLUMN_NAME) {
                $column->setColumnName(substr($bytes, $pos, $len));
            } else {
                // A message field given twice is merged by protobuf: leave that to the runtime.
                $value = $hasValue ? null : self::value($bytes, $pos, $pos + $len);
                if ($value === null) {
                    return null;
                }
                $column->setValue($value);
                $hasValue = true;
            }
            $pos += $len;
        }
        return $column;
    }

    private static function value(string $bytes, int $pos, int $end): ?Value
    {
        $value = new Value();
        while ($pos < $end) {
            $tag = self::varint($bytes, $pos, $end);
            if ($tag === self::VALUE_STRING) {
                $len = self::varint($bytes, $pos, $end);
                if ($len < 0 || $len > $end - $pos) {
                    return null;
                }
                $value->setStringValue(substr($bytes, $pos, $len));
                $pos += $len;
            } elseif ($tag === self::VALUE_NULL) {
                if (self::varint($bytes, $pos, $end) !== 0) {
                    return null;  // NULL_VALUE is the only null value; others keep the runtime's rules
                }
                $value->setNullValue(0);
            } elseif ($tag === self::VALUE_NUMBER) {
                if ($end - $pos < 8) {
                    return null;
                }
                $value->setNumberValue(unpack('e', $bytes, $pos)[1]);
                $pos += 8;
            } elseif ($tag === self::VALUE_BOOL) {
                $flag = self::varint($bytes, $pos, $end);
                if ($flag === -1) {
                    return null;
                }
                $value->setBoolValue($flag !== 0);
            } else {
                return null;
            }
        }
        return $value;
    }

    /** $empty when its message's fields are all singular and outside oneofs, else false. */
    private static function cloneable(Message $empty): Message|false
    {
        // The descriptor exists once the class was constructed (which loads its file's metadata).
        $descriptor = DescriptorPool::getGeneratedPool()->getDescriptorByClassName($empty::class);
        if ($descriptor === null || $descriptor->getOneofDeclCount() !== 0) {
            return false;
        }
        for ($i = 0; $i < $descriptor->getFieldCount(); $i++) {
            if ($descriptor->getField($i)->getLabel() === GPBLabel::REPEATED) {
                return false;
            }
        }
        return $empty;
    }

    /** Reads a varint at $pos (advancing it): -1 when cut off, longer than 10 bytes or above PHP_INT_MAX. */
    private static function varint(string $bytes, int &$pos, int $end): int
    {
        // One byte is by far the most common case (tags, short strings, flags).
        if ($pos < $end) {
            $b = ord($bytes[$pos]);
            if ($b < 0x80) {
                $pos++;
                return $b;
            }
        }
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
