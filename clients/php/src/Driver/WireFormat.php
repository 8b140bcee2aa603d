<?php

declare(strict_types=1);

namespace Duckstore\Connection\Driver;

/**
 * A structural check of protobuf bytes: every top-level field has a valid tag, a known wire type
 * and its whole value, and the last one ends exactly at the end. The pure-PHP protobuf runtime
 * (Debian's php-google-protobuf) decodes truncated or garbage bytes into a partial message without
 * an error, so the client checks the bytes it decodes first.
 */
final class WireFormat
{
    public static function wellFormed(string $bytes): bool
    {
        $pos = 0;
        $end = strlen($bytes);
        while ($pos < $end) {
            $tag = self::varint($bytes, $pos, $end);
            if ($tag === null || $tag >> 3 === 0) {
                return false;
            }
            switch ($tag & 7) {
                case 0:
                    if (self::varint($bytes, $pos, $end) === null) {
                        return false;
                    }
                    break;
                case 1:
                    $pos += 8;
                    break;
                case 2:
                    $len = self::varint($bytes, $pos, $end);
                    if ($len === null || $len < 0) {
                        return false;
                    }
                    $pos += $len;
                    break;
                case 5:
                    $pos += 4;
                    break;
                default:  // groups (3, 4) do not occur in proto3; 6 and 7 do not exist
                    return false;
            }
            if ($pos > $end) {
                return false;
            }
        }
        return true;
    }

    /** Reads a varint at $pos (advancing it); null when it is cut off or longer than 10 bytes. */
    private static function varint(string $bytes, int &$pos, int $end): ?int
    {
        $value = 0;
        for ($shift = 0; $shift < 70; $shift += 7) {
            if ($pos >= $end) {
                return null;
            }
            $b = ord($bytes[$pos++]);
            $value |= ($b & 0x7f) << $shift;
            if ($b < 0x80) {
                return $value;
            }
        }
        return null;
    }
}
