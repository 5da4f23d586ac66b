"""The photo-to-post agent: a folder of event photos in, ready Instagram posts out, every stage measured.

Stages (one module each, each a function over ``Photo`` records): ``ingest`` → ``dedupe`` and
``quality`` → ``categorize`` → ``cluster`` → ``select`` → ``captioner`` (with ``montage``) →
``publish`` (the dry-run export). ``pipeline.run_agent`` composes them, writes ``stages/*.jsonl``
and caches each stage's output by the hash of its inputs and of the config keys it reads.
"""
