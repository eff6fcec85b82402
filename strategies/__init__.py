"""Anti-forgetting strategies, each a Lightning callback (see cl.engine.callback.ContinualCallback)."""
