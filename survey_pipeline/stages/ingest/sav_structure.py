"""Check that an SPSS system file (`.sav`/`.zsav`) is whole before its rows are trusted.

ReadStat returns whatever rows it could decode. When the header leaves the case
count unknown (-1, which some exporters write), a file cut short at a case or
block boundary reads as a shorter, valid file. So the number of cases is taken
from what the file itself promises, by walking its bytes (the layout is PSPP's
"System File Format" documentation):

- the 176-byte header: layout code (byte order), compression (0 none,
  1 bytecode, 2 zlib) and `ncases` (-1 when unknown);
- the dictionary records (types 2, 3, 4, 6, 7) up to the termination record
  999, where the data start; every variable record (type 2, including string
  continuations) is one 8-byte element of a case, so their count is the case
  size (the header's `nominal_case_size` is not trusted: some writers put -1);
- the data:
  - uncompressed: a whole number of cases. With a declared case count the data
    are exactly that long. With -1 nothing marks the end, so a cut at a case
    boundary cannot be told from a whole file: such files are refused;
  - bytecode: blocks of 8 command bytes, each followed by the 8-byte values its
    code-253 commands announce. Codes 1-251, 253, 254 and 255 each give one
    value, 0 is padding, 252 ends the data. The walk must reach the end of a
    block exactly at the end of the file (or at code 252), and the values must
    fill whole cases. With -1, code 252 is required: every known writer (SPSS,
    PSPP, ReadStat) writes it, and without it a cut at a block boundary looks
    like a shorter file;
  - zlib (`.zsav`): a 24-byte zheader (its own offset, the ztrailer's offset and
    length), zlib blocks, and the ztrailer listing every block's offsets and
    sizes. The trailer must end exactly at the end of the file, the blocks must
    tile the space between zheader and ztrailer, each must inflate to its stated
    size, and the inflated bytes are checked as bytecode data (as above).

Bytes after the end of the data (after code 252, past the ztrailer, or beyond the
declared cases of an uncompressed file) are refused too: they are no part of any
case, and after a damaged end-of-data code they may be real rows that ReadStat
would silently skip. A declared case count that disagrees with the data is
refused, as is a count of rows read that disagrees with the cases found.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from survey_pipeline.errors import InputError

HEADER_SIZE = 176
LAYOUT_CODE_OFFSET, COMPRESSION_OFFSET, NCASES_OFFSET, BIAS_OFFSET = 64, 72, 80, 84
ELEMENT_SIZE = 8
UNCOMPRESSED, BYTECODE, ZLIB = 0, 1, 2
COMPRESSION_NAMES = {UNCOMPRESSED: "uncompressed", BYTECODE: "bytecode-compressed", ZLIB: "zlib-compressed"}
END_OF_DATA, RAW_VALUE, PADDING, SPACES, SYSTEM_MISSING_CODE = 252, 253, 0, 254, 255
# Bit patterns of system-missing, HIGHEST and LOWEST (ReadStat's defaults; a file's record 7/4
# may declare others). ReadStat reads all three, and NaN, as system-missing.
FLOAT_SENTINELS = (0xFFEFFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFE)
_FLOAT_INFO_SUBTYPE = 4
ZHEADER_SIZE = 24
ZTRAILER_HEADER_SIZE = 24
ZTRAILER_ENTRY_SIZE = 24
_VARIABLE, _VALUE_LABELS, _VALUE_LABEL_VARIABLES, _DOCUMENT, _EXTENSION, _END_OF_DICTIONARY = 2, 3, 4, 6, 7, 999


@dataclass(frozen=True)
class SavLayout:
    """What the bytes of a whole SPSS file promise: compression, case size and cases."""

    compression: int
    declared_cases: int | None
    case_size: int
    data_offset: int
    cases: int
    byte_order: str = "<"
    bias: float = 100.0  # bytecode: codes 1-251 stand for the value code - bias
    float_sentinels: tuple[int, ...] = FLOAT_SENTINELS
    numeric_variables: int = 0  # variable records of numeric variables (type 0)
    blocks: _CommandBlocks | None = field(default=None, repr=False, compare=False)  # bytecode, as walked


@dataclass(frozen=True, eq=False)
class _CommandBlocks:
    """A walked bytecode stream: its 8-byte elements from `offset` and which of them are command blocks."""

    stream: bytes
    offset: int
    commands: np.ndarray  # (elements, 8) uint8: every element's bytes, read as command codes
    visited: np.ndarray  # the elements that are command blocks, in order
    last_codes: int  # codes of the last visited block before its end-of-data code (8 without one)


class _Reader:
    """Reads integers from the file's bytes, raising a one-line error where they run out.

    Inside the dictionary a record that runs past the end may also be a corrupt
    length, so there the error says "truncated or corrupt"; once the dictionary
    has ended (`in_data`), the data's own framing makes a short file a cut file.
    """

    def __init__(self, content: bytes, byte_order: str, name: str) -> None:
        self.content = content
        self.order = byte_order
        self.name = name
        self.in_data = False

    def int32(self, offset: int, where: str) -> int:
        return self._unpack("i", offset, where)

    def int64(self, offset: int, where: str) -> int:
        return self._unpack("q", offset, where)

    def need(self, end: int, where: str) -> None:
        if end > len(self.content):
            if self.in_data:
                raise _truncated(self.name, f"the file ends inside {where}")
            raise _corrupt(self.name, f"{where} runs past the end of the file")

    def _unpack(self, code: str, offset: int, where: str) -> int:
        size = struct.calcsize(code)
        self.need(offset + size, where)
        return struct.unpack_from(self.order + code, self.content, offset)[0]


def _truncated(name: str, detail: str) -> InputError:
    return InputError(f"the SPSS file is truncated: {detail}", file=name, rule="truncated_file")


def _corrupt(name: str, detail: str) -> InputError:
    return InputError(
        f"cannot read the SPSS file ({detail}); it is truncated or corrupt", file=name, rule="unreadable_file"
    )


def check_sav_structure(content: bytes, name: str) -> SavLayout:
    """Walk header, dictionary and data of a `.sav`/`.zsav`; raise `InputError` unless whole.

    Returns the layout with the number of cases the data hold, which the rows a
    reader returns must equal (see `check_rows_read`).
    """
    if len(content) < HEADER_SIZE:
        raise _truncated(name, f"the file ends inside its {HEADER_SIZE}-byte header ({len(content)} bytes)")
    byte_order = _byte_order(content, name)
    reader = _Reader(content, byte_order, name)
    compression = reader.int32(COMPRESSION_OFFSET, "the header")
    if compression not in COMPRESSION_NAMES or (content[:4] == b"$FL3") != (compression == ZLIB):
        raise _corrupt(name, f"unknown compression {compression} in the header")
    ncases = reader.int32(NCASES_OFFSET, "the header")
    declared = ncases if ncases >= 0 else None
    bias = struct.unpack_from(byte_order + "d", content, BIAS_OFFSET)[0]
    dictionary = _walk_dictionary(reader)
    case_size, data_offset = dictionary.case_size, dictionary.data_offset
    reader.in_data = True
    if case_size == 0:
        raise _corrupt(name, "the dictionary declares no variables")
    blocks = None
    if compression == UNCOMPRESSED:
        cases = _uncompressed_cases(reader, data_offset, case_size, declared)
    else:
        if compression == BYTECODE:
            stream, stream_offset = content, data_offset
        else:
            stream, stream_offset = _inflate_zlib_blocks(reader, data_offset), 0
        values, ended, blocks = _walk_bytecode(stream, stream_offset, name)
        cases = _bytecode_cases(values, ended, case_size, declared, name)
    if declared is not None and cases != declared:
        raise InputError(
            f"the header promises {declared} cases but the {COMPRESSION_NAMES[compression]} data hold {cases}; the file is corrupt",
            file=name,
            rule="case_count",
        )
    return SavLayout(
        compression,
        declared,
        case_size,
        data_offset,
        cases,
        byte_order,
        bias,
        dictionary.float_sentinels,
        dictionary.numeric_variables,
        blocks,
    )


def check_rows_read(layout: SavLayout, rows_read: int, name: str) -> None:
    """The reader must have returned every case the file holds, no more and no fewer."""
    if rows_read != layout.cases:
        raise InputError(
            f"the SPSS reader returned {rows_read} rows but the file holds {layout.cases} cases; the file is corrupt",
            file=name,
            rule="case_count",
        )


def numeric_cases(content: bytes, layout: SavLayout) -> np.ndarray | None:
    """The cases of a checked file as a (cases x variables) float64 array, as ReadStat reads them.

    Only when every variable is numeric (one 8-byte element each); otherwise None and
    the caller lets ReadStat read the file. Uncompressed data are the doubles as they
    are; bytecode (and inflated zlib) data are decoded from the walked command blocks:
    code 1-251 is the value code - bias, 253 the next raw double after the block, 255
    system-missing, 0 padding. As in ReadStat, NaN and the file's system-missing,
    HIGHEST and LOWEST bit patterns read as system-missing (NaN). ReadStat decodes cell
    by cell through Python (about 0.4 us a cell); this costs a few numpy passes.
    """
    if layout.numeric_variables != layout.case_size:
        return None
    double = np.dtype(np.float64).newbyteorder(layout.byte_order)
    size = layout.cases * layout.case_size
    if layout.compression == UNCOMPRESSED:
        values = np.frombuffer(content, dtype=double, count=size, offset=layout.data_offset).astype(np.float64)
    else:
        blocks = layout.blocks
        assert blocks is not None  # set for every compressed layout
        codes = blocks.commands[blocks.visited]
        kept = codes != PADDING
        if blocks.visited.size:
            kept[-1, blocks.last_codes :] = False
        raw = (codes == RAW_VALUE) & kept
        raw_elements = (blocks.visited[:, None] + np.cumsum(raw, axis=1, dtype=np.int64))[raw]
        kept_codes = codes[kept]
        if (kept_codes == SPACES).any():
            return None
        values = kept_codes.astype(np.float64) - layout.bias
        elements = np.frombuffer(blocks.stream, dtype=double, count=blocks.commands.shape[0], offset=blocks.offset)
        values[kept_codes == RAW_VALUE] = elements[raw_elements]
        values[kept_codes == SYSTEM_MISSING_CODE] = np.nan
    if values.size != size:
        return None
    missing = np.isin(values.view(np.uint64), np.array(layout.float_sentinels, dtype=np.uint64))
    values[missing] = np.nan
    return values.reshape(layout.cases, layout.case_size)


def _byte_order(content: bytes, name: str) -> str:
    """'<' or '>': the layout code (2 or 3) tells the writer's byte order."""
    for order in ("<", ">"):
        if struct.unpack_from(order + "i", content, LAYOUT_CODE_OFFSET)[0] in (2, 3):
            return order
    raise _corrupt(name, "unknown layout code in the header")


@dataclass(frozen=True)
class _Dictionary:
    case_size: int  # variable records (8-byte elements of a case)
    data_offset: int  # where the data start (after record 999)
    numeric_variables: int
    float_sentinels: tuple[int, ...]


def _walk_dictionary(reader: _Reader) -> _Dictionary:
    """Case size, data offset, numeric variables and the float sentinels (record 7/4, if any)."""
    name = reader.name
    offset = HEADER_SIZE
    case_size = numeric = 0
    sentinels = FLOAT_SENTINELS
    while True:
        record = reader.int32(offset, "the dictionary")
        if record == _VARIABLE:
            numeric += reader.int32(offset + 4, "a variable record") == 0
            has_label = reader.int32(offset + 8, "a variable record")
            n_missing = reader.int32(offset + 12, "a variable record")
            if has_label not in (0, 1) or abs(n_missing) > 3:
                raise _corrupt(name, f"malformed variable record at byte {offset}")
            offset += 32
            if has_label:
                label_length = reader.int32(offset, "a variable label")
                offset += 4 + _round_up(_non_negative(label_length, offset, name), 4)
            offset += ELEMENT_SIZE * abs(n_missing)
            case_size += 1
        elif record == _VALUE_LABELS:
            count = _non_negative(reader.int32(offset + 4, "a value label record"), offset, name)
            offset += 8
            for _ in range(count):
                reader.need(offset + 9, "a value label record")
                offset += ELEMENT_SIZE + _round_up(1 + reader.content[offset + ELEMENT_SIZE], ELEMENT_SIZE)
        elif record == _VALUE_LABEL_VARIABLES:
            count = _non_negative(reader.int32(offset + 4, "a value label record"), offset, name)
            offset += 8 + 4 * count
        elif record == _DOCUMENT:
            lines = _non_negative(reader.int32(offset + 4, "a document record"), offset, name)
            offset += 8 + 80 * lines
        elif record == _EXTENSION:
            subtype = reader.int32(offset + 4, "an extension record")
            size = _non_negative(reader.int32(offset + 8, "an extension record"), offset, name)
            count = _non_negative(reader.int32(offset + 12, "an extension record"), offset, name)
            if subtype == _FLOAT_INFO_SUBTYPE and size == ELEMENT_SIZE and count == len(FLOAT_SENTINELS):
                reader.need(offset + 16 + size * count, "an extension record")
                sentinels = struct.unpack_from(reader.order + "3Q", reader.content, offset + 16)
            offset += 16 + size * count
        elif record == _END_OF_DICTIONARY:
            offset += 8
            reader.need(offset, "the dictionary")
            return _Dictionary(case_size, offset, numeric, sentinels)
        else:
            raise _corrupt(name, f"unknown dictionary record type {record} at byte {offset}")
        reader.need(offset, "the dictionary")


def _uncompressed_cases(reader: _Reader, data_offset: int, case_size: int, declared: int | None) -> int:
    name = reader.name
    case_bytes = case_size * ELEMENT_SIZE
    data_bytes = len(reader.content) - data_offset
    if declared is not None:
        expected = declared * case_bytes
        if data_bytes < expected:
            raise _truncated(
                name,
                f"the header promises {declared} cases but the data end inside case {data_bytes // case_bytes + 1}",
            )
        if data_bytes > expected:
            raise _trailing(name, data_bytes - expected, f"the {declared} cases the header promises")
        return declared
    if data_bytes % case_bytes:
        raise _truncated(name, f"the data end inside case {data_bytes // case_bytes + 1}")
    raise InputError(
        "the header gives no case count (-1) and uncompressed SPSS data have no end marker, so a truncated file "
        "cannot be told from a whole one; save the file again from SPSS (which records the case count)",
        file=name,
        rule="unknown_case_count",
    )


def _walk_bytecode(stream: bytes, offset: int, name: str) -> tuple[int, bool, _CommandBlocks]:
    """Count the values of a bytecode stream from `offset`; True if it ends with code 252.

    Raises if a command block or the values it announces are cut off, or if bytes
    follow code 252. Every 8-byte element is first read as if it were a command
    block (numpy: how many 253 codes it holds, whether it holds code 252), which gives
    the element where the next block would start; then one pass follows those links
    from the first block (about 0.1 us a block instead of a microsecond). Only the
    block where the walk stops at code 252 is read code by code.
    """
    end = len(stream)
    elements, tail = divmod(end - offset, ELEMENT_SIZE)
    commands = np.frombuffer(stream, dtype=np.uint8, count=elements * ELEMENT_SIZE, offset=offset).reshape(
        elements, ELEMENT_SIZE
    )
    links = np.arange(1, elements + 1) + _codes_per_element(commands, RAW_VALUE)
    ends = np.flatnonzero((commands == END_OF_DATA).any(axis=1))
    links[ends] = elements + 1  # the walk stops at a block with code 252
    chain = []
    element, following = 0, links.tolist()
    while element < elements:
        chain.append(element)
        element = following[element]
    visited = np.array(chain, dtype=np.int64)
    values = int(ELEMENT_SIZE * visited.size - _codes_per_element(commands[visited], PADDING).sum())
    last = chain[-1] if chain else None
    if last is not None and END_OF_DATA in commands[last]:
        codes = commands[last].tolist()
        stop = codes.index(END_OF_DATA)
        values -= (ELEMENT_SIZE - stop) - codes[stop:].count(PADDING)  # codes after 252 are no part of the data
        after = offset + (last + 1 + codes[:stop].count(RAW_VALUE)) * ELEMENT_SIZE
        if after > end:
            raise _truncated(name, "the compressed data end inside the values of a command block")
        if after < end:
            raise _trailing(name, end - after, "the end-of-data code")
        return values, True, _CommandBlocks(stream, offset, commands, visited, stop)
    if element > elements:
        raise _truncated(name, "the compressed data end inside the values of a command block")
    if tail:  # the next block would start in the last, partial element
        raise _truncated(name, "the compressed data end inside a block of command codes")
    return values, False, _CommandBlocks(stream, offset, commands, visited, ELEMENT_SIZE)


_BYTE_SUM = np.uint64(0x0101010101010101)  # x * this, >> 56: the sum of the 8 bytes of x (each 0 or 1)


def _codes_per_element(commands: np.ndarray, code: int) -> np.ndarray:
    """How many bytes of each 8-byte element equal `code`."""
    flags = np.ascontiguousarray(commands == code).view(np.uint64).ravel()
    return (flags * _BYTE_SUM >> np.uint64(56)).astype(np.int64)


def _bytecode_cases(values: int, ended: bool, case_size: int, declared: int | None, name: str) -> int:
    cases, rest = divmod(values, case_size)
    if rest:
        raise _truncated(name, f"the data end inside case {cases + 1}")
    if not ended and declared is None:
        raise _truncated(
            name,
            "the compressed data stop without the end-of-data code and the header gives no case count "
            "(if the file is whole, save it again from SPSS)",
        )
    if not ended and cases < declared:
        raise _truncated(name, f"the header promises {declared} cases but the data stop after {cases}")
    return cases


def _inflate_zlib_blocks(reader: _Reader, data_offset: int) -> bytes:
    """The bytecode stream of a `.zsav`, after checking zheader, ztrailer and every block."""
    name = reader.name
    size = len(reader.content)
    zheader_offset = reader.int64(data_offset, "the zlib data header")
    trailer_offset = reader.int64(data_offset + 8, "the zlib data header")
    trailer_length = reader.int64(data_offset + 16, "the zlib data header")
    first_block = data_offset + ZHEADER_SIZE
    if (
        zheader_offset != data_offset
        or trailer_offset < first_block
        or trailer_length < ZTRAILER_HEADER_SIZE
        or (trailer_length - ZTRAILER_HEADER_SIZE) % ZTRAILER_ENTRY_SIZE
    ):
        raise _corrupt(name, "malformed zlib data header")
    file_end = trailer_offset + trailer_length
    if size < file_end:
        raise _truncated(name, f"the zlib trailer should end at byte {file_end} but the file has {size} bytes")
    if size > file_end:
        raise _trailing(name, size - file_end, "the zlib trailer")
    n_blocks = reader.int32(trailer_offset + 20, "the zlib trailer")
    if ZTRAILER_HEADER_SIZE + ZTRAILER_ENTRY_SIZE * n_blocks != trailer_length:
        raise _corrupt(name, "the zlib trailer's block count disagrees with its length")
    parts = []
    expected_offset = first_block
    for i in range(n_blocks):
        entry = trailer_offset + ZTRAILER_HEADER_SIZE + ZTRAILER_ENTRY_SIZE * i
        compressed_offset = reader.int64(entry + 8, "the zlib trailer")
        inflated_size = reader.int32(entry + 16, "the zlib trailer")
        compressed_size = reader.int32(entry + 20, "the zlib trailer")
        if compressed_offset != expected_offset or compressed_size < 0 or inflated_size < 0:
            raise _corrupt(name, f"zlib block {i + 1} is not where the trailer says")
        expected_offset += compressed_size
        try:
            part = zlib.decompress(reader.content[compressed_offset:expected_offset])
        except zlib.error:
            raise _corrupt(name, f"zlib block {i + 1} does not inflate") from None
        if len(part) != inflated_size:
            raise _corrupt(name, f"zlib block {i + 1} inflates to {len(part)} bytes, not {inflated_size}")
        parts.append(part)
    if expected_offset != trailer_offset:
        raise _corrupt(name, "the zlib blocks do not reach the trailer")
    return b"".join(parts)


def _trailing(name: str, count: int, after: str) -> InputError:
    return InputError(
        f"{count} byte(s) follow {after}; the file is damaged or not one SPSS file", file=name, rule="trailing_bytes"
    )


def _non_negative(value: int, offset: int, name: str) -> int:
    if value < 0:
        raise _corrupt(name, f"negative count in the dictionary record at byte {offset}")
    return value


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
