"""Caption datasets: records, readers, cleaning, validation, splits and statistics.

``captune.data.readers.read_dataset`` reads the common layouts into ``CaptionRecord`` objects,
``captune.data.images.load_image`` opens an image safely, ``captune.data.clean`` cleans captions,
``captune.data.validate`` checks a dataset end to end, ``captune.data.split`` splits it by image
and ``captune.data.inspect`` describes it.
"""

from captune.data.records import CaptionRecord, read_records, write_records

__all__ = ["CaptionRecord", "read_records", "write_records"]
