"""Where tasks and streams come from: synthetic, packaged real data, hub datasets, user files."""

from tasks.stream import Stream, Task, build_stream

__all__ = ["Stream", "Task", "build_stream"]
