"""Caption datasets: records, readers, cleaning, validation, splits and statistics."""

from captune.data.records import CaptionRecord, read_records, write_records

__all__ = ["CaptionRecord", "read_records", "write_records"]
