"""Build the pretrained (or randomly initialised) encoder and its tokenizer from the ``model`` config."""

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from transformers import AutoModel, AutoTokenizer, PreTrainedModel

from cl.fetch import extract_folder


def model_path(cfg: DictConfig) -> str:
    """A local folder or hub name: ``cfg.path`` if set, else the folder inside a registry package."""
    if cfg.get("path"):
        path = str(cfg.path)
        if Path(path).expanduser().exists():
            return str(Path(path).expanduser())
        if path.startswith((".", "/", "~")):
            raise FileNotFoundError(f"model.path {path!r} does not exist; give a model folder or a hub name")
        return path  # a hub name such as "bert-base-uncased"
    src = cfg.get("package")
    if not src:
        raise ValueError("the model config needs `path` (folder or hub name), `package`, or `config`")
    return str(extract_folder(src.name, src.version, src.folder))


def build_encoder(cfg: DictConfig) -> tuple[PreTrainedModel, object | None]:
    """Return ``(encoder, tokenizer)``; a model built from ``cfg.config`` is random and has no tokenizer.

    ``gradient_checkpointing: true`` recomputes activations in the backward pass (less memory,
    about a third more compute); ``compile: true`` compiles the encoder's forward with
    ``torch.compile`` (worth it on GPUs for long runs; the first steps pay for compilation).
    """
    if cfg.get("config") is not None:
        encoder, tokenizer = AutoModel.from_config(instantiate(cfg.config)), None
    else:
        path = model_path(cfg)
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path, **cfg.get("load_kwargs", {}))
    if cfg.get("gradient_checkpointing"):
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.get("compile"):
        encoder.compile()  # in place: parameter names and state dicts stay the same
    return encoder, tokenizer
