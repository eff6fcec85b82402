"""Anti-forgetting strategies, each a Lightning callback (see cl.callback.ContinualCallback)."""
