"""Read an offline W&B run file (``run-<id>.wandb``) with wandb's own protobuf schema.

The file is a W&B header (":W&B", magic 0xBEE1, version) followed by a LevelDB-style log:
32 KiB blocks of records, each with a 7-byte header (crc32, length, type). wandb 0.31 no
longer ships a Python reader (its Go core reads these), so the tests decode the framing here
and parse each record with ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<HB", data[4:7]) == (0xBEE1, 0), "not a W&B run file"
    records, pending, offset = [], b"", 7
    while offset + 7 <= len(data):
        room = BLOCK - offset % BLOCK
        if room < 7:  # block trailer padding
            offset += room
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == FULL:
            pending = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        elif kind == LAST:
            pending += chunk
        else:
            break
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        records.append(record)
    return records


def read_finished_run(path: str | Path, timeout: float = 30.0) -> list:
    """The records of a finished run: wandb-core writes the file in its own process and may
    still be writing it when ``run.finish()`` has returned in this one (a loaded full suite
    read a file without its history records), so wait for the ``exit`` record, written last."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)
