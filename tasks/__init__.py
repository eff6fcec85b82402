"""Tasks and streams as plain data: sources (synthetic, packaged real data, hub datasets, user files),
preparation and caching, prompts, and batching. Nothing here imports Lightning or the engine (``cl``)."""

from tasks.stream import Stream, Task, build_stream, prepare_tasks

__all__ = ["Stream", "Task", "build_stream", "prepare_tasks"]
