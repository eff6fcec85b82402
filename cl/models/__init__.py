"""Model families, each a ``ContinualModule`` subclass chosen by the model config's ``_target_``:
the encoder classifier (``classifier``) and the causal language model (``causal_lm``); ``load``
brings their pretrained backbones, ``layers`` tells where a parameter sits in a backbone's depth."""
